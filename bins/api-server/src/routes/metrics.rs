//! `GET /metrics`: tracewatch's own metrics in the Prometheus text format (open, like `/healthz`: it
//! holds counts and timings, no anomaly data).

use crate::AppState;
use actix_web::{HttpResponse, web};

#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, content_type = "application/openmetrics-text", description = "Prometheus text exposition")))]
pub async fn prometheus(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(state.metrics.render())
}
