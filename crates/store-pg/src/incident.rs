//! A batch insert's logic, shared by both backends so that they store alike (`core/insert.rs` holds
//! its SQL). The repository's `insert_anomalies`, in one write transaction:
//!
//! 1. keeps the detections whose keys were not stored before (the others are duplicates);
//! 2. folds them by fingerprint ([`fold`]): several detections of one incident become one row write;
//! 3. writes each incident's row: a new row, or a merge into the open incident's row ([`Placed`]);
//! 4. writes what [`bookkeeping`] derives from where they went: the detection keys, pointing at their
//!    rows, and the alert-outbox entries; and returns each detection's outcome.

use crate::model::{InsertOutcome, NewAnomaly};
use chrono::{DateTime, Utc};
use detect_core::Severity;
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// One incident's detections in this batch, folded.
pub(crate) struct Incident<'a> {
    /// The first detection: it names the row's time, trace and window start.
    pub first: &'a NewAnomaly,
    /// The most severe detection (the first of them): it explains the row.
    pub peak: &'a NewAnomaly,
    pub count: i64,
    pub last_seen: DateTime<Utc>,
    pub window_end: DateTime<Utc>,
    /// The first peer service its detections name: like the row's service, operation and client, it
    /// says what the incident is about, and a detection that names none does not erase it.
    pub peer_service: Option<&'a str>,
    pub notify: bool,
    /// Indexes of its detections in the batch.
    pub members: Vec<usize>,
}

/// Groups the detections whose keys `is_new` by fingerprint, in order of first appearance. A key
/// repeated within the batch counts once.
pub(crate) fn fold<'a>(
    batch: &'a [NewAnomaly],
    is_new: impl Fn(&str) -> bool,
) -> Vec<Incident<'a>> {
    let mut incidents: Vec<Incident<'a>> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut seen_keys: HashSet<&str> = HashSet::new();
    for (i, a) in batch.iter().enumerate() {
        if !is_new(&a.detection_key) || !seen_keys.insert(a.detection_key.as_str()) {
            continue;
        }
        match index.get(a.fingerprint.as_str()) {
            Some(&n) => {
                let incident = &mut incidents[n];
                incident.count += 1;
                incident.last_seen = incident.last_seen.max(a.detected_at);
                incident.window_end = incident.window_end.max(a.window_end);
                incident.notify |= a.notify;
                incident.peer_service = incident.peer_service.or(a.peer_service.as_deref());
                if a.severity > incident.peak.severity {
                    incident.peak = a;
                }
                incident.members.push(i);
            }
            None => {
                index.insert(a.fingerprint.as_str(), incidents.len());
                incidents.push(Incident {
                    first: a,
                    peak: a,
                    count: 1,
                    last_seen: a.detected_at,
                    window_end: a.window_end,
                    peer_service: a.peer_service.as_deref(),
                    notify: a.notify,
                    members: vec![i],
                });
            }
        }
    }
    incidents
}

/// Where an incident's detections went: its row, whether this write made the row, and the severity an
/// open row had before.
pub(crate) struct Placed {
    pub id: Uuid,
    pub inserted: bool,
    pub prior: Option<Severity>,
}

/// What a batch's write records besides the incidents' rows.
pub(crate) struct Bookkeeping<'a> {
    /// Each detection's outcome, in the batch's order.
    pub outcomes: Vec<InsertOutcome>,
    /// The new detection keys, with the rows they point at.
    pub keys: Vec<(&'a str, Uuid)>,
    /// The outbox entries (row, event), in the incidents' order: `opened` for a new row, `escalated`
    /// for a raised severity, each only if a detection that caused it asks to notify.
    pub alerts: Vec<(Uuid, &'static str)>,
}

/// The outcomes, keys and alerts of `incidents` (folded from `batch`) written to `rows`, one a row.
pub(crate) fn bookkeeping<'a>(
    batch: &'a [NewAnomaly],
    incidents: &[Incident<'_>],
    rows: &[Placed],
) -> Bookkeeping<'a> {
    let mut outcomes = vec![InsertOutcome::Duplicate; batch.len()];
    let (mut keys, mut alerts) = (Vec::new(), Vec::new());
    for (incident, row) in incidents.iter().zip(rows) {
        for (n, &i) in incident.members.iter().enumerate() {
            outcomes[i] = if row.inserted && n == 0 {
                InsertOutcome::Inserted(row.id)
            } else {
                InsertOutcome::Merged(row.id)
            };
            keys.push((batch[i].detection_key.as_str(), row.id));
        }
        let event = if row.inserted {
            incident.notify.then_some("opened")
        } else {
            // Its most severe detection raised the open row's severity.
            let escalated = row.prior.is_some_and(|p| incident.peak.severity > p);
            (escalated && incident.peak.notify).then_some("escalated")
        };
        alerts.extend(event.map(|event| (row.id, event)));
    }
    Bookkeeping {
        outcomes,
        keys,
        alerts,
    }
}
