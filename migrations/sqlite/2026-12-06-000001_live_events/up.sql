-- Live events, as in migrations/postgres (see its comments), without the notification: the embedded
-- store has one writer process, whose api-server is woken in process. The rows serve `Last-Event-ID`.
CREATE TABLE live_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    subject TEXT NOT NULL,
    kind TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f000+00:00', 'now')),
    CONSTRAINT live_events_subject_allowed CHECK (subject IN ('anomaly', 'incident')),
    CONSTRAINT live_events_kind_allowed CHECK (kind IN ('new', 'updated', 'resolved'))
) STRICT;

CREATE TRIGGER trace_anomalies_live_insert AFTER INSERT ON trace_anomalies
BEGIN
    INSERT INTO live_events (subject, kind, subject_id) VALUES ('anomaly',
        CASE WHEN NEW.resolved IS 1 THEN 'resolved' ELSE 'new' END, NEW.id);
END;
CREATE TRIGGER trace_anomalies_live_resolved AFTER UPDATE ON trace_anomalies
    WHEN NEW.resolved IS 1 AND OLD.resolved IS NOT 1
BEGIN
    INSERT INTO live_events (subject, kind, subject_id) VALUES ('anomaly', 'resolved', NEW.id);
END;
CREATE TRIGGER trace_anomalies_live_updated AFTER UPDATE ON trace_anomalies
    WHEN NEW.resolved IS NOT 1 AND (OLD.resolved IS 1
        OR NEW.occurrences IS NOT OLD.occurrences OR NEW.severity IS NOT OLD.severity)
BEGIN
    INSERT INTO live_events (subject, kind, subject_id) VALUES ('anomaly', 'updated', NEW.id);
END;

CREATE TRIGGER incidents_live_insert AFTER INSERT ON incidents
BEGIN
    INSERT INTO live_events (subject, kind, subject_id) VALUES ('incident',
        CASE WHEN NEW.status = 'open' THEN 'updated' ELSE 'resolved' END, NEW.id);
END;
CREATE TRIGGER incidents_live_resolved AFTER UPDATE ON incidents
    WHEN NEW.status <> 'open' AND OLD.status = 'open'
BEGIN
    INSERT INTO live_events (subject, kind, subject_id) VALUES ('incident', 'resolved', NEW.id);
END;
CREATE TRIGGER incidents_live_updated AFTER UPDATE ON incidents
    WHEN NEW.status = 'open' AND (OLD.status <> 'open'
        OR NEW.severity IS NOT OLD.severity OR NEW.title IS NOT OLD.title
        OR NEW.origins IS NOT OLD.origins OR NEW.services IS NOT OLD.services
        OR NEW.anomaly_count IS NOT OLD.anomaly_count OR NEW.detections IS NOT OLD.detections
        OR NEW.last_seen_at IS NOT OLD.last_seen_at OR NEW.ended_at IS NOT OLD.ended_at)
BEGIN
    INSERT INTO live_events (subject, kind, subject_id) VALUES ('incident', 'updated', NEW.id);
END;
