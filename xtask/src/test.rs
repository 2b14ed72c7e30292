//! `cargo xtask test`: the README's test command. Sets up what the tests need (`.ci/setup-test-env`:
//! PostgreSQL, Chromium, node and the browser test's packages, the shared datasets and Tempo; idempotent),
//! runs every workspace test, then the detection quality gates (`eval --check` on generated traffic,
//! the same one problem at a time over seeds 1–7, `eval-real --check` on the real datasets) in release,
//! because replaying hours of traffic in a debug build would take minutes for nothing.

use anyhow::{Context, Result, bail};
use std::process::{Command, ExitCode};

#[derive(clap::Args, Debug)]
pub struct TestArgs {
    /// Skip the detection-quality gate (unit and integration tests only).
    #[arg(long)]
    pub no_eval: bool,
    /// Skip the setup (installing and starting what the tests need).
    #[arg(long)]
    pub no_setup: bool,
}

pub fn run(args: &TestArgs) -> Result<ExitCode> {
    let env = if args.no_setup { Vec::new() } else { setup()? };
    cargo(&["test", "--workspace", "--locked"], &env)?;
    if !args.no_eval {
        release_xtask(&["eval", "--check"], &env)?;
        // Incidents and their origins, one problem at a time (issue 14), over seeds 1–7.
        release_xtask(
            &[
                "eval",
                "--one-at-a-time",
                "--seeds",
                "1,2,3,4,5,6,7",
                "--check",
            ],
            &env,
        )?;
        // Real traces with injected faults; skipped, with a message, where the datasets are absent.
        release_xtask(&["eval-real", "--check"], &env)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// What the setup exports for the tests: `KEY=value` pairs.
type Env = Vec<(String, String)>;

/// Runs `.ci/setup-test-env` and returns the `KEY=value` lines it prints, for every test and gate below.
fn setup() -> Result<Env> {
    let script = crate::eval::workspace_root()
        .join(".ci")
        .join("setup-test-env");
    eprintln!("xtask test: {}", script.display());
    let output = Command::new("bash")
        .arg(&script)
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("cannot run {}", script.display()))?;
    if !output.status.success() {
        bail!("{} failed ({})", script.display(), output.status);
    }
    let env: Env = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect();
    for (key, value) in &env {
        eprintln!("xtask test: {key}={value}");
    }
    Ok(env)
}

/// A task of this xtask, in release (replaying hours of traffic in a debug build would take minutes).
fn release_xtask(task: &[&str], env: &Env) -> Result<()> {
    let mut args = vec![
        "run",
        "--release",
        "--locked",
        "--quiet",
        "-p",
        "xtask",
        "--",
    ];
    args.extend_from_slice(task);
    cargo(&args, env)
}

fn cargo(args: &[&str], env: &Env) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    eprintln!("xtask test: cargo {}", args.join(" "));
    let status = Command::new(&cargo)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .status()
        .with_context(|| format!("cannot run {cargo}"))?;
    if !status.success() {
        bail!("cargo {} failed ({status})", args.join(" "));
    }
    Ok(())
}
