//! Ranking an incident's probable origins. Each service the incident names is credited with the
//! findings that place the cause there ([`Cause`]): a change in its own behaviour, findings of its
//! callers that point at it (time on the way to it, waiting on it), and, weakly, its totals. A service
//! whose callers are in the incident explains them; one whose callees are in the incident with as much
//! evidence may only be waiting on them. The evidence is said in words.

use super::{Finding, Incident};
use crate::anomaly::{Cause, Severity, Subtype};
use crate::service_graph::ServiceGraph;
use std::collections::{BTreeMap, BTreeSet};

/// A probable origin: where the problem most likely starts, and why.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Origin {
    pub service: String,
    /// The operation of its strongest finding, if it names one.
    pub operation: Option<String>,
    pub score: f64,
    pub evidence: String,
}

/// How much a finding weighs: its severity, a little more for each repeat, and how far it is from
/// normal: for a window's requests taking longer, the milliseconds added (on a log scale: +10 ms
/// counts 1.7 times, +100 ms 3.4 times, +2 s 6.3 times); for one trace's extreme, how improbable it is
/// beyond the test's limit (its score already allows for it being the slowest of many), at half weight:
/// it is about one request, where a window's finding is about many.
fn weight(f: &Finding) -> f64 {
    let severity = match f.severity {
        Severity::Low => 0.25,
        Severity::Medium => 0.5,
        Severity::High => 1.0,
        Severity::Critical => 1.5,
    };
    let far = match (f.subtype, f.added_ms()) {
        (Subtype::LatencyDegradation, Some(ms)) => (1.0 + ms / 10.0).ln(),
        (Subtype::LatencySpike, _) if f.threshold > 0.0 => {
            ONE_REQUEST_SHARE * (1.0 + (f.score / f.threshold).max(1.0).ln())
        }
        _ => 1.0,
    };
    severity * (1.0 + f64::from(f.detections).ln()) * far
}

/// A finding about one request (one trace's extreme) counts this much against findings about a
/// window's requests.
const ONE_REQUEST_SHARE: f64 = 0.5;

/// A finding that says the cause is only weakly known counts this much.
const UNKNOWN_CAUSE_SHARE: f64 = 0.3;

struct Credit<'a> {
    service: &'a str,
    itself: Vec<&'a Finding>,
    pointed_at: Vec<&'a Finding>,
    unknown: Vec<&'a Finding>,
}

/// Which way what a finding saw spreads between services: a service waits on what it calls, so slow
/// or failing calls show in its callers too (up); a service that changes what it sends changes what
/// its callees do, so changed call shapes show in its callees too (down); and a change in how many
/// requests come in reaches every service they pass through (traffic, also down).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Spread {
    Up,
    Down,
    Traffic,
    Nowhere,
}

/// A service's changed traffic while a caller's changed too is mostly the caller's: it counts this
/// much (the requests enter where the change is first seen; a callee with more operations would
/// otherwise outvote it).
const PASSED_ON_TRAFFIC_SHARE: f64 = 0.25;

fn spread(f: &Finding) -> Spread {
    match f.subtype {
        Subtype::LatencySpike | Subtype::LatencyDegradation | Subtype::ErrorRateSpike => Spread::Up,
        Subtype::ThroughputSpike | Subtype::ThroughputDrop => Spread::Traffic,
        Subtype::CallPathChange
        | Subtype::FanOut
        | Subtype::UnusualTraceShape
        | Subtype::NPlusOneQuery => Spread::Down,
        _ => Spread::Nowhere,
    }
}

