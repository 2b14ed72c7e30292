-- A window run belongs to a stream (the cursor key it advances): when a worker dies mid-window its
-- run is left running, and the next holder of the stream marks it abandoned. count_source says where a
-- run's throughput and error counts came from (traces, traceql-metrics).
ALTER TABLE detection_runs ADD COLUMN stream TEXT;
ALTER TABLE detection_runs ADD COLUMN count_source TEXT;
CREATE INDEX detection_runs_stream_running ON detection_runs (stream) WHERE status = 'running';
