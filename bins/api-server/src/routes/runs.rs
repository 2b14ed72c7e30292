//! `POST /api/anomaly-detection/run` (optional body with a window; 202 with the run id) and
//! `GET /api/anomaly-detection/runs/:id`. A detector-worker (issue 5), or an api-server with in-process
//! detection, picks pending runs up.

use crate::AppState;
use crate::auth::{Caller, Permission};
use crate::error::{ApiError, ErrorBody};
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use store_pg::{Repository, RunRecord, RunTrigger};
use uuid::Uuid;

/// The window to run over; both ends, or neither for the latest window (`{}` and `null` are the
/// defaults, as no body is).
#[derive(Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunBody {
    #[serde(default)]
    pub window_start: Option<DateTime<Utc>>,
    #[serde(default)]
    pub window_end: Option<DateTime<Utc>>,
}

/// A run's window: its start and end.
type Window = (DateTime<Utc>, DateTime<Utc>);

impl RunBody {
    /// The window asked for, if any; one end alone is refused.
    fn window(&self) -> Result<Option<Window>, ApiError> {
        match (self.window_start, self.window_end) {
            (Some(start), Some(end)) => Ok(Some((start, end))),
            (None, None) => Ok(None),
            (start, _) => {
                let missing = if start.is_some() {
                    "window_end"
                } else {
                    "window_start"
                };
                Err(ApiError::bad_request(
                    format!(
                        "`{missing}` is missing: give both ends of the window, or neither for the latest window"
                    ),
                    serde_json::json!({ "field": missing }),
                ))
            }
        }
    }
}

/// A run as the API shows it.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct RunJson {
    pub id: Uuid,
    /// manual or scheduled
    pub trigger: String,
    /// pending, running, succeeded or failed
    pub status: String,
    pub window_start: Option<DateTime<Utc>>,
    pub window_end: Option<DateTime<Utc>>,
    pub spans: i64,
    pub anomalies: i64,
    pub error: Option<String>,
    /// Where throughput and error counts came from: `traces` (counted from the spans detected: every
    /// trace of the window read from Tempo, or the in-process intake), `traceql-metrics` (Tempo counted;
    /// traces were read by the sampling rule), or `traces (TraceQL metrics unavailable: …)`
    pub count_source: Option<String>,
    /// The worker that ran it
    pub worker: Option<String>,
    /// What reading Tempo cost, for a window a worker read from Tempo: queries (search, TraceQL
    /// metrics), lookups (trace by id), bytes of the answers, seconds waiting on Tempo (summed over
    /// concurrent requests)
    pub tempo_queries: Option<i64>,
    pub tempo_lookups: Option<i64>,
    pub tempo_bytes: Option<i64>,
    pub tempo_seconds: Option<f64>,
    pub requested_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

fn run_json(run: &RunRecord) -> RunJson {
    RunJson {
        id: run.id,
        trigger: run.trigger.as_str().to_owned(),
        status: run.status.as_str().to_owned(),
        window_start: run.window_start,
        window_end: run.window_end,
        spans: run.spans,
        anomalies: run.anomalies,
        error: run.error.clone(),
        count_source: run.count_source.clone(),
        worker: run.worker.clone(),
        tempo_queries: run.tempo_queries,
        tempo_lookups: run.tempo_lookups,
        tempo_bytes: run.tempo_bytes,
        tempo_seconds: run.tempo_seconds,
        requested_at: run.requested_at,
        started_at: run.started_at,
        finished_at: run.finished_at,
    }
}

/// No body, `{}` or `null` asks for a run over the latest window; a window names both its ends.
#[utoipa::path(post, path = "/api/anomaly-detection/run", tag = "runs",
    request_body(content = Option<RunBody>, description = "optional window; empty for the latest"),
    responses((status = 202, body = RunJson), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::Operate)?;
    let body: RunBody = crate::routes::optional_options(
        payload,
        r#"{"window_start": RFC 3339, "window_end": RFC 3339}"#,
    )
    .await?;
    let window = body.window()?;
    let run = state.store.create_run(RunTrigger::Manual, window).await?;
    Ok(HttpResponse::Accepted().json(run_json(&run)))
}

#[utoipa::path(get, path = "/api/anomaly-detection/runs/{id}", tag = "runs",
    params(("id" = uuid::Uuid, Path, description = "the run's UUID")),
    responses((status = 200, body = RunJson), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::Read)?;
    let id = super::params::path_id("run", &id)?;
    let run = state.store.get_run(id).await?;
    Ok(HttpResponse::Ok().json(run_json(&run)))
}
