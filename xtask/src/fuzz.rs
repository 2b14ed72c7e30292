//! `cargo xtask fuzz <target>… --minutes N`: runs the decoders' libFuzzer targets (the `fuzz/`
//! workspace member) on the stable toolchain, one after another.
//!
//! Each target is built in release with debug assertions and overflow checks, and with the
//! coverage instrumentation cargo-fuzz asks rustc for (SanitizerCoverage through `-Cpasses=sancov-module`:
//! stable flags; no sanitizer, which would need nightly), for the host triple given explicitly so that
//! build scripts and proc macros stay uninstrumented, in a target directory of its own
//! (`<target dir>/instrumented`). It then runs over a scratch copy of the committed corpus
//! (`<target dir>/fuzz-runs/<target>/corpus`), so that what the fuzzer finds does not flood
//! `fuzz/corpus/`; crashes are written beside it (`crash-…`, `oom-…`, `timeout-…`). The heap cap is in
//! the target binary itself (tracewatch_fuzz::HEAP_LIMIT_BYTES); libFuzzer adds its RSS limit.
//! Prints, per target, runs, executions per second, coverage and peak RSS.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use tracewatch_fuzz::{MAX_INPUT_BYTES, RSS_LIMIT_MB, TARGETS};

/// The rustc flags cargo-fuzz passes for libFuzzer, less the sanitizer (nightly only).
const COVERAGE_FLAGS: &[&str] = &[
    "-Cpasses=sancov-module",
    "-Cllvm-args=-sanitizer-coverage-level=4",
    "-Cllvm-args=-sanitizer-coverage-inline-8bit-counters",
    "-Cllvm-args=-sanitizer-coverage-pc-table",
    "-Cllvm-args=-sanitizer-coverage-trace-compares",
    "--cfg",
    "fuzzing",
    "-Cdebug-assertions",
    "-Coverflow-checks",
];

#[derive(clap::Args, Debug)]
pub struct FuzzArgs {
    /// Targets to run, one after another (otlp_proto, otlp_json, json_lines, tempo_trace_by_id,
    /// tempo_search, otlp_gzip).
    pub targets: Vec<String>,
    /// Run every target.
    #[arg(long)]
    pub all: bool,
    /// Minutes per target.
    #[arg(long, default_value_t = 10.0)]
    pub minutes: f64,
    /// Longest input libFuzzer makes, in bytes.
    #[arg(long, default_value_t = MAX_INPUT_BYTES)]
    pub max_len: usize,
    /// Seconds one input may take before libFuzzer calls it a hang.
    #[arg(long, default_value_t = 10)]
    pub timeout: u32,
    /// Build the targets only.
    #[arg(long)]
    pub build_only: bool,
}

/// What one run reported.
#[derive(Default, Debug)]
struct RunStats {
    runs: u64,
    seconds: f64,
    cov: String,
    ft: String,
    corpus: String,
    peak_rss_mb: String,
    crash: Option<String>,
}

