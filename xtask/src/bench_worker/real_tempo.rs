//! `cargo xtask bench-worker --real-tempo`: the generator's traffic (`gen-traces`, its event time moved
//! to the last minutes) pushed over OTLP/HTTP into a real Grafana Tempo (`TEMPO_BIN`, `TEMPO_CONFIG`:
//! `.ci/setup-test-env` prints them), then `detector-worker once` over it, reading every trace and then
//! the sample: the worker's wall time and what its windows' run records say reading Tempo cost.

use anyhow::{Context, Result, bail};
use serde_json::Value;
use std::io::BufRead;
use std::time::{Duration, Instant};

const NANOS: u64 = 1_000_000_000;
const QUERY: &str = "http://127.0.0.1:3200";
const PUSH: &str = "http://127.0.0.1:4318/v1/traces";

/// Moves every `…TimeUnixNano` of an OTLP JSON value by `shift` nanoseconds.
fn shift_times(value: &mut Value, shift: u64) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if key.ends_with("TimeUnixNano") {
                    let t = match v {
                        Value::String(s) => s.parse::<u64>().ok(),
                        Value::Number(n) => n.as_u64(),
                        _ => None,
                    };
                    if let Some(t) = t {
                        *v = Value::String((t + shift).to_string());
                    }
                } else {
                    shift_times(v, shift);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| shift_times(v, shift)),
        _ => {}
    }
}

/// Per anomaly type: labels found, findings right, F1.
fn quality_line(scores: &[(detect_core::AnomalyType, crate::eval::scoring::TypeScore)]) -> String {
    let parts: Vec<String> = scores
        .iter()
        .map(|(t, s)| {
            format!(
                "{} {} of {} labels found, {} of {} findings right or side effects (F1 {:.2})",
                t.as_str(),
                s.labels_detected,
                s.labels,
                s.true_positives + s.side_effects + s.tails,
                s.detections,
                s.f1
            )
        })
        .collect();
    parts.join("; ")
}

struct Tempo(std::process::Child);

impl Drop for Tempo {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn run(minutes: u64, rate: f64, fetches: &[String]) -> Result<std::process::ExitCode> {
    let (bin, config) = match (std::env::var("TEMPO_BIN"), std::env::var("TEMPO_CONFIG")) {
        (Ok(b), Ok(c)) => (b, c),
        _ => bail!("set TEMPO_BIN and TEMPO_CONFIG (bash .ci/setup-test-env prints them)"),
    };
    let worker = crate::bench_support::release_binary("detector-worker")?;
    let mut lines = Vec::new();
    let mut labels = Vec::new();
    crate::gen_traces::generate(
        1,
        minutes,
        rate,
        crate::gen_traces::Spacing::Dense,
        &mut lines,
        &mut labels,
    )?;
    let now = chrono::Utc::now().timestamp() as u64;
    // The traffic ends two minutes ago, on a minute.
    let t0 = (now - (minutes + 2) * 60) / 60 * 60 * NANOS;
    let shift = t0 - crate::gen_traces::EPOCH_NANOS;
    let labels = super::quality::Labels::parse(&labels, shift)?;
    let fetches = fetches.to_vec();
    let data = store_pg::testing::TempDir::new()?;
    let _tempo = Tempo(
        std::process::Command::new(&bin)
            .arg(format!("-config.file={config}"))
            .arg("-config.expand-env=true")
            .env("TEMPO_DATA", data.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .context("starting Tempo")?,
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        tempo_client::install_tls_provider();
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(90);
        while !http
            .get(format!("{QUERY}/ready"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            if Instant::now() > deadline {
                bail!("Tempo was not ready within 90 s");
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let pushed = Instant::now();
        let (mut spans, mut requests) = (0u64, 0u64);
        for line in lines.lines() {
            let mut request: Value = serde_json::from_str(&line?)?;
            shift_times(&mut request, shift);
            spans += request.to_string().matches("\"spanId\"").count() as u64;
            requests += 1;
            let resp = http
                .post(PUSH)
                .header("content-type", "application/json")
                .body(request.to_string())
                .send()
                .await?;
            if !resp.status().is_success() {
                bail!("Tempo refused a push: {}", resp.status());
            }
        }
        eprintln!(
            "bench-worker --real-tempo: {minutes} min at rate {rate}: {spans} spans in {requests} requests pushed in {:.1} s",
            pushed.elapsed().as_secs_f64()
        );
        // A pushed trace is searchable about 10 s later.
        tokio::time::sleep(Duration::from_secs(20)).await;
        let rfc = |n: u64| chrono::DateTime::<chrono::Utc>::from_timestamp_nanos(n as i64).to_rfc3339();
        for fetch in &fetches {
            let db = store_pg::testing::TestDatabase::new().await;
            let detections = data.path().join(format!("detections-{fetch}.jsonl"));
            let started = Instant::now();
            let out = tokio::process::Command::new(&worker)
                .args(["once", "--from", &rfc(t0), "--to", &rfc(t0 + minutes * 60 * NANOS)])
                .arg("--detections")
                .arg(&detections)
                .env("TEMPO_ENDPOINT", QUERY)
                .env("DATABASE_URL", &db.url)
                .env("TRACEWATCH_TRACE_FETCH", fetch)
                .env("RUST_LOG", "warn")
                .output()
                .await?;
            let took = started.elapsed().as_secs_f64();
            if !out.status.success() {
                bail!("detector-worker failed: {}", String::from_utf8_lossy(&out.stderr));
            }
            use store_pg::Repository;
            let store = db.store().await;
            let runs = store.recent_runs(500).await?;
            let sum = |f: fn(&store_pg::RunRecord) -> Option<i64>| -> i64 { runs.iter().filter_map(f).sum() };
            let seconds: f64 = runs.iter().filter_map(|r| r.tempo_seconds).sum();
            let anomalies: i64 = runs.iter().map(|r| r.anomalies).sum();
            eprintln!(
                "  --trace-fetch {fetch}: {took:.1} s for {} windows ({:.0} spans/s); Tempo: {} queries, {} lookups ({:.0}/s), {:.1} MB, {seconds:.1} s waited (summed); {anomalies} anomalies",
                runs.len(),
                spans as f64 / took,
                sum(|r| r.tempo_queries),
                sum(|r| r.tempo_lookups),
                sum(|r| r.tempo_lookups) as f64 / took,
                sum(|r| r.tempo_bytes) as f64 / 1e6,
            );
            eprintln!("    the detections (as `eval` judges the replay's):");
            let scores = labels.score_detections(&std::fs::read(&detections)?, 60 * NANOS)?;
            eprintln!("    quality of the detections: {}", quality_line(&scores));
            eprintln!("    the stored rows (a row folds one finding's detections):");
            let scores = labels.score(&store, 60 * NANOS).await?;
            eprintln!("    quality of the stored rows: {}", quality_line(&scores));
        }
        Ok(std::process::ExitCode::SUCCESS)
    })
}
