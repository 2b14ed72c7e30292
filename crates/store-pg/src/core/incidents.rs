// Incidents' statements, written once and compiled in each backend's module (see `core.rs`), where
// `Conn` and `Db` are that backend's. The repository's incident methods call these in its `run` and
// `write`.

use crate::error::{Result, StoreError};
use crate::incidents::{
    IncidentCursor, IncidentFilter, IncidentRecord, IncidentStatus, NewIncident,
};
use crate::rows::found;
use crate::schema::alert_outbox::dsl as o;
use crate::schema::incidents::dsl as i;
use crate::schema::trace_anomalies::dsl as t;
use crate::shared::severities_at_least;
use crate::sql_types::{At, Id, Json};
use diesel::dsl::{AsSelect, SqlTypeOf};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use uuid::Uuid;

type IncidentQuery = crate::schema::incidents::BoxedQuery<
    'static,
    Db,
    SqlTypeOf<AsSelect<IncidentRecord, Db>>,
>;

/// The incident list's query: filters, the cursor, newest start first, at most `limit` rows.
pub(super) fn list_query(
    filter: &IncidentFilter,
    cursor: Option<IncidentCursor>,
    limit: i64,
) -> IncidentQuery {
    let mut query = i::incidents.select(IncidentRecord::as_select()).into_boxed();
    if let Some(v) = filter.status {
        query = query.filter(i::status.eq(v.as_str()));
    }
    if let Some(v) = filter.severity {
        query = query.filter(i::severity.eq(v.as_str()));
    }
    if let Some(v) = filter.min_severity {
        query = query.filter(i::severity.eq_any(severities_at_least(v)));
    }
    if let Some(v) = &filter.service {
        let about = t::service_name.eq(v.clone()).or(t::peer_service.eq(v.clone()));
        let with_service = t::trace_anomalies
            .filter(about)
            .filter(t::incident_id.is_not_null())
            .select(t::incident_id);
        query = query.filter(i::id.nullable().eq_any(with_service));
    }
    if let Some(v) = filter.since {
        query = query.filter(i::started_at.ge(At(v)));
    }
    if let Some(v) = filter.until {
        query = query.filter(i::started_at.lt(At(v)));
    }
    if let Some(c) = cursor {
        let at = At(c.started_at);
        let same_time_older = i::started_at.eq(at).and(i::id.lt(Id(c.id)));
        query = query.filter(i::started_at.lt(at).or(same_time_older));
    }
    query
        .order((i::started_at.desc(), i::id.desc()))
        .limit(limit)
}

pub(super) async fn incident(conn: &mut Conn, id: Uuid) -> Result<IncidentRecord> {
    let row = i::incidents
        .find(Id(id))
        .select(IncidentRecord::as_select())
        .first(conn)
        .await
        .optional()?;
    found(row, || format!("incident {id}"))
}

fn json<T: serde::Serialize>(value: &T) -> Result<Json> {
    serde_json::to_value(value)
        .map(Json)
        .map_err(|e| StoreError::Invalid(e.to_string()))
}

/// The alerts an incident's write calls for, judged against what the store held before (so that
/// writing the same state again sends nothing): its opening once it pages; then a rise in severity or
/// another first origin; its resolution once it ends (right after its opening, for one found late).
fn events_of(
    prior: Option<&IncidentRecord>,
    new: &NewIncident,
    alerted: bool,
) -> Vec<&'static str> {
    if prior.is_some_and(|p| p.status != IncidentStatus::Open) {
        return Vec::new();
    }
    let mut events = Vec::new();
    match prior.filter(|_| alerted) {
        None if new.notify => events.push("opened"),
        None => return events,
        Some(_) if new.ended_at.is_some() => {}
        Some(p) if new.severity > p.severity => events.push("escalated"),
        Some(p) if new.leading_origin() != p.leading_origin() => events.push("origin_changed"),
        Some(_) => {}
    }
    if new.ended_at.is_some() {
        events.push("resolved");
    }
    events
}

