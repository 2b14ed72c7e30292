//! What one alert is about: an event of one incident (an anomaly row and its fingerprint).

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
    /// An open incident is still firing, a cool-down after the last message.
    Reminder,
    /// Resolved, by hand or because it stayed normal for the recovery period.
    Resolved,
}

impl AlertEvent {
    /// The outbox's event names (`opened`, `escalated`, `resolved`).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "opened" => Some(AlertEvent::Opened),
            "escalated" => Some(AlertEvent::Escalated),
            "reminder" => Some(AlertEvent::Reminder),
            "resolved" => Some(AlertEvent::Resolved),
            _ => None,
        }
    }
}

/// One event of one incident, with what its message needs.
#[derive(Clone, Debug, PartialEq)]
pub struct Alert {
    pub event: AlertEvent,
    pub anomaly_id: Uuid,
    /// One incident: detections of it merge into one row while it is open.
    pub fingerprint: String,
    pub severity: Severity,
    /// `performance`, `security`, `resource`.
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
}
