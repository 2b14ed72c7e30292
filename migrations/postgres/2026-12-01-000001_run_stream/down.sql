DROP INDEX detection_runs_stream_running;
ALTER TABLE detection_runs DROP COLUMN count_source;
ALTER TABLE detection_runs DROP COLUMN stream;
