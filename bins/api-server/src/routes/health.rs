//! Liveness (the process answers) and readiness (the store answers).

use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use actix_web::{HttpResponse, web};
use store_pg::Repository;

#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, description = "the process answers")))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

#[utoipa::path(get, path = "/readyz", tag = "health",
    responses((status = 200, description = "the store answers"), (status = 503, body = ErrorBody)))]
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    state.store.config_entries().await?;
    Ok(HttpResponse::Ok()
        .json(serde_json::json!({ "status": "ready", "store": state.store.backend_name() })))
}
