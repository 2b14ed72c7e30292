//! The API's one error shape, `{ "error": code, "message": text, "details": ... }`, and the mapping of
//! every store error to a status code. Internal detail (database messages) never reaches clients.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use serde_json::Value;
use store_pg::StoreError;

#[derive(Debug, Serialize)]
pub struct ApiError {
    #[serde(skip)]
    pub status: StatusCode,
    pub error: &'static str,
    pub message: String,
    #[serde(skip_serializing_if = "Value::is_null")]
    pub details: Value,
}

/// The error body, for the OpenAPI document.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ErrorBody {
    /// A stable code: bad_request, unauthorized, forbidden, not_found, conflict, payload_too_large,
    /// method_not_allowed, unsupported_media_type, invalid, invalid_config, unavailable, internal.
    error: String,
    message: String,
    #[schema(value_type = Option<Object>)]
    details: Option<serde_json::Value>,
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>, details: Value) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            error: "bad_request",
            message: message.into(),
            details,
        }
    }
    pub fn internal(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            error: "internal",
            message: message.into(),
            details: Value::Null,
        }
    }
    pub fn payload_too_large(limit: usize) -> Self {
        ApiError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            error: "payload_too_large",
            message: format!("the request body is larger than {limit} bytes"),
            details: serde_json::json!({ "limit": limit }),
        }
    }
    pub fn method_not_allowed() -> Self {
        ApiError {
            status: StatusCode::METHOD_NOT_ALLOWED,
            error: "method_not_allowed",
            message: "this route does not answer that method".into(),
            details: Value::Null,
        }
    }
    pub fn into_result(self) -> Result<HttpResponse, ApiError> {
        Err(self)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::NOT_FOUND,
            error: "not_found",
            message: message.into(),
            details: Value::Null,
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.error, self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }
    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status).json(self)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        let (status, error, message, details) = match &e {
            StoreError::NotFound { what } => (
                StatusCode::NOT_FOUND,
                "not_found",
                format!("{what} not found"),
                Value::Null,
            ),
            StoreError::Conflict(m) => (StatusCode::CONFLICT, "conflict", m.clone(), Value::Null),
            StoreError::Invalid(m) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
                m.clone(),
                Value::Null,
            ),
            StoreError::InvalidConfig(c) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_config",
                c.to_string(),
                c.key()
                    .map_or(Value::Null, |k| serde_json::json!({ "key": k })),
            ),
            StoreError::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the store is unavailable; try again shortly".into(),
                Value::Null,
            ),
            StoreError::Database(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error".into(),
                Value::Null,
            ),
        };
        if status.is_server_error() {
            tracing::error!(error = %e, "store error");
        }
        ApiError {
            status,
            error,
            message,
            details,
        }
    }
}
