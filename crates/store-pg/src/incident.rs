//! Folding a batch of detections into incidents: several detections of one incident in a batch become
//! one row write. Shared by both backends so that they fold alike.

use crate::model::NewAnomaly;
use chrono::{DateTime, Utc};
use std::collections::{HashMap, HashSet};

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
