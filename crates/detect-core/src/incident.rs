//! Incidents: the findings of one problem, grouped, with a ranked probable origin. A person on call
//! wants one page per problem that says where it starts, not a finding per affected caller.
//!
//! Findings that overlap in time (their windows within [`IncidentSettings::join_gap_nanos`] of the
//! incident's) and are connected through the services' calls ([`ServiceGraph`], at most
//! [`IncidentSettings::link_hops`] calls apart, either way) form one incident; a finding that connects two
//! open incidents merges them. Security findings about one client form that client's incident, and
//! findings about what all services share (the telemetry pipeline) form their own. An
//! incident closes once it has been quiet for [`IncidentSettings::quiet_nanos`] of event time.
//! Deterministic: the same findings in the same order give the same incidents.

mod origin;

pub use origin::Origin;

use crate::anomaly::{Anomaly, AnomalyType, Cause, Severity, Subtype, Window};
use crate::service_graph::ServiceGraph;
use crate::span::{TraceId, UnixNanos};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IncidentSettings {
    /// An incident closes after this long without a new finding (event time).
    pub quiet_nanos: u64,
    /// A finding joins an incident whose time range it overlaps or comes within this of.
    pub join_gap_nanos: u64,
    /// A finding joins an incident with a service at most this many calls away.
    pub link_hops: usize,
}

impl Default for IncidentSettings {
    fn default() -> Self {
        IncidentSettings {
            quiet_nanos: 300 * UnixNanos::NANOS_PER_SEC,
            join_gap_nanos: 60 * UnixNanos::NANOS_PER_SEC,
            link_hops: 2,
        }
    }
}

/// The detections of one fingerprint within an incident, folded.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Finding {
    pub fingerprint: String,
    pub subtype: Subtype,
    pub cause: Cause,
    pub service: String,
    pub operation: Option<String>,
    pub peer_service: Option<String>,
    /// The most severe detection's severity, score and description.
    pub severity: Severity,
    pub score: f64,
    /// The score at which its detector fires.
    pub threshold: f64,
    /// What was measured and expected, in `unit`.
    pub observed: f64,
    pub expected: f64,
    pub unit: String,
    pub description: String,
    pub detections: u32,
    pub window: Window,
    pub examples: Vec<TraceId>,
}

impl Finding {
    /// Milliseconds it added over what was expected, for a finding about time.
    pub fn added_ms(&self) -> Option<f64> {
        (self.unit == "ms").then(|| (self.observed - self.expected).max(0.0))
    }
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Incident {
    /// Derived from its first finding (fingerprint and window): the same input gives the same id.
    pub id: String,
    /// The client, for a security incident.
    pub client: Option<String>,
    /// Whether it is about something the services share (the telemetry pipeline), not one service.
    pub shared: bool,
    pub started_at: UnixNanos,
    pub last_seen_at: UnixNanos,
    /// Set once it has been quiet long enough.
    pub ended_at: Option<UnixNanos>,
    pub severity: Severity,
    pub findings: Vec<Finding>,
    /// Best first.
    pub origins: Vec<Origin>,
    /// The ids of the incidents merged into this one (a finding linked them), oldest first.
    #[serde(default)]
    pub absorbed: Vec<String>,
}

impl Incident {
    /// Every service its findings name, as their service or their peer.
    pub fn services(&self) -> BTreeSet<&str> {
        self.findings
            .iter()
            .flat_map(|f| std::iter::once(f.service.as_str()).chain(f.peer_service.as_deref()))
            .collect()
    }

    /// Detections it holds.
    pub fn detections(&self) -> u32 {
        self.findings.iter().map(|f| f.detections).sum()
    }

    /// A line that says what it is: where it starts, what kind of problem, how wide.
    pub fn title(&self) -> String {
        if let Some(client) = &self.client {
            return format!("security: requests from {client}");
        }
        let services = self.services().len();
        let wide = match services {
            1 => String::new(),
            n => format!(", {n} services affected"),
        };
        if self.shared {
            return format!("telemetry from most services stopped{wide}");
        }
        let Some(origin) = self.origins.first() else {
            return format!("{} findings{wide}", self.findings.len());
        };
        let kind = self
            .findings
            .iter()
            .filter(|f| {
                f.service == origin.service || f.peer_service.as_ref() == Some(&origin.service)
            })
            .max_by_key(|f| f.severity)
            .map_or("problem".to_owned(), |f| {
                f.subtype.as_str().replace('_', " ")
            });
        format!("{}: {kind}{wide}", origin.service)
    }

