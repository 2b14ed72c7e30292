//! A batch insert's logic, shared by both backends so that they store alike (`core/insert.rs` holds
//! its SQL). The repository's `insert_anomalies`, in one write transaction:
//!
//! 1. keeps the detections whose keys were not stored before (the others are duplicates);
//! 2. folds them by fingerprint ([`fold`]): several detections of one fingerprint become one row write;
//! 3. writes each fingerprint's row: a new row, or a merge into its open row ([`Placed`]), with the
//!    row's example traces merged from the open row's and the batch's ([`merged_examples`]);
//! 4. writes what [`bookkeeping`] derives from where they went: the detection keys, pointing at their
//!    rows, and the alert-outbox entries; and returns each detection's outcome.

use crate::error::{Result, StoreError};
use crate::model::{InsertOutcome, NewAnomaly};
use chrono::{DateTime, Utc};
use detect_core::Severity;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// How many example traces a row keeps.
const MAX_EXAMPLES: usize = 10;
/// Of them, the first distinct traces its detections named...
const FIRST_EXAMPLES: usize = 3;
/// ...and at most this many of its most severe detection's; the latest fill the rest.
const PEAK_EXAMPLES: usize = 4;
/// The key of a row's `details` that names its most severe detection's traces, so that later merges
/// keep them among the examples while that detection stays the most severe.
const PEAK_TRACES: &str = "most_severe_trace_ids";

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
    /// Its detections' traces, in the batch's order (see [`traces`]).
    pub traces: Vec<&'a str>,
}

/// A detection's traces, most telling first: its own, then its examples.
fn traces(a: &NewAnomaly) -> impl Iterator<Item = &str> {
    let examples = a.details.example_trace_ids.iter().map(String::as_str);
    std::iter::once(a.trace_id.as_str()).chain(examples)
}

/// Groups the detections whose keys `is_new` by fingerprint, in order of first appearance. A key
/// repeated within the batch counts once.
pub(crate) fn fold<'a>(batch: &'a [NewAnomaly], is_new: impl Fn(&str) -> bool) -> Vec<Folded<'a>> {
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
                f.traces.extend(traces(a));
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
                    traces: traces(a).collect(),
                });
            }
        }
    }
    folded
}

/// An open row as it was before this batch's write.
pub(crate) struct OpenRow {
    pub severity: Option<Severity>,
    pub details: Option<Value>,
}

impl Folded<'_> {
    /// The `details` this write proposes: its most severe detection's, with the row's example traces
    /// merged from `open`'s (the fingerprint's open row, if any) and its own, and with
    /// [`PEAK_TRACES`]. A merge keeps the open row's other fields unless it raises the row's severity
    /// (`core/insert.rs`; a severity the store does not know is never raised).
    pub fn details(&self, open: Option<&OpenRow>) -> Result<Value> {
        let stored = |key: &str| -> Vec<&str> {
            let list = open.and_then(|o| o.details.as_ref()?.get(key)?.as_array());
            list.into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect()
        };
        let mut peak = Vec::new();
        add_new(&mut peak, traces(self.peak), PEAK_EXAMPLES);
        // The row's most severe detection: this batch's, unless the open row's is at least as severe.
        let raises =
            open.is_none_or(|o| o.severity.is_some_and(|prior| self.peak.severity > prior));
        let row_peak = if raises {
            peak.clone()
        } else {
            stored(PEAK_TRACES)
        };
        let examples = merged_examples(&stored("example_trace_ids"), &self.traces, &row_peak);
        let mut details = serde_json::to_value(&self.peak.details)
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
        details["example_trace_ids"] = json!(examples);
        details[PEAK_TRACES] = json!(peak);
        Ok(details)
    }
}

