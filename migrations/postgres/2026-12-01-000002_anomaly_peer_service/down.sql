ALTER TABLE trace_anomalies DROP COLUMN peer_service;
