// The SQL of a batch insert (the steps are `fold.rs`'s), written once and compiled in each
// backend's module (see `core.rs`), where `Conn` and `Db` are that backend's and:
// - `ROWS` is the statement's one bound parameter, a JSON array, as a table of its elements `r.value`;
// - `UUID` and `TIME` are the types JSON text is cast to for those columns;
// - `OPEN` is an unresolved row, as the index of open rows' predicate says it;
// - `GREATEST` is the function that takes the larger of two values;
// - `FOR_UPDATE` locks the rows a SELECT reads until the transaction ends, if the write transaction
//   does not hold them already;
// - `with_examples(details, from)` is the SQL of JSON `details` with `from`'s `example_trace_ids`.
// Set-based: a constant number of statements whatever the batch's size.

use crate::error::{Result, StoreError};
use crate::fold::{Bookkeeping, Folded, OpenRow, Placed};
use crate::model::NewAnomaly;
use crate::sql_types::{AnyJson, AnyUuid, Json, time_text};
use detect_core::Severity;
use diesel::QueryableByName;
use diesel::sql_types::{Nullable, Text};
use diesel_async::RunQueryDsl;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

#[derive(QueryableByName)]
struct Key {
    #[diesel(sql_type = Text)]
    detection_key: String,
}

#[derive(QueryableByName)]
struct Open {
    #[diesel(sql_type = Text)]
    fingerprint: String,
    #[diesel(sql_type = Text)]
    severity: String,
    #[diesel(sql_type = Nullable<AnyJson>)]
    details: Option<Value>,
}

#[derive(QueryableByName)]
struct Upserted {
    #[diesel(sql_type = AnyUuid)]
    id: Uuid,
    #[diesel(sql_type = Text)]
    fingerprint: String,
}

/// A JSON text field of the row, cast to `ty`.
fn field(name: &str, ty: &str) -> String {
    format!("CAST(r.value->>'{name}' AS {ty})")
}

/// Claims the batch's detection keys (pointing at no row yet); returns those that were new.
pub(super) async fn new_keys(conn: &mut Conn, batch: &[NewAnomaly]) -> Result<HashSet<String>> {
    let keys: Vec<Value> = batch.iter().map(|a| json!({ "key": a.detection_key })).collect();
    let sql = format!(
        "INSERT INTO anomaly_detections (detection_key)
         SELECT DISTINCT r.value->>'key' FROM {ROWS} WHERE TRUE
         ON CONFLICT DO NOTHING RETURNING detection_key"
    );
    let claimed: Vec<Key> = diesel::sql_query(sql)
        .bind::<AnyJson, _>(Json(Value::Array(keys)))
        .load(conn)
        .await?;
    Ok(claimed.into_iter().map(|c| c.detection_key).collect())
}

