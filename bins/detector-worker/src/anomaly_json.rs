//! The anomaly's JSON shape, shared with the REST API (`GET /api/anomalies` items): the seed
//! schema's columns plus the explanation. Converted explicitly from detect-core's `Anomaly`, so a
//! change in the core does not silently change the wire.

use chrono::{DateTime, SecondsFormat, Utc};
use detect_core::{Anomaly, UnixNanos};
use serde::Serialize;
use uuid::Uuid;

#[derive(Debug, Serialize)]
pub struct AnomalyJson {
    pub id: Uuid,
    pub trace_id: String,
    pub span_id: Option<String>,
    pub anomaly_type: &'static str,
    pub anomaly_subtype: &'static str,
    pub severity: &'static str,
    pub description: String,
    pub detected_at: String,
    pub resolved: bool,
    pub resolution_notes: Option<String>,
    pub service_name: String,
    pub operation: Option<String>,
    pub client: Option<String>,
    /// The service called, when the finding is about the way to it or a call to it; null otherwise.
    pub peer_service: Option<String>,
    pub observed_value: f64,
    pub expected_value: f64,
    pub spread: f64,
    pub score: f64,
    pub threshold: f64,
    pub unit: &'static str,
    pub window_start: String,
    pub window_end: String,
    pub example_trace_ids: Vec<String>,
    pub fingerprint: String,
}

/// Ids are derived from the anomaly itself (fingerprint, window, span), so a replay of the same
/// input gives the same ids and a second run's rows are recognisable as the same anomalies.
const ID_NAMESPACE: Uuid = Uuid::from_u128(0x5f1c_6c2e_8b7a_4e43_9a55_2f0e_7d1b_c0de);

impl From<&Anomaly> for AnomalyJson {
    fn from(a: &Anomaly) -> Self {
        let fingerprint = a.fingerprint();
        let identity = format!(
            "{fingerprint}/{}/{}/{}",
            a.window.start.0,
            a.trace_id.map(|t| t.to_string()).unwrap_or_default(),
            a.span_id.map(|s| s.to_string()).unwrap_or_default(),
        );
        AnomalyJson {
            id: Uuid::new_v5(&ID_NAMESPACE, identity.as_bytes()),
            // The seed schema's trace_id is NOT NULL: window-level anomalies carry their first example.
            trace_id: a.trace_id.map(|t| t.to_string()).unwrap_or_default(),
            span_id: a.span_id.map(|s| s.to_string()),
            anomaly_type: a.anomaly_type().as_str(),
            anomaly_subtype: a.subtype.as_str(),
            severity: a.severity.as_str(),
            description: a.description.clone(),
            detected_at: rfc3339(a.detected_at),
            resolved: false,
            resolution_notes: None,
            service_name: a.service.clone(),
            operation: a.operation.clone(),
            client: a.client.clone(),
            peer_service: a.peer_service.clone(),
            observed_value: finite(a.observed),
            expected_value: finite(a.expected),
            spread: finite(a.spread),
            score: finite(a.score),
            threshold: finite(a.threshold),
            unit: a.unit,
            window_start: rfc3339(a.window.start),
            window_end: rfc3339(a.window.end),
            example_trace_ids: a.examples.iter().map(|t| t.to_string()).collect(),
            fingerprint,
        }
    }
}

/// JSON has no NaN or infinity; a non-finite number is written as the largest finite one.
fn finite(x: f64) -> f64 {
    if x.is_nan() {
        0.0
    } else {
        x.clamp(f64::MIN, f64::MAX)
    }
}

pub fn rfc3339(t: UnixNanos) -> String {
    let secs = (t.0 / UnixNanos::NANOS_PER_SEC) as i64;
    let nanos = (t.0 % UnixNanos::NANOS_PER_SEC) as u32;
    DateTime::<Utc>::from_timestamp(secs, nanos)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(
            rfc3339(UnixNanos(1_767_571_200_123_000_000)),
            "2026-01-05T00:00:00.123Z"
        );
    }

    #[test]
    fn the_peer_service_is_written_and_null_when_absent() {
        use detect_core::{Severity, Subtype, Window};
        let mut a = Anomaly {
            subtype: Subtype::LatencySpike,
            severity: Severity::High,
            service: "checkout".into(),
            operation: Some("POST payments".into()),
            client: None,
            peer_service: Some("payments".into()),
            trace_id: None,
            span_id: None,
            observed: 900.0,
            expected: 40.0,
            spread: 0.3,
            score: 9.0,
            threshold: 3.0,
            unit: "ms",
            window: Window {
                start: UnixNanos(0),
                end: UnixNanos(1),
            },
            detected_at: UnixNanos(1),
            examples: vec![],
            description: String::new(),
        };
        let line = |a: &Anomaly| serde_json::to_value(AnomalyJson::from(a)).unwrap();
        assert_eq!(line(&a)["peer_service"], "payments");
        a.peer_service = None;
        let json = line(&a);
        assert!(json["peer_service"].is_null() && json.get("peer_service").is_some());
    }
}