/// Writes one incident as it stands (insert, or update of its row), moves the anomalies of the
/// incidents merged into it, links its anomalies, and queues its alert. A row resolved by a person or
/// merged keeps that status; its counts still move on.
pub(super) async fn record(
    conn: &mut Conn,
    new: &NewIncident,
    now: crate::sql_types::Now,
) -> Result<IncidentRecord> {
    let id = Id(new.id);
    let prior = i::incidents
        .find(id)
        .select(IncidentRecord::as_select())
        .first(conn)
        .await
        .optional()?;
    let absorbed: Vec<Id> = new.absorbed.iter().copied().map(Id).collect();
    // An incident merged into this one that had paged: this one speaks for it now.
    let absorbed_alerted: i64 = if absorbed.is_empty() {
        0
    } else {
        i::incidents
            .filter(i::id.eq_any(absorbed.clone()))
            .filter(i::alerted.eq(true))
            .count()
            .get_result(conn)
            .await?
    };
    let alerted = prior.as_ref().is_some_and(|p| p.alerted) || absorbed_alerted > 0;
    let events = events_of(prior.as_ref(), new, alerted);
    let status = match (&prior, new.ended_at) {
        (Some(p), _) if p.status != IncidentStatus::Open => p.status,
        (_, Some(_)) => IncidentStatus::Resolved,
        (_, None) => IncidentStatus::Open,
    };
    let closing = status == IncidentStatus::Resolved && prior.as_ref().is_none_or(|p| p.status == IncidentStatus::Open);
    let values = (
        i::severity.eq(new.severity.as_str()),
        i::title.eq(new.title.clone()),
        i::client.eq(new.client.clone()),
        i::started_at.eq(At(new.started_at)),
        i::last_seen_at.eq(At(new.last_seen_at)),
        i::ended_at.eq(new.ended_at.map(At)),
        i::origins.eq(json(&new.origins)?),
        i::services.eq(json(&new.services)?),
        i::calls.eq(json(&new.calls)?),
        i::anomaly_count.eq(new.anomaly_count),
        i::detections.eq(new.detections),
        i::example_trace_ids.eq(json(&new.example_trace_ids)?),
        i::alerted.eq(alerted || events.contains(&"opened")),
        i::updated_at.eq(now),
    );
    if prior.is_some() {
        diesel::update(i::incidents.find(id))
            .set((values, i::status.eq(status.as_str())))
            .execute(conn)
            .await?;
    } else {
        diesel::insert_into(i::incidents)
            .values((
                i::id.eq(id),
                i::fingerprint.eq(new.fingerprint.clone()),
                i::status.eq(status.as_str()),
                values,
            ))
            .execute(conn)
            .await?;
    }
    if closing {
        let quiet = format!(
            "recovered: no new finding since {}",
            new.last_seen_at.format("%Y-%m-%d %H:%M:%S UTC")
        );
        diesel::update(i::incidents.find(id))
            .set((
                i::resolved_at.eq(now.nullable()),
                i::resolved_by.eq("tracewatch"),
                i::resolution_notes.eq(quiet),
            ))
            .execute(conn)
            .await?;
    }
    if !absorbed.is_empty() {
        diesel::update(
            i::incidents
                .filter(i::id.eq_any(absorbed.clone()))
                .filter(i::status.eq(IncidentStatus::Open.as_str())),
        )
        .set((
            i::status.eq(IncidentStatus::Merged.as_str()),
            i::merged_into.eq(Some(id)),
            i::updated_at.eq(now),
        ))
        .execute(conn)
        .await?;
        diesel::update(t::trace_anomalies.filter(t::incident_id.eq_any(absorbed)))
            .set(t::incident_id.eq(Some(id)))
            .execute(conn)
            .await?;
    }
    if !new.anomaly_ids.is_empty() {
        let rows: Vec<Id> = new.anomaly_ids.iter().copied().map(Id).collect();
        diesel::update(t::trace_anomalies.filter(t::id.eq_any(rows)))
            .set(t::incident_id.eq(Some(id)))
            .execute(conn)
            .await?;
    }
    for event in events {
        queue_alert(conn, new.id, event, now).await?;
    }
    incident(conn, new.id).await
}

pub(super) async fn queue_alert(
    conn: &mut Conn,
    id: Uuid,
    event: &'static str,
    now: crate::sql_types::Now,
) -> Result<()> {
    diesel::insert_into(o::alert_outbox)
        .values((
            o::incident_id.eq(Some(Id(id))),
            o::event.eq(event),
            o::created_at.eq(now),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// Resolves an open incident and its open anomalies; a `resolved` alert when its opening was alerted.
pub(super) async fn resolve(
    conn: &mut Conn,
    id: Uuid,
    notes: Option<String>,
    by: String,
    now: crate::sql_types::Now,
) -> Result<IncidentRecord> {
    let current = incident(conn, id).await?;
    if current.status != IncidentStatus::Open {
        let by = current
            .resolved_by
            .map(|b| format!(" by {b}"))
            .unwrap_or_default();
        return Err(StoreError::Conflict(format!(
            "incident {id} is already {}{by}",
            current.status.as_str()
        )));
    }
    let open = i::status.eq(IncidentStatus::Open.as_str());
    let changed = diesel::update(i::incidents.find(Id(id)).filter(open))
        .set((
            i::status.eq(IncidentStatus::Resolved.as_str()),
            i::resolved_at.eq(now.nullable()),
            i::resolved_by.eq(by.clone()),
            i::resolution_notes.eq(notes.clone()),
            i::updated_at.eq(now),
        ))
        .execute(conn)
        .await?;
    if changed == 0 {
        return Err(StoreError::Conflict(format!(
            "incident {id} was resolved meanwhile"
        )));
    }
    let open_rows = t::resolved.is_null().or(t::resolved.eq(false));
    diesel::update(
        t::trace_anomalies
            .filter(t::incident_id.eq(Id(id)))
            .filter(open_rows),
    )
    .set((
        t::resolved.eq(true),
        t::resolution_notes.eq(notes),
        t::resolved_by.eq(by),
        t::resolved_at.eq(now.nullable()),
    ))
    .execute(conn)
    .await?;
    if current.alerted {
        queue_alert(conn, id, "resolved", now).await?;
    }
    incident(conn, id).await
}
