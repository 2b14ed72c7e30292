//! `POST /v1/traces`: OTLP/HTTP trace intake, as the OTLP specification describes it, so that an
//! OpenTelemetry SDK or Collector can export straight to tracewatch.
//!
//! - Bodies: `application/x-protobuf` (an `ExportTraceServiceRequest`) or `application/json` (its
//!   OTLP/JSON form), optionally `Content-Encoding: gzip`. Anything else: 415.
//! - The size limit applies to the body as sent and again after decompression: 413 past either.
//! - The answer is in the request's content type: an `ExportTraceServiceResponse`, with
//!   `partial_success` when some spans were unusable (bad ids), or a `google.rpc.Status` with 400 for
//!   a body that cannot be decoded at all.
//! - Back-pressure: when the detectors are behind, 429 with `Retry-After` (the batch is not kept; the
//!   client retries it), 503 while the server stops. A 200 means every usable span is detected.

use crate::auth::{Caller, Permission};
use crate::error::ApiError;
use crate::pipeline::{Intake, Refusal};
use crate::telemetry::Metrics;
use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_ENCODING, CONTENT_TYPE, RETRY_AFTER};
use actix_web::{HttpRequest, HttpResponse, web};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceResponse,
};
use prost::Message;
use tempo_client::{GzipError, InputFormat};

/// The intake's limits, set at start.
#[derive(Clone, Copy, Debug)]
pub struct IntakeLimits {
    /// Largest body accepted, before and after decompression.
    pub max_body_bytes: usize,
    /// Most spans a body may hold, counted before decoding.
    pub max_spans: usize,
}

/// `google.rpc.Status`, the body of an OTLP error answer (code 3 is INVALID_ARGUMENT).
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        }
    }
}

/// An error answer in the request's encoding (JSON when the encoding itself was not understood).
fn status_answer(
    status: StatusCode,
    encoding: Encoding,
    code: i32,
    error: &str,
    message: String,
) -> HttpResponse {
    match encoding {
        Encoding::Protobuf => HttpResponse::build(status)
            .content_type(encoding.content_type())
            .body(RpcStatus { code, message }.encode_to_vec()),
        // A google.rpc.Status in JSON, with tracewatch's `error` code beside it.
        Encoding::Json => HttpResponse::build(status).json(serde_json::json!({
            "code": code, "error": error, "message": message,
        })),
    }
}

fn bad_request(encoding: Encoding, message: String) -> HttpResponse {
    status_answer(StatusCode::BAD_REQUEST, encoding, 3, "bad_request", message)
}

fn too_large(encoding: Encoding, limit: usize) -> HttpResponse {
    status_answer(
        StatusCode::PAYLOAD_TOO_LARGE,
        encoding,
        8,
        "payload_too_large",
        format!(
            "the body is larger than {limit} bytes (sent or decompressed); send smaller batches"
        ),
    )
}

fn too_many_spans(encoding: Encoding, max: usize) -> HttpResponse {
    status_answer(
        StatusCode::PAYLOAD_TOO_LARGE,
        encoding,
        8,
        "payload_too_large",
        format!("the body holds more than {max} spans; send smaller batches"),
    )
}

fn encoding_of(req: &HttpRequest) -> Option<Encoding> {
    let value = req.headers().get(CONTENT_TYPE)?.to_str().ok()?;
    let mime = value.split(';').next()?.trim().to_ascii_lowercase();
    match mime.as_str() {
        "application/x-protobuf" | "application/protobuf" => Some(Encoding::Protobuf),
        "application/json" => Some(Encoding::Json),
        _ => None,
    }
}

#[utoipa::path(post, path = "/v1/traces", tag = "intake",
    request_body(description = "an OTLP ExportTraceServiceRequest", content(
        ("application/x-protobuf"), ("application/json"))),
    responses((status = 200, description = "ExportTraceServiceResponse, with partial_success when spans were unusable"),
        (status = 400, description = "google.rpc.Status: the body is not an OTLP export"),
        (status = 413, description = "larger than the limit, as sent or decompressed, or more spans than the limit"),
        (status = 415, description = "unsupported Content-Type or Content-Encoding"),
        (status = 429, description = "the detectors are behind: retry after Retry-After"),
        (status = 503, description = "stopping: retry after Retry-After")),
    security(("bearer" = [])))]
