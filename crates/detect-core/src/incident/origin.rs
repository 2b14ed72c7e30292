//! Ranking an incident's probable origins. Each service the incident names is credited with the
//! findings that place the cause there ([`Cause`]): a change in its own behaviour, findings of its
//! callers that point at it (time on the way to it, waiting on it), and, weakly, its totals. A service
//! whose callers are in the incident explains them; one whose callees are in the incident with as much
//! evidence may only be waiting on them. The evidence is said in words.

use super::{Finding, Incident};
use crate::anomaly::{Cause, Severity};
use crate::service_graph::ServiceGraph;
use std::collections::{BTreeMap, BTreeSet};

/// A probable origin: where the problem most likely starts, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct Origin {
    pub service: String,
    /// The operation of its strongest finding, if it names one.
    pub operation: Option<String>,
    pub score: f64,
    pub evidence: String,
}

/// How much a finding weighs: its severity, and a little more for each repeat.
fn weight(f: &Finding) -> f64 {
    let severity = match f.severity {
        Severity::Low => 0.25,
        Severity::Medium => 0.5,
        Severity::High => 1.0,
        Severity::Critical => 1.5,
    };
    severity * (1.0 + f64::from(f.detections).ln())
}

/// A finding that says the cause is only weakly known counts this much.
const UNKNOWN_CAUSE_SHARE: f64 = 0.3;

struct Credit<'a> {
    service: &'a str,
    itself: Vec<&'a Finding>,
    pointed_at: Vec<&'a Finding>,
    unknown: Vec<&'a Finding>,
}

impl Credit<'_> {
    fn raw(&self) -> f64 {
        let sum = |fs: &[&Finding]| fs.iter().map(|f| weight(f)).sum::<f64>();
        sum(&self.itself) + sum(&self.pointed_at) + UNKNOWN_CAUSE_SHARE * sum(&self.unknown)
    }

    /// Its strongest finding of its own, else the strongest pointing at it.
    fn strongest(&self) -> Option<&Finding> {
        strongest(&self.itself)
            .or_else(|| strongest(&self.pointed_at))
            .or_else(|| strongest(&self.unknown))
    }
}

fn strongest<'a>(findings: &[&'a Finding]) -> Option<&'a Finding> {
    findings.iter().copied().max_by(|a, b| {
        weight(a)
            .total_cmp(&weight(b))
            .then(b.fingerprint.cmp(&a.fingerprint))
    })
}

/// The incident's services, best origin first (ties broken by name).
pub(super) fn rank(incident: &Incident, graph: &ServiceGraph) -> Vec<Origin> {
    if incident.shared {
        return Vec::new();
    }
    let services = incident.services();
    let common = callers_own_side(incident);
    // A finding points at its peer, unless its service is slow on its own side: its findings point at
    // several peers (the common factor is the caller), or its own time moved as much (its CPU).
    let points_at = |f: &Finding, service: &str| {
        f.cause == Cause::Peer
            && if common.contains(f.service.as_str()) {
                f.service == service
            } else {
                f.peer_service.as_deref() == Some(service)
            }
    };
    let credits: Vec<Credit> = services
        .iter()
        .map(|&service| Credit {
            service,
            itself: attributed(incident, |f| {
                f.service == service && f.cause == Cause::Itself
            }),
            pointed_at: attributed(incident, |f| points_at(f, service)),
            unknown: attributed(incident, |f| {
                f.service == service && f.cause == Cause::Unknown
            }),
        })
        .collect();
    let raw = |service: &str| {
        credits
            .iter()
            .find(|c| c.service == service)
            .map_or(0.0, Credit::raw)
    };
    let mut origins: Vec<Origin> = credits
        .iter()
        .filter(|c| c.raw() > 0.0)
        .map(|c| {
            let callers: BTreeSet<&str> = graph
                .callers(c.service)
                .filter(|p| services.contains(p) && raw(p) > 0.0)
                .collect();
            let busy_callees: BTreeSet<&str> = graph
                .callees(c.service)
                .filter(|q| services.contains(q) && raw(q) >= 0.5 * c.raw())
                .collect();
            let score = c.raw() * (1.0 + 0.25 * callers.len() as f64)
                / (1.0 + 0.5 * busy_callees.len() as f64);
            Origin {
                service: c.service.to_owned(),
                operation: c.strongest().and_then(|f| {
                    (f.service == c.service)
                        .then(|| f.operation.clone())
                        .flatten()
                }),
                score,
                evidence: evidence(c, &callers, &busy_callees),
            }
        })
        .collect();
    origins.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.service.cmp(&b.service)));
    origins
}

/// Services slow on their own side, whose findings about peers say more about themselves: they point
/// at two or more different peers (the time on the way to all of them grew), or the service's own
/// behaviour moved at least as much as the strongest of them.
fn callers_own_side(incident: &Incident) -> BTreeSet<&str> {
    let mut peers: BTreeMap<&str, (BTreeSet<&str>, f64)> = BTreeMap::new();
    for f in incident.findings.iter().filter(|f| f.cause == Cause::Peer) {
        if let Some(peer) = f.peer_service.as_deref() {
            let entry = peers.entry(f.service.as_str()).or_default();
            entry.0.insert(peer);
            entry.1 = entry.1.max(weight(f));
        }
    }
    let own = |service: &str| {
        incident
            .findings
            .iter()
            .filter(|f| f.service == service && f.cause == Cause::Itself)
            .map(weight)
            .fold(0.0, f64::max)
    };
    peers
        .into_iter()
        .filter(|(service, (p, strongest))| p.len() >= 2 || own(service) >= *strongest)
        .map(|(s, _)| s)
        .collect()
}

fn attributed(incident: &Incident, keep: impl Fn(&Finding) -> bool) -> Vec<&Finding> {
    incident.findings.iter().filter(|f| keep(f)).collect()
}

/// "checkout `PlaceOrder`: own time ×5.8 (…); 3 findings of callers point at it (frontend, cart); its
/// callees are normal."
fn evidence(c: &Credit, callers: &BTreeSet<&str>, busy_callees: &BTreeSet<&str>) -> String {
    let mut parts = Vec::new();
    if let Some(f) = c
        .itself
        .iter()
        .copied()
        .max_by(|a, b| weight(a).total_cmp(&weight(b)))
    {
        parts.push(f.description.clone());
    }
    if !c.pointed_at.is_empty() {
        let from: BTreeSet<&str> = c.pointed_at.iter().map(|f| f.service.as_str()).collect();
        parts.push(format!(
            "{} finding{} of {} point at it",
            c.pointed_at.len(),
            if c.pointed_at.len() == 1 { "" } else { "s" },
            list(&from)
        ));
    }
    if c.itself.is_empty() && c.pointed_at.is_empty() {
        if let Some(f) = c.unknown.first() {
            parts.push(f.description.clone());
        }
    }
    if !callers.is_empty() {
        parts.push(format!("its callers {} are affected too", list(callers)));
    }
    parts.push(if busy_callees.is_empty() {
        "what it calls is normal".to_owned()
    } else {
        format!("it may be waiting on {}", list(busy_callees))
    });
    parts.join("; ")
}

fn list(services: &BTreeSet<&str>) -> String {
    services.iter().copied().collect::<Vec<_>>().join(", ")
}
