//! `GET /api/anomalies` (filters, keyset pagination), `GET /api/anomalies/summary` (the supervisor's
//! counts), `GET /api/anomalies/:id`, `PUT /api/anomalies/:id/resolve`.

use super::params;
use crate::AppState;
use crate::auth::{Caller, Permission};
use crate::error::{ApiError, ErrorBody};
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use detect_core::{AnomalyType, Severity};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;
use store_pg::AnomalyJson;
use store_pg::{AnomalyFilter, Cursor, Repository};
use uuid::Uuid;

const DEFAULT_LIMIT: u32 = 50;

/// One page of the list, newest first.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct AnomalyPage {
    pub items: Vec<AnomalyJson>,
    /// Pass as `cursor` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// Parses the list's query parameters; an unknown parameter or a bad value is a 400 naming it.
fn parse_query(
    params: &HashMap<String, String>,
) -> Result<(AnomalyFilter, u32, Option<Cursor>), ApiError> {
    let mut filter = AnomalyFilter::default();
    let mut limit = DEFAULT_LIMIT;
    let mut cursor = None;
    // An empty value is no filter, as browsers send an empty form field.
    for (name, value) in params.iter().filter(|(_, v)| !v.is_empty()) {
        match name.as_str() {
            "anomaly_type" => {
                filter.anomaly_type = Some(
                    AnomalyType::parse(value)
                        .ok_or_else(|| params::bad(name, "PERFORMANCE, SECURITY or RESOURCE"))?,
                )
            }
            "anomaly_subtype" => filter.anomaly_subtype = Some(value.clone()),
            "severity" => filter.severity = Some(params::severity(name, value)?),
            "min_severity" => filter.min_severity = Some(params::severity(name, value)?),
            "resolved" => {
                filter.resolved = Some(
                    value
                        .parse()
                        .map_err(|_| params::bad(name, "true or false"))?,
                )
            }
            "service" => filter.service = Some(value.clone()),
            "operation" => filter.operation = Some(value.clone()),
            "peer_service" => filter.peer_service = Some(value.clone()),
            "since" => filter.since = Some(params::time(name, value)?),
            "until" => filter.until = Some(params::time(name, value)?),
            "q" => filter.text = Some(value.clone()),
            "incident_id" => {
                filter.incident_id = Some(
                    Uuid::parse_str(value).map_err(|_| params::bad(name, "an incident's UUID"))?,
                )
            }
            "limit" => limit = params::limit(name, value)?,
            "cursor" => cursor = Some(params::cursor(name, value, super::cursor::decode)?),
            _ => return Err(params::unknown(name)),
        }
    }
    Ok((filter, limit, cursor))
}

#[utoipa::path(get, path = "/api/anomalies", tag = "anomalies",
    params(
        ("anomaly_type" = Option<String>, Query, description = "PERFORMANCE, SECURITY or RESOURCE"),
        ("anomaly_subtype" = Option<String>, Query, description = "for example latency_spike"),
        ("severity" = Option<String>, Query, description = "LOW, MEDIUM, HIGH or CRITICAL"),
        ("min_severity" = Option<String>, Query, description = "this severity and above"),
        ("resolved" = Option<bool>, Query),
        ("service" = Option<String>, Query),
        ("operation" = Option<String>, Query),
        ("peer_service" = Option<String>, Query, description = "the service called, for findings about the way to it or a call to it"),
        ("since" = Option<String>, Query, description = "RFC 3339"),
        ("until" = Option<String>, Query, description = "RFC 3339"),
        ("q" = Option<String>, Query, description = "text in the description, case-insensitive"),
        ("incident_id" = Option<String>, Query, description = "the anomalies of this incident (UUID)"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 500, description = "1 to 500, default 50"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
    ),
    responses((status = 200, body = AnomalyPage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    req: actix_web::HttpRequest,
    query: web::Query<HashMap<String, String>>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::Read)?;
    let (filter, limit, cursor) = parse_query(&query)?;
    // First pages are what dashboards poll; later pages are read once.
    let cache_key = cursor.is_none().then(|| req.query_string().to_owned());
    if let Some(body) = cache_key
        .as_deref()
        .and_then(|k| state.list_cache.get(k, &state.events))
    {
        return Ok(json_bytes(body));
    }
    let generation = state.events.generation();
    let started = std::time::Instant::now();
    let page = state.store.list_anomalies(&filter, limit, cursor).await;
    state.metrics.db_query("list_anomalies", started.elapsed());
    let page = page?;
    let body = serde_json::to_vec(&AnomalyPage {
        items: page.items,
        next_cursor: page.next_cursor.as_ref().map(super::cursor::encode),
    })
    .map_err(|e| ApiError::internal(format!("the page could not be serialised: {e}")))?;
    let body = web::Bytes::from(body);
    if let Some(key) = cache_key {
        state.list_cache.put(key, generation, body.clone());
    }
    Ok(json_bytes(body))
}

pub fn json_bytes(body: web::Bytes) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(actix_web::http::header::ContentType::json())
        .body(body)
}

