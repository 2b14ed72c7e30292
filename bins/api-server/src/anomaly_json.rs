//! The API's anomaly shape, converted explicitly from the store's row (the same fields as
//! `detector-worker replay` prints).

use serde::Serialize;
use serde_json::Value;
use store_pg::AnomalyRecord;
use uuid::Uuid;

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
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
    pub occurrences: i64,
    pub last_seen_at: Option<String>,
    pub resolved_at: Option<String>,
    pub resolved_by: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub details: Option<Value>,
}

fn rfc3339(t: Option<chrono::DateTime<chrono::Utc>>) -> Option<String> {
    t.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
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
            detected_at: rfc3339(r.detected_at),
            resolved: r.resolved,
            resolution_notes: r.resolution_notes,
            service_name: r.service_name,
            operation: r.operation,
            client: r.client,
            peer_service: r.peer_service,
            observed_value: r.observed_value,
            expected_value: r.expected_value,
            score: r.score,
            window_start: rfc3339(r.window_start),
            window_end: rfc3339(r.window_end),
            fingerprint: r.fingerprint,
            occurrences: r.occurrences,
            last_seen_at: rfc3339(r.last_seen_at),
            resolved_at: rfc3339(r.resolved_at),
            resolved_by: r.resolved_by,
            details: r.details,
        }
    }
}
