-- The service called, when an anomaly is about time spent on the way to it (a client span's own time:
-- the wire and queues between two services) or about a call to it. Not part of the fingerprint: an
-- open incident keeps the first peer service a detection of it named.
ALTER TABLE trace_anomalies ADD COLUMN peer_service TEXT;
