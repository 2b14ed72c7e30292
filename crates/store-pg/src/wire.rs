//! The anomaly's JSON shape on the wire, defined once: the REST API's items (`GET /api/anomalies`,
//! `GET /api/anomalies/:id`, the live stream) and `detector-worker replay`'s lines are the stored
//! record's JSON ([`AnomalyRecord`]'s serde attributes say it; `bins/api-server/tests/wire.rs` and the
//! OpenAPI document pin it); a replayed detection is shown as the row its first detection would be.

use crate::model::{AnomalyRecord, NewAnomaly};
use chrono::{DateTime, SecondsFormat, Utc};
use detect_core::Anomaly;
use serde::{Serialize, Serializer};
use uuid::Uuid;

/// The anomaly on the wire: the stored record's JSON, named for the API's schema.
pub type AnomalyJson = AnomalyRecord;

/// Timestamps on the wire: RFC 3339, UTC, milliseconds.
pub fn rfc3339<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    t.map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
        .serialize(s)
}

/// A timestamp that is always there, on the wire as [`rfc3339`] writes it.
pub fn rfc3339_at<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    rfc3339(&Some(*t), s)
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
            // What the store writes for a first detection (its example traces merged as a row's).
            details: crate::fold::fold(std::slice::from_ref(self), |_| true)
                .first()
                .and_then(|first| first.details(None).ok()),
            incident_id: None,
        }
    }
}

/// A detection as `detector-worker replay` prints it: the API's shape of the row it would become.
pub fn replay_json(a: &Anomaly) -> AnomalyJson {
    let new = NewAnomaly::from_anomaly(a, false);
    let id = Uuid::new_v5(&REPLAY_ID_NAMESPACE, new.detection_key.as_bytes());
    new.first_record(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use detect_core::{Severity, Subtype, UnixNanos, Window};

    fn anomaly(peer: Option<&str>) -> Anomaly {
        Anomaly {
            cause: detect_core::Cause::Itself,
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
