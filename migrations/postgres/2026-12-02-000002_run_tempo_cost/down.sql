ALTER TABLE detection_runs DROP COLUMN tempo_queries;
ALTER TABLE detection_runs DROP COLUMN tempo_lookups;
ALTER TABLE detection_runs DROP COLUMN tempo_bytes;
ALTER TABLE detection_runs DROP COLUMN tempo_seconds;
