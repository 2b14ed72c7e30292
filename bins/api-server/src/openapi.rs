//! `GET /api/openapi.json`: the OpenAPI document, generated from the handlers' annotations and the
//! wire types (utoipa), so that it cannot drift from the code.

use actix_web::HttpResponse;
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "tracewatch",
        description = "Trace anomaly detection: anomalies, configuration, runs, OTLP intake."
    ),
    components(schemas(crate::anomaly_json::AnomalyJson))
)]
pub struct ApiDoc;

pub async fn document() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}
