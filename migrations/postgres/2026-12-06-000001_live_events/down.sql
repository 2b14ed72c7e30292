DROP TRIGGER incidents_live ON incidents;
DROP FUNCTION incidents_live();
DROP TRIGGER trace_anomalies_live ON trace_anomalies;
DROP FUNCTION trace_anomalies_live();
DROP FUNCTION tracewatch_live_event(TEXT, TEXT, UUID);
DROP TABLE live_events;
