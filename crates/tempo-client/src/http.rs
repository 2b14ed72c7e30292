//! Grafana Tempo's HTTP API with reqwest: readiness, search (TraceQL), trace by id, tags and TraceQL
//! metrics, with timeouts, retries with backoff and jitter, a limit on concurrent trace fetches, and
//! the optional tenant (`X-Scope-OrgID`) and `Authorization` headers.
//!
//! Retried: 429 (after `Retry-After` when Tempo sends one), 500, 502, 503, 504, timeouts and connection
//! errors, up to `max_retries` times with exponential backoff and jitter (`backon`: each wait doubles from
//! `backoff_base`, plus a random part as large). Anything else is
//! answered at once as a [`TempoError`] naming the request and Tempo's answer (never the
//! `Authorization` value).

pub mod entry_spans;
pub mod metrics;
pub mod search;
mod usage;
pub mod whole_traces;

pub use usage::TempoUsage;
use usage::UsageCounters;

use crate::decode::{self, InputFormat, TempoApiVersion};
use crate::error::DecodeError;
use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use detect_core::{Span, TraceId};
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

pub use entry_spans::ENTRY_SPANS_QUERY;
pub use metrics::{MetricsSample, MetricsSeries, SpanCount};
pub use search::{MatchedSpan, SearchRequest, SelectedValue, TraceSummary};
pub use whole_traces::{WHOLE_TRACES_QUERY, WholeTrace};

/// How to reach Tempo, validated by [`TempoClient::new`].
#[derive(Clone, Debug)]
pub struct TempoConfig {
    /// For example `http://tempo:3200`.
    pub endpoint: String,
    /// Per request, including reading the answer.
    pub timeout: Duration,
    pub max_retries: u32,
    /// The first retry waits up to this long; each further one up to twice as long (capped at 30 s).
    pub backoff_base: Duration,
    /// Trace-by-id requests in flight at once.
    pub max_concurrent_fetches: usize,
    /// Sent as `X-Scope-OrgID` (multi-tenant Tempo).
    pub tenant: Option<String>,
    /// Sent as `Authorization` as given (for example `Bearer …` or `Basic …`). Never logged.
    pub authorization: Option<String>,
}

impl Default for TempoConfig {
    fn default() -> Self {
        TempoConfig {
            endpoint: "http://127.0.0.1:3200".into(),
            timeout: Duration::from_secs(30),
            max_retries: 4,
            backoff_base: Duration::from_millis(200),
            max_concurrent_fetches: 16,
            tenant: None,
            authorization: None,
        }
    }
}

/// What went wrong talking to Tempo.
#[derive(Debug, thiserror::Error)]
pub enum TempoError {
    #[error("bad Tempo settings: {0}")]
    Config(String),
    #[error("{request}: Tempo answered {status}: {body}")]
    Status {
        request: String,
        status: u16,
        /// The start of Tempo's answer, for the operator.
        body: String,
    },
    #[error("{request}: no answer within {timeout:?} (after {attempts} attempts)")]
    Timeout {
        request: String,
        timeout: Duration,
        attempts: u32,
    },
    #[error("{request}: cannot reach Tempo: {message}")]
    Transport { request: String, message: String },
    #[error("{request}: the answer is not what Tempo sends: {message}")]
    Malformed { request: String, message: String },
    #[error("{request}: {source}")]
    Decode {
        request: String,
        source: DecodeError,
    },
}

pub type TempoResult<T> = std::result::Result<T, TempoError>;

impl TempoError {
    /// Tempo refused the request itself (a 4xx other than 408 and 429): asking again the same way
    /// will not help, asking another way may.
    pub fn is_refused(&self) -> bool {
        matches!(self, TempoError::Status { status, .. }
            if (400..500).contains(status) && *status != 408 && *status != 429)
    }
}

/// One trace as fetched: its spans, and Tempo's word when it could only give part of it.
#[derive(Debug, Default)]
pub struct FetchedTrace {
    pub spans: Vec<Span>,
    /// Spans Tempo sent that had unusable ids.
    pub skipped_spans: usize,
    /// Set when Tempo said the trace is partial (v2 `status`/`message`).
    pub partial: Option<String>,
}

#[derive(Clone)]
pub struct TempoClient {
    http: reqwest::Client,
    config: Arc<TempoConfig>,
    fetches: Arc<Semaphore>,
    usage: Arc<UsageCounters>,
    /// Spans per span set asked of whole-trace searches: Tempo's default limit, lowered to what this
    /// Tempo says its limit is.
    spans_per_span_set: Arc<std::sync::atomic::AtomicU32>,
}

/// Tempo's answer, read whole.
struct Answer {
    status: StatusCode,
    content_type: String,
    body: bytes::Bytes,
}