pub async fn export(
    req: HttpRequest,
    payload: web::Payload,
    caller: Result<Caller, ApiError>,
    intake: web::Data<Intake>,
    limits: web::Data<IntakeLimits>,
    metrics: web::Data<Metrics>,
) -> HttpResponse {
    let Some(encoding) = encoding_of(&req) else {
        return status_answer(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Encoding::Json,
            3,
            "unsupported_media_type",
            "Content-Type must be application/x-protobuf or application/json".into(),
        );
    };
    // Authentication errors too are answered as OTLP clients read them.
    if let Err(e) = caller.and_then(|c| c.require(Permission::Ingest).map(drop)) {
        // UNAUTHENTICATED or PERMISSION_DENIED, as gRPC names them.
        let code = if e.status == StatusCode::UNAUTHORIZED {
            16
        } else {
            7
        };
        return status_answer(e.status, encoding, code, e.error, e.message);
    }
    let gzipped = match req.headers().get(CONTENT_ENCODING).map(|v| v.to_str()) {
        None => false,
        Some(Ok(v)) if v.eq_ignore_ascii_case("identity") => false,
        Some(Ok(v)) if v.eq_ignore_ascii_case("gzip") => true,
        Some(_) => {
            return status_answer(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                encoding,
                3,
                "unsupported_media_type",
                "Content-Encoding must be gzip or identity".into(),
            );
        }
    };
    let limit = limits.max_body_bytes;
    let body = match super::read_limited(payload, limit).await {
        Ok(Some(body)) => body,
        Ok(None) => return too_large(encoding, limit),
        Err(e) => return bad_request(encoding, format!("the body could not be read: {e}")),
    };
    let format = match encoding {
        Encoding::Protobuf => InputFormat::OtlpProto,
        Encoding::Json => InputFormat::OtlpJson,
    };
    // An ExportTraceServiceRequest has the wire form (and JSON form) of TracesData.
    let outcome = if gzipped {
        // Bounded decompression, then decoding: tempo-client's, so that its fuzz target covers it.
        match tempo_client::decode_gzip(&body, limit, format, limits.max_spans) {
            Ok(outcome) => outcome,
            Err(GzipError::TooLarge) => return too_large(encoding, limit),
            Err(GzipError::Corrupt(m)) => return bad_request(encoding, m),
            Err(GzipError::TooManySpans) => return too_many_spans(encoding, limits.max_spans),
        }
    } else if tempo_client::spans_over(&body, format, limits.max_spans) {
        return too_many_spans(encoding, limits.max_spans);
    } else {
        tempo_client::decode(&body, format)
    };
    if let Some(error) = outcome.errors.first() {
        metrics.spans("rejected", outcome.skipped_spans);
        return bad_request(
            encoding,
            format!("the body is not a valid OTLP trace export: {error}"),
        );
    }
    let usable = outcome.spans.len();
    if let Err(refusal) = intake.try_submit(outcome.spans) {
        let (status, retry_after, message) = match refusal {
            Refusal::Busy {
                retry_after_secs,
                reason,
            } => (
                StatusCode::TOO_MANY_REQUESTS,
                retry_after_secs,
                format!("{reason}; nothing of this batch was kept, retry it"),
            ),
            Refusal::Stopped => (
                StatusCode::SERVICE_UNAVAILABLE,
                5,
                "the server is stopping; nothing of this batch was kept, retry it".to_owned(),
            ),
        };
        let mut answer = status_answer(status, encoding, 14, "unavailable", message);
        answer.headers_mut().insert(
            RETRY_AFTER,
            actix_web::http::header::HeaderValue::from(retry_after),
        );
        return answer;
    }
    if outcome.skipped_spans > 0 {
        metrics.spans("rejected", outcome.skipped_spans);
    }
    let partial = (outcome.skipped_spans > 0).then(|| ExportTracePartialSuccess {
        rejected_spans: outcome.skipped_spans as i64,
        error_message: format!(
            "{} spans had a missing or malformed trace or span id; {usable} accepted",
            outcome.skipped_spans
        ),
    });
    match encoding {
        Encoding::Protobuf => HttpResponse::Ok()
            .content_type(encoding.content_type())
            .body(
                ExportTraceServiceResponse {
                    partial_success: partial,
                }
                .encode_to_vec(),
            ),
        Encoding::Json => HttpResponse::Ok().json(match partial {
            None => serde_json::json!({}),
            Some(p) => serde_json::json!({ "partialSuccess": {
                "rejectedSpans": p.rejected_spans, "errorMessage": p.error_message,
            }}),
        }),
    }
}
