-- What the retention job walks, as in migrations/postgres (see its comments). The partial index's
-- predicate is written as the store's queries write it, so that SQLite uses it.
CREATE INDEX trace_anomalies_resolved_last_seen ON trace_anomalies (last_seen_at, id)
    WHERE resolved IS 1;
CREATE INDEX incidents_closed ON incidents (last_seen_at) WHERE status <> 'open';
CREATE INDEX detection_runs_finished ON detection_runs (finished_at)
    WHERE status IN ('succeeded', 'failed');
CREATE INDEX alert_outbox_sent ON alert_outbox (sent_at) WHERE sent_at IS NOT NULL;
CREATE INDEX config_history_changed ON config_history (changed_at);
