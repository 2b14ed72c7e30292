//! The routes the fake Tempo serves, and one answer of it.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;

/// A Tempo HTTP API route the client uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Route {
    Ready,
    Search,
    SearchTags,
    /// `/api/v2/traces/<id>`.
    TraceV2,
    /// `/api/traces/<id>`, the trace by id of a Tempo without the v2 API.
    TraceV1,
    Metrics,
}

impl Route {
    pub fn of(path: &str) -> Option<Route> {
        Some(match path {
            "/ready" => Route::Ready,
            "/api/search" => Route::Search,
            "/api/search/tags" => Route::SearchTags,
            "/api/metrics/query_range" => Route::Metrics,
            p if p.starts_with("/api/v2/traces/") => Route::TraceV2,
            p if p.starts_with("/api/traces/") => Route::TraceV1,
            _ => return None,
        })
    }
}

/// One answer: a status, a body, and `Retry-After` when set.
#[derive(Clone, Debug, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    pub retry_after_seconds: Option<u64>,
}

impl Reply {
    /// 200 with a JSON body (which need not be valid JSON: a test may want a malformed one).
    pub fn json(body: impl Into<Vec<u8>>) -> Reply {
        Reply::new(200, "application/json", body.into())
    }

    pub fn protobuf(body: Vec<u8>) -> Reply {
        Reply::new(200, "application/protobuf", body)
    }

    pub fn text(status: u16, body: &str) -> Reply {
        Reply::new(
            status,
            "text/plain; charset=utf-8",
            body.as_bytes().to_vec(),
        )
    }

    /// 429 with `Retry-After`.
    pub fn throttled(retry_after_seconds: u64) -> Reply {
        Reply {
            retry_after_seconds: Some(retry_after_seconds),
            ..Reply::text(429, "slow down")
        }
    }

    /// Tempo's router for a path it does not serve; an old Tempo answers so on the v2 API.
    pub fn unknown_path() -> Reply {
        Reply::text(404, "404 page not found\n")
    }

    /// TraceQL metrics asked about a range the live store no longer holds (or turned off).
    pub fn metrics_out_of_range() -> Reply {
        Reply::text(500, "time range must be within last 20m0s")
    }

    fn new(status: u16, content_type: &'static str, body: Vec<u8>) -> Reply {
        Reply {
            status,
            content_type,
            body,
            retry_after_seconds: None,
        }
    }

    pub(super) fn into_response(self) -> HttpResponse {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = HttpResponse::build(status);
        response.content_type(self.content_type);
        if let Some(seconds) = self.retry_after_seconds {
            response.insert_header(("Retry-After", seconds.to_string()));
        }
        response.body(self.body)
    }
}
