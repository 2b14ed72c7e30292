-- What the retention job (store-pg's `apply_retention`) walks, each in the order it deletes, so that
-- every batch is an index range scan. The partial indexes hold only rows the job may delete: an insert
-- of an open anomaly, an unsent alert or a running run adds nothing to them.
CREATE INDEX trace_anomalies_resolved_last_seen ON trace_anomalies (last_seen_at, id)
    WHERE resolved IS TRUE;
CREATE INDEX incidents_closed ON incidents (last_seen_at) WHERE status <> 'open';
CREATE INDEX detection_runs_finished ON detection_runs (finished_at)
    WHERE status IN ('succeeded', 'failed');
CREATE INDEX alert_outbox_sent ON alert_outbox (sent_at) WHERE sent_at IS NOT NULL;
CREATE INDEX config_history_changed ON config_history (changed_at);
-- Deleting an anomaly row deletes its alerts (ON DELETE CASCADE), and the job asks whether one is
-- still unsent: both look alerts up by anomaly (SQLite's schema had this index already).
CREATE INDEX alert_outbox_by_anomaly ON alert_outbox (anomaly_id);
