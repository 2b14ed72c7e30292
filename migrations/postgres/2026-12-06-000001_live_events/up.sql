-- Live events across processes. Every write of an anomaly or an incident, by whichever process, adds a
-- row here in its own transaction (the triggers below) and notifies the channel `tracewatch_live` with
-- a small payload (seq, subject, kind, id), delivered when the transaction commits. Every api-server
-- listens, reads the rows after the last one it has served and puts them on its live stream; a stream
-- reconnecting with `Last-Event-ID: <seq>` is served what it missed from here. Rows are short-lived:
-- the retention job keeps the newest ones only (see store-pg's retention).
CREATE TABLE live_events (
    seq BIGSERIAL PRIMARY KEY,
    subject TEXT NOT NULL,
    kind TEXT NOT NULL,
    subject_id UUID NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT live_events_subject_allowed CHECK (subject IN ('anomaly', 'incident')),
    CONSTRAINT live_events_kind_allowed CHECK (kind IN ('new', 'updated', 'resolved'))
);

CREATE FUNCTION tracewatch_live_event(event_subject TEXT, event_kind TEXT, event_id UUID)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    n BIGINT;
BEGIN
    INSERT INTO live_events (subject, kind, subject_id) VALUES (event_subject, event_kind, event_id)
        RETURNING seq INTO n;
    PERFORM pg_notify('tracewatch_live', json_build_object(
        'seq', n, 'subject', event_subject, 'kind', event_kind, 'id', event_id)::text);
END $$;

-- An anomaly: new when inserted, resolved when it becomes resolved, updated when it repeats (a merged
-- detection adds occurrences), changes severity or is reopened. Linking it to an incident is not an event.
CREATE FUNCTION trace_anomalies_live() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM tracewatch_live_event('anomaly',
            CASE WHEN NEW.resolved IS TRUE THEN 'resolved' ELSE 'new' END, NEW.id);
    ELSIF NEW.resolved IS TRUE AND OLD.resolved IS NOT TRUE THEN
        PERFORM tracewatch_live_event('anomaly', 'resolved', NEW.id);
    ELSIF NEW.resolved IS NOT TRUE AND (OLD.resolved IS TRUE
            OR NEW.occurrences IS DISTINCT FROM OLD.occurrences
            OR NEW.severity IS DISTINCT FROM OLD.severity) THEN
        PERFORM tracewatch_live_event('anomaly', 'updated', NEW.id);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER trace_anomalies_live AFTER INSERT OR UPDATE ON trace_anomalies
    FOR EACH ROW EXECUTE FUNCTION trace_anomalies_live();

-- An incident: updated when opened or when what it says changes, resolved when it ends (resolved, or
-- merged into another).
CREATE FUNCTION incidents_live() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status <> 'open' THEN
        IF TG_OP = 'INSERT' OR OLD.status = 'open' THEN
            PERFORM tracewatch_live_event('incident', 'resolved', NEW.id);
        END IF;
    ELSIF TG_OP = 'INSERT' OR OLD.status <> 'open'
            OR (NEW.severity, NEW.title, NEW.origins, NEW.services, NEW.anomaly_count, NEW.detections,
                NEW.last_seen_at, NEW.ended_at)
            IS DISTINCT FROM (OLD.severity, OLD.title, OLD.origins, OLD.services, OLD.anomaly_count,
                OLD.detections, OLD.last_seen_at, OLD.ended_at) THEN
        PERFORM tracewatch_live_event('incident', 'updated', NEW.id);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER incidents_live AFTER INSERT OR UPDATE ON incidents
    FOR EACH ROW EXECUTE FUNCTION incidents_live();
