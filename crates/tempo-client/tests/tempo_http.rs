//! The Tempo client against a local HTTP server that answers as Tempo does (the recorded answers in
//! `tests/fixtures/`, from a real Tempo v3.0.3), including Tempo's failures: 500 and 429 (retried),
//! answers slower than the timeout, malformed JSON, unknown trace ids, an old Tempo without the v2
//! API, metrics turned off, and a window with more traces than one search may return.

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tempo_client::{SearchRequest, TempoClient, TempoConfig, TempoError};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// What the fake Tempo does, and what it saw.
#[derive(Default)]
struct Fake {
    /// Answer 500 to this many requests first.
    fail_first: AtomicU32,
    /// Answer 429 (Retry-After: 1) to this many requests first.
    throttle_first: AtomicU32,
    /// Sleep this long before answering search.
    slow_search: Mutex<Duration>,
    /// Answer search with this body instead of the fixture.
    search_body: Mutex<Option<Vec<u8>>>,
    /// No v2 API (as an old Tempo).
    v1_only: std::sync::atomic::AtomicBool,
    /// Metrics turned off / range too old.
    metrics_off: std::sync::atomic::AtomicBool,
    requests: AtomicU32,
    seen: Mutex<Vec<Seen>>,
}

/// One request as the fake saw it.
struct Seen {
    path: String,
    query: HashMap<String, String>,
    tenant: Option<String>,
    authorization: Option<String>,
}