    pub fn pages(&self) -> bool {
        self.severity >= Severity::High
    }

    fn absorb(&mut self, a: &Anomaly) {
        self.started_at = self.started_at.min(a.window.start);
        self.last_seen_at = self.last_seen_at.max(a.window.end);
        self.severity = self.severity.max(a.severity);
        let fingerprint = a.fingerprint();
        match self
            .findings
            .iter_mut()
            .find(|f| f.fingerprint == fingerprint)
        {
            Some(f) => {
                f.detections += 1;
                f.window.start = f.window.start.min(a.window.start);
                f.window.end = f.window.end.max(a.window.end);
                if a.severity > f.severity || (a.severity == f.severity && a.score > f.score) {
                    f.severity = a.severity;
                    (f.score, f.threshold) = (a.score, a.threshold);
                    (f.observed, f.expected) = (a.observed, a.expected);
                    a.unit.clone_into(&mut f.unit);
                    f.description = a.description.clone();
                    f.cause = a.cause;
                    f.peer_service = a.peer_service.clone().or(f.peer_service.take());
                }
                for t in &a.examples {
                    if f.examples.len() < MAX_FINDING_EXAMPLES && !f.examples.contains(t) {
                        f.examples.push(*t);
                    }
                }
            }
            None => self.findings.push(Finding {
                fingerprint,
                subtype: a.subtype,
                cause: a.cause,
                service: a.service.clone(),
                operation: a.operation.clone(),
                peer_service: a.peer_service.clone(),
                severity: a.severity,
                score: a.score,
                threshold: a.threshold,
                observed: a.observed,
                expected: a.expected,
                unit: a.unit.to_owned(),
                description: a.description.clone(),
                detections: 1,
                window: a.window,
                examples: a
                    .examples
                    .iter()
                    .take(MAX_FINDING_EXAMPLES)
                    .copied()
                    .collect(),
            }),
        }
    }

    fn merge(&mut self, other: Incident) {
        self.absorbed.extend(other.absorbed);
        self.absorbed.push(other.id);
        self.started_at = self.started_at.min(other.started_at);
        self.last_seen_at = self.last_seen_at.max(other.last_seen_at);
        self.severity = self.severity.max(other.severity);
        for f in other.findings {
            match self
                .findings
                .iter_mut()
                .find(|g| g.fingerprint == f.fingerprint)
            {
                Some(g) => {
                    g.detections += f.detections;
                    g.window.start = g.window.start.min(f.window.start);
                    g.window.end = g.window.end.max(f.window.end);
                    if f.severity > g.severity {
                        *g = Finding {
                            detections: g.detections,
                            window: g.window,
                            ..f
                        };
                    }
                }
                None => self.findings.push(f),
            }
        }
    }
}

/// Example traces kept per finding.
const MAX_FINDING_EXAMPLES: usize = 10;

/// What changed about an incident.
#[derive(Clone, Debug, PartialEq)]
pub enum IncidentEvent {
    Opened(Incident),
    /// Its severity rose.
    Escalated(Incident),
    /// Its most probable origin is another service now.
    OriginChanged(Incident),
    /// Findings joined it without changing its severity or origin.
    Updated(Incident),
    Closed(Incident),
}

impl IncidentEvent {
    pub fn incident(&self) -> &Incident {
        match self {
            IncidentEvent::Opened(i)
            | IncidentEvent::Escalated(i)
            | IncidentEvent::OriginChanged(i)
            | IncidentEvent::Updated(i)
            | IncidentEvent::Closed(i) => i,
        }
    }
}

/// Groups findings into incidents as they come (event time), ranking each incident's origins. Its
/// state (settings and open incidents) serializes, so that a restart goes on with the open incidents.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct IncidentTracker {
    settings: IncidentSettings,
    open: Vec<Incident>,
}

impl IncidentTracker {
    pub fn new(settings: IncidentSettings) -> Self {
        IncidentTracker {
            settings,
            open: Vec::new(),
        }
    }

