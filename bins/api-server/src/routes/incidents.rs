//! `GET /api/incidents` (filters, keyset pagination), `GET /api/incidents/:id` (the incident, with its
//! anomalies), `PUT /api/incidents/:id/resolve` (resolves its anomalies too).

use super::anomalies::{ResolveBody, json_bytes, resolution_notes};
use super::params;
use crate::AppState;
use crate::auth::{Caller, Permission};
use crate::error::{ApiError, ErrorBody};
use actix_web::{HttpResponse, web};
use std::collections::HashMap;
use store_pg::{
    AnomalyFilter, AnomalyJson, IncidentCursor, IncidentFilter, IncidentRecord, IncidentStatus,
    Repository,
};

const DEFAULT_LIMIT: u32 = 50;
/// An incident's anomalies shown with it; the rest are a filter away (`/api/anomalies?incident_id=`).
const ANOMALIES_SHOWN: u32 = 200;

/// One page of incidents, newest start first.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct IncidentPage {
    #[schema(value_type = Vec<store_pg::IncidentRecord>)]
    pub items: Vec<IncidentRecord>,
    /// Pass as `cursor` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// An incident with its anomalies (newest first, at most 200).
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct IncidentDetail {
    #[serde(flatten)]
    #[schema(inline)]
    pub incident: IncidentRecord,
    pub anomalies: Vec<AnomalyJson>,
    /// More anomalies than shown: list them with `GET /api/anomalies?incident_id=…`.
    pub more_anomalies: bool,
}

fn parse_query(
    params: &HashMap<String, String>,
) -> Result<(IncidentFilter, u32, Option<IncidentCursor>), ApiError> {
    let mut filter = IncidentFilter::default();
    let mut limit = DEFAULT_LIMIT;
    let mut cursor = None;
    // An empty value is no filter, as browsers send an empty form field.
    for (name, value) in params.iter().filter(|(_, v)| !v.is_empty()) {
        match name.as_str() {
            "status" => {
                filter.status = Some(
                    IncidentStatus::parse(value)
                        .ok_or_else(|| params::bad(name, "open, resolved or merged"))?,
                )
            }
            "severity" => filter.severity = Some(params::severity(name, value)?),
            "min_severity" => filter.min_severity = Some(params::severity(name, value)?),
            "service" => filter.service = Some(value.clone()),
            "since" => filter.since = Some(params::time(name, value)?),
            "until" => filter.until = Some(params::time(name, value)?),
            "limit" => limit = params::limit(name, value)?,
            "cursor" => cursor = Some(params::cursor(name, value, super::cursor::decode_incident)?),
            _ => return Err(params::unknown(name)),
        }
    }
    Ok((filter, limit, cursor))
}

#[utoipa::path(get, path = "/api/incidents", tag = "incidents",
    params(
        ("status" = Option<String>, Query, description = "open, resolved or merged"),
        ("severity" = Option<String>, Query, description = "LOW, MEDIUM, HIGH or CRITICAL"),
        ("min_severity" = Option<String>, Query, description = "this severity and above"),
        ("service" = Option<String>, Query, description = "incidents with a finding about this service"),
        ("since" = Option<String>, Query, description = "started at or after (RFC 3339)"),
        ("until" = Option<String>, Query, description = "started before (RFC 3339)"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 500, description = "1 to 500, default 50"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
    ),
    responses((status = 200, body = IncidentPage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<HashMap<String, String>>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::Read)?;
    let (filter, limit, cursor) = parse_query(&query)?;
    let started = std::time::Instant::now();
    let page = state.store.list_incidents(&filter, limit, cursor).await;
    state.metrics.db_query("list_incidents", started.elapsed());
    let page = page?;
    let body = serde_json::to_vec(&IncidentPage {
        items: page.items,
        next_cursor: page
            .next_cursor
            .as_ref()
            .map(super::cursor::encode_incident),
    })
    .map_err(|e| ApiError::internal(format!("the page could not be serialised: {e}")))?;
    Ok(json_bytes(web::Bytes::from(body)))
}

#[utoipa::path(get, path = "/api/incidents/{id}", tag = "incidents",
    params(("id" = uuid::Uuid, Path, description = "the incident's UUID")),
    responses((status = 200, body = IncidentDetail), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::Read)?;
    let id = params::path_id("incident", &id)?;
    let incident = state.store.get_incident(id).await?;
    let filter = AnomalyFilter {
        incident_id: Some(id),
        ..AnomalyFilter::default()
    };
    let anomalies = state
        .store
        .list_anomalies(&filter, ANOMALIES_SHOWN, None)
        .await?;
    Ok(HttpResponse::Ok().json(IncidentDetail {
        incident,
        anomalies: anomalies.items,
        more_anomalies: anomalies.next_cursor.is_some(),
    }))
}

#[utoipa::path(put, path = "/api/incidents/{id}/resolve", tag = "incidents",
    params(("id" = uuid::Uuid, Path, description = "the incident's UUID")),
    request_body(content = Option<ResolveBody>, description = "optional notes"),
    responses((status = 200, body = store_pg::IncidentRecord, description = "resolved, with its open anomalies"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "not open; the first resolution is kept"),
        (status = 413, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn resolve(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::Operate)?;
    let id = params::path_id("incident", &id)?;
    let notes = resolution_notes(payload).await?;
    let incident = state
        .store
        .resolve_incident(id, notes.as_deref(), &caller.name)
        .await?;
    state.events.wake();
    Ok(HttpResponse::Ok().json(incident))
}