const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Installs rustls' ring crypto provider for this process, once; reqwest refuses to build a client
/// without one. Every binary that makes HTTP clients calls it at start (idempotent).
pub fn install_tls_provider() {
    // Err means a provider is installed already, which is all that is needed.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl TempoClient {
    pub fn new(config: TempoConfig) -> TempoResult<Self> {
        install_tls_provider();
        let endpoint = config.endpoint.trim_end_matches('/').to_owned();
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
            return Err(TempoError::Config(format!(
                "TEMPO_ENDPOINT must start with http:// or https:// (got {endpoint:?})"
            )));
        }
        if config.max_concurrent_fetches == 0 {
            return Err(TempoError::Config(
                "the concurrent fetch limit must be at least 1".into(),
            ));
        }
        let mut headers = HeaderMap::new();
        if let Some(tenant) = &config.tenant {
            headers.insert(
                "X-Scope-OrgID",
                HeaderValue::from_str(tenant).map_err(|_| {
                    TempoError::Config("the tenant is not a valid header value".into())
                })?,
            );
        }
        if let Some(auth) = &config.authorization {
            let mut value = HeaderValue::from_str(auth).map_err(|_| {
                TempoError::Config("the Authorization value is not a valid header value".into())
            })?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(config.timeout)
            .build()
            .map_err(|e| TempoError::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(TempoClient {
            http,
            fetches: Arc::new(Semaphore::new(config.max_concurrent_fetches)),
            config: Arc::new(TempoConfig { endpoint, ..config }),
            usage: Arc::default(),
            spans_per_span_set: Arc::new(whole_traces::SPANS_PER_SPAN_SET.into()),
        })
    }

    pub fn config(&self) -> &TempoConfig {
        &self.config
    }

    /// What this client (and its clones) asked of Tempo so far.
    pub fn usage(&self) -> TempoUsage {
        self.usage.snapshot()
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.config.endpoint)
    }

    /// GET with retries; `query` is added as query parameters, `accept` as the Accept header.
    async fn get(
        &self,
        what: &str,
        path: &str,
        query: &[(&str, String)],
        accept: &str,
    ) -> TempoResult<Answer> {
        let mut attempt = 0;
        let mut delays = self.retry_delays();
        loop {
            attempt += 1;
            let started = std::time::Instant::now();
            let sent = self
                .http
                .get(self.url(path))
                .query(query)
                .header(ACCEPT, accept)
                .send()
                .await;
            let retry_after = match sent {
                Ok(resp) => {
                    let status = resp.status();
                    let retry_after = resp
                        .headers()
                        .get(RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    let content_type = resp
                        .headers()
                        .get(CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_owned();
                    let body = resp.bytes().await;
                    let size = body.as_ref().map_or(0, |b| b.len());
                    self.usage.record(path, started.elapsed(), size);
                    match body {
                        // Tempo's answer-too-large is a 500 that a retry cannot change.
                        Ok(body) if !is_retryable(status) || whole_traces::is_too_large(&body) => {
                            return Ok(Answer {
                                status,
                                content_type,
                                body,
                            });
                        }
                        Ok(body) if attempt > self.config.max_retries => {
                            return Err(status_error(what, status, &body));
                        }
                        Ok(_) => retry_after,
                        Err(e) if attempt > self.config.max_retries => {
                            return Err(transport_error(what, e, attempt, self.config.timeout));
                        }
                        Err(_) => None,
                    }
                }
                Err(e) => {
                    self.usage.record(path, started.elapsed(), 0);
                    if attempt > self.config.max_retries || !is_retryable_error(&e) {
                        return Err(transport_error(what, e, attempt, self.config.timeout));
                    }
                    None
                }
            };
            let wait = retry_after
                .or_else(|| delays.next())
                .unwrap_or(MAX_BACKOFF)
                .min(MAX_BACKOFF);
            tracing::warn!(
                request = what,
                attempt,
                wait_ms = wait.as_millis() as u64,
                "Tempo request failed; retrying"
            );
            tokio::time::sleep(wait).await;
        }
    }

    /// The waits between the attempts of one request: from `backoff_base`, doubling, jittered.
    fn retry_delays(&self) -> ExponentialBackoff {
        ExponentialBuilder::new()
            .with_min_delay(self.config.backoff_base)
            .with_max_delay(MAX_BACKOFF)
            .with_jitter()
            .without_max_times()
            .build()
    }

    /// `GET /ready`: true when Tempo says it is ready.
    pub async fn ready(&self) -> TempoResult<bool> {
        let answer = self.get("GET /ready", "/ready", &[], "text/plain").await?;
        Ok(answer.status.is_success())
    }

    /// `GET /api/search/tags`: the attribute names Tempo can search on.
    pub async fn search_tags(&self) -> TempoResult<Vec<String>> {
        let what = "GET /api/search/tags";
        let answer = self
            .get(what, "/api/search/tags", &[], "application/json")
            .await?;
        let body = success_json(what, &answer)?;
        #[derive(serde::Deserialize)]
        struct Tags {
            #[serde(rename = "tagNames", default)]
            tag_names: Vec<String>,
        }
        let tags: Tags = parse_json(what, &body)?;
        Ok(tags.tag_names)
    }

    /// One trace by id: `GET /api/v2/traces/<id>` asking for protobuf; JSON when that is what comes
    /// back; the v1 path `/api/traces/<id>` for a Tempo without v2 (404 on the v2 path with a body
    /// that is the router's own "404 page not found"). `None` when Tempo does not have the trace.
    pub async fn trace(&self, id: &TraceId) -> TempoResult<Option<FetchedTrace>> {
        let _permit = self
            .fetches
            .acquire()
            .await
            .map_err(|_| TempoError::Config("the fetch limit was closed".into()))?;
        let hex = id.to_string();
        let what = format!("GET /api/v2/traces/{hex}");
        let accept = "application/protobuf, application/json;q=0.5";
        let answer = self
            .get(&what, &format!("/api/v2/traces/{hex}"), &[], accept)
            .await?;
        if answer.status == StatusCode::NOT_FOUND && route_unknown(&answer.body) {
            let what = format!("GET /api/traces/{hex}");
            let v1 = self
                .get(&what, &format!("/api/traces/{hex}"), &[], accept)
                .await?;
            return read_trace(&what, &v1, TempoApiVersion::V1);
        }
        read_trace(&what, &answer, TempoApiVersion::V2)
    }
}

fn is_retryable(status: StatusCode) -> bool {
    matches!(status.as_u16(), 429 | 500 | 502 | 503 | 504)
}

fn is_retryable_error(e: &reqwest::Error) -> bool {
    e.is_timeout() || e.is_connect() || e.is_request() || e.is_body()
}

fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(300)]);
    text.trim().to_owned()
}

