//! How incidents score on a fault period: the largest incident overlapping the period (most detections)
//! should name the injected service as its most probable origin (top-1) or among its first three
//! (top-3), and the period should hold few incidents (pages per problem).

use detect_core::{Anomaly, Engine, Incident, IncidentEvent, IncidentTracker};

/// Incidents formed as a replay goes, from each batch of new findings with the calls between
/// services known so far (as the worker forms them).
#[derive(Default)]
pub struct Grouping {
    tracker: IncidentTracker,
    pub incidents: Vec<Incident>,
}

impl Grouping {
    pub fn place(&mut self, engine: &Engine, new: &[Anomaly]) {
        for a in new {
            self.tracker.observe(a, engine.service_graph());
            let closed = self.tracker.advance_to(a.detected_at);
            self.keep(closed);
        }
    }

    /// Closes what is still open; every incident of the replay.
    pub fn finish(mut self) -> Vec<Incident> {
        let closed = self.tracker.finish();
        self.keep(closed);
        self.incidents
    }

    fn keep(&mut self, events: Vec<IncidentEvent>) {
        self.incidents
            .extend(events.into_iter().map(|e| e.incident().clone()));
    }
}

/// The incident a detection went to: the one holding its fingerprint at its time.
pub fn incident_of<'a>(incidents: &'a [Incident], a: &Anomaly) -> Option<&'a Incident> {
    let fingerprint = a.fingerprint();
    incidents.iter().find(|i| {
        i.started_at <= a.window.start
            && a.window.end <= i.last_seen_at
            && i.findings.iter().any(|f| f.fingerprint == fingerprint)
    })
}

/// The incidents of one fault period.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PeriodIncidents {
    /// Where the injected service stands among the largest incident's origins (0: first), if at all.
    pub origin_rank: Option<usize>,
    /// The largest incident's first origin.
    pub origin: Option<String>,
    /// Incidents overlapping the period.
    pub incidents: usize,
    /// Those of them that page (HIGH or CRITICAL).
    pub paging: usize,
    /// The largest incident's origins and findings, for `--verbose`.
    pub detail: Vec<String>,
}

pub fn score(incidents: &[Incident], (from, to): (u64, u64), faulty: &str) -> PeriodIncidents {
    let overlapping: Vec<&Incident> = incidents
        .iter()
        .filter(|i| i.started_at.0 <= to && i.last_seen_at.0 >= from)
        .collect();
    // What all services share (the telemetry pipeline) names no origin.
    let largest = overlapping
        .iter()
        .filter(|i| !i.shared)
        .max_by_key(|i| (i.detections(), std::cmp::Reverse(i.id.as_str())));
    PeriodIncidents {
        origin_rank: largest.and_then(|i| i.origins.iter().position(|o| o.service == faulty)),
        origin: largest.and_then(|i| i.origins.first().map(|o| o.service.clone())),
        incidents: overlapping.len(),
        paging: overlapping.iter().filter(|i| i.pages()).count(),
        detail: overlapping
            .iter()
            .map(|i| {
                format!(
                    "incident {} detections {}{}: {}",
                    i.severity,
                    i.detections(),
                    if i.shared { " (shared)" } else { "" },
                    i.origins
                        .iter()
                        .take(3)
                        .map(|o| format!("{} {:.2}", o.service, o.score))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
            .chain(largest.map(|i| detail(i)).unwrap_or_default())
            // Where the faulty service is named outside the largest incident: what was found there.
            .chain(
                overlapping
                    .iter()
                    .filter(|i| Some(i.id.as_str()) != largest.map(|l| l.id.as_str()))
                    .filter(|i| i.services().contains(faulty))
                    .flat_map(|i| detail(i).into_iter().filter(|l| l.starts_with("finding"))),
            )
            .collect(),
    }
}

fn detail(incident: &Incident) -> Vec<String> {
    let origins = incident.origins.iter().take(5).map(|o| {
        format!(
            "origin {:.2} {} `{}`: {}",
            o.score,
            o.service,
            o.operation.as_deref().unwrap_or("-"),
            o.evidence
        )
    });
    let findings = incident.findings.iter().map(|f| {
        format!(
            "finding {} {:?} {:.1} {}/{} peer {} ×{}: {}",
            f.severity,
            f.cause,
            f.score,
            f.service,
            f.operation.as_deref().unwrap_or("-"),
            f.peer_service.as_deref().unwrap_or("-"),
            f.detections,
            f.description.chars().take(160).collect::<String>()
        )
    });
    origins.chain(findings).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use detect_core::{Origin, Severity, UnixNanos};

    fn incident(id: &str, from: u64, to: u64, origins: &[&str], shared: bool) -> Incident {
        Incident {
            id: id.into(),
            client: None,
            shared,
            started_at: UnixNanos::from_secs(from),
            last_seen_at: UnixNanos::from_secs(to),
            ended_at: Some(UnixNanos::from_secs(to)),
            severity: Severity::High,
            findings: Vec::new(),
            origins: origins
                .iter()
                .map(|s| Origin {
                    service: (*s).into(),
                    operation: None,
                    score: 1.0,
                    evidence: String::new(),
                })
                .collect(),
            absorbed: Vec::new(),
        }
    }

    #[test]
    fn the_origin_is_read_from_an_overlapping_incident_and_every_overlapping_one_is_counted() {
        let incidents = [
            incident("a", 100, 200, &["x", "faulty"], false),
            incident("pipeline", 100, 400, &[], true),
            incident("later", 900, 1000, &["faulty"], false),
        ];
        let secs = |s: u64| s * 1_000_000_000;
        let scored = score(&incidents, (secs(150), secs(300)), "faulty");
        assert_eq!(scored.origin_rank, Some(1));
        assert_eq!(scored.origin.as_deref(), Some("x"));
        assert_eq!((scored.incidents, scored.paging), (2, 2));
        let nothing = score(&incidents, (secs(500), secs(600)), "faulty");
        assert_eq!((nothing.origin_rank, nothing.incidents), (None, 0));
    }
}
