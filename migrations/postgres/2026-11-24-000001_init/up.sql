-- tracewatch schema. The seed's two tables (trace_anomalies, anomaly_detection_config) keep their exact
-- names, columns, types and defaults: an insert written for the seed schema still works. What tracewatch
-- adds to them is nullable or defaulted.

CREATE TABLE trace_anomalies (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    trace_id TEXT NOT NULL,
    span_id TEXT,
    anomaly_type TEXT NOT NULL,
    anomaly_subtype TEXT,
    severity TEXT NOT NULL,
    description TEXT,
    detected_at TIMESTAMPTZ DEFAULT NOW(),
    resolved BOOLEAN DEFAULT FALSE,
    resolution_notes TEXT,
    -- tracewatch's additions
    service_name TEXT,
    operation TEXT,
    client TEXT,
    observed_value DOUBLE PRECISION,
    expected_value DOUBLE PRECISION,
    score DOUBLE PRECISION,
    fingerprint TEXT,
    window_start TIMESTAMPTZ,
    window_end TIMESTAMPTZ,
    occurrences BIGINT NOT NULL DEFAULT 1,
    last_seen_at TIMESTAMPTZ DEFAULT NOW(),
    resolved_at TIMESTAMPTZ,
    resolved_by TEXT,
    -- the rest of the explanation: spread, threshold, unit, example trace ids
    details JSONB,
    CONSTRAINT trace_anomalies_type_allowed CHECK (anomaly_type IN ('PERFORMANCE', 'SECURITY', 'RESOURCE')),
    CONSTRAINT trace_anomalies_severity_allowed CHECK (severity IN ('LOW', 'MEDIUM', 'HIGH', 'CRITICAL'))
);

-- The dashboard's questions: newest first (keyset on detected_at, id); unresolved by severity; by service;
-- by fingerprint. One open incident per fingerprint: detections of it merge into that row.
CREATE INDEX trace_anomalies_newest ON trace_anomalies (detected_at DESC, id DESC);
CREATE INDEX trace_anomalies_unresolved_by_severity ON trace_anomalies (severity, detected_at DESC, id DESC)
    WHERE resolved IS NOT TRUE;
-- The live alert panel: unresolved HIGH and CRITICAL, newest first, however rare they are.
CREATE INDEX trace_anomalies_alert_panel ON trace_anomalies (detected_at DESC, id DESC)
    WHERE resolved IS NOT TRUE AND severity IN ('HIGH', 'CRITICAL');
CREATE INDEX trace_anomalies_by_service ON trace_anomalies (service_name, detected_at DESC, id DESC);
CREATE INDEX trace_anomalies_by_fingerprint ON trace_anomalies (fingerprint);
CREATE UNIQUE INDEX trace_anomalies_open_incident ON trace_anomalies (fingerprint)
    WHERE resolved IS NOT TRUE AND fingerprint IS NOT NULL;

CREATE TABLE anomaly_detection_config (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    config_key TEXT NOT NULL UNIQUE,
    config_value JSONB,
    description TEXT
);

INSERT INTO anomaly_detection_config (config_key, config_value, description) VALUES
    ('latency_threshold_stddev', '3.0', 'Standard deviations (on log-duration) above its operation''s baseline at which a span is a latency anomaly'),
    ('error_rate_threshold', '0.05', 'Error ratio of an operation in a window above which it is an error-rate anomaly'),
    ('throughput_spike_threshold', '3.0', 'Standard deviations of a window''s request count from its history at which traffic is a spike or drop'),
    ('sampling_enabled', 'true', 'Whether per-trace analysis looks at a deterministic sample of traces only'),
    ('sampling_ratio', '0.1', 'Share of traces sampled for per-trace analysis (0-1)');

-- Every detection ever stored, by a key derived from the detection itself (fingerprint, window, trace,
-- span): processing the same window again finds its keys here and changes nothing.
CREATE TABLE anomaly_detections (
    detection_key TEXT PRIMARY KEY,
    -- Set in the same transaction right after the key is claimed.
    anomaly_id UUID REFERENCES trace_anomalies (id) ON DELETE CASCADE,
    stored_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
CREATE INDEX anomaly_detections_anomaly ON anomaly_detections (anomaly_id);

-- Learned detector state, so that a restart does not learn from zero.
CREATE TABLE detector_baselines (
    baseline_key TEXT PRIMARY KEY,
    state JSONB NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);

-- One row per detection run, manual (API) or scheduled (worker).
CREATE TABLE detection_runs (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    trigger TEXT NOT NULL,
    window_start TIMESTAMPTZ,
    window_end TIMESTAMPTZ,
    status TEXT NOT NULL DEFAULT 'pending',
    spans BIGINT NOT NULL DEFAULT 0,
    anomalies BIGINT NOT NULL DEFAULT 0,
    error TEXT,
    worker TEXT,
    requested_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    started_at TIMESTAMPTZ,
    finished_at TIMESTAMPTZ,
    CONSTRAINT detection_runs_trigger_allowed CHECK (trigger IN ('manual', 'scheduled')),
    CONSTRAINT detection_runs_status_allowed CHECK (status IN ('pending', 'running', 'succeeded', 'failed'))
);
CREATE INDEX detection_runs_pending ON detection_runs (requested_at) WHERE status = 'pending';

-- Work shared by several workers: a lease is held until it expires (a dead worker's lease lapses);
-- a cursor says how far a stream of windows is done.
CREATE TABLE work_leases (
    lease_key TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    acquired_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
CREATE TABLE work_cursors (
    cursor_key TEXT PRIMARY KEY,
    position TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);

-- Alerts to send, written in the same transaction as the anomaly: a crash between storing and sending
-- loses nothing.
CREATE TABLE alert_outbox (
    id BIGSERIAL PRIMARY KEY,
    anomaly_id UUID NOT NULL REFERENCES trace_anomalies (id) ON DELETE CASCADE,
    event TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    attempts INTEGER NOT NULL DEFAULT 0,
    claimed_by TEXT,
    claimed_until TIMESTAMPTZ,
    sent_at TIMESTAMPTZ,
    last_error TEXT,
    CONSTRAINT alert_outbox_event_allowed CHECK (event IN ('opened', 'escalated', 'resolved'))
);
CREATE INDEX alert_outbox_unsent ON alert_outbox (id) WHERE sent_at IS NULL;

-- Who changed which configuration key, when, from what to what.
CREATE TABLE config_history (
    id BIGSERIAL PRIMARY KEY,
    config_key TEXT NOT NULL,
    old_value JSONB,
    new_value JSONB,
    changed_by TEXT NOT NULL,
    changed_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
CREATE INDEX config_history_by_key ON config_history (config_key, changed_at DESC);
