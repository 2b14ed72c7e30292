//! Project tasks (`cargo xtask …`): generating labelled synthetic traces and evaluating detection
//! quality on them, running the tests, fuzzing the decoders, and loading a real api-server. Thin: parses the command line and calls the task's `run`.
//!
//! The load benches (`bench-api`, `bench-worker`) exist only with `--features bench-db`: they make
//! and drop a PostgreSQL database of their own, code that a normal build leaves out.

#[cfg(feature = "bench-db")]
mod bench_api;
#[cfg(feature = "bench-db")]
mod bench_support;
#[cfg(feature = "bench-db")]
mod bench_worker;
mod eval;
mod eval_real;
mod fuzz;
mod gen_traces;
mod test;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(name = "xtask", about = "tracewatch project tasks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Generate labelled synthetic OTLP traffic (JSON lines) and its labels file.
    GenTraces(gen_traces::GenArgs),
    /// Generate (or reuse) labelled data, run every detector over it and score the detections.
    Eval(eval::EvalArgs),
    /// Replay real traces with injected faults (../shared/datasets) and score faults found and noise.
    EvalReal(eval_real::EvalRealArgs),
    /// Fuzz the decoders (libFuzzer on stable) for N minutes per target: `fuzz --all --minutes 10`.
    Fuzz(fuzz::FuzzArgs),
    /// Run every test, then the detection-quality gate (the README's test command).
    Test(test::TestArgs),
    /// Load a real api-server from this process: the anomaly list at 100k rows, and OTLP intake.
    #[cfg(feature = "bench-db")]
    BenchApi(bench_api::BenchApiArgs),
    /// `detector-worker once` over an hour of 1M spans served by tempo-client's fake Tempo.
    #[cfg(feature = "bench-db")]
    BenchWorker(bench_worker::BenchWorkerArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::GenTraces(args) => gen_traces::run(&args).map(|_| ExitCode::SUCCESS),
        Command::Eval(args) => eval::run(&args),
        Command::EvalReal(args) => eval_real::run(&args),
        Command::Fuzz(args) => fuzz::run(&args),
        Command::Test(args) => test::run(&args),
        #[cfg(feature = "bench-db")]
        Command::BenchApi(args) => bench_api::run(&args),
        #[cfg(feature = "bench-db")]
        Command::BenchWorker(args) => bench_worker::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
