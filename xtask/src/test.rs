//! `cargo xtask test`: the README's test command. Runs every workspace test, then the detection
//! quality gates (`eval --check` on generated traffic, `eval-real --check` on the real datasets) in release, because replaying an hour of traffic in a debug build
//! would take minutes for nothing.

use anyhow::{Context, Result, bail};
use std::process::{Command, ExitCode};

#[derive(clap::Args, Debug)]
pub struct TestArgs {
    /// Skip the detection-quality gate (unit and integration tests only).
    #[arg(long)]
    pub no_eval: bool,
}

pub fn run(args: &TestArgs) -> Result<ExitCode> {
    cargo(&["test", "--workspace", "--locked"])?;
    if !args.no_eval {
        release_xtask(&["eval", "--check"])?;
        // Real traces with injected faults; skipped, with a message, where the datasets are absent.
        release_xtask(&["eval-real", "--check"])?;
    }
    Ok(ExitCode::SUCCESS)
}

/// A task of this xtask, in release (replaying hours of traffic in a debug build would take minutes).
fn release_xtask(task: &[&str]) -> Result<()> {
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
    cargo(&args)
}

fn cargo(args: &[&str]) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    eprintln!("xtask test: cargo {}", args.join(" "));
    let status = Command::new(&cargo)
        .args(args)
        .status()
        .with_context(|| format!("cannot run {cargo}"))?;
    if !status.success() {
        bail!("cargo {} failed ({status})", args.join(" "));
    }
    Ok(())
}
