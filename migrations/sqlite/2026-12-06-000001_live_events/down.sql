DROP TRIGGER incidents_live_updated;
DROP TRIGGER incidents_live_resolved;
DROP TRIGGER incidents_live_insert;
DROP TRIGGER trace_anomalies_live_updated;
DROP TRIGGER trace_anomalies_live_resolved;
DROP TRIGGER trace_anomalies_live_insert;
DROP TABLE live_events;