fn take(counter: &AtomicU32) -> bool {
    counter
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

async fn tempo(req: HttpRequest, fake: web::Data<Fake>) -> HttpResponse {
    fake.requests.fetch_add(1, Ordering::SeqCst);
    let query: HashMap<String, String> =
        web::Query::<HashMap<String, String>>::from_query(req.query_string())
            .map(|q| q.into_inner())
            .unwrap_or_default();
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    fake.seen.lock().unwrap().push(Seen {
        path: req.path().to_owned(),
        query: query.clone(),
        tenant: header("X-Scope-OrgID"),
        authorization: header("Authorization"),
    });
    if take(&fake.fail_first) {
        return HttpResponse::InternalServerError().body("internal error");
    }
    if take(&fake.throttle_first) {
        return HttpResponse::TooManyRequests()
            .insert_header(("Retry-After", "1"))
            .body("slow down");
    }
    let path = req.path();
    let json = |body: Vec<u8>| {
        HttpResponse::Ok()
            .content_type("application/json")
            .body(body)
    };
    match path {
        "/ready" => HttpResponse::Ok().body("ready"),
        "/api/search/tags" => json(br#"{"tagNames":["http.method","service.name"]}"#.to_vec()),
        "/api/search" => {
            let slow = *fake.slow_search.lock().unwrap();
            if !slow.is_zero() {
                tokio::time::sleep(slow).await;
            }
            if let Some(body) = fake.search_body.lock().unwrap().clone() {
                return json(body);
            }
            // A window of more than 60 s holds "too many" traces: answer `limit` of them.
            let start: u64 = query["start"].parse().unwrap();
            let end: u64 = query["end"].parse().unwrap();
            let limit: usize = query["limit"].parse().unwrap();
            let n = if end - start > 60 { limit } else { 1 };
            let traces: Vec<String> = (0..n)
                .map(|i| format!(r#"{{"traceID":"{:x}{:04x}","rootServiceName":"svc","startTimeUnixNano":"{}","durationMs":5}}"#, start + 1, i, start * 1_000_000_000))
                .collect();
            json(format!(r#"{{"traces":[{}]}}"#, traces.join(",")).into_bytes())
        }
        "/api/metrics/query_range" => {
            if fake.metrics_off.load(Ordering::SeqCst) {
                return HttpResponse::InternalServerError()
                    .body("time range must be within last 20m0s");
            }
            json(fixture("metrics_query_range_rate.json"))
        }
        p if p.starts_with("/api/v2/traces/") => {
            if fake.v1_only.load(Ordering::SeqCst) {
                return HttpResponse::NotFound().body("404 page not found\n");
            }
            let id = &p["/api/v2/traces/".len()..];
            if id.starts_with("0000") {
                // Tempo v2's answer for an id it does not have.
                return json(fixture("trace_by_id_v2_unknown.body"));
            }
            HttpResponse::Ok()
                .content_type("application/protobuf")
                .body(fixture("trace_by_id_v2.pb"))
        }
        p if p.starts_with("/api/traces/") => json(fixture("trace_by_id_v1.json")),
        _ => HttpResponse::NotFound().body("404 page not found\n"),
    }
}

struct FakeTempo {
    fake: web::Data<Fake>,
    base: String,
    handle: actix_web::dev::ServerHandle,
}

async fn start() -> FakeTempo {
    let fake = web::Data::new(Fake::default());
    let data = fake.clone();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .default_service(web::to(tempo))
    })
    .workers(1)
    .disable_signals()
    .bind("127.0.0.1:0")
    .unwrap();
    let base = format!("http://{}", server.addrs()[0]);
    let server = server.run();
    let handle = server.handle();
    tokio::spawn(server);
    FakeTempo { fake, base, handle }
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
    let t = start().await;
    *t.fake.search_body.lock().unwrap() = Some(fixture("search_traceql_window.json"));
    let traces = client(&t.base).search(&window(1_000, 1_060)).await.unwrap();
    assert!(!traces.is_empty());
    assert!(traces.iter().all(|x| x.trace_id.to_string().len() == 32));
    assert_eq!(
        traces[0].trace_id.to_string(),
        "0140f1cdb7388cfa06a4e738bcd523dc"
    );
    {
        let seen = t.fake.seen.lock().unwrap();
        let first = &seen[0];
        assert_eq!(first.path, "/api/search");
        assert_eq!(first.query["start"], "1000");
        assert_eq!(first.query["end"], "1060");
        assert_eq!(first.query["q"], "{}");
        assert_eq!(first.query["spss"], "3");
        assert_eq!(first.tenant.as_deref(), Some("team-a"));
        assert_eq!(first.authorization.as_deref(), Some("Bearer tempo-secret"));
    }
    t.handle.stop(false).await;
}

#[actix_web::test]
async fn a_full_window_is_split_until_each_part_fits() {
    let t = start().await;
    let traces = client(&t.base).search_all(&window(0, 240)).await.unwrap();
    // 240 s split into four windows of 60 s, one trace each.
    assert_eq!(traces.len(), 4, "{traces:?}");
    let searched: Vec<(String, String)> = t
        .fake
        .seen
        .lock()
        .unwrap()
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
    t.handle.stop(false).await;
}

#[actix_web::test]
async fn failures_are_retried_then_reported_with_the_reason() {
    let t = start().await;
    let c = client(&t.base);
    // Two 500s, then an answer.
    t.fake.fail_first.store(2, Ordering::SeqCst);
    assert!(c.ready().await.unwrap());
    assert_eq!(t.fake.requests.load(Ordering::SeqCst), 3);

    // A 429 with Retry-After is waited for.
    t.fake.throttle_first.store(1, Ordering::SeqCst);
    let started = std::time::Instant::now();
    assert!(c.ready().await.unwrap());
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );

    // More failures than retries: the error says what and why.
    t.fake.fail_first.store(10, Ordering::SeqCst);
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
    t.fake.fail_first.store(0, Ordering::SeqCst);

    // Slower than the timeout, every time.
    *t.fake.slow_search.lock().unwrap() = Duration::from_secs(2);
    match c.search(&window(0, 60)).await {
        Err(TempoError::Timeout { attempts, .. }) => assert_eq!(attempts, 4),
        other => panic!("{other:?}"),
    }
    *t.fake.slow_search.lock().unwrap() = Duration::ZERO;

    // Malformed JSON is an error, not a panic or an empty answer.
    *t.fake.search_body.lock().unwrap() = Some(b"{\"traces\": [".to_vec());
    assert!(matches!(
        c.search(&window(0, 60)).await,
        Err(TempoError::Malformed { .. })
    ));
    t.handle.stop(false).await;
}

#[actix_web::test]
async fn traces_by_id_in_protobuf_unknown_ids_and_old_tempos() {
    let t = start().await;
    let c = client(&t.base);
    let id =
        tempo_client::http::search::parse_trace_id("49c4101bbb405f731349a55a24395f2b").unwrap();
    let trace = c.trace(&id).await.unwrap().expect("found");
    assert!(!trace.spans.is_empty());
    let path = {
        let seen = t.fake.seen.lock().unwrap();
        seen.last().unwrap().path.clone()
    };
    assert!(path.starts_with("/api/v2/traces/"));

    // v2 answers 200 with an empty trace for an id it does not have.
    let unknown = tempo_client::http::search::parse_trace_id("1").unwrap();
    assert!(c.trace(&unknown).await.unwrap().is_none());

    // An old Tempo: the v2 path is unknown, v1 answers (in JSON with base64 ids).
    t.fake.v1_only.store(true, Ordering::SeqCst);
    let trace = c.trace(&id).await.unwrap().expect("found through v1");
    assert!(!trace.spans.is_empty());
    let last = t.fake.seen.lock().unwrap().last().unwrap().path.clone();
    assert!(last.starts_with("/api/traces/"), "{last}");
    t.handle.stop(false).await;
}

#[actix_web::test]
async fn metrics_and_their_absence() {
    let t = start().await;
    let c = client(&t.base);
    let series = c
        .metrics_query_range("{} | rate() by (resource.service.name, name)", 0, 600, 60)
        .await
        .unwrap();
    assert_eq!(series[0].labels["resource.service.name"], "checkout-api");
    let q = t.fake.seen.lock().unwrap().last().unwrap().query.clone();
    assert_eq!(q["step"], "60s");
    t.fake.metrics_off.store(true, Ordering::SeqCst);
    match c.metrics_query_range("{} | rate()", 0, 600, 60).await {
        Err(TempoError::Status { body, .. }) => assert!(body.contains("20m0s"), "{body}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        c.search_tags().await.unwrap(),
        vec!["http.method", "service.name"]
    );
    t.handle.stop(false).await;
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
    let t = start().await;
    let https = t.base.replace("http://", "https://");
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
    assert_eq!(
        t.fake.requests.load(Ordering::SeqCst),
        0,
        "no plain request was made"
    );
    t.handle.stop(false).await;
}
