//! A real api-server for the tests: started on a free loopback port with the embedded store in its own
//! directory (or a fresh PostgreSQL database), called over HTTP with reqwest, and OTLP requests built
//! with opentelemetry-proto's types.

#![allow(dead_code)]

pub mod sse;

use api_server::server::{self, Running, ServerSettings};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, span};
use serde_json::Value;
use std::time::{Duration, SystemTime};
#[allow(unused_imports)]
pub use store_pg::testing::{TempDir, TestDatabase};

/// `google.rpc.Status`, as an OTLP client reads an error answer.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RpcStatus {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
}

pub struct TestServer {
    pub running: Option<Running>,
    pub base: String,
    pub http: reqwest::Client,
    _dir: TempDir,
}

/// Starts a server on the embedded store; `tune` adjusts the settings first.
pub async fn start(tune: impl FnOnce(&mut ServerSettings)) -> TestServer {
    let dir = TempDir::new().unwrap();
    let mut settings = ServerSettings::local("127.0.0.1:0".parse().unwrap(), dir.path().into());
    settings.http_workers = 2;
    tune(&mut settings);
    let running = server::start(settings).await.expect("server starts");
    TestServer {
        base: format!("http://{}", running.addr),
        running: Some(running),
        http: reqwest::Client::new(),
        _dir: dir,
    }
}

impl TestServer {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `POST /v1/traces` of `request` in protobuf.
    pub async fn post_otlp(&self, request: &ExportTraceServiceRequest) -> reqwest::Response {
        use prost::Message;
        self.http
            .post(self.url("/v1/traces"))
            .header("Content-Type", "application/x-protobuf")
            .body(request.encode_to_vec())
            .send()
            .await
            .unwrap()
    }

    /// The Prometheus text of `/metrics`.
    pub async fn metrics(&self) -> String {
        let resp = self.http.get(self.url("/metrics")).send().await.unwrap();
        resp.text().await.unwrap()
    }

    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        let resp = self.http.get(self.url(path)).send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Polls the anomaly list until `matches` holds for one of the first 500, or `timeout` passes.
    pub async fn wait_for_anomaly(
        &self,
        query: &str,
        timeout: Duration,
        matches: impl Fn(&Value) -> bool,
    ) -> Option<Value> {
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            let (status, body) = self
                .get_json(&format!("/api/anomalies?limit=500&{query}"))
                .await;
            assert_eq!(status, 200, "{body}");
            if let Some(found) = body["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|a| matches(a))
            {
                return Some(found.clone());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        None
    }

    /// The first incident matching `query` (`/api/incidents` parameters), waiting up to `timeout`.
    pub async fn wait_for_incident(&self, query: &str, timeout: Duration) -> Option<Value> {
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            let (status, body) = self.get_json(&format!("/api/incidents?{query}")).await;
            assert_eq!(status, 200, "{body}");
            if let Some(found) = body["items"].as_array().and_then(|items| items.first()) {
                return Some(found.clone());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        None
    }

    /// Stops the server and starts another on the same data directory.
    pub async fn restart(&mut self, tune: impl FnOnce(&mut ServerSettings)) {
        self.stop().await;
        let mut settings =
            ServerSettings::local("127.0.0.1:0".parse().unwrap(), self._dir.path().into());
        settings.http_workers = 2;
        tune(&mut settings);
        let running = server::start(settings).await.expect("server restarts");
        self.base = format!("http://{}", running.addr);
        self.running = Some(running);
    }

    /// The data directory of the embedded store.
    pub fn data_dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    pub async fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await;
        }
    }
}

pub fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

fn string_attr(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..KeyValue::default()
    }
}

/// A root SERVER span of `service`/`operation` starting at `start` and lasting `ms`.
pub fn server_span(n: u64, operation: &str, start: u64, ms: f64) -> Span {
    let mut trace_id = [0u8; 16];
    trace_id[..8].copy_from_slice(&(n + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15).to_be_bytes());
    trace_id[8..].copy_from_slice(&(n + 7).to_be_bytes());
    Span {
        trace_id: trace_id.to_vec(),
        span_id: (n + 1).to_be_bytes().to_vec(),
        name: operation.into(),
        kind: span::SpanKind::Server as i32,
        start_time_unix_nano: start,
        end_time_unix_nano: start + (ms * 1e6) as u64,
        ..Span::default()
    }
}

