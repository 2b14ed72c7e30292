//! `GET /api/anomaly-config` (every key with its value and description) and `PUT /api/anomaly-config`
//! (a partial object of key → value, validated as a whole: refused with 422 naming the key, nothing
//! half-applied).

use crate::AppState;
use crate::auth::{Caller, Permission};
use crate::error::ApiError;
use actix_web::{HttpResponse, web};
use serde_json::{Map, Value, json};
use store_pg::Repository;

fn entries(config: &detect_core::DetectionConfig) -> Value {
    let items: Vec<Value> = config
        .to_entries()
        .into_iter()
        .map(|e| json!({ "key": e.key, "value": e.value, "description": e.description }))
        .collect();
    json!({ "items": items })
}

pub async fn get(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::Read)?;
    let config = state.store.load_config().await?;
    Ok(HttpResponse::Ok().json(entries(&config)))
}

pub async fn put(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<Map<String, Value>>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::Configure)?;
    let config = state
        .store
        .update_config(&Value::Object(body.into_inner()), &caller.name)
        .await?;
    if let Some(intake) = &state.intake {
        intake.reconfigure(config.clone());
    }
    Ok(HttpResponse::Ok().json(entries(&config)))
}
