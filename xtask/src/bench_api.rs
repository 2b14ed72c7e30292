//! `cargo xtask bench-api`: load on a real api-server from this second process, over loopback.
//!
//! 1. Builds api-server (release), makes a fresh PostgreSQL database and stores `--anomalies` rows.
//! 2. Starts api-server on it and waits for `/readyz`.
//! 3. `GET /api/anomalies` (first page, 50 rows) from `--connections` connections for `--seconds`:
//!    requests per second and latency percentiles.
//! 4. `POST /v1/traces`, protobuf, 1,000 spans a request with fresh ids each time (so traces never
//!    repeat): spans accepted per second, 429 answers, and the time until the detectors have caught up.
//!
//! Figures go to docs/PERFORMANCE.md by hand, with the command line that made them.

use crate::bench_support::{service_spans, str_attr};
use anyhow::{Context, Result, bail};
use chrono::{Duration as ChronoDuration, TimeZone, Utc};
use detect_core::{AnomalyType, Severity};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::{Span, span};
use prost::Message;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};
use store_pg::{AnomalyDetails, NewAnomaly, Repository};

#[derive(clap::Args, Debug)]
pub struct BenchApiArgs {
    /// Anomalies stored before the list is loaded.
    #[arg(long, default_value_t = 100_000)]
    pub anomalies: u32,
    /// Seconds of each load phase.
    #[arg(long, default_value_t = 15)]
    pub seconds: u64,
    /// Concurrent connections of each phase.
    #[arg(long, default_value_t = 32)]
    pub connections: usize,
    /// Serve every first page from the store (the server's first-page cache off).
    #[arg(long)]
    pub no_list_cache: bool,
    /// Spans in one OTLP request.
    #[arg(long, default_value_t = 1_000)]
    pub spans_per_request: u32,
    /// Also time the dashboard's first page in headless Chromium (needs Chromium, node, and
    /// `npm ci` in bins/api-server/tests/browser).
    #[arg(long)]
    pub browser: bool,
}

struct Server(Child);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn run(args: &BenchApiArgs) -> Result<std::process::ExitCode> {
    let binary = crate::bench_support::release_binary("api-server")?;
    // One worker thread: the other core is the server's.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    tempo_client::install_tls_provider();
    runtime.block_on(bench(args, &binary))?;
    Ok(std::process::ExitCode::SUCCESS)
}

async fn bench(args: &BenchApiArgs, binary: &std::path::Path) -> Result<()> {
    let db = store_pg::testing::TestDatabase::new().await;
    let store = db.store().await;
    let seeded = Instant::now();
    seed(&store, args.anomalies).await?;
    eprintln!(
        "bench-api: {} anomalies stored in {:.1} s",
        args.anomalies,
        seeded.elapsed().as_secs_f64()
    );
    drop(store);
    let port = free_port()?;
    let _server = Server(
        Command::new(binary)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .env("DATABASE_URL", &db.url)
            .env("RUST_LOG", "warn")
            .env("TRACEWATCH_MAX_QUEUED_SPANS", "2000000")
            .env(
                "TRACEWATCH_LIST_CACHE_MS",
                if args.no_list_cache { "0" } else { "1000" },
            )
            .stdout(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?,
    );
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.connections)
        .build()?;
    wait_ready(&client, &base).await?;

    let list = load(args, {
        let client = client.clone();
        let url = format!("{base}/api/anomalies");
        move |_| {
            let request = client.get(&url);
            async move { read(request).await }
        }
    })
    .await;
    list.print("GET /api/anomalies (first page of 50)", 1);
    if args.browser {
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../bins/api-server/tests/browser/first-page.mjs");
        let status = Command::new("node")
            .arg(&script)
            .args([&base, "10"])
            .status()
            .with_context(|| format!("cannot run node {}", script.display()))?;
        anyhow::ensure!(status.success(), "the dashboard timing failed");
    }

    let spans = args.spans_per_request;
    let counter = Arc::new(AtomicU64::new(1));
    let started = Instant::now();
    let intake = load(args, {
        let client = client.clone();
        let url = format!("{base}/v1/traces");
        move |_| {
            let first = counter.fetch_add(u64::from(spans), Ordering::Relaxed);
            let body = export(first, spans).encode_to_vec();
            let request = client
                .post(&url)
                .header("Content-Type", "application/x-protobuf")
                .body(body);
            async move { read(request).await }
        }
    })
    .await;
    intake.print("POST /v1/traces", u64::from(spans));
    let caught_up = wait_drained(&client, &base).await?;
    let accepted = intake.ok * u64::from(spans);
    eprintln!(
        "  detectors caught up {:.1} s after the load ended: {:.0} spans/s accepted and detected end to end",
        caught_up.as_secs_f64(),
        accepted as f64 / (started.elapsed().as_secs_f64())
    );
    Ok(())
}

async fn seed(store: &store_pg::PgStore, n: u32) -> Result<()> {
    let t0 = Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap();
    let severities = [
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];
    let mut i = 0;
    while i < n {
        let batch: Vec<NewAnomaly> = (i..(i + 5_000).min(n))
            .map(|k| {
                let t = t0 + ChronoDuration::seconds(i64::from(k) * 10);
                NewAnomaly {
                    detection_key: format!("bench-{k}"),
                    fingerprint: format!("bench-fp-{k}"),
                    trace_id: format!("{k:032x}"),
                    span_id: None,
                    anomaly_type: AnomalyType::Performance,
                    anomaly_subtype: "latency_spike".into(),
                    severity: severities[k as usize % 4],
                    description: format!(
                        "GET /items on svc-{} took 900 ms where 40 ms is typical",
                        k % 40
                    ),
                    detected_at: t,
                    service_name: format!("svc-{}", k % 40),
                    operation: Some("GET /items".into()),
                    client: None,
                    peer_service: None,
                    observed_value: 900.0,
                    expected_value: 40.0,
                    score: 8.0,
                    window_start: t,
                    window_end: t,
                    details: AnomalyDetails::default(),
                    notify: false,
                }
            })
            .collect();
        store.insert_anomalies(&batch).await?;
        i += batch.len() as u32;
    }
    Ok(())
}

