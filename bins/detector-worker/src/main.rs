//! detector-worker: runs tracewatch's detectors: `run` (continuous detection from Grafana Tempo),
//! `once` (a range of windows from Tempo, then exit) and `replay` (OTLP files, offline).

mod incident_lines;
mod metrics;
mod replay;
mod shard;
mod tempo_window;
mod windows;
mod worker;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use detect_core::DetectionConfig;
use incident_lines::IncidentLines;
use replay::{ReplayOptions, replay};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tempo_client::InputFormat;

#[derive(Parser)]
#[command(version, about = "tracewatch detector worker")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where the worker reads from and writes to.
#[derive(clap::Args)]
struct TempoArgs {
    /// Tempo's HTTP API, for example http://tempo:3200.
    #[arg(long, env = "TEMPO_ENDPOINT")]
    tempo_endpoint: String,
    /// Tenant sent as X-Scope-OrgID.
    #[arg(long, env = "TEMPO_TENANT")]
    tempo_tenant: Option<String>,
    /// Authorization header value for Tempo (for example `Bearer …`). Never printed.
    #[arg(long, env = "TEMPO_AUTHORIZATION", hide_env_values = true)]
    tempo_authorization: Option<String>,
    /// Seconds before a Tempo request is given up (then retried).
    #[arg(long, env = "TEMPO_TIMEOUT_SECONDS", default_value_t = 30)]
    tempo_timeout_seconds: u64,
    /// Trace fetches in flight at once.
    #[arg(long, env = "TEMPO_MAX_CONCURRENT_FETCHES", default_value_t = 16)]
    tempo_max_concurrent_fetches: usize,
    /// PostgreSQL URL; the embedded store when unset. Never printed.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Directory of the embedded store.
    #[arg(long, env = "TRACEWATCH_DATA_DIR", default_value = store_pg::DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
    /// This worker's share of the services, K/N (root service hashed with FNV-1a).
    #[arg(long, env = "TRACEWATCH_SHARD", default_value = "0/1")]
    shard: shard::Shard,
    /// `search`: every trace of a window whole from a few searches (every span with the attributes
    /// detection reads; exact counts; every detector). `all`: every trace fetched by id (one lookup a
    /// trace). `sampled`: counts from TraceQL metrics, the traces the sampling rule keeps fetched,
    /// and every entry span from the search for security analysis.
    #[arg(
        long,
        env = "TRACEWATCH_TRACE_FETCH",
        value_enum,
        default_value = "search"
    )]
    trace_fetch: windows::TraceFetch,
}

