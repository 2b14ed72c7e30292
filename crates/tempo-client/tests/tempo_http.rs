//! The Tempo client against the fake Tempo (`tempo_client::testing`) answering with the recorded
//! answers in `tests/fixtures/` (from a real Tempo v3.0.3) and Tempo's failures: 500 and 429
//! (retried), answers slower than the timeout, malformed JSON, unknown trace ids, an old Tempo without
//! the v2 API, metrics turned off, and a window with more traces than one search may return.

use std::time::Duration;
use tempo_client::decode::{TempoApiVersion, traces_data_from_tempo_proto};
use tempo_client::testing::{FakeTempo, Reply, Route, Traffic, one_span_trace};
use tempo_client::{SearchRequest, SpanCount, TempoClient, TempoConfig, TempoError};

const NANOS: u64 = 1_000_000_000;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// The recorded trace (`trace_by_id_v2.pb`, id 0140f1cd…), and for search one made-up trace of 5 ms a
/// minute over the first four minutes of 1970, the last one failed.
fn start() -> FakeTempo {
    let recorded =
        traces_data_from_tempo_proto(&fixture("trace_by_id_v2.pb"), TempoApiVersion::V2).unwrap();
    let minutes = (0..4u64).map(|m| {
        let id = (u128::from(m + 1) << 64 | u128::from(m + 1)).to_be_bytes();
        let at = m * 60 * NANOS;
        one_span_trace(id, "svc", "GET /", at, at + 5_000_000, m == 3)
    });
    let traffic: Traffic = std::iter::once(recorded).chain(minutes).collect();
    FakeTempo::start(traffic).unwrap()
}

fn client(base: &str) -> TempoClient {
    TempoClient::new(TempoConfig {
        endpoint: base.to_owned(),
        timeout: Duration::from_millis(500),
        max_retries: 3,
        backoff_base: Duration::from_millis(10),
        tenant: Some("team-a".into()),
        authorization: Some("Bearer tempo-secret".into()),
        ..TempoConfig::default()
    })
    .unwrap()
}

fn window(start: u64, end: u64) -> SearchRequest {
    SearchRequest {
        query: "{}".into(),
        start,
        end,
        limit: 20,
        spans_per_span_set: 3,
    }
}

#[actix_web::test]
async fn search_sends_the_window_tenant_and_credentials_and_pads_ids() {
    let t = start();
    let recorded = fixture("search_traceql_window.json");
    t.answer(Route::Search, Some(Reply::json(recorded)));
    let traces = client(&t.url).search(&window(1_000, 1_060)).await.unwrap();
    assert!(!traces.is_empty());
    assert!(traces.iter().all(|x| x.trace_id.to_string().len() == 32));
    assert_eq!(
        traces[0].trace_id.to_string(),
        "0140f1cdb7388cfa06a4e738bcd523dc"
    );
    let first = &t.requests()[0];
    assert_eq!(first.path, "/api/search");
    assert_eq!(first.query["start"], "1000");
    assert_eq!(first.query["end"], "1060");
    assert_eq!(first.query["q"], "{}");
    assert_eq!(first.query["spss"], "3");
    assert_eq!(first.tenant.as_deref(), Some("team-a"));
    assert_eq!(first.authorization.as_deref(), Some("Bearer tempo-secret"));
    t.stop().await;
}

#[actix_web::test]
async fn a_full_window_is_split_until_each_part_fits() {
    let t = start();
    // One trace a minute and two an answer: 240 s and 120 s come back full.
    let request = SearchRequest {
        limit: 2,
        ..window(0, 240)
    };
    let traces = client(&t.url).search_all(&request).await.unwrap();
    // 240 s split into four windows of 60 s, one trace each.
    assert_eq!(traces.len(), 4, "{traces:?}");
    let searched: Vec<(String, String)> = t
        .requests()
        .iter()
        .map(|s| (s.query["start"].clone(), s.query["end"].clone()))
        .collect();
    assert!(
        searched.contains(&("0".into(), "60".into())),
        "{searched:?}"
    );
    assert!(
        searched.contains(&("180".into(), "240".into())),
        "{searched:?}"
    );
    t.stop().await;
}

