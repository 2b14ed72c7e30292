//! `GET /api/anomaly-config` (every key with its value and description), `PUT /api/anomaly-config`
//! (a partial object of key → value, validated as a whole: refused with 422 naming the key and what it
//! allows, nothing half-applied) and `GET /api/anomaly-config/schema` (every key, nested ones dotted,
//! with its type, allowed values, default and description: the dashboard's field hints). All three
//! follow from detect-core's one table of keys.

use crate::AppState;
use crate::auth::{Caller, Permission};
use crate::error::{ApiError, ErrorBody};
use actix_web::{HttpResponse, web};
use serde_json::{Map, Value};
use store_pg::Repository;

/// One configuration key as the API shows it.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ConfigItem {
    pub key: &'static str,
    /// A number, a boolean, a string, a list or an object, as the key's schema says.
    #[schema(value_type = Value)]
    pub value: Value,
    pub description: &'static str,
}

/// Every configuration key.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ConfigList {
    pub items: Vec<ConfigItem>,
}

fn entries(config: &detect_core::DetectionConfig) -> ConfigList {
    let items = config
        .to_entries()
        .into_iter()
        .map(|e| ConfigItem {
            key: e.key,
            value: e.value,
            description: e.description,
        })
        .collect();
    ConfigList { items }
}

#[utoipa::path(get, path = "/api/anomaly-config", tag = "configuration",
    responses((status = 200, body = ConfigList)), security(("bearer" = [])))]
pub async fn get(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::Read)?;
    let config = state.store.load_config().await?;
    Ok(HttpResponse::Ok().json(entries(&config)))
}

/// Every configuration key, nested keys right after their object's.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ConfigSchema {
    pub keys: Vec<detect_core::config::KeySchema>,
}

#[utoipa::path(get, path = "/api/anomaly-config/schema", tag = "configuration",
    responses((status = 200, body = ConfigSchema)), security(("bearer" = [])))]
pub async fn schema(caller: Caller) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::Read)?;
    Ok(HttpResponse::Ok().json(ConfigSchema {
        keys: detect_core::config::schema(),
    }))
}

#[utoipa::path(put, path = "/api/anomaly-config", tag = "configuration",
    request_body(content = Object, description = "a partial object of key → value, for example {\"latency_threshold_stddev\": 4}"),
    responses((status = 200, body = ConfigList), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "an unknown key, a wrong type or an out-of-range value; nothing applied")),
    security(("bearer" = [])))]
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
