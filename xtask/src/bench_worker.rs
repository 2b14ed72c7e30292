//! `cargo xtask bench-worker`: `detector-worker once` over one hour held by the fake Tempo
//! (`tempo_client::testing`: search by window with `limit`, trace by id on the v2 path in protobuf),
//! into a fresh PostgreSQL database. The fake runs in this process, the worker in its own (release
//! build); the figure is spans detected per second of the worker's wall time. With `--real-tempo`, a
//! real Grafana Tempo instead (`real_tempo.rs`).

mod quality;
mod real_tempo;

use crate::bench_support::{service_spans, str_attr};
use anyhow::{Result, bail};
use opentelemetry_proto::tonic::trace::v1::{Span, TracesData, span};
use std::collections::BTreeMap;
use std::time::Instant;
use tempo_client::testing::{FakeTempo, Traffic};

#[derive(clap::Args, Debug)]
pub struct BenchWorkerArgs {
    /// Spans in the hour.
    #[arg(long, default_value_t = 1_000_000)]
    pub spans: u64,
    /// Spans per trace.
    #[arg(long, default_value_t = 20)]
    pub spans_per_trace: u64,
    /// Push the generator's traffic into a real Tempo (`TEMPO_BIN`, `TEMPO_CONFIG`) instead.
    #[arg(long)]
    pub real_tempo: bool,
    /// With `--real-tempo`: minutes of traffic.
    #[arg(long, default_value_t = 15)]
    pub minutes: u64,
    /// With `--real-tempo`: times the generator's default rate (15 requests a second).
    #[arg(long, default_value_t = 1.0)]
    pub rate_multiplier: f64,
    /// With `--real-tempo`: the `--trace-fetch` modes to run the worker in, one after the other.
    #[arg(long, value_delimiter = ',', default_value = "search")]
    pub fetch: Vec<String>,
}

const NANOS: u64 = 1_000_000_000;
/// 2026-01-05T10:00:00Z.
const T0: u64 = 1_767_607_200 * NANOS;

/// Traces of a root SERVER span on one of 20 services and children spread over five services.
fn hour(spans: u64, per_trace: u64) -> Traffic {
    let traces = (spans / per_trace).max(1);
    let gap = 3_600 * NANOS / traces;
    (0..traces)
        .map(|t| trace(t, T0 + t * gap, per_trace))
        .collect()
}

/// Trace `t`, starting at `start`, of `per_trace` spans.
fn trace(t: u64, start: u64, per_trace: u64) -> TracesData {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&(t + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15).to_be_bytes());
    id[8..].copy_from_slice(&(t + 1).to_be_bytes());
    let root_id = ((t + 1) << 8).to_be_bytes().to_vec();
    let mut by_service: BTreeMap<u64, Vec<Span>> = BTreeMap::new();
    for k in 0..per_trace {
        let service = if k == 0 { t % 20 } else { 20 + k % 5 };
        let duration = 1_000_000 + ((t * 7_919 + k * 104_729) % 20_000_000);
        by_service.entry(service).or_default().push(Span {
            trace_id: id.to_vec(),
            span_id: (((t + 1) << 8) + k).to_be_bytes().to_vec(),
            parent_span_id: if k == 0 { Vec::new() } else { root_id.clone() },
            name: if k == 0 {
                "GET /items/{id}".into()
            } else {
                format!("call-{}", k % 7)
            },
            kind: if k == 0 {
                span::SpanKind::Server
            } else {
                span::SpanKind::Client
            } as i32,
            start_time_unix_nano: start + k * 100_000,
            end_time_unix_nano: start + k * 100_000 + duration,
            attributes: if k == 0 {
                vec![
                    str_attr("http.route", "/items/{id}"),
                    str_attr("client.address", "198.51.100.9"),
                ]
            } else {
                Vec::new()
            },
            ..Span::default()
        });
    }
    TracesData {
        resource_spans: by_service
            .into_iter()
            .map(|(s, spans)| service_spans(s, spans))
            .collect(),
    }
}

pub fn run(args: &BenchWorkerArgs) -> Result<std::process::ExitCode> {
    if args.real_tempo {
        return real_tempo::run(args.minutes, 15.0 * args.rate_multiplier, &args.fetch);
    }
    let binary = crate::bench_support::release_binary("detector-worker")?;
    let made = Instant::now();
    let traffic = hour(args.spans, args.spans_per_trace);
    let traces = traffic.len() as u64;
    eprintln!(
        "bench-worker: {} traces, {} spans made in {:.1} s",
        traces,
        traces * args.spans_per_trace,
        made.elapsed().as_secs_f64()
    );
    // One thread: the fake Tempo's server has its own.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let db = store_pg::testing::TestDatabase::new().await;
        let tempo = FakeTempo::start(traffic)?;
        let rfc = |n: u64| {
            chrono::DateTime::<chrono::Utc>::from_timestamp_nanos(n as i64).to_rfc3339()
        };
        let started = Instant::now();
        let out = tokio::process::Command::new(&binary)
            .args(["once", "--from", &rfc(T0), "--to", &rfc(T0 + 3_600 * NANOS)])
            .env("TEMPO_ENDPOINT", &tempo.url)
            .env("DATABASE_URL", &db.url)
            // Every trace by id: the worker's own throughput on the fake, as recorded in PERFORMANCE.md.
            .env("TRACEWATCH_TRACE_FETCH", "all")
            .env("RUST_LOG", "warn")
            .output()
            .await?;
        let took = started.elapsed().as_secs_f64();
        if !out.status.success() {
            bail!("detector-worker failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        let spans = traces * args.spans_per_trace;
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
        eprintln!(
            "detector-worker once over the hour: {took:.1} s, {:.0} spans/s, {:.0} traces/s (fetches)",
            spans as f64 / took,
            traces as f64 / took
        );
        Ok(std::process::ExitCode::SUCCESS)
    })
}