fn status_error(what: &str, status: StatusCode, body: &[u8]) -> TempoError {
    TempoError::Status {
        request: what.to_owned(),
        status: status.as_u16(),
        body: excerpt(body),
    }
}

fn transport_error(what: &str, e: reqwest::Error, attempts: u32, timeout: Duration) -> TempoError {
    if e.is_timeout() {
        TempoError::Timeout {
            request: what.to_owned(),
            timeout,
            attempts,
        }
    } else {
        // reqwest's message names the URL (never headers).
        TempoError::Transport {
            request: what.to_owned(),
            message: e.without_url().to_string(),
        }
    }
}

fn success_json(what: &str, answer: &Answer) -> TempoResult<bytes::Bytes> {
    if !answer.status.is_success() {
        return Err(status_error(what, answer.status, &answer.body));
    }
    Ok(answer.body.clone())
}

fn parse_json<T: serde::de::DeserializeOwned>(what: &str, body: &[u8]) -> TempoResult<T> {
    serde_json::from_slice(body).map_err(|e| TempoError::Malformed {
        request: what.to_owned(),
        message: e.to_string(),
    })
}

/// A Tempo without the v2 API answers its HTTP router's plain "404 page not found" (a trace it does
/// not have is a different 404, or v2's 200 with an empty trace).
fn route_unknown(body: &[u8]) -> bool {
    String::from_utf8_lossy(body).contains("404 page not found")
}

fn read_trace(
    what: &str,
    answer: &Answer,
    version: TempoApiVersion,
) -> TempoResult<Option<FetchedTrace>> {
    if answer.status == StatusCode::NOT_FOUND {
        return Ok(None);
    }
    if !answer.status.is_success() {
        return Err(status_error(what, answer.status, &answer.body));
    }
    let is_json =
        answer.content_type.contains("json") || answer.body.first().is_some_and(|b| *b == b'{');
    let mut fetched = FetchedTrace::default();
    if is_json {
        #[derive(serde::Deserialize, Default)]
        struct Partial {
            #[serde(default)]
            status: Option<String>,
            #[serde(default)]
            message: Option<String>,
        }
        let partial: Partial = serde_json::from_slice(&answer.body).unwrap_or_default();
        if partial
            .status
            .as_deref()
            .is_some_and(|s| s.eq_ignore_ascii_case("partial"))
        {
            fetched.partial = Some(partial.message.unwrap_or_else(|| "partial".into()));
        }
        let outcome = decode::decode(&answer.body, InputFormat::OtlpJson);
        if let Some(error) = outcome.errors.into_iter().next() {
            return Err(TempoError::Decode {
                request: what.to_owned(),
                source: error,
            });
        }
        fetched.spans = outcome.spans;
        fetched.skipped_spans = outcome.skipped_spans;
    } else {
        fetched.spans =
            decode::decode_tempo_trace_proto(&answer.body, version).map_err(|source| {
                TempoError::Decode {
                    request: what.to_owned(),
                    source,
                }
            })?;
    }
    Ok((!fetched.spans.is_empty() || fetched.partial.is_some()).then_some(fetched))
}
