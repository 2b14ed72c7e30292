//! Reading list query parameters, alike on every list: a bad value is a 400 naming the parameter and
//! what it must be.

use crate::error::ApiError;
use chrono::{DateTime, Utc};
use detect_core::Severity;
use serde_json::json;

/// The 400 for parameter `name`, saying what it `must_be`.
pub fn bad(name: &str, must_be: &str) -> ApiError {
    ApiError::bad_request(
        format!("query parameter `{name}` must be {must_be}"),
        json!({ "parameter": name }),
    )
}

pub fn severity(name: &str, value: &str) -> Result<Severity, ApiError> {
    Severity::parse(value).ok_or_else(|| bad(name, "LOW, MEDIUM, HIGH or CRITICAL"))
}

pub fn time(name: &str, value: &str) -> Result<DateTime<Utc>, ApiError> {
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| bad(name, "an RFC 3339 time"))
}

/// A page size: 1 to [`store_pg::MAX_PAGE`].
pub fn limit(name: &str, value: &str) -> Result<u32, ApiError> {
    value
        .parse()
        .ok()
        .filter(|l| (1..=store_pg::MAX_PAGE).contains(l))
        .ok_or_else(|| bad(name, "a whole number from 1 to 500"))
}

/// A `next_cursor` of a previous page, read by `decode`.
pub fn cursor<C>(name: &str, value: &str, decode: fn(&str) -> Option<C>) -> Result<C, ApiError> {
    decode(value).ok_or_else(|| bad(name, "a next_cursor from a previous page"))
}

/// A path's id: a UUID, else a 400 naming what it identifies (`anomaly`, `incident`, `run`).
pub fn path_id(what: &str, raw: &str) -> Result<uuid::Uuid, ApiError> {
    uuid::Uuid::parse_str(raw).map_err(|_| {
        ApiError::bad_request(
            format!("the {what} id must be a UUID"),
            json!({ "id": raw }),
        )
    })
}

pub fn unknown(name: &str) -> ApiError {
    bad(name, "one of the known parameters (it is not)")
}