/// Hours the supervisor's chart covers.
const SUMMARY_HOURS: i64 = 24;

/// Open anomalies by severity, and the last 24 hours by type.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Summary {
    /// Severity → count of unresolved anomalies (every severity present, zero included).
    #[schema(value_type = Object)]
    pub open_by_severity: serde_json::Map<String, Value>,
    /// One bucket per hour, oldest first, the current hour last.
    pub buckets: Vec<SummaryBucket>,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct SummaryBucket {
    pub start: DateTime<Utc>,
    /// Anomaly type → count of anomalies detected in the hour.
    #[schema(value_type = Object)]
    pub counts: serde_json::Map<String, Value>,
}

#[utoipa::path(get, path = "/api/anomalies/summary", tag = "anomalies",
    responses((status = 200, body = Summary)), security(("bearer" = [])))]
pub async fn summary(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    use chrono::{DurationRound, TimeDelta};
    caller.require(Permission::Read)?;
    let hour = TimeDelta::hours(1);
    let now = Utc::now()
        .duration_trunc(hour)
        .unwrap_or_else(|_| Utc::now());
    let first = now - TimeDelta::hours(SUMMARY_HOURS - 1);
    let found = state.store.anomaly_summary(first).await?;
    let mut open_by_severity = serde_json::Map::new();
    for s in Severity::ALL.iter().rev() {
        let n = found
            .open_by_severity
            .iter()
            .find(|(sev, _)| sev == s.as_str())
            .map_or(0, |(_, n)| *n);
        open_by_severity.insert(s.as_str().to_owned(), json!(n));
    }
    let buckets = (0..SUMMARY_HOURS)
        .map(|i| {
            let start = first + TimeDelta::hours(i);
            let counts = found
                .hourly
                .iter()
                .filter(|(h, _, _)| *h == start)
                .map(|(_, t, n)| (t.clone(), json!(n)))
                .collect();
            SummaryBucket { start, counts }
        })
        .collect();
    Ok(HttpResponse::Ok().json(Summary {
        open_by_severity,
        buckets,
    }))
}

#[utoipa::path(get, path = "/api/anomalies/{id}", tag = "anomalies",
    params(("id" = uuid::Uuid, Path, description = "the anomaly's UUID")),
    responses((status = 200, body = AnomalyJson), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::Read)?;
    let id = params::path_id("anomaly", &id)?;
    let record = state.store.get_anomaly(id).await?;
    Ok(HttpResponse::Ok().json(record))
}

#[derive(Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveBody {
    pub resolution_notes: Option<String>,
}

/// Longest resolution note accepted.
const MAX_NOTES: usize = 10_000;

/// The body is optional (`{}` or nothing resolves without notes), but a body that is there must be
/// valid: a malformed one is refused, never read as "no notes".
#[utoipa::path(put, path = "/api/anomalies/{id}/resolve", tag = "anomalies",
    params(("id" = uuid::Uuid, Path, description = "the anomaly's UUID")),
    request_body(content = Option<ResolveBody>, description = "optional notes"),
    responses((status = 200, body = AnomalyJson), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "already resolved; the first resolution is kept"),
        (status = 413, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn resolve(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::Operate)?;
    let id = params::path_id("anomaly", &id)?;
    let notes = resolution_notes(payload).await?;
    let record = state
        .store
        .resolve_anomaly(id, notes.as_deref(), &caller.name)
        .await?;
    state.events.wake();
    Ok(HttpResponse::Ok().json(record))
}

/// The optional notes of a resolution (anomalies and incidents take the same body).
pub async fn resolution_notes(payload: web::Payload) -> Result<Option<String>, ApiError> {
    let notes =
        crate::routes::optional_options::<ResolveBody>(payload, r#"{"resolution_notes": "..."}"#)
            .await?
            .resolution_notes;
    if notes.as_ref().is_some_and(|n| n.len() > MAX_NOTES) {
        return Err(ApiError::bad_request(
            "resolution_notes is longer than 10000 bytes",
            Value::Null,
        ));
    }
    Ok(notes)
}