/// Sends and reads the whole answer (so that the connection is kept for the next request).
async fn read(request: reqwest::RequestBuilder) -> reqwest::Result<u16> {
    let resp = request.send().await?;
    let status = resp.status().as_u16();
    resp.bytes().await?;
    Ok(status)
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

async fn wait_ready(client: &reqwest::Client, base: &str) -> Result<()> {
    for _ in 0..100 {
        if let Ok(r) = client.get(format!("{base}/readyz")).send().await
            && r.status().is_success()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("api-server did not become ready")
}

/// Waits until the server reports no span waiting for the detectors.
async fn wait_drained(client: &reqwest::Client, base: &str) -> Result<Duration> {
    let started = Instant::now();
    loop {
        let text = client
            .get(format!("{base}/metrics"))
            .send()
            .await?
            .text()
            .await?;
        let queued = text
            .lines()
            .find_map(|l| l.strip_prefix("tracewatch_intake_queued_spans "))
            .and_then(|v| v.trim().parse::<i64>().ok())
            .unwrap_or(0);
        if queued == 0 || started.elapsed() > Duration::from_secs(120) {
            return Ok(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

struct LoadResult {
    ok: u64,
    throttled: u64,
    other: u64,
    seconds: f64,
    latencies: Vec<Duration>,
}

impl LoadResult {
    fn print(&self, name: &str, items_per_request: u64) {
        let mut l = self.latencies.clone();
        l.sort();
        let pct = |p: f64| {
            l.get(((l.len() as f64 * p) as usize).min(l.len().saturating_sub(1)))
                .map_or(0.0, |d| d.as_secs_f64() * 1e3)
        };
        eprintln!(
            "{name}: {:.0} requests/s ({:.0} items/s) ok, {} answered 429, {} other; latency ms p50 {:.2} p99 {:.2} max {:.2}",
            self.ok as f64 / self.seconds,
            (self.ok * items_per_request) as f64 / self.seconds,
            self.throttled,
            self.other,
            pct(0.50),
            pct(0.99),
            pct(1.0),
        );
    }
}

/// Runs `request` from `connections` loops for `seconds`.
async fn load<F, Fut>(args: &BenchApiArgs, request: F) -> LoadResult
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = reqwest::Result<u16>> + Send,
{
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let started = Instant::now();
    let tasks: Vec<_> = (0..args.connections)
        .map(|c| {
            let request = request.clone();
            tokio::spawn(async move {
                let mut r = LoadResult {
                    ok: 0,
                    throttled: 0,
                    other: 0,
                    seconds: 0.0,
                    latencies: Vec::new(),
                };
                while Instant::now() < deadline {
                    let sent = Instant::now();
                    match request(c).await {
                        Ok(200) => r.ok += 1,
                        Ok(429) => r.throttled += 1,
                        _ => r.other += 1,
                    }
                    r.latencies.push(sent.elapsed());
                }
                r
            })
        })
        .collect();
    let mut total = LoadResult {
        ok: 0,
        throttled: 0,
        other: 0,
        seconds: 0.0,
        latencies: Vec::new(),
    };
    for t in tasks {
        if let Ok(r) = t.await {
            total.ok += r.ok;
            total.throttled += r.throttled;
            total.other += r.other;
            total.latencies.extend(r.latencies);
        }
    }
    total.seconds = started.elapsed().as_secs_f64();
    total
}

/// `n` spans with ids from `first` on: traces of 10 spans (a server root and nine children) over 20
/// services, starting now.
fn export(first: u64, n: u32) -> ExportTraceServiceRequest {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut by_service: Vec<Vec<Span>> = vec![Vec::new(); 20];
    for k in 0..u64::from(n) {
        let id = first + k;
        let trace = id / 10;
        let root = trace * 10;
        let mut trace_id = [0u8; 16];
        trace_id[..8].copy_from_slice(&trace.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_be_bytes());
        trace_id[8..].copy_from_slice(&trace.to_be_bytes());
        let service = (trace % 20) as usize;
        let duration = 1_000_000 + (id * 7_919 % 20_000_000);
        by_service[service].push(Span {
            trace_id: trace_id.to_vec(),
            span_id: id.max(1).to_be_bytes().to_vec(),
            parent_span_id: if id == root {
                Vec::new()
            } else {
                root.max(1).to_be_bytes().to_vec()
            },
            name: if id == root {
                "GET /items/{id}".into()
            } else {
                format!("call-{}", id % 10)
            },
            kind: if id == root {
                span::SpanKind::Server
            } else {
                span::SpanKind::Client
            } as i32,
            start_time_unix_nano: now,
            end_time_unix_nano: now + duration,
            attributes: if id == root {
                vec![
                    str_attr("http.route", "/items/{id}"),
                    str_attr("client.address", "198.51.100.7"),
                ]
            } else {
                Vec::new()
            },
            ..Span::default()
        });
    }
    ExportTraceServiceRequest {
        resource_spans: by_service
            .into_iter()
            .enumerate()
            .filter(|(_, spans)| !spans.is_empty())
            .map(|(s, spans)| service_spans(s, spans))
            .collect(),
    }
}
