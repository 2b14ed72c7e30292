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