pub fn run(args: &FuzzArgs) -> Result<ExitCode> {
    let targets: Vec<&str> = if args.all {
        TARGETS.iter().map(|(name, _)| *name).collect()
    } else {
        args.targets.iter().map(String::as_str).collect()
    };
    if targets.is_empty() {
        bail!("name a target or give --all");
    }
    for target in &targets {
        if !TARGETS.iter().any(|(name, _)| name == target) {
            let known: Vec<&str> = TARGETS.iter().map(|(name, _)| *name).collect();
            bail!("unknown target {target}; the targets: {}", known.join(", "));
        }
    }
    let root = crate::eval::workspace_root();
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let binaries = build(&root, &target_dir, &targets)?;
    if args.build_only {
        return Ok(ExitCode::SUCCESS);
    }
    let mut results = Vec::new();
    for (target, binary) in targets.iter().zip(&binaries) {
        let stats = fuzz_one(&root, &target_dir, target, binary, args)?;
        results.push((*target, stats));
    }
    println!();
    println!("| target | minutes | runs | exec/s | cov | ft | corpus | peak RSS (MB) | result |");
    println!("|---|---|---|---|---|---|---|---|---|");
    let mut failed = false;
    for (target, stats) in &results {
        let exec_per_sec = if stats.seconds > 0.0 {
            stats.runs as f64 / stats.seconds
        } else {
            0.0
        };
        println!(
            "| {target} | {:.1} | {} | {:.0} | {} | {} | {} | {} | {} |",
            stats.seconds / 60.0,
            stats.runs,
            exec_per_sec,
            stats.cov,
            stats.ft,
            stats.corpus,
            stats.peak_rss_mb,
            stats.crash.as_deref().unwrap_or("no crash"),
        );
        failed |= stats.crash.is_some();
    }
    if failed {
        eprintln!(
            "a target failed: fix the decoder, then add the input as fuzz/corpus/<target>/crash-<name> \
             (tests/corpus.rs then runs it in `cargo test`)"
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn host_triple() -> Result<String> {
    let output = Command::new("rustc")
        .arg("-vV")
        .output()
        .context("cannot run rustc -vV")?;
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|line| line.strip_prefix("host: "))
        .map(str::to_owned)
        .context("rustc -vV names no host")
}

/// Builds the targets' binaries with coverage instrumentation; returns their paths.
fn build(root: &Path, target_dir: &Path, targets: &[&str]) -> Result<Vec<PathBuf>> {
    let triple = host_triple()?;
    let build_dir = target_dir.join("instrumented");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(&cargo);
    command
        .current_dir(root)
        .args(["build", "--release", "--locked", "-p", "tracewatch-fuzz"])
        .args(["--features", "libfuzzer", "--target", &triple])
        .arg("--target-dir")
        .arg(&build_dir)
        .env("RUSTFLAGS", COVERAGE_FLAGS.join(" "))
        // The instrumented build must not pick up flags meant for the ordinary one.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS");
    for target in targets {
        command.args(["--bin", target]);
    }
    eprintln!("xtask fuzz: building {} (instrumented)", targets.join(", "));
    let status = command
        .status()
        .with_context(|| format!("cannot run {cargo}"))?;
    if !status.success() {
        bail!("building the fuzz targets failed ({status})");
    }
    let bin_dir = build_dir.join(&triple).join("release");
    Ok(targets.iter().map(|target| bin_dir.join(target)).collect())
}

/// Fuzzes one target for `args.minutes` over a fresh scratch copy of its committed corpus.
fn fuzz_one(
    root: &Path,
    target_dir: &Path,
    target: &str,
    binary: &Path,
    args: &FuzzArgs,
) -> Result<RunStats> {
    let run_dir = target_dir.join("fuzz-runs").join(target);
    let corpus = run_dir.join("corpus");
    if corpus.exists() {
        std::fs::remove_dir_all(&corpus)
            .with_context(|| format!("cannot empty {}", corpus.display()))?;
    }
    std::fs::create_dir_all(&corpus)?;
    let committed = root.join("fuzz").join("corpus").join(target);
    for entry in std::fs::read_dir(&committed)
        .with_context(|| format!("cannot read {}", committed.display()))?
    {
        let path = entry?.path();
        if path.is_file() {
            std::fs::copy(&path, corpus.join(path.file_name().unwrap_or_default()))?;
        }
    }
    let log_path = run_dir.join("fuzz.log");
    let log = std::fs::File::create(&log_path)?;
    let seconds = (args.minutes * 60.0).round().max(1.0) as u64;
    eprintln!(
        "xtask fuzz: {target} for {seconds} s (max_len {} B, heap cap {} MiB, rss limit {RSS_LIMIT_MB} MB); log: {}",
        args.max_len,
        tracewatch_fuzz::HEAP_LIMIT_BYTES >> 20,
        log_path.display()
    );
    let mut artifact_prefix = run_dir.clone().into_os_string();
    artifact_prefix.push("/");
    let status = Command::new(binary)
        .current_dir(&run_dir)
        .arg(&corpus)
        .arg(format!("-max_total_time={seconds}"))
        .arg(format!("-max_len={}", args.max_len))
        .arg(format!("-rss_limit_mb={RSS_LIMIT_MB}"))
        // Enforced only with a sanitizer's malloc hooks; the binary's own heap cap is what holds here.
        .arg(format!(
            "-malloc_limit_mb={}",
            tracewatch_fuzz::HEAP_LIMIT_BYTES >> 20
        ))
        .arg(format!("-timeout={}", args.timeout))
        .arg("-print_final_stats=1")
        .arg({
            let mut prefix = std::ffi::OsString::from("-artifact_prefix=");
            prefix.push(&artifact_prefix);
            prefix
        })
        .stdout(Stdio::null())
        .stderr(log)
        .status()
        .with_context(|| format!("cannot run {}", binary.display()))?;
    let text = std::fs::read_to_string(&log_path).unwrap_or_default();
    let mut stats = parse_log(&text);
    if !status.success() {
        let artifact = text
            .lines()
            .find_map(|line| line.split("Test unit written to ").nth(1))
            .unwrap_or("no input written")
            .to_owned();
        let tail: Vec<&str> = text.lines().rev().take(40).collect();
        for line in tail.iter().rev() {
            eprintln!("  {line}");
        }
        stats.crash = Some(format!("FAILED ({status}): {artifact}"));
    }
    eprintln!(
        "xtask fuzz: {target}: {} runs in {:.0} s, cov {}, ft {}, corpus {}, peak RSS {} MB",
        stats.runs, stats.seconds, stats.cov, stats.ft, stats.corpus, stats.peak_rss_mb
    );
    Ok(stats)
}

/// Reads libFuzzer's final statistics and its last status line (`#N … cov: C ft: F corp: N/S …`).
fn parse_log(text: &str) -> RunStats {
    let mut stats = RunStats::default();
    for line in text.lines() {
        if let Some(value) = line.strip_prefix("stat::number_of_executed_units:") {
            stats.runs = value.trim().parse().unwrap_or(0);
        } else if let Some(value) = line.strip_prefix("stat::peak_rss_mb:") {
            value.trim().clone_into(&mut stats.peak_rss_mb);
        } else if let Some(rest) = line.strip_prefix("Done ") {
            // "Done 1584004 runs in 31 second(s)"
            if let Some(seconds) = rest.split(" runs in ").nth(1) {
                stats.seconds = seconds
                    .split_whitespace()
                    .next()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0.0);
            }
        } else if line.starts_with('#') && line.contains(" cov: ") {
            let mut words = line.split_whitespace();
            while let Some(word) = words.next() {
                let value = words.clone().next().unwrap_or_default().to_owned();
                match word {
                    "cov:" => stats.cov = value,
                    "ft:" => stats.ft = value,
                    "corp:" => stats.corpus = value,
                    _ => {}
                }
            }
        }
    }
    stats
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_libfuzzer_final_statistics() {
        let log = "#3\tINITED cov: 490 ft: 690 corp: 2/1659b exec/s: 0 rss: 28Mb\n\
                   #1048576\tpulse  cov: 700 ft: 2000 corp: 300/80Kb lim: 4096 exec/s: 50000 rss: 30Mb\n\
                   Done 1584004 runs in 31 second(s)\n\
                   stat::number_of_executed_units: 1584004\n\
                   stat::average_exec_per_sec:     51096\n\
                   stat::peak_rss_mb:              30\n";
        let stats = parse_log(log);
        assert_eq!(stats.runs, 1_584_004);
        assert_eq!(stats.seconds, 31.0);
        assert_eq!(stats.cov, "700");
        assert_eq!(stats.ft, "2000");
        assert_eq!(stats.corpus, "300/80Kb");
        assert_eq!(stats.peak_rss_mb, "30");
    }
}
