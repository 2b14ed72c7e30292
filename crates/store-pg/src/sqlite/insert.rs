//! The SQL of a batch insert (the steps are `incident.rs`'s) in the SQLite file, with the same outcome
//! as PostgreSQL's set-based one: per incident, a merge into its open row (the open rows are found in
//! one lookup for the batch) or a new row.
//!
//! The transaction holds SQLite's write lock from its start (`BEGIN IMMEDIATE`), so reading the open
//! rows and then writing them cannot interleave with another writer: no upsert is needed.

use super::Conn;
use crate::error::Result;
use crate::incident::{Bookkeeping, Incident, Placed};
use crate::model::NewAnomaly;
use crate::schema::{alert_outbox, anomaly_detections, trace_anomalies};
use crate::sql_types::{At, Id, Json, Now};
use chrono::{DateTime, Utc};
use detect_core::Severity;
use diesel::prelude::*;
use diesel::sql_types::Bool;
use diesel_async::RunQueryDsl;
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// Values looked up per statement: well under SQLite's limit of bound values.
const CHUNK: usize = 200;

/// What merging needs of an open row.
#[derive(Queryable, Selectable)]
#[diesel(table_name = trace_anomalies, check_for_backend(diesel::sqlite::Sqlite))]
struct OpenRow {
    id: Uuid,
    fingerprint: Option<String>,
    severity: String,
    peer_service: Option<String>,
    occurrences: i64,
    last_seen_at: Option<DateTime<Utc>>,
    window_end: Option<DateTime<Utc>>,
}

#[derive(Insertable)]
#[diesel(table_name = trace_anomalies, treat_none_as_default_value = false)]
struct NewRow<'a> {
    id: Id,
    fingerprint: &'a str,
    trace_id: &'a str,
    span_id: Option<&'a str>,
    anomaly_type: &'a str,
    anomaly_subtype: &'a str,
    severity: &'a str,
    description: &'a str,
    detected_at: At,
    service_name: &'a str,
    operation: Option<&'a str>,
    client: Option<&'a str>,
    peer_service: Option<&'a str>,
    observed_value: f64,
    expected_value: f64,
    score: f64,
    window_start: At,
    window_end: At,
    details: Json,
    occurrences: i64,
    last_seen_at: At,
    resolved: bool,
}

/// Another detection of an open incident: counts and times move on; a peer service is filled in if
/// the row named none (`None` leaves the column as it is).
#[derive(AsChangeset)]
#[diesel(table_name = trace_anomalies)]
struct Merge<'a> {
    occurrences: i64,
    last_seen_at: At,
    window_end: At,
    peer_service: Option<&'a str>,
}

/// A more severe detection of an open incident: it explains the row from now on.
#[derive(AsChangeset)]
#[diesel(table_name = trace_anomalies)]
struct Escalation<'a> {
    severity: &'a str,
    description: &'a str,
    observed_value: f64,
    expected_value: f64,
    score: f64,
    details: Json,
}

/// The batch's detection keys that were not stored before.
pub(super) async fn new_keys(conn: &mut Conn, batch: &[NewAnomaly]) -> Result<HashSet<String>> {
    let mut new: HashSet<String> = batch.iter().map(|a| a.detection_key.clone()).collect();
    let keys: Vec<String> = new.iter().cloned().collect();
    for chunk in keys.chunks(CHUNK) {
        let stored: Vec<String> = anomaly_detections::table
            .filter(anomaly_detections::detection_key.eq_any(chunk))
            .select(anomaly_detections::detection_key)
            .load(conn)
            .await?;
        for key in stored {
            new.remove(&key);
        }
    }
    Ok(new)
}

