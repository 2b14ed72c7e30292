//! `detector-worker once` against a real Grafana Tempo (v3.0.3, `TEMPO_BIN` with `TEMPO_CONFIG`, which
//! `.ci/setup-test-env` unpacks and names; `cargo xtask test` passes them on): traffic with a known
//! slowdown and known failures is pushed over OTLP/HTTP, the worker reads it back through Tempo's
//! search, trace-by-id and TraceQL metrics APIs, and what it stores is checked. Without `TEMPO_BIN`
//! the test says it is skipped and passes. The fakes of `tempo_worker.rs` keep the failures a real
//! Tempo cannot be made to produce.

mod common;

use chrono::Utc;
use common::rows_of;
use prost::Message;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use store_pg::testing::TestDatabase;
use store_pg::{IncidentFilter, Repository, RunStatus};
use tempo_client::testing::one_span_trace;

const NANOS: u64 = 1_000_000_000;
const MINUTES: u64 = 12;
/// Requests a second of each service.
const RATE: u64 = 2;
const QUERY: &str = "http://127.0.0.1:3200";
const PUSH: &str = "http://127.0.0.1:4318/v1/traces";

fn http() -> reqwest::Client {
    tempo_client::http::install_tls_provider();
    reqwest::Client::new()
}

/// A Tempo process on a fresh data directory, stopped on drop.
struct RealTempo {
    child: Child,
    _data: store_pg::testing::TempDir,
}

impl Drop for RealTempo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_tempo() -> Option<RealTempo> {
    let (Ok(bin), Ok(config)) = (std::env::var("TEMPO_BIN"), std::env::var("TEMPO_CONFIG")) else {
        eprintln!(
            "SKIPPED: TEMPO_BIN and TEMPO_CONFIG are not set (cargo xtask test sets them from ../shared/tempo)"
        );
        return None;
    };
    let data = store_pg::testing::TempDir::new().unwrap();
    let child = Command::new(bin)
        .arg(format!("-config.file={config}"))
        .arg("-config.expand-env=true")
        .env("TEMPO_DATA", data.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("Tempo starts");
    let tempo = RealTempo { child, _data: data };
    let http = http();
    let deadline = Instant::now() + Duration::from_secs(90);
    while Instant::now() < deadline {
        let ready = http.get(format!("{QUERY}/ready")).send().await;
        if ready.is_ok_and(|r| r.status().is_success()) {
            return Some(tempo);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("Tempo was not ready within 90 s");
}

/// `RATE` requests a second of `GET /x` on `shop` and `cart` from `t0`, about 20 ms each; in minute
/// 8, nine in ten of both take five times as long; in minute 10, half of cart's fail.
fn traffic(t0: u64) -> Vec<opentelemetry_proto::tonic::trace::v1::TracesData> {
    (0..MINUTES * 60 * RATE * 2)
        .map(|n| {
            let (i, service) = (n / 2, if n % 2 == 0 { "shop" } else { "cart" });
            let start = t0 + i * NANOS / RATE + (n % 2) * NANOS / (4 * RATE);
            let minute = i / (60 * RATE);
            let slow = minute == 8 && i % 10 != 9;
            let failing = minute == 10 && service == "cart" && i % 2 == 0;
            let ms = 20.0
                * (1.0 + 0.2 * ((i * 7_919 % 100) as f64 / 100.0 - 0.5))
                * if slow { 5.0 } else { 1.0 };
            let mut id = [0u8; 16];
            id[..8].copy_from_slice(&(n + 1).wrapping_mul(0x2545_f491_4f6c_dd1d).to_be_bytes());
            id[8..].copy_from_slice(&(n + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15).to_be_bytes());
            one_span_trace(
                id,
                service,
                "GET /x",
                start,
                start + (ms * 1e6) as u64,
                failing,
            )
        })
        .collect()
}

/// The client address of the attack in [`attack`].
const ATTACKER: &str = "203.0.113.9";

/// In minute 6, `ATTACKER` tries 30 passwords on shop's `POST /login` (each answered 401) and asks
/// for two paths that climb out of the web root.
fn attack(t0: u64) -> Vec<opentelemetry_proto::tonic::trace::v1::TracesData> {
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
    let text = |key: &str, v: &str| KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(Value::StringValue(v.into())),
        }),
        ..KeyValue::default()
    };
    let number = |key: &str, v: i64| KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(Value::IntValue(v)),
        }),
        ..KeyValue::default()
    };
    (0..32u64)
        .map(|n| {
            let start = t0 + 6 * 60 * NANOS + n * NANOS + NANOS / 3;
            let mut id = [0u8; 16];
            id[..8].copy_from_slice(&(n + 1).wrapping_mul(0x51_7cc1_b727_220a).to_be_bytes());
            id[8..].copy_from_slice(&(n + 7).wrapping_mul(0x2545_f491_4f6c_dd1d).to_be_bytes());
            let (path, status) = match n {
                30 => ("/static/../../etc/passwd", 404),
                31 => ("/static/..%2f..%2fetc%2fshadow", 404),
                _ => ("/login", 401),
            };
            let mut trace =
                one_span_trace(id, "shop", "POST /login", start, start + 8_000_000, false);
            let span = &mut trace.resource_spans[0].scope_spans[0].spans[0];
            span.attributes = vec![
                text("client.address", ATTACKER),
                text("url.path", path),
                text("http.request.method", "POST"),
                number("http.response.status_code", status),
            ];
            trace
        })
        .collect()
}

