//! The store's own row types, converted explicitly from detect-core's types, so that a change in the
//! core does not silently change the schema.

use crate::rows::OrFalse;
use crate::schema::{alert_outbox, config_history, detection_runs, trace_anomalies};
use crate::wire::rfc3339;
use chrono::{DateTime, TimeZone, Utc};
use detect_core::{Anomaly, AnomalyType, Severity, UnixNanos};
use diesel::{Queryable, Selectable};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// An anomaly to store.
#[derive(Clone, Debug, PartialEq)]
pub struct NewAnomaly {
    /// Identifies this detection (fingerprint, window, trace, span): storing it twice changes nothing.
    pub detection_key: String,
    pub fingerprint: String,
    pub trace_id: String,
    pub span_id: Option<String>,
    pub anomaly_type: AnomalyType,
    pub anomaly_subtype: String,
    pub severity: Severity,
    pub description: String,
    pub detected_at: DateTime<Utc>,
    pub service_name: String,
    pub operation: Option<String>,
    pub client: Option<String>,
    /// The service called, when the finding is about the way to it or a call to it.
    pub peer_service: Option<String>,
    pub observed_value: f64,
    pub expected_value: f64,
    pub score: f64,
    pub window_start: DateTime<Utc>,
    pub window_end: DateTime<Utc>,
    pub details: AnomalyDetails,
    /// Whether an alert should leave for it (decided by the caller from the notify severities).
    pub notify: bool,
}

/// The explanation beyond the columns: stored as JSON in `details`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AnomalyDetails {
    pub spread: f64,
    pub threshold: f64,
    pub unit: String,
    pub example_trace_ids: Vec<String>,
    /// A TraceQL query selecting all of the finding's traces in Tempo (run over its window).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceql: Option<String>,
}

/// A stored anomaly: every column. Its JSON is the anomaly's shape on the wire (see `wire.rs`):
/// times in RFC 3339 UTC with milliseconds, severity and type as their stored words.
#[derive(Clone, Debug, PartialEq, Serialize, Queryable, Selectable)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = AnomalyJson))]
#[diesel(table_name = trace_anomalies)]
pub struct AnomalyRecord {
    pub id: Uuid,
    pub trace_id: String,
    pub span_id: Option<String>,
    #[diesel(deserialize_as = String)]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub anomaly_type: AnomalyType,
    pub anomaly_subtype: Option<String>,
    #[diesel(deserialize_as = String)]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub severity: Severity,
    pub description: Option<String>,
    #[serde(serialize_with = "rfc3339")]
    pub detected_at: Option<DateTime<Utc>>,
    #[diesel(deserialize_as = OrFalse)]
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
    pub fingerprint: Option<String>,
    #[serde(serialize_with = "rfc3339")]
    pub window_start: Option<DateTime<Utc>>,
    #[serde(serialize_with = "rfc3339")]
    pub window_end: Option<DateTime<Utc>>,
    /// Detections folded into this row (1 for a replayed detection).
    pub occurrences: i64,
    #[serde(serialize_with = "rfc3339")]
    pub last_seen_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "rfc3339")]
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolved_by: Option<String>,
    /// The explanation beyond the columns, from the most severe detection folded into the row:
    /// `spread`, `threshold`, `unit`, `traceql`; and `example_trace_ids`, the row's (up to 10: the
    /// first 3 its detections named, up to 4 of the most severe detection's, listed in
    /// `most_severe_trace_ids`, then the latest).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub details: Option<serde_json::Value>,
    /// The incident its findings belong to.
    pub incident_id: Option<Uuid>,
}

/// What storing one detection did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InsertOutcome {
    /// A fingerprint with no open row: a new row.
    Inserted(Uuid),
    /// Another detection of a fingerprint's open row: the row's occurrences and last_seen_at moved on.
    Merged(Uuid),
    /// This very detection was stored before: nothing changed.
    Duplicate,
}

/// Filters of the anomaly list; every field is optional and they combine with AND.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AnomalyFilter {
    pub anomaly_type: Option<AnomalyType>,
    pub anomaly_subtype: Option<String>,
    pub severity: Option<Severity>,
    pub min_severity: Option<Severity>,
    pub resolved: Option<bool>,
    pub service: Option<String>,
    pub operation: Option<String>,
    /// The service called (`peer_service`), exactly.
    pub peer_service: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// Case-insensitive text to find in the description.
    pub text: Option<String>,
    pub incident_id: Option<Uuid>,
}

/// A position in the newest-first order: the last row of the previous page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cursor {
    pub detected_at: DateTime<Utc>,
    pub id: Uuid,
}

/// One page of a list, and where the next starts (its cursor type is the list's order).
#[derive(Clone, Debug, PartialEq)]
pub struct Page<T, C = Cursor> {
    pub items: Vec<T>,
    pub next_cursor: Option<C>,
}

/// Largest page the store returns.
pub const MAX_PAGE: u32 = 500;

/// A configuration change, as kept in `config_history`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Queryable, Selectable)]
#[diesel(table_name = config_history)]
pub struct ConfigChange {
    pub config_key: String,
    pub old_value: Option<serde_json::Value>,
    pub new_value: Option<serde_json::Value>,
    pub changed_by: String,
    pub changed_at: DateTime<Utc>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunTrigger {
    Manual,
    Scheduled,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Pending,
    Running,
    Succeeded,
    Failed,
}

/// The words an enum is stored as: `as_str` gives one, `parse` reads it back.
macro_rules! stored_as_words {
    ($enum:ident { $($variant:ident = $word:literal),* }) => {
        impl $enum {
            pub fn as_str(self) -> &'static str {
                match self { $($enum::$variant => $word),* }
            }
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($word => Some($enum::$variant),)* _ => None }
            }
        }
        impl TryFrom<String> for $enum {
            type Error = String;
            fn try_from(word: String) -> Result<Self, String> {
                Self::parse(&word).ok_or_else(|| format!("unknown {} {word}", stringify!($enum)))
            }
        }
    };
}

