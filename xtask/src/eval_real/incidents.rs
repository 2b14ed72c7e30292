//! How incidents score on a fault period: the largest incident overlapping the period (most detections)
//! should name the injected service as its most probable origin (top-1) or among its first three
//! (top-3), and the period should hold few incidents (pages per problem).

use detect_core::Incident;

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
