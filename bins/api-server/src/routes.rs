//! The routes. Each handler checks the caller's permission, parses and validates its input at the
//! edge, calls the store, and answers JSON; every error is an [`ApiError`].

pub mod anomalies;
pub mod config;
pub mod cursor;
pub mod dashboard;
pub mod health;
pub mod incidents;
pub mod metrics;
pub mod otlp;
pub mod params;
pub mod runs;
pub mod whoami;

use crate::error::ApiError;
use actix_web::web;

/// Largest JSON body of the REST endpoints.
pub const MAX_JSON_BODY: usize = 64 * 1024;

pub fn configure(cfg: &mut web::ServiceConfig, intake: bool) {
    cfg.app_data(
        web::JsonConfig::default()
            .limit(MAX_JSON_BODY)
            .error_handler(|e, _| json_error(e).into()),
    )
    .app_data(web::PayloadConfig::new(MAX_JSON_BODY))
    .app_data(web::QueryConfig::default().error_handler(|e, _| {
        ApiError::bad_request(format!("bad query string: {e}"), serde_json::Value::Null).into()
    }))
    .app_data(web::PathConfig::default().error_handler(|e, _| {
        ApiError::bad_request(format!("bad path: {e}"), serde_json::Value::Null).into()
    }))
    .route("/healthz", web::get().to(health::healthz))
    .route("/readyz", web::get().to(health::readyz))
    .route("/metrics", web::get().to(metrics::prometheus))
    .route("/api/openapi.json", web::get().to(crate::openapi::document))
    .route("/", web::get().to(dashboard::page))
    .route("/anomalies", web::get().to(dashboard::page))
    .route("/anomalies/{id}", web::get().to(dashboard::page))
    .route("/config", web::get().to(dashboard::page))
    .route("/incidents/{id}", web::get().to(dashboard::page))
    .route("/assets/app.js", web::get().to(dashboard::script))
    .route(
        "/assets/incidents.js",
        web::get().to(dashboard::incidents_script),
    )
    .route("/assets/app.css", web::get().to(dashboard::style))
    .route("/api/whoami", web::get().to(whoami::whoami))
    .route("/api/anomalies", web::get().to(anomalies::list))
    .route("/api/anomalies/summary", web::get().to(anomalies::summary))
    .route(
        "/api/anomalies/stream",
        web::get().to(crate::events::stream),
    )
    .route("/api/anomalies/{id}", web::get().to(anomalies::get))
    .route(
        "/api/anomalies/{id}/resolve",
        web::put().to(anomalies::resolve),
    )
    .route("/api/incidents", web::get().to(incidents::list))
    .route("/api/incidents/{id}", web::get().to(incidents::get))
    .route(
        "/api/incidents/{id}/resolve",
        web::put().to(incidents::resolve),
    )
    .route("/api/anomaly-config", web::get().to(config::get))
    .route("/api/anomaly-config", web::put().to(config::put))
    .route("/api/anomaly-config/schema", web::get().to(config::schema))
    .route("/api/anomaly-detection/run", web::post().to(runs::create))
    .route("/api/anomaly-detection/runs/{id}", web::get().to(runs::get));
    if intake {
        cfg.route("/v1/traces", web::post().to(otlp::export));
    }
    cfg.default_service(web::to(|| async {
        ApiError::not_found("no such route").into_result()
    }));
}

/// A JSON body that is too large is a 413; anything else wrong with it, a 400 naming the problem.
fn json_error(e: actix_web::error::JsonPayloadError) -> ApiError {
    use actix_web::error::JsonPayloadError as E;
    match e {
        E::OverflowKnownLength { .. } | E::Overflow { .. } => {
            ApiError::payload_too_large(MAX_JSON_BODY)
        }
        E::ContentType => ApiError {
            status: actix_web::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            error: "unsupported_media_type",
            message: "send the body as application/json".into(),
            details: serde_json::Value::Null,
        },
        other => ApiError::bad_request(
            format!("the request body is not valid JSON for this endpoint: {other}"),
            serde_json::Value::Null,
        ),
    }
}

/// Reads a body as sent, giving up as soon as it passes `limit` (`None`).
pub async fn read_limited(
    mut payload: web::Payload,
    limit: usize,
) -> Result<Option<Vec<u8>>, actix_web::error::PayloadError> {
    use futures_util::StreamExt;
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk?;
        if body.len() + chunk.len() > limit {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

/// A small optional JSON body (`None` when empty): 413 past [`MAX_JSON_BODY`], 400 when unreadable.
pub async fn optional_json_body(payload: web::Payload) -> Result<Option<Vec<u8>>, ApiError> {
    let body = read_limited(payload, MAX_JSON_BODY)
        .await
        .map_err(|e| {
            ApiError::bad_request(
                format!("the body could not be read: {e}"),
                serde_json::Value::Null,
            )
        })?
        .ok_or_else(|| ApiError::payload_too_large(MAX_JSON_BODY))?;
    Ok((!body.iter().all(u8::is_ascii_whitespace)).then_some(body))
}
