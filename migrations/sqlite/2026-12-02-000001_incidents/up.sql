-- Incidents, as in migrations/postgres (see its comments), in SQLite's types.
CREATE TABLE incidents (
    id TEXT NOT NULL PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'open',
    severity TEXT NOT NULL,
    title TEXT NOT NULL,
    client TEXT,
    started_at TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    ended_at TEXT,
    resolved_at TEXT,
    resolved_by TEXT,
    resolution_notes TEXT,
    origins TEXT NOT NULL,
    services TEXT NOT NULL,
    calls TEXT NOT NULL,
    anomaly_count INTEGER NOT NULL,
    detections INTEGER NOT NULL,
    example_trace_ids TEXT NOT NULL,
    merged_into TEXT,
    alerted INTEGER NOT NULL DEFAULT 0,
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f000+00:00', 'now')),
    CONSTRAINT incidents_status_allowed CHECK (status IN ('open', 'resolved', 'merged')),
    CONSTRAINT incidents_severity_allowed CHECK (severity IN ('LOW', 'MEDIUM', 'HIGH', 'CRITICAL'))
) STRICT;
CREATE INDEX incidents_newest ON incidents (started_at DESC, id DESC);
CREATE INDEX incidents_open ON incidents (started_at DESC, id DESC) WHERE status = 'open';

ALTER TABLE trace_anomalies ADD COLUMN incident_id TEXT REFERENCES incidents (id) ON DELETE SET NULL;
CREATE INDEX trace_anomalies_by_incident ON trace_anomalies (incident_id);

-- An alert is about an anomaly row or an incident. SQLite cannot relax a NOT NULL in place: the table
-- is built again with its rows.
CREATE TABLE alert_outbox_new (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    anomaly_id TEXT REFERENCES trace_anomalies (id) ON DELETE CASCADE,
    incident_id TEXT REFERENCES incidents (id) ON DELETE CASCADE,
    event TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f000+00:00', 'now')),
    attempts INTEGER NOT NULL DEFAULT 0,
    claimed_by TEXT,
    claimed_until TEXT,
    sent_at TEXT,
    last_error TEXT,
    CONSTRAINT alert_outbox_one_subject CHECK ((anomaly_id IS NULL) <> (incident_id IS NULL)),
    CONSTRAINT alert_outbox_event_allowed CHECK (event IN ('opened', 'escalated', 'origin_changed', 'resolved'))
) STRICT;
INSERT INTO alert_outbox_new (id, anomaly_id, event, created_at, attempts, claimed_by, claimed_until, sent_at, last_error)
    SELECT id, anomaly_id, event, created_at, attempts, claimed_by, claimed_until, sent_at, last_error FROM alert_outbox;
DROP TABLE alert_outbox;
ALTER TABLE alert_outbox_new RENAME TO alert_outbox;
CREATE INDEX alert_outbox_unsent ON alert_outbox (id) WHERE sent_at IS NULL;
CREATE INDEX alert_outbox_by_anomaly ON alert_outbox (anomaly_id);
CREATE INDEX alert_outbox_by_incident ON alert_outbox (incident_id);