/// Merges each incident into its open row, or writes a new row; where each went, in their order.
pub(super) async fn write_incidents(
    conn: &mut Conn,
    incidents: &[Incident<'_>],
) -> Result<Vec<Placed>> {
    let mut open = open_rows(conn, incidents).await?;
    let mut new_rows = Vec::new();
    let mut placed = Vec::new();
    for incident in incidents {
        let details = Json(incident.details()?);
        placed.push(match open.remove(incident.first.fingerprint.as_str()) {
            Some(row) => {
                let prior = Severity::parse(&row.severity);
                let escalation = incident.escalates(prior).then_some(details);
                merge(conn, &row, incident, escalation).await?;
                Placed {
                    id: row.id,
                    inserted: false,
                    prior,
                }
            }
            None => {
                let id = Uuid::new_v4();
                new_rows.push(new_row(Id(id), incident, details));
                Placed {
                    id,
                    inserted: true,
                    prior: None,
                }
            }
        });
    }
    // One statement per row: diesel writes multi-row inserts for SQLite only through its synchronous
    // connection.
    for row in &new_rows {
        diesel::insert_into(trace_anomalies::table)
            .values(row)
            .execute(conn)
            .await?;
    }
    Ok(placed)
}

/// Writes the keys, pointing at their rows (written before: foreign keys are enforced), and the
/// outbox entries, in the incidents' order as PostgreSQL writes them.
pub(super) async fn write_bookkeeping(
    conn: &mut Conn,
    done: &Bookkeeping<'_>,
    now: Now,
) -> Result<()> {
    for &(key, id) in &done.keys {
        diesel::insert_into(anomaly_detections::table)
            .values((
                anomaly_detections::detection_key.eq(key),
                anomaly_detections::anomaly_id.eq(Id(id)),
                anomaly_detections::stored_at.eq(now),
            ))
            .execute(conn)
            .await?;
    }
    for &(id, event) in &done.alerts {
        diesel::insert_into(alert_outbox::table)
            .values((
                alert_outbox::anomaly_id.eq(Id(id)),
                alert_outbox::event.eq(event),
                alert_outbox::created_at.eq(now),
            ))
            .execute(conn)
            .await?;
    }
    Ok(())
}

/// The open rows of the batch's incidents, by fingerprint.
async fn open_rows(
    conn: &mut Conn,
    incidents: &[Incident<'_>],
) -> Result<HashMap<String, OpenRow>> {
    let fingerprints: Vec<&str> = incidents
        .iter()
        .map(|i| i.first.fingerprint.as_str())
        .collect();
    let mut open = HashMap::new();
    for chunk in fingerprints.chunks(CHUNK) {
        let rows: Vec<OpenRow> = trace_anomalies::table
            .filter(trace_anomalies::fingerprint.eq_any(chunk))
            // As in the open-incident index's predicate, so that SQLite uses it.
            .filter(diesel::dsl::sql::<Bool>("resolved IS NOT 1"))
            .select(OpenRow::as_select())
            .load(conn)
            .await?;
        open.extend(
            rows.into_iter()
                .filter_map(|r| Some((r.fingerprint.clone()?, r))),
        );
    }
    Ok(open)
}

async fn merge(
    conn: &mut Conn,
    row: &OpenRow,
    incident: &Incident<'_>,
    escalation: Option<Json>,
) -> Result<()> {
    let peak = incident.peak;
    let merge = Merge {
        occurrences: row.occurrences + incident.count,
        last_seen_at: At(row
            .last_seen_at
            .map_or(incident.last_seen, |t| t.max(incident.last_seen))),
        window_end: At(row
            .window_end
            .map_or(incident.window_end, |t| t.max(incident.window_end))),
        peer_service: match row.peer_service {
            Some(_) => None,
            None => incident.peer_service,
        },
    };
    let escalation = escalation.map(|details| Escalation {
        severity: peak.severity.as_str(),
        description: &peak.description,
        observed_value: peak.observed_value,
        expected_value: peak.expected_value,
        score: peak.score,
        details,
    });
    diesel::update(trace_anomalies::table.find(Id(row.id)))
        .set((merge, escalation))
        .execute(conn)
        .await?;
    Ok(())
}

fn new_row<'a>(id: Id, incident: &Incident<'a>, details: Json) -> NewRow<'a> {
    let (first, peak) = (incident.first, incident.peak);
    NewRow {
        id,
        fingerprint: &first.fingerprint,
        trace_id: &first.trace_id,
        span_id: first.span_id.as_deref(),
        anomaly_type: first.anomaly_type.as_str(),
        anomaly_subtype: &first.anomaly_subtype,
        severity: peak.severity.as_str(),
        description: &peak.description,
        detected_at: At(first.detected_at),
        service_name: &first.service_name,
        operation: first.operation.as_deref(),
        client: first.client.as_deref(),
        peer_service: incident.peer_service,
        observed_value: peak.observed_value,
        expected_value: peak.expected_value,
        score: peak.score,
        window_start: At(first.window_start),
        window_end: At(incident.window_end),
        details,
        occurrences: incident.count,
        last_seen_at: At(incident.last_seen),
        resolved: false,
    }
}
