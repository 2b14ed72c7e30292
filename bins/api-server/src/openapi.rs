//! `GET /api/openapi.json`: the OpenAPI document, generated from the handlers' annotations and the
//! wire types (utoipa), so that it cannot drift from the code.

use crate::routes::{anomalies, config, health, incidents, metrics, otlp, runs, whoami};
use actix_web::HttpResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "tracewatch",
        description = "Trace anomaly detection: anomalies, incidents (findings grouped, with ranked probable origins), configuration, detection runs, live events and OTLP intake. \
            Every error is `{error, message, details}`. Bearer tokens: API keys or HS256 JWTs; roles viewer (read), \
            operator (resolve, run), admin (configuration), ingest (OTLP only)."
    ),
    paths(
        anomalies::list, anomalies::summary, anomalies::get, anomalies::resolve, crate::events::stream::stream,
        incidents::list, incidents::get, incidents::resolve,
        whoami::whoami,
        config::get, config::put, config::schema, runs::create, runs::get,
        health::healthz, health::readyz, metrics::prometheus, otlp::export,
    ),
    components(schemas(
        store_pg::AnomalyJson, anomalies::AnomalyPage, anomalies::ResolveBody,
        config::ConfigList, config::ConfigItem, config::ConfigSchema, detect_core::config::KeySchema, runs::RunBody, runs::RunJson, crate::error::ErrorBody,
        anomalies::Summary, anomalies::SummaryBucket, whoami::WhoAmI,
        store_pg::IncidentRecord, store_pg::OriginJson, store_pg::CallJson, incidents::IncidentPage, incidents::IncidentDetail,
    )),
    modifiers(&BearerAuth, &CommonErrors)
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The answers every operation can give besides its own: 401 and 403 where it needs a credential,
/// 413 and 415 where it takes a body, 400 where its path holds an id. Added once here so that no
/// handler's annotation can forget them.
struct CommonErrors;

impl Modify for CommonErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                let mut common: Vec<(&str, &str)> = Vec::new();
                if operation.security.as_ref().is_some_and(|s| !s.is_empty()) {
                    common.push(("401", "no credential, or one that is not valid"));
                    common.push(("403", "the credential's role may not do this"));
                }
                if operation.request_body.is_some() {
                    common.push(("413", "the body is too large"));
                    common.push((
                        "415",
                        "the body's Content-Type is not one this operation reads",
                    ));
                }
                if path.contains('{') {
                    common.push(("400", "the id in the path is not valid"));
                }
                for (status, description) in common {
                    operation
                        .responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| error_response(description));
                }
            }
        }
    }
}

fn error_response(description: &str) -> RefOr<Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build(),
    )
}

pub async fn document() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}