/// The example traces a row keeps, without repeats, out of those `prior` (the row's stored examples)
/// and then `new` (this batch's) name, in that order: the first [`FIRST_EXAMPLES`]; then up to
/// [`PEAK_EXAMPLES`] of `peak` (its most severe detection's traces); then the latest, up to
/// [`MAX_EXAMPLES`] in all. They are listed in that order, the latest oldest first, so that merging
/// the list again finds the first ones first and the latest last. Empty trace ids are skipped.
pub(crate) fn merged_examples(prior: &[&str], new: &[&str], peak: &[&str]) -> Vec<String> {
    let seen = prior.iter().chain(new).copied();
    let mut kept = Vec::with_capacity(MAX_EXAMPLES);
    add_new(&mut kept, seen.clone(), FIRST_EXAMPLES);
    add_new(&mut kept, peak.iter().copied(), PEAK_EXAMPLES);
    let latest = kept.len();
    add_new(&mut kept, seen.rev(), MAX_EXAMPLES - latest);
    kept[latest..].reverse();
    kept.into_iter().map(str::to_owned).collect()
}

/// Adds to `kept` the first `n` traces of `from` that are not empty and not in it yet.
fn add_new<'s>(kept: &mut Vec<&'s str>, from: impl Iterator<Item = &'s str>, n: usize) {
    let end = kept.len() + n;
    for t in from {
        if kept.len() == end {
            break;
        }
        if !t.is_empty() && !kept.contains(&t) {
            kept.push(t);
        }
    }
}

/// Where a fingerprint's folded detections went: its row, whether this write made the row, and the
/// severity an open row had before.
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

#[cfg(test)]
mod tests {
    use super::merged_examples;

    /// Trace ids `t{n}` for each n of `ns`.
    fn ids(ns: impl IntoIterator<Item = usize>) -> Vec<String> {
        ns.into_iter().map(|n| format!("t{n}")).collect()
    }

    fn merged(prior: &[String], new: &[String], peak: &[String]) -> Vec<String> {
        fn refs(list: &[String]) -> Vec<&str> {
            list.iter().map(String::as_str).collect()
        }
        merged_examples(&refs(prior), &refs(new), &refs(peak))
    }

    #[test]
    fn a_few_traces_are_all_kept_once_in_order() {
        let new = ["t0", "t1", "t0", "", "t2", "t1"].map(String::from);
        assert_eq!(merged(&[], &new, &ids([0])), ids(0..3));
    }

    #[test]
    fn many_keep_the_first_three_and_the_latest() {
        assert_eq!(
            merged(&[], &ids(0..15), &ids([0])),
            ids([0, 1, 2, 8, 9, 10, 11, 12, 13, 14])
        );
    }

    #[test]
    fn the_most_severe_detections_traces_stay_after_the_first() {
        // Its trace and examples, at most four, are kept whoever came later.
        let peak = ids([6, 6, 5, 1, 4, 3, 7]);
        assert_eq!(
            merged(&[], &ids(0..15), &peak),
            ids([0, 1, 2, 6, 5, 4, 3, 12, 13, 14])
        );
    }

    #[test]
    fn merging_batch_by_batch_keeps_what_merging_them_at_once_keeps() {
        let all = ids(0..23);
        for peak in [ids([0]), ids([3, 1])] {
            let mut row = Vec::new();
            for batch in all.chunks(4) {
                row = merged(&row, batch, &peak);
                assert_eq!(
                    merged(&row, &[], &peak),
                    row,
                    "merging nothing changes nothing"
                );
            }
            assert_eq!(row, merged(&[], &all, &peak));
            assert_eq!(row.len(), 10);
        }
    }

    #[test]
    fn a_new_most_severe_detections_traces_push_the_old_ones_out_first() {
        let row = merged(&[], &ids(0..15), &ids([9]));
        assert_eq!(row, ids([0, 1, 2, 9, 8, 10, 11, 12, 13, 14]));
        // A more severe detection (t20): the former one's trace, listed before the latest, goes.
        assert_eq!(
            merged(&row, &ids([20]), &ids([20])),
            ids([0, 1, 2, 20, 8, 10, 11, 12, 13, 14])
        );
    }
}
