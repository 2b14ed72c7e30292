//! Liveness (the process answers) and readiness (the store answers).

use crate::AppState;
use crate::error::ApiError;
use actix_web::{HttpResponse, web};
use store_pg::Repository;

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    state.store.config_entries().await?;
    Ok(HttpResponse::Ok()
        .json(serde_json::json!({ "status": "ready", "store": state.store.backend_name() })))
}
