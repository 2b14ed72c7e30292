//! The anomaly's JSON shape on the wire, defined once: the REST API's items (`GET /api/anomalies`,
//! `GET /api/anomalies/:id`, the live stream) and `detector-worker replay`'s lines. Converted
//! explicitly from the stored row, so a change in the store or the core does not silently change it;
//! a replayed detection is shown as the row its first detection would be.

use crate::model::{AnomalyRecord, NewAnomaly};
use chrono::{DateTime, SecondsFormat, Utc};
use detect_core::Anomaly;
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AnomalyJson {
    pub id: Uuid,
    pub trace_id: String,
    pub span_id: Option<String>,
    pub anomaly_type: String,
    pub anomaly_subtype: Option<String>,
    pub severity: String,
    pub description: Option<String>,
    pub detected_at: Option<String>,
    pub resolved: bool,
    pub resolution_notes: Option<String>,
    pub service_name: Option<String>,
    pub operation: Option<String>,
    pub client: Option<String>,
    /// The service called, when the finding is about time spent on the way to it (a client span's
    /// own time: the wire and queues between two services) or about a call to it.
    pub peer_service: Option<String>,
    pub observed_value: Option<f64>,
    pub expected_value: Option<f64>,
    pub score: Option<f64>,
    pub window_start: Option<String>,
    pub window_end: Option<String>,
    pub fingerprint: Option<String>,
    /// Detections folded into this row (1 for a replayed detection).
    pub occurrences: i64,
    pub last_seen_at: Option<String>,
    pub resolved_at: Option<String>,
    pub resolved_by: Option<String>,
    /// The explanation beyond the columns: `spread`, `threshold`, `unit`, `example_trace_ids`.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub details: Option<Value>,
}

/// Timestamps on the wire: RFC 3339, UTC, milliseconds.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl From<AnomalyRecord> for AnomalyJson {
    fn from(r: AnomalyRecord) -> Self {
        AnomalyJson {
            id: r.id,
            trace_id: r.trace_id,
            span_id: r.span_id,
            anomaly_type: r.anomaly_type.as_str().to_owned(),
            anomaly_subtype: r.anomaly_subtype,
            severity: r.severity.as_str().to_owned(),
            description: r.description,
            detected_at: r.detected_at.map(rfc3339),
            resolved: r.resolved,
            resolution_notes: r.resolution_notes,
            service_name: r.service_name,
            operation: r.operation,
            client: r.client,
            peer_service: r.peer_service,
            observed_value: r.observed_value,
            expected_value: r.expected_value,
            score: r.score,
            window_start: r.window_start.map(rfc3339),
            window_end: r.window_end.map(rfc3339),
            fingerprint: r.fingerprint,
            occurrences: r.occurrences,
            last_seen_at: r.last_seen_at.map(rfc3339),
            resolved_at: r.resolved_at.map(rfc3339),
            resolved_by: r.resolved_by,
            details: r.details,
        }
    }
}

/// Ids of replayed detections are derived from the detection itself (fingerprint, window, trace,
/// span), so a replay of the same input gives the same ids.
const REPLAY_ID_NAMESPACE: Uuid = Uuid::from_u128(0x5f1c_6c2e_8b7a_4e43_9a55_2f0e_7d1b_c0de);

impl NewAnomaly {
    /// The row a store holds after this first detection, with the given id.
    pub fn first_record(&self, id: Uuid) -> AnomalyRecord {
        AnomalyRecord {
            id,
            trace_id: self.trace_id.clone(),
            span_id: self.span_id.clone(),
            anomaly_type: self.anomaly_type,
            anomaly_subtype: Some(self.anomaly_subtype.clone()),
            severity: self.severity,
            description: Some(self.description.clone()),
            detected_at: Some(self.detected_at),
            resolved: false,
            resolution_notes: None,
            service_name: Some(self.service_name.clone()),
            operation: self.operation.clone(),
            client: self.client.clone(),
            peer_service: self.peer_service.clone(),
            observed_value: Some(self.observed_value),
            expected_value: Some(self.expected_value),
            score: Some(self.score),
            fingerprint: Some(self.fingerprint.clone()),
            window_start: Some(self.window_start),
            window_end: Some(self.window_end),
            occurrences: 1,
            last_seen_at: Some(self.detected_at),
            resolved_at: None,
            resolved_by: None,
            details: serde_json::to_value(&self.details).ok(),
        }
    }
}

/// A detection as `detector-worker replay` prints it: the API's shape of the row it would become.
pub fn replay_json(a: &Anomaly) -> AnomalyJson {
    let new = NewAnomaly::from_anomaly(a, false);
    let id = Uuid::new_v5(&REPLAY_ID_NAMESPACE, new.detection_key.as_bytes());
    AnomalyJson::from(new.first_record(id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use detect_core::{Severity, Subtype, UnixNanos, Window};

    fn anomaly(peer: Option<&str>) -> Anomaly {
        Anomaly {
            subtype: Subtype::LatencySpike,
            severity: Severity::High,
            service: "checkout".into(),
            operation: Some("POST payments".into()),
            client: None,
            peer_service: peer.map(str::to_owned),
            trace_id: None,
            span_id: None,
            observed: f64::NAN,
            expected: 40.0,
            spread: 0.3,
            score: 9.0,
            threshold: 3.0,
            unit: "ms",
            window: Window {
                start: UnixNanos(1_767_571_200_123_000_000),
                end: UnixNanos(1_767_571_260_000_000_000),
            },
            detected_at: UnixNanos(1_767_571_260_000_000_000),
            examples: vec![],
            description: String::new(),
        }
    }

    #[test]
    fn a_replayed_detection_is_its_first_row_in_the_api_shape() {
        let json = serde_json::to_value(replay_json(&anomaly(Some("payments")))).unwrap();
        assert_eq!(json["peer_service"], "payments");
        assert_eq!(json["window_start"], "2026-01-05T00:00:00.123Z");
        assert_eq!(json["occurrences"], 1);
        assert_eq!(json["observed_value"], 0.0, "JSON has no NaN");
        assert_eq!(json["details"]["unit"], "ms");
        assert_eq!(json["details"]["threshold"], 3.0);
        let again = serde_json::to_value(replay_json(&anomaly(Some("payments")))).unwrap();
        assert_eq!(
            json["id"], again["id"],
            "ids are derived from the detection"
        );
        let none = serde_json::to_value(replay_json(&anomaly(None))).unwrap();
        assert!(none["peer_service"].is_null() && none.get("peer_service").is_some());
    }
}
