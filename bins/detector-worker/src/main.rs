//! detector-worker: runs tracewatch's detectors. Today: `replay` of OTLP files; continuous detection
//! from Grafana Tempo comes with the `run` command.

mod anomaly_json;
mod replay;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use detect_core::DetectionConfig;
use replay::{ReplayOptions, replay};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;
use tempo_client::InputFormat;

#[derive(Parser)]
#[command(version, about = "tracewatch detector worker")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run every detector over OTLP trace files; print anomalies as JSON lines on stdout.
    Replay {
        /// Input files, in event-time order (`-` for stdin).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Input format; detected from the first bytes when left out.
        #[arg(long, value_parser = ["otlp-json", "otlp-jsonl", "otlp-proto"])]
        format: Option<String>,
        /// A JSON object of configuration keys (the seed's `anomaly_detection_config` keys and more).
        #[arg(long)]
        config: Option<PathBuf>,
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
        Command::Replay {
            files,
            format,
            config,
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
            let (summary, engine) = replay(&options, &mut out)?;
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

fn load_config(path: &Path) -> Result<DetectionConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config {}", path.display()))?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("config {} is not valid JSON", path.display()))?;
    DetectionConfig::from_json(&value)
        .with_context(|| format!("config {} is invalid", path.display()))
}