/// Pushes the traces over OTLP/HTTP protobuf, a thousand a request.
async fn push(traces: Vec<opentelemetry_proto::tonic::trace::v1::TracesData>) {
    let http = http();
    for chunk in traces.chunks(1_000) {
        // An export request is a TracesData on the wire (field 1: resource spans).
        let batch = opentelemetry_proto::tonic::trace::v1::TracesData {
            resource_spans: chunk
                .iter()
                .flat_map(|t| t.resource_spans.clone())
                .collect(),
        };
        let resp = http
            .post(PUSH)
            .header("content-type", "application/x-protobuf")
            .body(batch.encode_to_vec())
            .send()
            .await
            .expect("Tempo takes OTLP");
        assert!(resp.status().is_success(), "push: {}", resp.status());
    }
}

/// Waits until Tempo's search finds the last minute's traces (about 10 s after the push).
async fn wait_searchable(t0: u64) {
    let http = http();
    let (start, end) = (
        (t0 / NANOS) + (MINUTES - 1) * 60,
        (t0 / NANOS) + MINUTES * 60,
    );
    let deadline = Instant::now() + Duration::from_secs(90);
    while Instant::now() < deadline {
        let found = http
            .get(format!("{QUERY}/api/search"))
            .query(&[("start", start.to_string()), ("end", end.to_string())])
            .query(&[("limit", "1000")])
            .send()
            .await
            .ok()
            .filter(|r| r.status().is_success());
        if let Some(resp) = found {
            let body: serde_json::Value = resp.json().await.unwrap_or_default();
            let n = body["traces"].as_array().map_or(0, Vec::len) as u64;
            if n >= 60 * RATE * 2 * 9 / 10 {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("the pushed traces did not become searchable within 90 s");
}

async fn once(db: &TestDatabase, t0: u64, fetch: &str) -> (bool, String) {
    common::once(QUERY, &db.url, (t0, t0 + MINUTES * 60 * NANOS), fetch).await
}

#[actix_web::test]
async fn the_worker_finds_what_was_pushed_into_a_real_tempo() {
    let Some(_tempo) = start_tempo().await else {
        return;
    };
    // Recent history: Tempo keeps span times within its ingestion slack (3 h in TEMPO_CONFIG).
    let now = Utc::now().timestamp() as u64;
    let t0 = (now - (MINUTES + 2) * 60) / 60 * 60 * NANOS;
    push(traffic(t0).into_iter().chain(attack(t0)).collect()).await;
    wait_searchable(t0).await;

    // Every trace whole from a few searches a window (the default): the slowdown, the failures and
    // the attack are found, and no trace is looked up.
    let searched = TestDatabase::new().await;
    let (ok, stderr) = once(&searched, t0, "search").await;
    assert!(ok, "{stderr}");
    let store = searched.store().await;
    let runs_searched = assert_every_finding(&store, t0, &stderr).await;
    assert_queries_select_traces(&store).await;
    for run in &runs_searched {
        assert!(
            run.tempo_queries.is_some_and(|q| (1..=4).contains(&q)),
            "{run:#?}"
        );
        assert_eq!(run.tempo_lookups, Some(0), "{run:#?}");
        assert!(run.tempo_bytes.is_some_and(|b| b > 0), "{run:#?}");
        assert!(run.tempo_seconds.is_some_and(|s| s > 0.0), "{run:#?}");
    }

    // Every trace looked up by id: the same findings.
    let db = TestDatabase::new().await;
    let (ok, stderr) = once(&db, t0, "all").await;
    assert!(ok, "{stderr}");
    let store = db.store().await;
    let runs = assert_every_finding(&store, t0, &stderr).await;
    let found = |runs: &[store_pg::RunRecord]| runs.iter().map(|r| r.anomalies).sum::<i64>();
    assert_eq!(
        found(&runs),
        found(&runs_searched),
        "a search gives the same spans as lookups"
    );
    // Each window's run says what reading Tempo cost: every trace of the window was looked up.
    let per_window = (60 * RATE * 2) as i64;
    for run in &runs {
        assert!(run.tempo_queries.is_some_and(|q| q >= 1), "{run:#?}");
        assert!(
            run.tempo_lookups.is_some_and(|l| l >= per_window * 9 / 10),
            "{run:#?}"
        );
        assert!(run.tempo_bytes.is_some_and(|b| b > 0), "{run:#?}");
        assert!(run.tempo_seconds.is_some_and(|s| s > 0.0), "{run:#?}");
    }
    let lookups_all: i64 = runs.iter().filter_map(|r| r.tempo_lookups).sum();

    // Counts from Tempo's TraceQL metrics, a sample of the traces read: the failures are still found.
    let sampled = TestDatabase::new().await;
    let (ok, stderr) = once(&sampled, t0, "sampled").await;
    assert!(ok, "{stderr}");
    let store = sampled.store().await;
    let runs = store.recent_runs(100).await.unwrap();
    assert!(
        runs.iter()
            .all(|r| r.count_source.as_deref() == Some("traceql-metrics")),
        "Tempo counted every window: {runs:#?}"
    );
    let failing = rows_of(&store, "cart", "error_rate_spike").await;
    assert_eq!(failing.len(), 1, "{stderr} {failing:#?}");
    // Security sees every request's entry span, from the search, though few traces are fetched.
    assert_attack_found(&store, &stderr).await;
    let lookups_sampled: i64 = runs.iter().filter_map(|r| r.tempo_lookups).sum();
    assert!(
        lookups_sampled * 4 < lookups_all,
        "the sample is a fraction of the traces: {lookups_sampled} of {lookups_all}"
    );
}

/// The slowdown of minute 8 in shop and cart, cart's failures, the attack, and an incident led by
/// cart are stored; every window has its succeeded run (returned).
async fn assert_every_finding(
    store: &store_pg::PgStore,
    t0: u64,
    stderr: &str,
) -> Vec<store_pg::RunRecord> {
    for service in ["shop", "cart"] {
        let slow = rows_of(store, service, "latency_degradation").await;
        assert_eq!(slow.len(), 1, "{service}: {stderr} {slow:#?}");
        let minute = (slow[0].window_start.unwrap().timestamp() as u64 - t0 / NANOS) / 60;
        assert_eq!(minute, 8, "{slow:#?}");
    }
    let failing = rows_of(store, "cart", "error_rate_spike").await;
    assert_eq!(failing.len(), 1, "{stderr} {failing:#?}");
    assert!(rows_of(store, "shop", "error_rate_spike").await.is_empty());
    assert_attack_found(store, stderr).await;
    let incidents = store
        .list_incidents(&IncidentFilter::default(), 100, None)
        .await
        .unwrap()
        .items;
    assert!(
        incidents.iter().any(|i| i.leading_origin() == Some("cart")),
        "{incidents:#?}"
    );
    let runs = store.recent_runs(100).await.unwrap();
    assert_eq!(runs.len() as u64, MINUTES, "{runs:#?}");
    assert!(
        runs.iter().all(|r| r.status == RunStatus::Succeeded),
        "{runs:#?}"
    );
    runs
}

/// Every stored finding's TraceQL query (`details.traceql`), run on the real Tempo over the finding's
/// window, is accepted and selects traces: each finding leads to its traces.
async fn assert_queries_select_traces(store: &store_pg::PgStore) {
    let rows = store
        .list_anomalies(&store_pg::AnomalyFilter::default(), 500, None)
        .await
        .unwrap()
        .items;
    assert!(!rows.is_empty());
    let http = http();
    for row in rows {
        let details = row.details.clone().unwrap_or_default();
        let query = details["traceql"]
            .as_str()
            .unwrap_or_else(|| panic!("{row:#?}"));
        let (Some(from), Some(to)) = (row.window_start, row.window_end) else {
            panic!("{row:#?}");
        };
        let resp = http
            .get(format!("{QUERY}/api/search"))
            .query(&[("q", query)])
            .query(&[
                ("start", (from.timestamp() - 60).to_string()),
                ("end", (to.timestamp() + 60).to_string()),
                ("limit", "20".to_string()),
            ])
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{query}: {}", resp.status());
        let body: serde_json::Value = resp.json().await.unwrap();
        let traces = body["traces"].as_array().map_or(0, Vec::len);
        assert!(traces > 0, "{query} selects nothing: {row:#?}");
    }
}

/// The password guessing and the path traversal of [`attack`] are stored, about the attacker.
async fn assert_attack_found(store: &store_pg::PgStore, stderr: &str) {
    for subtype in ["auth_failure_burst", "path_traversal"] {
        let found = rows_of(store, "shop", subtype).await;
        assert_eq!(found.len(), 1, "{subtype}: {stderr} {found:#?}");
        assert_eq!(found[0].client.as_deref(), Some(ATTACKER), "{found:#?}");
    }
}
