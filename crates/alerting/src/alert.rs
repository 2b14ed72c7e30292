//! What one alert is about: an event of one incident, keyed by its fingerprint. An incident is either
//! one anomaly row (its fingerprint's open row), or, with [`Alert::incident`], findings grouped by
//! detect-core with their probable origins (fingerprint `incident:<id>`; its findings send nothing of
//! their own).

use chrono::{DateTime, Utc};
use detect_core::Severity;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Why an alert is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertEvent {
    /// A new incident.
    Opened,
    /// An open incident's severity rose.
    Escalated,
    /// An open incident's leading probable origin is another one now.
    OriginChanged,
    /// An open incident is still firing, a cool-down after the last message.
    Reminder,
    /// Resolved, by hand or because it stayed normal for the recovery period.
    Resolved,
}

impl AlertEvent {
    /// The outbox's event names (`opened`, `escalated`, `origin_changed`, `reminder`, `resolved`).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "opened" => Some(AlertEvent::Opened),
            "escalated" => Some(AlertEvent::Escalated),
            "origin_changed" => Some(AlertEvent::OriginChanged),
            "reminder" => Some(AlertEvent::Reminder),
            "resolved" => Some(AlertEvent::Resolved),
            _ => None,
        }
    }
}

/// One event of one incident, with what its message needs.
///
/// For an incident of grouped findings ([`Alert::incident`] is Some): `anomaly_id` is the incident's
/// UUID, `fingerprint` is `incident:<id>`, `anomaly_type` is `incident`, `service` and `operation` are
/// the leading origin's, `occurrences` the detections it holds, `detected_at` its start, `trace_ids`
/// example traces and `description` its title.
#[derive(Clone, Debug, PartialEq)]
pub struct Alert {
    pub event: AlertEvent,
    /// The anomaly row, or the incident's UUID.
    pub anomaly_id: Uuid,
    /// One incident: detections of it merge into one row while it is open (`incident:<id>` for
    /// grouped findings).
    pub fingerprint: String,
    pub severity: Severity,
    /// `performance`, `security`, `resource`; `incident` for grouped findings.
    pub anomaly_type: String,
    pub subtype: Option<String>,
    pub service: Option<String>,
    pub operation: Option<String>,
    /// The service called, when the anomaly is about the way to it or a call to it.
    pub peer_service: Option<String>,
    pub observed: Option<f64>,
    pub expected: Option<f64>,
    /// The unit of observed and expected (`ms`, `ratio`, `requests/window`, …).
    pub unit: Option<String>,
    pub detected_at: Option<DateTime<Utc>>,
    pub last_seen_at: Option<DateTime<Utc>>,
    pub occurrences: i64,
    /// Example traces, the most telling first.
    pub trace_ids: Vec<String>,
    pub description: Option<String>,
    pub resolved_by: Option<String>,
    pub resolution_notes: Option<String>,
    /// Present when the alert is about an incident (findings grouped, with probable origins).
    pub incident: Option<IncidentSummary>,
}

/// What an incident alert says beyond one anomaly's fields.
#[derive(Clone, Debug, PartialEq)]
pub struct IncidentSummary {
    /// Best first.
    pub origins: Vec<AlertOrigin>,
    /// Every affected service, sorted.
    pub services: Vec<String>,
    /// Findings (anomaly rows) it holds.
    pub findings: i64,
}

/// One probable origin of an incident.
#[derive(Clone, Debug, PartialEq)]
pub struct AlertOrigin {
    pub service: String,
    pub operation: Option<String>,
    pub score: f64,
    /// One sentence of evidence, e.g. "own time ×5.8 (p99 41 ms → 240 ms) while its callees are normal".
    pub evidence: String,
}

impl Alert {
    /// The leading probable origin's service and operation, for an incident alert: its first origin,
    /// else its own service and operation. None for an anomaly alert.
    pub(crate) fn leading_origin(&self) -> Option<(Option<&str>, Option<&str>)> {
        let incident = self.incident.as_ref()?;
        Some(match incident.origins.first() {
            Some(o) => (Some(o.service.as_str()), o.operation.as_deref()),
            None => (self.service.as_deref(), self.operation.as_deref()),
        })
    }
}
