DELETE FROM alert_outbox WHERE incident_id IS NOT NULL OR event = 'origin_changed';
ALTER TABLE alert_outbox DROP CONSTRAINT alert_outbox_event_allowed;
ALTER TABLE alert_outbox ADD CONSTRAINT alert_outbox_event_allowed CHECK (event IN ('opened', 'escalated', 'resolved'));
ALTER TABLE alert_outbox DROP CONSTRAINT alert_outbox_one_subject;
ALTER TABLE alert_outbox DROP COLUMN incident_id;
ALTER TABLE alert_outbox ALTER COLUMN anomaly_id SET NOT NULL;
ALTER TABLE trace_anomalies DROP COLUMN incident_id;
DROP TABLE incidents;