#[derive(Subcommand)]
enum Command {
    /// Detect continuously: process each window of Tempo's traces once it has closed.
    Run {
        #[command(flatten)]
        tempo: TempoArgs,
        /// Seconds between rounds.
        #[arg(long, env = "TRACEWATCH_INTERVAL_SECONDS", default_value_t = 10)]
        interval_seconds: u64,
        /// Seconds spans may take to reach Tempo; a window is processed once its end is this far past.
        #[arg(long, env = "TRACEWATCH_INGESTION_LAG_SECONDS", default_value_t = 300)]
        lag_seconds: u64,
        /// Seconds the stream lease lasts without renewal: how soon a standby takes over a dead worker.
        #[arg(long, env = "TRACEWATCH_LEASE_SECONDS", default_value_t = 60)]
        lease_seconds: u64,
        /// Serve the worker's metrics for Prometheus at `http://ADDR/metrics` (for example
        /// `0.0.0.0:9187`): windows, spans, and Tempo queries, lookups, bytes and seconds.
        #[arg(long, env = "TRACEWATCH_METRICS_LISTEN")]
        metrics_listen: Option<std::net::SocketAddr>,
    },
    /// Process every window of a time range from Tempo, in order, then exit.
    Once {
        #[command(flatten)]
        tempo: TempoArgs,
        /// RFC 3339 start of the range.
        #[arg(long)]
        from: chrono::DateTime<chrono::Utc>,
        /// RFC 3339 end of the range (exclusive).
        #[arg(long)]
        to: chrono::DateTime<chrono::Utc>,
        /// Also write every detection the detectors made to this file, one JSON object per line as
        /// `replay` prints them, before the store folds them into rows (an audit of a backfill, and
        /// what `cargo xtask bench-worker` scores as `eval` scores the replay).
        #[arg(long)]
        detections: Option<PathBuf>,
    },
    /// Run every detector over OTLP trace files; print anomalies as JSON lines on stdout.
    Replay {
        /// Input files, in event-time order (`-` for stdin).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Input format; detected from the content when left out (gzip is decompressed first).
        #[arg(long, value_parser = ["otlp-json", "otlp-jsonl", "otlp-proto"])]
        format: Option<String>,
        /// A JSON object of configuration keys (the seed's `anomaly_detection_config` keys and more).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Also write the incidents the anomalies form to this file, one JSON object per line, each as
        /// it stands when it closes (or at the end of the input), probable origins best first.
        #[arg(long)]
        incidents: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Run {
            tempo,
            interval_seconds,
            lag_seconds,
            lease_seconds,
            metrics_listen,
        } => {
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(async {
                let detection = detection(&tempo).await?;
                if let Some(addr) = metrics_listen {
                    metrics::serve(detection.metrics.clone(), addr)
                        .with_context(|| format!("serving metrics on {addr}"))?;
                    tracing::info!(%addr, "metrics at /metrics");
                }
                let stop = Arc::new(AtomicBool::new(false));
                let flag = stop.clone();
                tokio::spawn(async move {
                    shutdown_signal().await;
                    tracing::info!("stopping after the current window");
                    flag.store(true, Ordering::SeqCst);
                });
                let settings = worker::RunSettings {
                    interval: Duration::from_secs(interval_seconds.max(1)),
                    lag: Duration::from_secs(lag_seconds),
                    lease_ttl: Duration::from_secs(lease_seconds.max(2)),
                };
                worker::run(detection, settings, stop).await
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Once {
            tempo,
            from,
            to,
            detections,
        } => {
            anyhow::ensure!(to > from, "--to must be after --from");
            let detections = match detections {
                Some(path) => Some(std::io::BufWriter::new(
                    std::fs::File::create(&path)
                        .with_context(|| format!("cannot write {}", path.display()))?,
                )),
                None => None,
            };
            let runtime = tokio::runtime::Runtime::new()?;
            let total = runtime.block_on(async {
                let mut detection = detection(&tempo).await?;
                detection.detections_out = detections;
                worker::once(&mut detection, from, to).await
            })?;
            eprintln!(
                "once: {} traces, {} spans, {} anomalies ({} new or merged)",
                total.traces, total.spans, total.anomalies, total.stored
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Replay {
            files,
            format,
            config,
            incidents,
        } => {
            let config = match config {
                Some(path) => load_config(&path)?,
                None => DetectionConfig::default(),
            };
            let format = format
                .map(|f| f.parse::<InputFormat>())
                .transpose()
                .context("bad --format")?;
            let options = ReplayOptions {
                inputs: files,
                format,
                config,
            };
            let started = Instant::now();
            let stdout = std::io::stdout().lock();
            let mut out = std::io::BufWriter::new(stdout);
            let incidents = incidents
                .map(|path| {
                    let file = std::fs::File::create(&path)
                        .with_context(|| format!("cannot create {}", path.display()))?;
                    let out: Box<dyn Write> = Box::new(std::io::BufWriter::new(file));
                    anyhow::Ok(IncidentLines::new(out))
                })
                .transpose()?;
            let (summary, engine) = replay(&options, &mut out, incidents)?;
            out.flush()?;
            let stats = engine.stats();
            let mut err = std::io::stderr().lock();
            for e in summary.input_errors.iter().take(20) {
                writeln!(err, "input error: {e}")?;
            }
            if summary.input_errors.len() > 20 {
                writeln!(
                    err,
                    "… and {} more input errors",
                    summary.input_errors.len() - 20
                )?;
            }
            let elapsed = started.elapsed().as_secs_f64();
            writeln!(
                err,
                "replay: {spans} spans in {elapsed:.2} s ({rate:.0} spans/s); {late} late, {skipped} skipped (bad ids), \
                 {windows} windows closed, {traces} traces analysed (sampling {sampling}); {n} anomalies",
                spans = stats.spans,
                rate = stats.spans as f64 / elapsed.max(1e-9),
                late = stats.late_spans,
                skipped = summary.skipped_spans,
                windows = stats.windows_closed,
                traces = stats.traces_analysed,
                sampling = if engine.config().sampling_enabled {
                    format!("{:.0} %", engine.config().sampling_ratio * 100.0)
                } else {
                    "off".into()
                },
                n = stats.anomalies,
            )?;
            for ((kind, severity), n) in &summary.by_type {
                writeln!(err, "  {kind:<11} {severity:<8} {n}")?;
            }
            if summary.incidents > 0 {
                writeln!(err, "  {} incidents", summary.incidents)?;
            }
            if summary.input_errors.is_empty() {
                Ok(ExitCode::SUCCESS)
            } else {
                writeln!(
                    err,
                    "error: {} input errors (anomalies above are from the readable input)",
                    summary.input_errors.len()
                )?;
                Ok(ExitCode::from(1))
            }
        }
    }
}

/// The store, the Tempo client and an engine with the stored configuration.
async fn detection(args: &TempoArgs) -> Result<windows::Detection> {
    init_logging();
    let store = store_pg::Store::open(args.database_url.as_deref(), &args.data_dir)
        .await
        .context("cannot open the store")?;
    let tempo = tempo_client::TempoClient::new(tempo_client::TempoConfig {
        endpoint: args.tempo_endpoint.clone(),
        timeout: Duration::from_secs(args.tempo_timeout_seconds.max(1)),
        max_concurrent_fetches: args.tempo_max_concurrent_fetches,
        tenant: args.tempo_tenant.clone(),
        authorization: args.tempo_authorization.clone(),
        ..tempo_client::TempoConfig::default()
    })?;
    use store_pg::Repository;
    let config = store
        .load_config()
        .await
        .context("cannot load the configuration")?;
    let (engine, restored) = windows::load_engine(&store, args.shard, config).await?;
    let tracker = windows::load_incidents(&store, args.shard).await?;
    let notify_min_severity = detect_core::Severity::High;
    if args.trace_fetch == windows::TraceFetch::Sampled {
        tracing::info!(
            "trace fetch: sampled (counts from TraceQL metrics, traces by the sampling rule, every entry span for security from the search)"
        );
    }
    Ok(windows::Detection {
        shard: args.shard,
        store,
        tempo,
        engine,
        incidents: store_pg::IncidentRecorder::new(tracker, notify_min_severity),
        notify_min_severity,
        fetch: args.trace_fetch,
        last_window_spans: 0,
        metrics: Arc::default(),
        detections_out: None,
        holder: format!(
            "detector-worker:{}:{}",
            std::process::id(),
            uuid::Uuid::new_v4()
        ),
        is_stream: true,
        catch_up: restored,
    })
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
    else {
        let _ = interrupt.await;
        return;
    };
    tokio::select! {
        _ = interrupt => {}
        _ = term.recv() => {}
    }
}

fn load_config(path: &Path) -> Result<DetectionConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config {}", path.display()))?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("config {} is not valid JSON", path.display()))?;
    DetectionConfig::from_json(&value)
        .with_context(|| format!("config {} is invalid", path.display()))
}
