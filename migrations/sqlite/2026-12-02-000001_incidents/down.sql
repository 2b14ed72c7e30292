CREATE TABLE alert_outbox_old (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    anomaly_id TEXT NOT NULL REFERENCES trace_anomalies (id) ON DELETE CASCADE,
    event TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f000+00:00', 'now')),
    attempts INTEGER NOT NULL DEFAULT 0,
    claimed_by TEXT,
    claimed_until TEXT,
    sent_at TEXT,
    last_error TEXT,
    CONSTRAINT alert_outbox_event_allowed CHECK (event IN ('opened', 'escalated', 'resolved'))
) STRICT;
INSERT INTO alert_outbox_old (id, anomaly_id, event, created_at, attempts, claimed_by, claimed_until, sent_at, last_error)
    SELECT id, anomaly_id, event, created_at, attempts, claimed_by, claimed_until, sent_at, last_error
    FROM alert_outbox WHERE anomaly_id IS NOT NULL AND event <> 'origin_changed';
DROP TABLE alert_outbox;
ALTER TABLE alert_outbox_old RENAME TO alert_outbox;
CREATE INDEX alert_outbox_unsent ON alert_outbox (id) WHERE sent_at IS NULL;
CREATE INDEX alert_outbox_by_anomaly ON alert_outbox (anomaly_id);
DROP INDEX trace_anomalies_by_incident;
ALTER TABLE trace_anomalies DROP COLUMN incident_id;
DROP TABLE incidents;
