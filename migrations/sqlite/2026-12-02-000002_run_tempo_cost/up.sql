-- What a window's reading of Tempo cost: queries (search, TraceQL metrics), lookups (trace by id), bytes
-- of the answers, and seconds spent waiting on Tempo (summed over concurrent requests). Null for runs that
-- did not read Tempo (in-process detection).
ALTER TABLE detection_runs ADD COLUMN tempo_queries INTEGER;
ALTER TABLE detection_runs ADD COLUMN tempo_lookups INTEGER;
ALTER TABLE detection_runs ADD COLUMN tempo_bytes INTEGER;
ALTER TABLE detection_runs ADD COLUMN tempo_seconds REAL;