stored_as_words!(RunTrigger { Manual = "manual", Scheduled = "scheduled" });
stored_as_words!(RunStatus { Pending = "pending", Running = "running", Succeeded = "succeeded", Failed = "failed" });

/// One detection run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Queryable, Selectable)]
#[diesel(table_name = detection_runs)]
pub struct RunRecord {
    pub id: Uuid,
    #[diesel(deserialize_as = String)]
    pub trigger: RunTrigger,
    pub window_start: Option<DateTime<Utc>>,
    pub window_end: Option<DateTime<Utc>>,
    #[diesel(deserialize_as = String)]
    pub status: RunStatus,
    pub spans: i64,
    pub anomalies: i64,
    pub error: Option<String>,
    pub worker: Option<String>,
    pub requested_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// The window stream (cursor key) a scheduled window run belongs to.
    pub stream: Option<String>,
    /// Where the run's counts came from: `traces` (every trace read), `traceql-metrics` (Tempo counted,
    /// sampled traces read) or `traces (TraceQL metrics unavailable: …)`.
    pub count_source: Option<String>,
    /// What reading Tempo cost, for a run that read it.
    pub tempo_queries: Option<i64>,
    pub tempo_lookups: Option<i64>,
    pub tempo_bytes: Option<i64>,
    pub tempo_seconds: Option<f64>,
}

/// What a run's reading of Tempo cost: queries (search, TraceQL metrics), lookups (trace by id), bytes
/// of the answers, seconds waiting on Tempo (summed over concurrent requests).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ReadCost {
    pub queries: i64,
    pub lookups: i64,
    pub bytes: i64,
    pub seconds: f64,
}

/// What the dashboard's supervisor shows: open anomalies by severity, and anomalies per hour by type.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AnomalySummary {
    /// (severity, count) of the unresolved anomalies.
    pub open_by_severity: Vec<(String, i64)>,
    /// (hour, anomaly type, count) of the anomalies detected since the asked time, in hour order.
    pub hourly: Vec<(DateTime<Utc>, String, i64)>,
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq)]
pub struct RunOutcome {
    pub status: RunStatus,
    pub spans: i64,
    pub anomalies: i64,
    pub error: Option<String>,
    pub count_source: Option<String>,
    pub cost: Option<ReadCost>,
}

impl RunOutcome {
    pub fn succeeded(spans: i64, anomalies: i64) -> Self {
        RunOutcome {
            status: RunStatus::Succeeded,
            spans,
            anomalies,
            error: None,
            count_source: None,
            cost: None,
        }
    }

    pub fn failed(reason: impl Into<String>) -> Self {
        RunOutcome {
            status: RunStatus::Failed,
            spans: 0,
            anomalies: 0,
            error: Some(reason.into()),
            count_source: None,
            cost: None,
        }
    }

    pub fn with_count_source(mut self, source: impl Into<String>) -> Self {
        self.count_source = Some(source.into());
        self
    }

    pub fn with_cost(mut self, cost: ReadCost) -> Self {
        self.cost = Some(cost);
        self
    }
}

/// An alert waiting in the outbox, claimed by one sender until `claimed_until`.
#[derive(Clone, Debug, PartialEq, Queryable, Selectable)]
#[diesel(table_name = alert_outbox)]
pub struct OutboxItem {
    pub id: i64,
    /// What it is about: an anomaly row, or an incident.
    pub anomaly_id: Option<Uuid>,
    pub incident_id: Option<Uuid>,
    pub event: String,
    pub attempts: i32,
    pub created_at: DateTime<Utc>,
}

/// Event time (nanoseconds) as a UTC timestamp.
pub fn to_datetime(t: UnixNanos) -> DateTime<Utc> {
    Utc.timestamp_nanos(i64::try_from(t.0).unwrap_or(i64::MAX))
}

impl NewAnomaly {
    /// The stored form of a detection. `notify` says whether it should be alerted.
    pub fn from_anomaly(a: &Anomaly, notify: bool) -> Self {
        let fingerprint = a.fingerprint();
        let trace = a.trace_id.map(|t| t.to_string()).unwrap_or_default();
        let span = a.span_id.map(|s| s.to_string());
        NewAnomaly {
            detection_key: format!(
                "{fingerprint}/{}/{trace}/{}",
                a.window.start.0,
                span.as_deref().unwrap_or("")
            ),
            fingerprint,
            trace_id: trace,
            span_id: span,
            anomaly_type: a.anomaly_type(),
            anomaly_subtype: a.subtype.as_str().to_owned(),
            severity: a.severity,
            description: a.description.clone(),
            detected_at: to_datetime(a.detected_at),
            service_name: a.service.clone(),
            operation: a.operation.clone(),
            client: a.client.clone(),
            peer_service: a.peer_service.clone(),
            observed_value: finite(a.observed),
            expected_value: finite(a.expected),
            score: finite(a.score),
            window_start: to_datetime(a.window.start),
            window_end: to_datetime(a.window.end),
            details: AnomalyDetails {
                spread: finite(a.spread),
                threshold: finite(a.threshold),
                unit: a.unit.to_owned(),
                example_trace_ids: a.examples.iter().map(|t| t.to_string()).collect(),
                traceql: Some(detect_core::traceql(a)),
            },
            notify,
        }
    }
}

fn finite(x: f64) -> f64 {
    if x.is_nan() {
        0.0
    } else {
        x.clamp(f64::MIN, f64::MAX)
    }
}