impl Credit<'_> {
    fn raw(&self) -> f64 {
        [Spread::Up, Spread::Down, Spread::Traffic, Spread::Nowhere]
            .into_iter()
            .map(|s| self.raw_of(s))
            .sum()
    }

    /// The weight of its findings that spread `which` way.
    fn raw_of(&self, which: Spread) -> f64 {
        let sum = |fs: &[&Finding]| {
            fs.iter()
                .filter(|f| spread(f) == which)
                .map(|f| weight(f))
                .sum::<f64>()
        };
        sum(&self.itself) + sum(&self.pointed_at) + UNKNOWN_CAUSE_SHARE * sum(&self.unknown)
    }

    /// The most milliseconds a finding credited to it added.
    fn added_ms(&self) -> f64 {
        self.itself
            .iter()
            .chain(&self.pointed_at)
            .filter_map(|f| f.added_ms())
            .fold(0.0, f64::max)
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
    // A finding points at its peer, unless it is about time and its service is slow on its own side:
    // its findings point at several peers (the common factor is the caller), or its own time moved as
    // much (its CPU). Failures and unanswered calls stay the peer's.
    let points_at = |f: &Finding, service: &str| {
        f.cause == Cause::Peer
            && if about_time(f) && common.contains(f.service.as_str()) {
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
    let credit = |service: &str| credits.iter().find(|c| c.service == service);
    let raw_of = |service: &str, which| credit(service).map_or(0.0, |c| c.raw_of(which));
    // A callee with as much evidence may be what the service waits on; where both are about time,
    // only if it added as many milliseconds.
    let may_wait_on = |c: &Credit, callee: &str| {
        let Some(q) = credit(callee) else {
            return false;
        };
        let (mine, theirs) = (c.added_ms(), q.added_ms());
        if mine > 0.0 && theirs > 0.0 {
            theirs >= 0.5 * mine
        } else {
            q.raw_of(Spread::Up) >= 0.5 * c.raw_of(Spread::Up)
        }
    };
    let mut origins: Vec<Origin> = credits
        .iter()
        .filter(|c| c.raw() > 0.0)
        .map(|c| {
            let in_incident = |s: &&str| services.contains(s);
            let (up, down) = (c.raw_of(Spread::Up), c.raw_of(Spread::Down));
            // Slowness and failures spread to callers; changed call shapes to callees.
            // Callers it explains: their findings point at it, or they only wait.
            let callers: BTreeSet<&str> = graph
                .callers(c.service)
                .filter(in_incident)
                .filter(|p| {
                    c.pointed_at.iter().any(|f| f.service == *p)
                        || credit(p)
                            .is_some_and(|q| q.unknown.iter().any(|f| spread(f) == Spread::Up))
                })
                .collect();
            let busy_callees: BTreeSet<&str> = graph
                .callees(c.service)
                .filter(in_incident)
                .filter(|q| up > 0.0 && may_wait_on(c, q))
                .collect();
            let changed_callees = graph
                .callees(c.service)
                .filter(in_incident)
                .filter(|q| raw_of(q, Spread::Down) > 0.0)
                .count();
            let changing_callers = graph
                .callers(c.service)
                .filter(in_incident)
                .filter(|p| down > 0.0 && raw_of(p, Spread::Down) >= 0.5 * down)
                .count();
            let traffic_passed_on = graph
                .callers(c.service)
                .filter(in_incident)
                .any(|p| raw_of(p, Spread::Traffic) > 0.0);
            let score = up * (1.0 + 0.25 * callers.len() as f64)
                / (1.0 + 0.5 * busy_callees.len() as f64)
                + down * (1.0 + 0.25 * changed_callees as f64)
                    / (1.0 + 0.5 * changing_callers as f64)
                + c.raw_of(Spread::Traffic)
                    * if traffic_passed_on {
                        PASSED_ON_TRAFFIC_SHARE
                    } else {
                        1.0
                    }
                + c.raw_of(Spread::Nowhere);
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
/// time grew by at least half as many milliseconds as the way to its peer (its CPU, not the wire).
/// Only findings about time count: failures and unanswered calls pointing at a peer are the peer's.
fn callers_own_side(incident: &Incident) -> BTreeSet<&str> {
    let mut peers: BTreeMap<&str, (BTreeSet<&str>, f64)> = BTreeMap::new();
    for f in incident
        .findings
        .iter()
        .filter(|f| f.cause == Cause::Peer && about_time(f))
    {
        if let Some(peer) = f.peer_service.as_deref() {
            let entry = peers.entry(f.service.as_str()).or_default();
            entry.0.insert(peer);
            entry.1 = entry.1.max(f.added_ms().unwrap_or(0.0));
        }
    }
    let own_ms = |service: &str| {
        incident
            .findings
            .iter()
            .filter(|f| f.service == service && f.cause == Cause::Itself)
            .filter_map(Finding::added_ms)
            .fold(0.0, f64::max)
    };
    peers
        .into_iter()
        .filter(|(service, (p, way_ms))| {
            p.len() >= 2 || (*way_ms > 0.0 && own_ms(service) >= 0.5 * way_ms)
        })
        .map(|(s, _)| s)
        .collect()
}

fn about_time(f: &Finding) -> bool {
    matches!(
        f.subtype,
        Subtype::LatencySpike | Subtype::LatencyDegradation
    )
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
        // Nothing of its own: say what the strongest finding pointing at it saw.
        if c.itself.is_empty()
            && let Some(f) = strongest(&c.pointed_at)
        {
            parts.push(f.description.clone());
        }
        let from: BTreeSet<&str> = c.pointed_at.iter().map(|f| f.service.as_str()).collect();
        parts.push(format!(
            "{} finding{} of {} point at it",
            c.pointed_at.len(),
            if c.pointed_at.len() == 1 { "" } else { "s" },
            list(&from)
        ));
    }
    if c.itself.is_empty()
        && c.pointed_at.is_empty()
        && let Some(f) = c.unknown.first()
    {
        parts.push(f.description.clone());
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