    /// Applies changed settings (a changed configuration) to the open incidents too.
    pub fn set_settings(&mut self, settings: IncidentSettings) {
        self.settings = settings;
    }

    pub fn open(&self) -> &[Incident] {
        &self.open
    }

    /// Places one finding in its incident; returns what changed.
    pub fn observe(&mut self, a: &Anomaly, graph: &ServiceGraph) -> IncidentEvent {
        let joined: Vec<usize> = (0..self.open.len())
            .filter(|&i| self.belongs(&self.open[i], a, graph))
            .collect();
        let Some((&first, rest)) = joined.split_first() else {
            let mut incident = Incident {
                id: incident_id(a),
                client: security_client(a),
                shared: a.cause == Cause::Shared,
                started_at: a.window.start,
                last_seen_at: a.window.end,
                ended_at: None,
                severity: a.severity,
                findings: Vec::new(),
                origins: Vec::new(),
                absorbed: Vec::new(),
            };
            incident.absorb(a);
            incident.origins = origin::rank(&incident, graph);
            self.open.push(incident.clone());
            return IncidentEvent::Opened(incident);
        };
        // Merge the others into the first (the oldest), from the last so the indexes hold.
        for &i in rest.iter().rev() {
            let other = self.open.remove(i);
            self.open[first].merge(other);
        }
        let incident = &mut self.open[first];
        let (severity, origin) = (incident.severity, leading(incident));
        incident.absorb(a);
        incident.origins = origin::rank(incident, graph);
        let snapshot = incident.clone();
        if snapshot.severity > severity {
            IncidentEvent::Escalated(snapshot)
        } else if leading(&snapshot) != origin {
            IncidentEvent::OriginChanged(snapshot)
        } else {
            IncidentEvent::Updated(snapshot)
        }
    }

    /// Closes the incidents quiet since before `now − quiet`.
    pub fn advance_to(&mut self, now: UnixNanos) -> Vec<IncidentEvent> {
        let quiet = self.settings.quiet_nanos;
        let (closed, open): (Vec<Incident>, Vec<Incident>) = std::mem::take(&mut self.open)
            .into_iter()
            .partition(|i| i.last_seen_at.0.saturating_add(quiet) <= now.0);
        self.open = open;
        closed.into_iter().map(close).collect()
    }

    /// Closes every open incident (the end of the input).
    pub fn finish(&mut self) -> Vec<IncidentEvent> {
        std::mem::take(&mut self.open)
            .into_iter()
            .map(close)
            .collect()
    }

    fn belongs(&self, incident: &Incident, a: &Anomaly, graph: &ServiceGraph) -> bool {
        let gap = self.settings.join_gap_nanos;
        let near_in_time = a.window.start.0 <= incident.last_seen_at.0.saturating_add(gap)
            && a.window.end.0.saturating_add(gap) >= incident.started_at.0;
        if !near_in_time {
            return false;
        }
        match (security_client(a), &incident.client) {
            (Some(client), Some(theirs)) => return &client == theirs,
            (None, None) => {}
            _ => return false,
        }
        // What all services share is one incident of its own, not a bridge between services'.
        if (a.cause == Cause::Shared) != incident.shared {
            return false;
        }
        if incident.shared {
            return true;
        }
        let services = incident.services();
        std::iter::once(a.service.as_str())
            .chain(a.peer_service.as_deref())
            .any(|s| {
                graph
                    .distance(s, &services, self.settings.link_hops)
                    .is_some()
            })
    }
}

fn close(mut incident: Incident) -> IncidentEvent {
    incident.ended_at = Some(incident.last_seen_at);
    IncidentEvent::Closed(incident)
}

fn leading(incident: &Incident) -> Option<String> {
    incident.origins.first().map(|o| o.service.clone())
}

/// Security findings about one client are that client's incident.
fn security_client(a: &Anomaly) -> Option<String> {
    (a.anomaly_type() == AnomalyType::Security)
        .then(|| a.client.clone().unwrap_or_else(|| a.service.clone()))
}

fn incident_id(a: &Anomaly) -> String {
    let mut hasher = Sha256::new();
    hasher.update(a.fingerprint().as_bytes());
    hasher.update(a.window.start.0.to_be_bytes());
    let digest = hasher.finalize();
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}
