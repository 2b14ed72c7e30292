//! The REST routes. Each handler parses and validates its input at the edge, calls the store, and
//! answers JSON; every error is an [`ApiError`].

pub mod anomalies;
pub mod config;
pub mod health;
pub mod runs;

use crate::error::ApiError;
use actix_web::web;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(
        web::JsonConfig::default()
            .limit(64 * 1024)
            .error_handler(|e, _| {
                ApiError::bad_request(
                    format!("the request body is not valid JSON for this endpoint: {e}"),
                    serde_json::Value::Null,
                )
                .into()
            }),
    )
    .route("/healthz", web::get().to(health::healthz))
    .route("/readyz", web::get().to(health::readyz))
    .route("/api/anomalies", web::get().to(anomalies::list))
    .route("/api/anomalies/{id}", web::get().to(anomalies::get))
    .route(
        "/api/anomalies/{id}/resolve",
        web::put().to(anomalies::resolve),
    )
    .route("/api/anomaly-config", web::get().to(config::get))
    .route("/api/anomaly-config", web::put().to(config::put))
    .route("/api/anomaly-detection/run", web::post().to(runs::create))
    .route("/api/anomaly-detection/runs/{id}", web::get().to(runs::get));
}