/// One export request of `spans` from `service`.
pub fn export(service: &str, spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![string_attr("service.name", service)],
                ..Resource::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }],
    }
}

/// The detectors' window (the default `window_seconds`).
pub const WINDOW_NANOS: u64 = 60_000_000_000;
/// Windows of ordinary traffic an operation learns from before its slow window (two are needed).
pub const LEARNED_WINDOWS: u64 = 3;

/// The start of a window far enough back that it is judged as soon as the server's clock reaches the
/// wall clock: a window is judged once closed and its traces complete, 60 s after its end.
pub fn judged_window_start() -> u64 {
    (now_nanos() / WINDOW_NANOS - 3) * WINDOW_NANOS
}

/// About 20 ms, varying a little with `i`.
fn ordinary_ms(i: u64) -> f64 {
    20.0 * (1.0 + 0.2 * ((i * 7919 % 100) as f64 / 100.0 - 0.5))
}

/// `n` spans of `operation` spread over the window starting at `window_start`, ids from `first_id`;
/// when `slow`, 9 in 10 take five times as long (a slowdown of most of the operation's requests).
pub fn window_spans(
    first_id: u64,
    operation: &str,
    n: u64,
    window_start: u64,
    slow: bool,
) -> Vec<Span> {
    (0..n)
        .map(|i| {
            let factor = if slow && i % 10 != 9 { 5.0 } else { 1.0 };
            server_span(
                first_id + i,
                operation,
                window_start + i * (WINDOW_NANOS / n),
                ordinary_ms(i) * factor,
            )
        })
        .collect()
}

/// A latency incident of `operation` on each of `services`, in one request in time order: for each,
/// [`LEARNED_WINDOWS`] windows of `n` ordinary spans of about 20 ms, then a window of `n` in which
/// most requests are five times slower, judged at once (a window-level `latency_degradation` that
/// pages). `4 n` spans per service.
pub fn slowdown(services: &[&str], operation: &str, n: u64) -> ExportTraceServiceRequest {
    let pairs: Vec<(&str, &str)> = services.iter().map(|s| (*s, operation)).collect();
    slowdown_of(&pairs, n)
}

/// [`slowdown`] of each (service, operation) of `keys`, windows interleaved so that no key's ordinary
/// windows arrive after another key's slow window has moved the server's clock past them.
pub fn slowdown_of(keys: &[(&str, &str)], n: u64) -> ExportTraceServiceRequest {
    let slow_window = judged_window_start();
    let mut resource_spans = Vec::new();
    for w in 0..=LEARNED_WINDOWS {
        let window_start = slow_window - (LEARNED_WINDOWS - w) * WINDOW_NANOS;
        for (s, (service, operation)) in keys.iter().enumerate() {
            let first_id = s as u64 * 1_000_000 + w * 10_000;
            let spans = window_spans(first_id, operation, n, window_start, w == LEARNED_WINDOWS);
            resource_spans.extend(export(service, spans).resource_spans);
        }
    }
    ExportTraceServiceRequest { resource_spans }
}

/// [`slowdown`] of one service: `4 n` spans, a HIGH or CRITICAL `latency_degradation` of `operation`.
pub fn slow_after_normal(service: &str, operation: &str, n: u64) -> ExportTraceServiceRequest {
    slowdown(&[service], operation, n)
}

/// Finding `n` of `service` (HIGH latency degradation, now), as a worker stores it.
pub fn stored_detection(n: i64, service: &str) -> store_pg::NewAnomaly {
    let t = chrono::Utc::now();
    store_pg::NewAnomaly {
        detection_key: format!("{service}-{n}"),
        fingerprint: format!("{service}-fp-{n}"),
        trace_id: format!("{n:032x}"),
        span_id: None,
        anomaly_type: detect_core::AnomalyType::Performance,
        anomaly_subtype: "latency_degradation".into(),
        severity: detect_core::Severity::High,
        description: format!("{service} {n} was slow"),
        detected_at: t,
        service_name: service.into(),
        operation: Some("POST /pay".into()),
        client: None,
        peer_service: None,
        observed_value: 900.0,
        expected_value: 90.0,
        score: 8.0,
        window_start: t,
        window_end: t,
        details: store_pg::AnomalyDetails::default(),
        notify: false,
    }
}