/// Writes the folded rows in one upsert (each a new row, or a merge into its fingerprint's open
/// row); where each went, in `folded`'s order. A new row gets the id proposed for it, a merge
/// keeps the row's: that tells them apart, exactly, even when another writer raced to the row.
pub(super) async fn write_rows(
    conn: &mut Conn,
    folded: &[Folded<'_>],
) -> Result<Vec<Placed>> {
    // The open rows before this write, locked until it commits: their severities tell an escalation,
    // their examples are merged with the batch's. A row another writer opens meanwhile (PostgreSQL)
    // is merged into as if new: at worst its examples are replaced, or an escalation notice missed.
    let fingerprints: Vec<Value> = (folded.iter())
        .map(|f| json!({ "fingerprint": f.first.fingerprint }))
        .collect();
    let open: Vec<Open> = diesel::sql_query(format!(
        "SELECT fingerprint, severity, details FROM trace_anomalies
         WHERE {OPEN} AND fingerprint IN (SELECT r.value->>'fingerprint' FROM {ROWS})
         ORDER BY fingerprint {FOR_UPDATE}"
    ))
    .bind::<AnyJson, _>(Json(Value::Array(fingerprints)))
    .load(conn)
    .await?;
    let open: HashMap<String, OpenRow> = (open.into_iter())
        .map(|o| {
            let severity = Severity::parse(&o.severity);
            let row = OpenRow { severity, details: o.details };
            (o.fingerprint, row)
        })
        .collect();
    let proposed: Vec<Uuid> = folded.iter().map(|_| Uuid::new_v4()).collect();
    let rows = (folded.iter().zip(&proposed))
        .map(|(f, id)| row(f, *id, open.get(&f.first.fingerprint)))
        .collect::<Result<Vec<Value>>>()?;
    let upserted: Vec<Upserted> = diesel::sql_query(upsert_sql())
        .bind::<AnyJson, _>(Json(Value::Array(rows)))
        .load(conn)
        .await?;
    let id_of: HashMap<String, Uuid> = upserted.into_iter().map(|u| (u.fingerprint, u.id)).collect();
    folded
        .iter()
        .zip(proposed)
        .map(|(f, proposed)| {
            let fingerprint = &f.first.fingerprint;
            let id = *id_of.get(fingerprint).ok_or_else(|| {
                StoreError::Database(format!("no row for fingerprint {fingerprint}"))
            })?;
            Ok(Placed {
                id,
                inserted: id == proposed,
                prior: open.get(fingerprint).and_then(|o| o.severity),
            })
        })
        .collect()
}

/// The row folded detections propose (the first detection names the row; the most severe explains
/// it), with the example traces merged into `open`'s, the fingerprint's open row if any.
fn row(f: &Folded<'_>, id: Uuid, open: Option<&OpenRow>) -> Result<Value> {
    let (first, peak) = (f.first, f.peak);
    Ok(json!({
        "id": id,
        "fingerprint": first.fingerprint,
        "trace_id": first.trace_id,
        "span_id": first.span_id,
        "anomaly_type": first.anomaly_type.as_str(),
        "anomaly_subtype": first.anomaly_subtype,
        "severity": peak.severity.as_str(),
        "description": peak.description,
        "detected_at": time_text(first.detected_at),
        "service_name": first.service_name,
        "operation": first.operation,
        "client": first.client,
        "peer_service": f.peer_service,
        "observed_value": peak.observed_value,
        "expected_value": peak.expected_value,
        "score": peak.score,
        "window_start": time_text(first.window_start),
        "window_end": time_text(f.window_end),
        "details": f.details(open)?,
        "occurrences": f.count,
        "last_seen_at": time_text(f.last_seen),
    }))
}

/// One statement for every folded row: a new row, or a merge into the open one (partial unique index:
/// concurrent writers of one fingerprint meet in ON CONFLICT and one row results).
fn upsert_sql() -> String {
    // Each column with the type its JSON text is cast to (`-`: it is text).
    const COLUMNS: &str = "fingerprint - trace_id - span_id - anomaly_type - anomaly_subtype - \
        severity - description - service_name - operation - client - peer_service - \
        observed_value DOUBLE_PRECISION expected_value DOUBLE_PRECISION score DOUBLE_PRECISION \
        occurrences BIGINT id UUID detected_at TIME window_start TIME window_end TIME \
        last_seen_at TIME";
    let words: Vec<&str> = COLUMNS.split_whitespace().collect();
    let (mut columns, mut values) = (Vec::new(), Vec::new());
    for pair in words.chunks(2) {
        columns.push(pair[0]);
        values.push(match pair[1] {
            "-" => format!("r.value->>'{}'", pair[0]),
            "UUID" => field(pair[0], UUID),
            "TIME" => field(pair[0], TIME),
            ty => field(pair[0], &ty.replace('_', " ")),
        });
    }
    let rank = |row: &str| {
        let cases: String = Severity::ALL
            .iter()
            .enumerate()
            .map(|(n, s)| format!(" WHEN '{}' THEN {n}", s.as_str()))
            .collect();
        format!("(CASE {row}.severity{cases} END)")
    };
    let escalates = format!("{} > {}", rank("excluded"), rank("trace_anomalies"));
    let on_escalation = "severity description observed_value expected_value score"
        .split(' ')
        .map(|c| format!("{c} = CASE WHEN {escalates} THEN excluded.{c} ELSE trace_anomalies.{c} END"))
        .collect::<Vec<_>>()
        .join(", ");
    // The most severe detection's details, with the examples merged in `row`.
    let details = with_examples(
        &format!("CASE WHEN {escalates} THEN excluded.details ELSE trace_anomalies.details END"),
        "excluded.details",
    );
    let later = |c: &str| format!("{c} = {GREATEST}(COALESCE(trace_anomalies.{c}, excluded.{c}), excluded.{c})");
    format!(
        "INSERT INTO trace_anomalies ({columns}, details, resolved)
         SELECT {values}, r.value->'details', FALSE FROM {ROWS} WHERE TRUE
         ON CONFLICT (fingerprint) WHERE {OPEN} AND fingerprint IS NOT NULL DO UPDATE SET
             occurrences = trace_anomalies.occurrences + excluded.occurrences,
             {last_seen}, {window_end},
             peer_service = COALESCE(trace_anomalies.peer_service, excluded.peer_service),
             {on_escalation}, details = {details}
         RETURNING id, fingerprint",
        columns = columns.join(", "),
        values = values.join(", "),
        last_seen = later("last_seen_at"),
        window_end = later("window_end"),
    )
}

/// Points the claimed keys at their rows and writes the outbox entries, in the rows' order.
pub(super) async fn write_bookkeeping(conn: &mut Conn, done: &Bookkeeping<'_>) -> Result<()> {
    let keys: Vec<Value> = done
        .keys
        .iter()
        .map(|(key, id)| json!({ "key": key, "id": id }))
        .collect();
    diesel::sql_query(format!(
        "UPDATE anomaly_detections SET anomaly_id = {id} FROM {ROWS}
         WHERE anomaly_detections.detection_key = r.value->>'key'",
        id = field("id", UUID),
    ))
    .bind::<AnyJson, _>(Json(Value::Array(keys)))
    .execute(conn)
    .await?;
    if !done.alerts.is_empty() {
        let alerts: Vec<Value> = done
            .alerts
            .iter()
            .map(|(id, event)| json!({ "id": id, "event": event }))
            .collect();
        diesel::sql_query(format!(
            "INSERT INTO alert_outbox (anomaly_id, event)
             SELECT {id}, r.value->>'event' FROM {ROWS}",
            id = field("id", UUID),
        ))
        .bind::<AnyJson, _>(Json(Value::Array(alerts)))
        .execute(conn)
        .await?;
    }
    Ok(())
}
