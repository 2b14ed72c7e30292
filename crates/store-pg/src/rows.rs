//! The rows as read from either backend, and their conversion into the model's records.

use crate::error::{Result, StoreError};
use crate::model::{AnomalyRecord, ConfigChange, OutboxItem, RunRecord, RunStatus, RunTrigger};
use crate::repository::StoredConfigEntry;
use crate::schema::{alert_outbox, anomaly_detection_config, config_history};
use crate::schema::{detection_runs, trace_anomalies};
use chrono::{DateTime, Utc};
use detect_core::{AnomalyType, Severity};
use diesel::prelude::*;
use serde_json::Value;
use uuid::Uuid;

#[derive(Queryable, Selectable)]
#[diesel(table_name = trace_anomalies)]
pub(crate) struct AnomalyRow {
    id: Uuid,
    trace_id: String,
    span_id: Option<String>,
    anomaly_type: String,
    anomaly_subtype: Option<String>,
    severity: String,
    description: Option<String>,
    detected_at: Option<DateTime<Utc>>,
    resolved: Option<bool>,
    resolution_notes: Option<String>,
    service_name: Option<String>,
    operation: Option<String>,
    client: Option<String>,
    observed_value: Option<f64>,
    expected_value: Option<f64>,
    score: Option<f64>,
    fingerprint: Option<String>,
    window_start: Option<DateTime<Utc>>,
    window_end: Option<DateTime<Utc>>,
    occurrences: i64,
    last_seen_at: Option<DateTime<Utc>>,
    resolved_at: Option<DateTime<Utc>>,
    resolved_by: Option<String>,
    details: Option<Value>,
    peer_service: Option<String>,
}

/// A stored word the code does not know: the schema allows only the known ones, so this is a bug or
/// a schema out of date.
fn unknown(what: &str, value: &str) -> StoreError {
    StoreError::Database(format!("unknown {what} {value}"))
}

impl TryFrom<AnomalyRow> for AnomalyRecord {
    type Error = StoreError;
    fn try_from(r: AnomalyRow) -> Result<Self> {
        Ok(AnomalyRecord {
            id: r.id,
            trace_id: r.trace_id,
            span_id: r.span_id,
            anomaly_type: AnomalyType::parse(&r.anomaly_type)
                .ok_or_else(|| unknown("anomaly type", &r.anomaly_type))?,
            anomaly_subtype: r.anomaly_subtype,
            severity: Severity::parse(&r.severity)
                .ok_or_else(|| unknown("severity", &r.severity))?,
            description: r.description,
            detected_at: r.detected_at,
            resolved: r.resolved.unwrap_or(false),
            resolution_notes: r.resolution_notes,
            service_name: r.service_name,
            operation: r.operation,
            client: r.client,
            observed_value: r.observed_value,
            expected_value: r.expected_value,
            score: r.score,
            fingerprint: r.fingerprint,
            window_start: r.window_start,
            window_end: r.window_end,
            occurrences: r.occurrences,
            last_seen_at: r.last_seen_at,
            resolved_at: r.resolved_at,
            resolved_by: r.resolved_by,
            details: r.details,
            peer_service: r.peer_service,
        })
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = detection_runs)]
pub(crate) struct RunRow {
    id: Uuid,
    trigger: String,
    window_start: Option<DateTime<Utc>>,
    window_end: Option<DateTime<Utc>>,
    status: String,
    spans: i64,
    anomalies: i64,
    error: Option<String>,
    worker: Option<String>,
    requested_at: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
    stream: Option<String>,
    count_source: Option<String>,
}

impl TryFrom<RunRow> for RunRecord {
    type Error = StoreError;
    fn try_from(r: RunRow) -> Result<Self> {
        Ok(RunRecord {
            id: r.id,
            trigger: RunTrigger::parse(&r.trigger)
                .ok_or_else(|| unknown("run trigger", &r.trigger))?,
            window_start: r.window_start,
            window_end: r.window_end,
            status: RunStatus::parse(&r.status).ok_or_else(|| unknown("run status", &r.status))?,
            spans: r.spans,
            anomalies: r.anomalies,
            error: r.error,
            worker: r.worker,
            requested_at: r.requested_at,
            started_at: r.started_at,
            finished_at: r.finished_at,
            stream: r.stream,
            count_source: r.count_source,
        })
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = alert_outbox)]
pub(crate) struct OutboxRow {
    id: i64,
    anomaly_id: Uuid,
    event: String,
    attempts: i32,
    created_at: DateTime<Utc>,
}

impl From<OutboxRow> for OutboxItem {
    fn from(r: OutboxRow) -> Self {
        OutboxItem {
            id: r.id,
            anomaly_id: r.anomaly_id,
            event: r.event,
            attempts: r.attempts,
            created_at: r.created_at,
        }
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = anomaly_detection_config)]
pub(crate) struct ConfigRow {
    config_key: String,
    config_value: Option<Value>,
    description: Option<String>,
}

impl From<ConfigRow> for StoredConfigEntry {
    fn from(r: ConfigRow) -> Self {
        StoredConfigEntry {
            key: r.config_key,
            value: r.config_value,
            description: r.description,
        }
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = config_history)]
pub(crate) struct HistoryRow {
    config_key: String,
    old_value: Option<Value>,
    new_value: Option<Value>,
    changed_by: String,
    changed_at: DateTime<Utc>,
}

impl From<HistoryRow> for ConfigChange {
    fn from(r: HistoryRow) -> Self {
        ConfigChange {
            config_key: r.config_key,
            old_value: r.old_value,
            new_value: r.new_value,
            changed_by: r.changed_by,
            changed_at: r.changed_at,
        }
    }
}

/// The record of a row found, or [`StoreError::NotFound`] naming `what`.
pub(crate) fn found<R, T>(row: Option<R>, what: impl FnOnce() -> String) -> Result<T>
where
    T: TryFrom<R, Error = StoreError>,
{
    row.ok_or_else(|| StoreError::not_found(what()))?.try_into()
}
