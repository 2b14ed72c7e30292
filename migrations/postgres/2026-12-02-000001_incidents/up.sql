-- Incidents: the findings of one problem grouped across services (detect-core's IncidentTracker), with
-- ranked probable origins. An anomaly row names its incident; the seed's columns stay as they are.
CREATE TABLE incidents (
    -- detect-core's incident id (32 hex digits, derived from its first finding) as a UUID: writing the
    -- same incident again updates this row.
    id UUID PRIMARY KEY,
    -- The fingerprint of its first finding.
    fingerprint TEXT NOT NULL,
    -- open; resolved (quiet long enough, or by a person); merged (a finding linked it to another).
    status TEXT NOT NULL DEFAULT 'open',
    severity TEXT NOT NULL,
    title TEXT NOT NULL,
    -- The client, for a security incident.
    client TEXT,
    started_at TIMESTAMPTZ NOT NULL,
    last_seen_at TIMESTAMPTZ NOT NULL,
    ended_at TIMESTAMPTZ,
    resolved_at TIMESTAMPTZ,
    resolved_by TEXT,
    resolution_notes TEXT,
    -- Best first: [{service_name, operation, score, evidence}].
    origins JSONB NOT NULL,
    -- The affected services, and the calls between them: [{caller, callee, calls}].
    services JSONB NOT NULL,
    calls JSONB NOT NULL,
    anomaly_count BIGINT NOT NULL,
    detections BIGINT NOT NULL,
    -- Example traces of its findings.
    example_trace_ids JSONB NOT NULL,
    merged_into UUID,
    -- Whether its opening went to the alert outbox (so its changes and resolution do too).
    alerted BOOLEAN NOT NULL DEFAULT FALSE,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    CONSTRAINT incidents_status_allowed CHECK (status IN ('open', 'resolved', 'merged')),
    CONSTRAINT incidents_severity_allowed CHECK (severity IN ('LOW', 'MEDIUM', 'HIGH', 'CRITICAL'))
);
CREATE INDEX incidents_newest ON incidents (started_at DESC, id DESC);
CREATE INDEX incidents_open ON incidents (started_at DESC, id DESC) WHERE status = 'open';

ALTER TABLE trace_anomalies ADD COLUMN incident_id UUID REFERENCES incidents (id) ON DELETE SET NULL;
CREATE INDEX trace_anomalies_by_incident ON trace_anomalies (incident_id);

-- An alert is about an anomaly row or an incident.
ALTER TABLE alert_outbox ALTER COLUMN anomaly_id DROP NOT NULL;
ALTER TABLE alert_outbox ADD COLUMN incident_id UUID REFERENCES incidents (id) ON DELETE CASCADE;
ALTER TABLE alert_outbox ADD CONSTRAINT alert_outbox_one_subject
    CHECK ((anomaly_id IS NULL) <> (incident_id IS NULL));
ALTER TABLE alert_outbox DROP CONSTRAINT alert_outbox_event_allowed;
ALTER TABLE alert_outbox ADD CONSTRAINT alert_outbox_event_allowed
    CHECK (event IN ('opened', 'escalated', 'origin_changed', 'resolved'));
CREATE INDEX alert_outbox_by_incident ON alert_outbox (incident_id);
