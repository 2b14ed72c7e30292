//! Incidents on generated traffic: each injected performance problem (a label with a service target)
//! should fall into one incident whose first probable origin is the injected service (the label's
//! `origin`: the service the generator changed, or the entry service of a route whose rate it changed).

use super::scoring::Truth;
use crate::eval_real::incidents::incident_of;
use crate::gen_traces::labels::Label;
use detect_core::{Anomaly, Incident};
use std::collections::BTreeSet;

#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct OriginScore {
    /// Problems that last minutes (a slowed operation, failures, a silent service, a route's rate):
    /// what an incident is for.
    pub lasting: Tally,
    /// One slow request each: a finding, but hardly an incident; scored apart.
    pub one_request: Tally,
}

#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Tally {
    /// Performance labels with a service target that some detection found.
    pub found: usize,
    /// Of those, the ones whose detections all fell into one incident.
    pub in_one_incident: usize,
    /// Of those, the ones whose incident names the injected service first.
    pub origin_right: usize,
    /// Labels where it did not, with the origin named instead.
    pub wrong: Vec<(String, String, String)>,
}

impl Tally {
    /// Adds another run's counts (its wrong labels are printed with that run).
    pub fn add(&mut self, other: &Tally) {
        self.found += other.found;
        self.in_one_incident += other.in_one_incident;
        self.origin_right += other.origin_right;
    }

    /// The share of found labels in one incident with the right first origin.
    pub fn share(&self) -> f64 {
        self.origin_right as f64 / self.found.max(1) as f64
    }
}

pub fn score(
    labels: &[Label],
    truth: &Truth,
    detections: &[Anomaly],
    incidents: &[Incident],
) -> OriginScore {
    let mut score = OriginScore::default();
    let mut homes: Vec<BTreeSet<&str>> = vec![BTreeSet::new(); labels.len()];
    for a in detections {
        let Some(incident) = incident_of(incidents, a) else {
            continue;
        };
        for i in truth.matching_labels(a) {
            homes[i].insert(incident.id.as_str());
        }
    }
    for (label, homes) in labels.iter().zip(&homes) {
        let Some(service) = label.origin.as_ref().and_then(|o| o.service.as_deref()) else {
            continue;
        };
        if label.anomaly_type != "PERFORMANCE" || homes.is_empty() {
            continue;
        }
        let tally = if label.traces.len() == 1 {
            &mut score.one_request
        } else {
            &mut score.lasting
        };
        tally.found += 1;
        let [home] = homes.iter().collect::<Vec<_>>()[..] else {
            tally.wrong.push((
                label.label_id.clone(),
                service.to_owned(),
                format!("{} incidents", homes.len()),
            ));
            continue;
        };
        tally.in_one_incident += 1;
        let origin = incidents
            .iter()
            .find(|i| i.id == *home)
            .and_then(|i| i.origins.first())
            .map(|o| o.service.as_str());
        if origin == Some(service) {
            tally.origin_right += 1;
        } else {
            tally.wrong.push((
                label.label_id.clone(),
                service.to_owned(),
                origin.unwrap_or("-").to_owned(),
            ));
        }
    }
    score
}