#[actix_web::test]
async fn failures_are_retried_then_reported_with_the_reason() {
    let t = start();
    let c = client(&t.url);
    // Two 500s, then an answer.
    t.fail_next(2, Reply::text(500, "internal error"));
    assert!(c.ready().await.unwrap());
    assert_eq!(t.requests().len(), 3);

    // A 429 with Retry-After is waited for.
    t.fail_next(1, Reply::throttled(1));
    let started = std::time::Instant::now();
    assert!(c.ready().await.unwrap());
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );

    // More failures than retries: the error says what and why.
    t.fail_next(10, Reply::text(500, "internal error"));
    match c.search(&window(0, 60)).await {
        Err(TempoError::Status {
            status: 500,
            body,
            request,
        }) => {
            assert_eq!(body, "internal error");
            assert!(request.contains("/api/search"), "{request}");
        }
        other => panic!("{other:?}"),
    }
    t.stop_failing();

    // Slower than the timeout, every time.
    t.delay(Route::Search, Duration::from_secs(2));
    match c.search(&window(0, 60)).await {
        Err(TempoError::Timeout { attempts, .. }) => assert_eq!(attempts, 4),
        other => panic!("{other:?}"),
    }
    t.delay(Route::Search, Duration::ZERO);

    // Malformed JSON is an error, not a panic or an empty answer.
    t.answer(Route::Search, Some(Reply::json("{\"traces\": [")));
    assert!(matches!(
        c.search(&window(0, 60)).await,
        Err(TempoError::Malformed { .. })
    ));
    t.stop().await;
}

#[actix_web::test]
async fn traces_by_id_in_protobuf_unknown_ids_and_old_tempos() {
    let t = start();
    let c = client(&t.url);
    let id =
        tempo_client::http::search::parse_trace_id("0140f1cdb7388cfa06a4e738bcd523dc").unwrap();
    let trace = c.trace(&id).await.unwrap().expect("found");
    assert!(!trace.spans.is_empty());
    let path = t.requests().last().unwrap().path.clone();
    assert!(path.starts_with("/api/v2/traces/"));

    // v2 answers 200 with an empty trace for an id it does not have.
    let unknown = tempo_client::http::search::parse_trace_id("1").unwrap();
    assert!(c.trace(&unknown).await.unwrap().is_none());

    // An old Tempo: the v2 path is unknown, v1 answers (in JSON with base64 ids, as recorded for
    // trace 49c4…).
    t.answer(Route::TraceV2, Some(Reply::unknown_path()));
    let recorded = fixture("trace_by_id_v1.json");
    t.answer(Route::TraceV1, Some(Reply::json(recorded)));
    let id =
        tempo_client::http::search::parse_trace_id("49c4101bbb405f731349a55a24395f2b").unwrap();
    let trace = c.trace(&id).await.unwrap().expect("found through v1");
    assert!(!trace.spans.is_empty());
    let last = t.requests().last().unwrap().path.clone();
    assert!(last.starts_with("/api/traces/"), "{last}");
    t.stop().await;
}

#[actix_web::test]
async fn metrics_and_their_absence() {
    let t = start();
    let c = client(&t.url);
    let recorded = fixture("metrics_query_range_rate.json");
    t.answer(Route::Metrics, Some(Reply::json(recorded)));
    let series = c
        .metrics_query_range("{} | rate() by (resource.service.name, name)", 0, 600, 60)
        .await
        .unwrap();
    assert_eq!(series[0].labels["resource.service.name"], "checkout-api");
    let q = t.requests().last().unwrap().query.clone();
    assert_eq!(q["step"], "60s");
    t.answer(Route::Metrics, Some(Reply::metrics_out_of_range()));
    match c.metrics_query_range("{} | rate()", 0, 600, 60).await {
        Err(TempoError::Status { body, .. }) => assert!(body.contains("20m0s"), "{body}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        c.search_tags().await.unwrap(),
        vec!["http.method", "service.name"]
    );
    t.stop().await;
}

#[actix_web::test]
async fn span_counts_are_what_the_fake_holds() {
    let t = start();
    let counts = client(&t.url).span_counts(60, 240).await.unwrap();
    let expected = SpanCount {
        service: "svc".into(),
        operation: "GET /".into(),
        spans: 3,
        errors: 1,
    };
    assert_eq!(counts, vec![expected]);
    assert_eq!(t.count(Route::Metrics), 2);
    t.stop().await;
}

#[test]
fn bad_settings_are_refused() {
    let bad = TempoClient::new(TempoConfig {
        endpoint: "tempo:3200".into(),
        ..TempoConfig::default()
    });
    assert!(matches!(bad, Err(TempoError::Config(m)) if m.contains("http://")));
}

#[actix_web::test]
async fn https_endpoints_speak_tls() {
    // The fake speaks plain HTTP: a TLS handshake with it fails, as a transport error (not a panic,
    // and not a silent fall back to plain HTTP).
    let t = start();
    let https = t.url.replace("http://", "https://");
    let c = TempoClient::new(TempoConfig {
        endpoint: https,
        max_retries: 0,
        ..TempoConfig::default()
    })
    .unwrap();
    match c.ready().await {
        Err(TempoError::Transport { .. }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(t.requests().len(), 0, "no plain request was made");
    t.stop().await;
}

/// xtask's bench-worker runs the fake in a plain tokio runtime, without actix's.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn the_fake_runs_in_a_plain_tokio_runtime() {
    let t = start();
    assert!(client(&t.url).ready().await.unwrap());
    t.stop().await;
}
