-- tracewatch schema for the embedded SQLite file: the same tables, columns, constraints, indexes and seed
-- rows as migrations/postgres, in SQLite's types. Tables are STRICT, so that a column holds the type it
-- declares, as in PostgreSQL.
--
-- - UUIDs are TEXT, lower-case and hyphenated (made in Rust with Uuid::new_v4). The DEFAULT makes a random
--   version-4 UUID of the same shape, so that an insert written for the seed schema, without an id, works.
-- - Timestamps are TEXT in one fixed-width UTC form, 'YYYY-MM-DD HH:MM:SS.ffffff+00:00', so that text
--   order is time order (written by the store's `Ts`; the DEFAULT writes the same form, to milliseconds).
-- - JSON is TEXT (serde_json in Rust); booleans are INTEGER 0/1.

CREATE TABLE trace_anomalies (
    id TEXT NOT NULL PRIMARY KEY DEFAULT (lower(
        hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' || substr(hex(randomblob(2)), 2) || '-'
        || substr('89ab', 1 + (abs(random()) % 4), 1) || substr(hex(randomblob(2)), 2) || '-'
        || hex(randomblob(6)))),
    trace_id TEXT NOT NULL,
    span_id TEXT,
    anomaly_type TEXT NOT NULL,
    anomaly_subtype TEXT,
    severity TEXT NOT NULL,
    description TEXT,
    detected_at TEXT DEFAULT (strftime('%Y-%m-%d %H:%M:%f000+00:00', 'now')),
    resolved INTEGER DEFAULT 0,
    resolution_notes TEXT,
    -- tracewatch's additions
    service_name TEXT,
    operation TEXT,
    client TEXT,
    observed_value REAL,
    expected_value REAL,
    score REAL,
    fingerprint TEXT,
    window_start TEXT,
    window_end TEXT,
    occurrences INTEGER NOT NULL DEFAULT 1,
    last_seen_at TEXT DEFAULT (strftime('%Y-%m-%d %H:%M:%f000+00:00', 'now')),
    resolved_at TEXT,
    resolved_by TEXT,
    -- the rest of the explanation: spread, threshold, unit, example trace ids
    details TEXT,
    CONSTRAINT trace_anomalies_type_allowed CHECK (anomaly_type IN ('PERFORMANCE', 'SECURITY', 'RESOURCE')),
    CONSTRAINT trace_anomalies_severity_allowed CHECK (severity IN ('LOW', 'MEDIUM', 'HIGH', 'CRITICAL')),
    CONSTRAINT trace_anomalies_resolved_boolean CHECK (resolved IN (0, 1))
) STRICT;

-- The dashboard's questions: newest first (keyset on detected_at, id); unresolved by severity; by service;
-- by fingerprint. One open incident per fingerprint: detections of it merge into that row. The partial
-- indexes' predicates are written as the store's queries write them, so that SQLite uses them.
CREATE INDEX trace_anomalies_newest ON trace_anomalies (detected_at DESC, id DESC);
CREATE INDEX trace_anomalies_unresolved_by_severity ON trace_anomalies (severity, detected_at DESC, id DESC)
    WHERE resolved IS NOT 1;
-- The live alert panel: unresolved HIGH and CRITICAL, newest first, however rare they are.
CREATE INDEX trace_anomalies_alert_panel ON trace_anomalies (detected_at DESC, id DESC)
    WHERE resolved IS NOT 1 AND severity IN ('HIGH', 'CRITICAL');
CREATE INDEX trace_anomalies_by_service ON trace_anomalies (service_name, detected_at DESC, id DESC);
CREATE INDEX trace_anomalies_by_fingerprint ON trace_anomalies (fingerprint);
CREATE UNIQUE INDEX trace_anomalies_open_incident ON trace_anomalies (fingerprint)
    WHERE resolved IS NOT 1 AND fingerprint IS NOT NULL;

CREATE TABLE anomaly_detection_config (
    id TEXT NOT NULL PRIMARY KEY DEFAULT (lower(
        hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' || substr(hex(randomblob(2)), 2) || '-'
        || substr('89ab', 1 + (abs(random()) % 4), 1) || substr(hex(randomblob(2)), 2) || '-'
        || hex(randomblob(6)))),
    config_key TEXT NOT NULL UNIQUE,
    config_value TEXT,
    description TEXT
) STRICT;

INSERT INTO anomaly_detection_config (config_key, config_value, description) VALUES
    ('latency_threshold_stddev', '3.0', 'Standard deviations (on log-duration) above its operation''s baseline at which a span is a latency anomaly'),
    ('error_rate_threshold', '0.05', 'Error ratio of an operation in a window above which it is an error-rate anomaly'),
    ('throughput_spike_threshold', '3.0', 'Standard deviations of a window''s request count from its history at which traffic is a spike or drop'),
    ('sampling_enabled', 'true', 'Whether per-trace analysis looks at a deterministic sample of traces only'),
    ('sampling_ratio', '0.1', 'Share of traces sampled for per-trace analysis (0-1)');

-- Every detection ever stored, by a key derived from the detection itself (fingerprint, window, trace,
-- span): processing the same window again finds its keys here and changes nothing.
CREATE TABLE anomaly_detections (
    detection_key TEXT NOT NULL PRIMARY KEY,
    -- Written in the same transaction as the row it points at.
    anomaly_id TEXT REFERENCES trace_anomalies (id) ON DELETE CASCADE,
    stored_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f000+00:00', 'now'))
) STRICT;
CREATE INDEX anomaly_detections_anomaly ON anomaly_detections (anomaly_id);

-- Learned detector state, so that a restart does not learn from zero.
CREATE TABLE detector_baselines (
    baseline_key TEXT NOT NULL PRIMARY KEY,
    state TEXT NOT NULL,
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f000+00:00', 'now'))
) STRICT;

-- One row per detection run, manual (API) or scheduled (worker).
CREATE TABLE detection_runs (
    id TEXT NOT NULL PRIMARY KEY DEFAULT (lower(
        hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' || substr(hex(randomblob(2)), 2) || '-'
        || substr('89ab', 1 + (abs(random()) % 4), 1) || substr(hex(randomblob(2)), 2) || '-'
        || hex(randomblob(6)))),
    "trigger" TEXT NOT NULL,
    window_start TEXT,
    window_end TEXT,
    status TEXT NOT NULL DEFAULT 'pending',
    spans INTEGER NOT NULL DEFAULT 0,
    anomalies INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    worker TEXT,
    requested_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f000+00:00', 'now')),
    started_at TEXT,
    finished_at TEXT,
    CONSTRAINT detection_runs_trigger_allowed CHECK ("trigger" IN ('manual', 'scheduled')),
    CONSTRAINT detection_runs_status_allowed CHECK (status IN ('pending', 'running', 'succeeded', 'failed'))
) STRICT;
CREATE INDEX detection_runs_pending ON detection_runs (requested_at) WHERE status = 'pending';

-- Work shared by several workers: a lease is held until it expires (a dead worker's lease lapses);
-- a cursor says how far a stream of windows is done.
CREATE TABLE work_leases (
    lease_key TEXT NOT NULL PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    acquired_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f000+00:00', 'now'))
) STRICT;
CREATE TABLE work_cursors (
    cursor_key TEXT NOT NULL PRIMARY KEY,
    position TEXT NOT NULL,
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f000+00:00', 'now'))
) STRICT;

-- Alerts to send, written in the same transaction as the anomaly: a crash between storing and sending
-- loses nothing.
CREATE TABLE alert_outbox (
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
CREATE INDEX alert_outbox_unsent ON alert_outbox (id) WHERE sent_at IS NULL;
CREATE INDEX alert_outbox_by_anomaly ON alert_outbox (anomaly_id);

-- Who changed which configuration key, when, from what to what.
CREATE TABLE config_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    config_key TEXT NOT NULL,
    old_value TEXT,
    new_value TEXT,
    changed_by TEXT NOT NULL,
    changed_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f000+00:00', 'now'))
) STRICT;
CREATE INDEX config_history_by_key ON config_history (config_key, changed_at DESC);
