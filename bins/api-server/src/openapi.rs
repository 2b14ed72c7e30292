//! `GET /api/openapi.json`: the OpenAPI document, generated from the handlers' annotations and the
//! wire types (utoipa), so that it cannot drift from the code.

use crate::routes::{anomalies, config, health, incidents, metrics, otlp, runs, whoami};
use actix_web::HttpResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
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
        anomalies::list, anomalies::summary, anomalies::get, anomalies::resolve, crate::events::stream,
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
    modifiers(&BearerAuth)
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

pub async fn document() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}
