//! The SQL of a batch insert (the steps are `incident.rs`'s) on PostgreSQL, in a constant number of
//! statements (set-based with `unnest`): every detection key is claimed at once, and one upsert writes
//! all incidents (the partial unique index makes concurrent writers of one fingerprint meet in ON
//! CONFLICT: one row results).

use crate::error::{Result, StoreError};
use crate::incident::{Bookkeeping, Incident, Placed};
use crate::model::NewAnomaly;
use crate::sql_types::Now;
use chrono::{DateTime, Utc};
use detect_core::Severity;
use diesel::QueryableByName;
use diesel::sql_types::{Array, Bool, Float8, Int8, Jsonb, Nullable, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// Severity order in SQL: the position in this array.
const SEVERITY_RANK: &str = "array_position(ARRAY['LOW','MEDIUM','HIGH','CRITICAL']::text[], ";

#[derive(QueryableByName)]
struct Claimed {
    #[diesel(sql_type = Text)]
    detection_key: String,
}

#[derive(QueryableByName)]
struct Upserted {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    id: Uuid,
    #[diesel(sql_type = Text)]
    fingerprint: String,
    #[diesel(sql_type = Bool)]
    inserted: bool,
    #[diesel(sql_type = Nullable<Text>)]
    prior_severity: Option<String>,
}

/// Claims the batch's detection keys (pointing at no row yet); returns those that were new.
pub async fn new_keys(
    conn: &mut AsyncPgConnection,
    batch: &[NewAnomaly],
) -> Result<HashSet<String>> {
    let keys: Vec<&str> = batch.iter().map(|a| a.detection_key.as_str()).collect();
    let claimed: Vec<Claimed> = diesel::sql_query(
        "INSERT INTO anomaly_detections (detection_key)
         SELECT DISTINCT unnest($1::text[])
         ON CONFLICT DO NOTHING
         RETURNING detection_key",
    )
    .bind::<Array<Text>, _>(&keys)
    .load(conn)
    .await?;
    Ok(claimed.into_iter().map(|c| c.detection_key).collect())
}

/// Writes the incidents' rows in one upsert; where each went, in the incidents' order.
pub async fn write_incidents(
    conn: &mut AsyncPgConnection,
    incidents: &[Incident<'_>],
) -> Result<Vec<Placed>> {
    let upserted = upsert(conn, incidents).await?;
    let mut by_fingerprint: HashMap<String, Upserted> = upserted
        .into_iter()
        .map(|u| (u.fingerprint.clone(), u))
        .collect();
    incidents
        .iter()
        .map(|incident| {
            let fingerprint = &incident.first.fingerprint;
            let row = by_fingerprint.remove(fingerprint).ok_or_else(|| {
                StoreError::Database(format!("no row for incident {fingerprint}"))
            })?;
            Ok(Placed {
                id: row.id,
                inserted: row.inserted,
                prior: row.prior_severity.as_deref().and_then(Severity::parse),
            })
        })
        .collect()
}

/// Points the claimed keys at their rows and writes the outbox entries, stamped `now`.
pub async fn write_bookkeeping(
    conn: &mut AsyncPgConnection,
    done: &Bookkeeping<'_>,
    now: Now,
) -> Result<()> {
    let (keys, rows): (Vec<&str>, Vec<Uuid>) = done.keys.iter().copied().unzip();
    diesel::sql_query(
        "UPDATE anomaly_detections d SET anomaly_id = m.id,
             stored_at = NOW() + make_interval(secs => $3)
         FROM unnest($1::text[], $2::uuid[]) AS m(detection_key, id)
         WHERE d.detection_key = m.detection_key",
    )
    .bind::<Array<Text>, _>(&keys)
    .bind::<Array<diesel::sql_types::Uuid>, _>(&rows)
    .bind::<Float8, _>(now.offset_secs())
    .execute(conn)
    .await?;
    if !done.alerts.is_empty() {
        let (rows, events): (Vec<Uuid>, Vec<&str>) = done.alerts.iter().copied().unzip();
        diesel::sql_query(
            "INSERT INTO alert_outbox (anomaly_id, event, created_at)
             SELECT m.*, NOW() + make_interval(secs => $3)
             FROM unnest($1::uuid[], $2::text[]) AS m",
        )
        .bind::<Array<diesel::sql_types::Uuid>, _>(&rows)
        .bind::<Array<Text>, _>(&events)
        .bind::<Float8, _>(now.offset_secs())
        .execute(conn)
        .await?;
    }
    Ok(())
}

async fn upsert(conn: &mut AsyncPgConnection, incidents: &[Incident<'_>]) -> Result<Vec<Upserted>> {
    let details: Vec<Value> = incidents
        .iter()
        .map(Incident::details)
        .collect::<Result<_>>()?;
    let escalates =
        format!("{SEVERITY_RANK}EXCLUDED.severity) > {SEVERITY_RANK}trace_anomalies.severity)");
    let on_escalation = |column: &str| {
        format!(
            "{column} = CASE WHEN {escalates} THEN EXCLUDED.{column} ELSE trace_anomalies.{column} END"
        )
    };
    // `prior` reads the open rows as the statement's snapshot saw them, to tell an escalation. Under
    // concurrent writers that snapshot may be a moment old: at worst one escalation notice is repeated
    // or missed, never a row. (A FOR UPDATE there would skip the rows this statement updates.)
    let sql = format!(
        "WITH input AS (
            SELECT * FROM unnest(
                $1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                $8::timestamptz[], $9::text[], $10::text[], $11::text[], $12::float8[], $13::float8[],
                $14::float8[], $15::timestamptz[], $16::timestamptz[], $17::jsonb[], $18::int8[],
                $19::timestamptz[], $20::text[]
            ) AS i(fingerprint, trace_id, span_id, anomaly_type, anomaly_subtype, severity, description,
                   detected_at, service_name, operation, client, observed_value, expected_value, score,
                   window_start, window_end, details, occurrences, last_seen_at, peer_service)
        ),
        prior AS (
            SELECT t.fingerprint, t.severity FROM trace_anomalies t
            JOIN input USING (fingerprint)
            WHERE t.resolved IS NOT TRUE
        ),
        upserted AS (
        INSERT INTO trace_anomalies (
            fingerprint, trace_id, span_id, anomaly_type, anomaly_subtype, severity, description,
            detected_at, service_name, operation, client, observed_value, expected_value, score,
            window_start, window_end, details, occurrences, last_seen_at, peer_service, resolved
        )
        SELECT fingerprint, trace_id, span_id, anomaly_type, anomaly_subtype, severity, description,
               detected_at, service_name, operation, client, observed_value, expected_value, score,
               window_start, window_end, details, occurrences, last_seen_at, peer_service, FALSE
        FROM input
        ON CONFLICT (fingerprint) WHERE resolved IS NOT TRUE AND fingerprint IS NOT NULL DO UPDATE SET
            occurrences = trace_anomalies.occurrences + EXCLUDED.occurrences,
            last_seen_at = GREATEST(trace_anomalies.last_seen_at, EXCLUDED.last_seen_at),
            window_end = GREATEST(trace_anomalies.window_end, EXCLUDED.window_end),
            peer_service = COALESCE(trace_anomalies.peer_service, EXCLUDED.peer_service),
            {severity}, {description}, {observed}, {expected}, {score}, {details}
        RETURNING id, fingerprint, (xmax = 0) AS inserted
        )
        SELECT u.id, u.fingerprint, u.inserted, p.severity AS prior_severity
        FROM upserted u LEFT JOIN prior p USING (fingerprint)",
        severity = on_escalation("severity"),
        description = on_escalation("description"),
        observed = on_escalation("observed_value"),
        expected = on_escalation("expected_value"),
        score = on_escalation("score"),
        details = on_escalation("details"),
    );
    let column =
        |f: &dyn Fn(&Incident<'_>) -> String| incidents.iter().map(f).collect::<Vec<String>>();
    let optional = |f: &dyn Fn(&Incident<'_>) -> Option<String>| {
        incidents.iter().map(f).collect::<Vec<Option<String>>>()
    };
    let number = |f: &dyn Fn(&Incident<'_>) -> f64| incidents.iter().map(f).collect::<Vec<f64>>();
    let time = |f: &dyn Fn(&Incident<'_>) -> DateTime<Utc>| {
        incidents.iter().map(f).collect::<Vec<DateTime<Utc>>>()
    };
    let rows: Vec<Upserted> = diesel::sql_query(sql)
        .bind::<Array<Text>, _>(column(&|i| i.first.fingerprint.clone()))
        .bind::<Array<Text>, _>(column(&|i| i.first.trace_id.clone()))
        .bind::<Array<Nullable<Text>>, _>(optional(&|i| i.first.span_id.clone()))
        .bind::<Array<Text>, _>(column(&|i| i.first.anomaly_type.as_str().to_owned()))
        .bind::<Array<Text>, _>(column(&|i| i.first.anomaly_subtype.clone()))
        .bind::<Array<Text>, _>(column(&|i| i.peak.severity.as_str().to_owned()))
        .bind::<Array<Text>, _>(column(&|i| i.peak.description.clone()))
        .bind::<Array<Timestamptz>, _>(time(&|i| i.first.detected_at))
        .bind::<Array<Text>, _>(column(&|i| i.first.service_name.clone()))
        .bind::<Array<Nullable<Text>>, _>(optional(&|i| i.first.operation.clone()))
        .bind::<Array<Nullable<Text>>, _>(optional(&|i| i.first.client.clone()))
        .bind::<Array<Float8>, _>(number(&|i| i.peak.observed_value))
        .bind::<Array<Float8>, _>(number(&|i| i.peak.expected_value))
        .bind::<Array<Float8>, _>(number(&|i| i.peak.score))
        .bind::<Array<Timestamptz>, _>(time(&|i| i.first.window_start))
        .bind::<Array<Timestamptz>, _>(time(&|i| i.window_end))
        .bind::<Array<Jsonb>, _>(details)
        .bind::<Array<Int8>, _>(incidents.iter().map(|i| i.count).collect::<Vec<i64>>())
        .bind::<Array<Timestamptz>, _>(time(&|i| i.last_seen))
        .bind::<Array<Nullable<Text>>, _>(optional(&|i| i.peer_service.map(str::to_owned)))
        .load(conn)
        .await?;
    Ok(rows)
}
