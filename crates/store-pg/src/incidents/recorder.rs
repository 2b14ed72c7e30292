//! From stored detections to incident writes: detect-core's [`IncidentTracker`] sees each detection the
//! store accepted (a detection stored before is not seen again, so processing a window twice changes
//! no incident), and what changed becomes [`NewIncident`]s, one per incident, as it stands last.

use super::NewIncident;
use crate::model::InsertOutcome;
use detect_core::{Anomaly, Incident, IncidentTracker, ServiceGraph, Severity, UnixNanos};
use uuid::Uuid;

/// An incident changed since the last [`IncidentRecorder::take_writes`], and its new anomaly rows.
#[derive(Debug)]
struct Pending {
    incident: Incident,
    rows: Vec<Uuid>,
}

#[derive(Debug)]
pub struct IncidentRecorder {
    tracker: IncidentTracker,
    notify_min_severity: Severity,
    /// In order of first change.
    pending: Vec<Pending>,
}

impl IncidentRecorder {
    pub fn new(tracker: IncidentTracker, notify_min_severity: Severity) -> Self {
        IncidentRecorder {
            tracker,
            notify_min_severity,
            pending: Vec::new(),
        }
    }

    /// Applies the configuration's incident settings (its quiet period).
    pub fn set_settings(&mut self, settings: detect_core::IncidentSettings) {
        self.tracker.set_settings(settings);
    }

    /// The tracker's state, to save (it serializes) so that a restart goes on with open incidents.
    pub fn tracker(&self) -> &IncidentTracker {
        &self.tracker
    }

    /// Places the detections the store accepted, given with their outcomes (duplicates are skipped).
    pub fn observe<'a>(
        &mut self,
        stored: impl IntoIterator<Item = (&'a Anomaly, InsertOutcome)>,
        graph: &ServiceGraph,
    ) {
        for (anomaly, outcome) in stored {
            let row = match outcome {
                InsertOutcome::Inserted(id) | InsertOutcome::Merged(id) => id,
                InsertOutcome::Duplicate => continue,
            };
            let event = self.tracker.observe(anomaly, graph);
            self.note(event.incident().clone(), Some(row));
        }
    }

    /// Closes the incidents quiet since before `now − quiet` (event time).
    pub fn advance_to(&mut self, now: UnixNanos) {
        for event in self.tracker.advance_to(now) {
            self.note(event.incident().clone(), None);
        }
    }

    /// The incidents changed since the last [`IncidentRecorder::written`], as they stand, in order of
    /// first change. They stay pending until written (a failed write is tried again with what
    /// changes meanwhile).
    pub fn writes(&self, graph: &ServiceGraph) -> Vec<NewIncident> {
        self.pending
            .iter()
            .map(|p| {
                let notify = p.incident.severity >= self.notify_min_severity;
                NewIncident::from_incident(&p.incident, graph, p.rows.clone(), notify)
            })
            .collect()
    }

    /// The pending writes are stored.
    pub fn written(&mut self) {
        self.pending.clear();
    }

    fn note(&mut self, incident: Incident, row: Option<Uuid>) {
        // Incidents merged into this one are gone: their rows come along.
        let mut rows: Vec<Uuid> = Vec::new();
        self.pending.retain_mut(|p| {
            let gone = incident.absorbed.contains(&p.incident.id);
            if gone {
                rows.append(&mut p.rows);
            }
            !gone
        });
        match self
            .pending
            .iter_mut()
            .find(|p| p.incident.id == incident.id)
        {
            Some(p) => {
                p.incident = incident;
                p.rows.append(&mut rows);
                p.rows.extend(row);
            }
            None => {
                rows.extend(row);
                self.pending.push(Pending { incident, rows });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use detect_core::{Cause, Subtype, Window};

    fn anomaly(service: &str) -> Anomaly {
        let start = UnixNanos::from_secs(1_767_571_200);
        Anomaly {
            cause: Cause::Itself,
            subtype: Subtype::LatencyDegradation,
            severity: Severity::High,
            service: service.into(),
            operation: Some("serve".into()),
            client: None,
            peer_service: None,
            trace_id: None,
            span_id: None,
            observed: 400.0,
            expected: 40.0,
            spread: 0.3,
            score: 9.0,
            threshold: 3.0,
            unit: "ms",
            window: Window {
                start,
                end: start.saturating_add(60 * UnixNanos::NANOS_PER_SEC),
            },
            detected_at: start.saturating_add(60 * UnixNanos::NANOS_PER_SEC),
            examples: vec![],
            description: String::new(),
        }
    }

    #[test]
    fn a_finding_that_links_two_incidents_leaves_one_write_with_every_row() {
        let mut graph = ServiceGraph::default();
        graph.record_call("frontend", "checkout", 10);
        graph.record_call("checkout", "payment", 10);
        graph.record_call("payment", "db", 10);
        let found = [
            anomaly("db"),
            anomaly("frontend"),
            anomaly("checkout"),
            anomaly("db"),
        ];
        let rows = [
            InsertOutcome::Inserted(Uuid::from_u128(1)),
            InsertOutcome::Inserted(Uuid::from_u128(2)),
            InsertOutcome::Inserted(Uuid::from_u128(3)),
            // Stored before: not seen again.
            InsertOutcome::Duplicate,
        ];
        let mut recorder = IncidentRecorder::new(IncidentTracker::default(), Severity::High);
        recorder.observe(found.iter().zip(rows), &graph);
        let writes = recorder.writes(&graph);
        assert_eq!(writes.len(), 1, "{writes:#?}");
        let mut linked = writes[0].anomaly_ids.clone();
        linked.sort();
        assert_eq!(linked, [1, 2, 3].map(Uuid::from_u128));
        assert_eq!(
            writes[0].absorbed.len(),
            1,
            "the incident merged away is retired"
        );
        assert_eq!(writes[0].detections, 3);
        assert!(writes[0].notify);
        // The calls between its own services (payment, between checkout and db, has no finding).
        let calls: Vec<(&str, &str)> = writes[0]
            .calls
            .iter()
            .map(|c| (c.caller.as_str(), c.callee.as_str()))
            .collect();
        assert_eq!(calls, [("frontend", "checkout")]);
        recorder.written();
        assert!(recorder.writes(&graph).is_empty());
        // Quiet long enough: the incident is written once more, ended.
        recorder.advance_to(UnixNanos::from_secs(1_767_571_200 + 3_600));
        let closed = recorder.writes(&graph);
        assert_eq!(closed.len(), 1);
        assert!(closed[0].ended_at.is_some() && closed[0].anomaly_ids.is_empty());
    }
}
