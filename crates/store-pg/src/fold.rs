//! A batch insert's logic, shared by both backends so that they store alike (`core/insert.rs` holds
//! its SQL). The repository's `insert_anomalies`, in one write transaction:
//!
//! 1. keeps the detections whose keys were not stored before (the others are duplicates);
//! 2. folds them by fingerprint ([`fold`]): several detections of one fingerprint become one row write;
//! 3. writes each fingerprint's row: a new row, or a merge into its open row ([`Placed`]);
//! 4. writes what [`bookkeeping`] derives from where they went: the detection keys, pointing at their
//!    rows, and the alert-outbox entries; and returns each detection's outcome.

use crate::model::{InsertOutcome, NewAnomaly};
use chrono::{DateTime, Utc};
use detect_core::Severity;
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// One fingerprint's detections in this batch, folded into one write of its open row.
pub(crate) struct Folded<'a> {
    /// The first detection: it names the row's time, trace and window start.
    pub first: &'a NewAnomaly,
    /// The most severe detection (the first of them): it explains the row.
    pub peak: &'a NewAnomaly,
    pub count: i64,
    pub last_seen: DateTime<Utc>,
    pub window_end: DateTime<Utc>,
    /// The first peer service its detections name: like the row's service, operation and client, it
    /// says what the row is about, and a detection that names none does not erase it.
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
) -> Vec<Folded<'a>> {
    let mut folded: Vec<Folded<'a>> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut seen_keys: HashSet<&str> = HashSet::new();
    for (i, a) in batch.iter().enumerate() {
        if !is_new(&a.detection_key) || !seen_keys.insert(a.detection_key.as_str()) {
            continue;
        }
        match index.get(a.fingerprint.as_str()) {
            Some(&n) => {
                let f = &mut folded[n];
                f.count += 1;
                f.last_seen = f.last_seen.max(a.detected_at);
                f.window_end = f.window_end.max(a.window_end);
                f.notify |= a.notify;
                f.peer_service = f.peer_service.or(a.peer_service.as_deref());
                if a.severity > f.peak.severity {
                    f.peak = a;
                }
                f.members.push(i);
            }
            None => {
                index.insert(a.fingerprint.as_str(), folded.len());
                folded.push(Folded {
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
    folded
}

/// Where a fingerprint's folded detections went: its row, whether this write made the row, and the severity an
/// open row had before.
pub(crate) struct Placed {
    pub id: Uuid,
    pub inserted: bool,
    pub prior: Option<Severity>,
}

/// What a batch's write records besides the rows.
pub(crate) struct Bookkeeping<'a> {
    /// Each detection's outcome, in the batch's order.
    pub outcomes: Vec<InsertOutcome>,
    /// The new detection keys, with the rows they point at.
    pub keys: Vec<(&'a str, Uuid)>,
    /// The outbox entries (row, event), in the folded rows' order: `opened` for a new row, `escalated`
    /// for a raised severity, each only if a detection that caused it asks to notify.
    pub alerts: Vec<(Uuid, &'static str)>,
}

/// The outcomes, keys and alerts of `folded` (from `batch`) written to `rows`, one a row.
pub(crate) fn bookkeeping<'a>(
    batch: &'a [NewAnomaly],
    folded: &[Folded<'_>],
    rows: &[Placed],
) -> Bookkeeping<'a> {
    let mut outcomes = vec![InsertOutcome::Duplicate; batch.len()];
    let (mut keys, mut alerts) = (Vec::new(), Vec::new());
    for (f, row) in folded.iter().zip(rows) {
        for (n, &i) in f.members.iter().enumerate() {
            outcomes[i] = if row.inserted && n == 0 {
                InsertOutcome::Inserted(row.id)
            } else {
                InsertOutcome::Merged(row.id)
            };
            keys.push((batch[i].detection_key.as_str(), row.id));
        }
        let event = if row.inserted {
            f.notify.then_some("opened")
        } else {
            // Its most severe detection raised the open row's severity.
            let escalated = row.prior.is_some_and(|p| f.peak.severity > p);
            (escalated && f.peak.notify).then_some("escalated")
        };
        alerts.extend(event.map(|event| (row.id, event)));
    }
    Bookkeeping {
        outcomes,
        keys,
        alerts,
    }
}
