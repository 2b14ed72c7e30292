DROP INDEX alert_outbox_by_anomaly;
DROP INDEX config_history_changed;
DROP INDEX alert_outbox_sent;
DROP INDEX detection_runs_finished;
DROP INDEX incidents_closed;
DROP INDEX trace_anomalies_resolved_last_seen;
