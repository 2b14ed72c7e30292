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

/// A route's resource answering `allow` (such as "GET, PUT"): another method gets 405 with an `Allow`
/// header, not 404 (the route exists).
fn resource(path: &str, allow: &'static str) -> actix_web::Resource {
    resource_of(&[path], allow)
}

fn resource_of(paths: &[&str], allow: &'static str) -> actix_web::Resource {
    web::resource(paths.to_vec()).default_service(web::to(move || async move {
        let mut response =
            actix_web::ResponseError::error_response(&ApiError::method_not_allowed());
        response.headers_mut().insert(
            actix_web::http::header::ALLOW,
            actix_web::http::header::HeaderValue::from_static(allow),
        );
        response
    }))
}

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
    .service(resource("/healthz", "GET").route(web::get().to(health::healthz)))
    .service(resource("/readyz", "GET").route(web::get().to(health::readyz)))
    .service(resource("/metrics", "GET").route(web::get().to(metrics::prometheus)))
    .service(resource("/api/openapi.json", "GET").route(web::get().to(crate::openapi::document)))
    .service(
        resource_of(
            &[
                "/",
                "/anomalies",
                "/anomalies/{id}",
                "/config",
                "/incidents/{id}",
            ],
            "GET",
        )
        .route(web::get().to(dashboard::page)),
    )
    .service(resource("/assets/app.js", "GET").route(web::get().to(dashboard::script)))
    .service(
        resource("/assets/incidents.js", "GET").route(web::get().to(dashboard::incidents_script)),
    )
    .service(resource("/assets/app.css", "GET").route(web::get().to(dashboard::style)))
    .service(resource("/api/whoami", "GET").route(web::get().to(whoami::whoami)))
    .service(resource("/api/anomalies", "GET").route(web::get().to(anomalies::list)))
    .service(resource("/api/anomalies/summary", "GET").route(web::get().to(anomalies::summary)))
    .service(
        resource("/api/anomalies/stream", "GET")
            .route(web::get().to(crate::events::stream::stream)),
    )
    .service(resource("/api/anomalies/{id}", "GET").route(web::get().to(anomalies::get)))
    .service(
        resource("/api/anomalies/{id}/resolve", "PUT").route(web::put().to(anomalies::resolve)),
    )
    .service(resource("/api/incidents", "GET").route(web::get().to(incidents::list)))
    .service(resource("/api/incidents/{id}", "GET").route(web::get().to(incidents::get)))
    .service(
        resource("/api/incidents/{id}/resolve", "PUT").route(web::put().to(incidents::resolve)),
    )
    .service(
        resource("/api/anomaly-config", "GET, PUT")
            .route(web::get().to(config::get))
            .route(web::put().to(config::put)),
    )
    .service(resource("/api/anomaly-config/schema", "GET").route(web::get().to(config::schema)))
    .service(resource("/api/anomaly-detection/run", "POST").route(web::post().to(runs::create)))
    .service(resource("/api/anomaly-detection/runs/{id}", "GET").route(web::get().to(runs::get)));
    if intake {
        cfg.service(resource("/v1/traces", "POST").route(web::post().to(otlp::export)));
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

/// An optional JSON body's options: no body, `null` and `{}` are the defaults; anything but an object
/// or `null` is refused (serde would read a struct from an array too).
pub async fn optional_options<T>(payload: web::Payload, shape: &str) -> Result<T, ApiError>
where
    T: serde::de::DeserializeOwned + Default,
{
    let Some(body) = optional_json_body(payload).await? else {
        return Ok(T::default());
    };
    let refused = |e: String| {
        ApiError::bad_request(
            format!("the body must be {shape}, or {{}} for the defaults: {e}"),
            serde_json::Value::Null,
        )
    };
    match serde_json::from_slice::<serde_json::Value>(&body).map_err(|e| refused(e.to_string()))? {
        serde_json::Value::Null => Ok(T::default()),
        object @ serde_json::Value::Object(_) => {
            serde_json::from_value(object).map_err(|e| refused(e.to_string()))
        }
        _ => Err(refused("it is not a JSON object".into())),
    }
}
