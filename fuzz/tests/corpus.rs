//! Every file of the committed corpus (`fuzz/corpus/<target>/`: seeds from tempo-client's recorded Tempo
//! answers, inputs libFuzzer found that reach new code, and every input that ever crashed a target,
//! named `crash-…`) through its target function, as an ordinary test: `cargo test -p tracewatch-fuzz`,
//! and so `cargo xtask test`.
//!
//! The heap is counted: each input may add at most [`budget`] bytes while it is decoded, the same
//! bound per input byte that the fuzz binaries enforce (`HEAP_LIMIT_BYTES` for `MAX_INPUT_BYTES`). An
//! allocation past it fails, which aborts this test binary with "memory allocation of N bytes failed".
//! That is why this file holds a single test: the budget is set around one input at a time, and
//! another test's thread would allocate inside it.

use std::alloc::System;
use std::path::{Path, PathBuf};

use cap::Cap;
use tracewatch_fuzz::proto_field as field;
use tracewatch_fuzz::{GZIP_LIMIT_BYTES, HEAP_LIMIT_BYTES, MAX_INPUT_BYTES, TARGETS};

#[global_allocator]
static ALLOCATOR: Cap<System> = Cap::new(System, usize::MAX);

/// The most heap one input of `len` bytes may add while a target runs on it: `per_byte` for each byte
/// it decodes, and 1 MiB.
fn budget(target: &str, len: usize, per_byte: usize) -> usize {
    // The gzip target decodes what it inflates: deflate expands at most about 1032 times, and the
    // target's limit stops it before that anyway.
    let decoded_len = if target == "otlp_gzip" {
        len.saturating_mul(1032).min(GZIP_LIMIT_BYTES)
    } else {
        len
    };
    per_byte * decoded_len + (1 << 20)
}

/// `fuzz/corpus`, or another folder laid out alike (one folder per target) named by
/// `TRACEWATCH_FUZZ_CORPUS`, or `<target dir>/fuzz-runs`, where `cargo xtask fuzz` leaves everything
/// the fuzzer kept (`<target>/corpus`).
fn corpus_dir() -> PathBuf {
    match std::env::var_os("TRACEWATCH_FUZZ_CORPUS") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus"),
    }
}

/// The heap budget per decoded input byte: what the fuzz binaries allow (`HEAP_LIMIT_BYTES` for
/// `MAX_INPUT_BYTES`), or `TRACEWATCH_FUZZ_HEAP_PER_BYTE` to measure how little the decoders need.
fn per_byte() -> usize {
    std::env::var("TRACEWATCH_FUZZ_HEAP_PER_BYTE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(HEAP_LIMIT_BYTES / MAX_INPUT_BYTES)
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

/// Inputs of the fuzzer's largest size made of the cheapest spans there are, the worst case for the
/// heap per input byte: each span costs the decoders a whole `Span` struct (a few hundred bytes).
fn worst_cases() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let n = MAX_INPUT_BYTES / 2 - 16;
    // TracesData { resource_spans: [{ scope_spans: [{ spans: [{}; n] }] }] }: two bytes a span.
    let spans: Vec<u8> = [0x12, 0x00].repeat(n);
    let proto = field(0x0a, &field(0x12, &spans[..spans.len() - 32]));
    let json_spans = vec!["{}"; MAX_INPUT_BYTES / 3 - 40].join(",");
    let json = format!(r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{json_spans}]}}]}}]}}"#);
    let usable =
        r#"{"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0102030405060708","name":"op"}"#;
    let usable_spans = vec![usable; MAX_INPUT_BYTES / (usable.len() + 1) - 1].join(",");
    let usable_json =
        format!(r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{usable_spans}]}}]}}]}}"#);
    let line = r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{},{},{},{},{},{},{},{}]}]}]}"#;
    let lines = vec![line; MAX_INPUT_BYTES / (line.len() + 1)].join("\n");
    vec![
        ("otlp_proto", "empty spans", proto.clone()),
        ("tempo_trace_by_id", "empty spans", proto),
        ("otlp_json", "empty spans", json.clone().into_bytes()),
        ("tempo_trace_by_id", "empty spans (JSON)", json.into_bytes()),
        ("otlp_json", "usable spans", usable_json.into_bytes()),
        ("json_lines", "empty spans", lines.into_bytes()),
    ]
}

#[test]
fn every_corpus_file_passes_its_target_within_the_heap_budget() {
    assert_eq!(budget("otlp_json", 0, 1024), 1 << 20);
    assert_eq!(
        budget(
            "otlp_json",
            MAX_INPUT_BYTES,
            HEAP_LIMIT_BYTES / MAX_INPUT_BYTES
        ),
        HEAP_LIMIT_BYTES + (1 << 20)
    );
    let per_byte = per_byte();
    let committed = std::env::var_os("TRACEWATCH_FUZZ_CORPUS").is_none();
    // Every folder is a target's, and every target has seeds.
    for entry in std::fs::read_dir(corpus_dir()).unwrap() {
        let name = entry.unwrap().file_name();
        let name = name.to_string_lossy();
        assert!(
            TARGETS.iter().any(|(target, _)| *target == name),
            "fuzz/corpus/{name} is no target's corpus"
        );
    }
    let mut crashes = 0;
    for (target, run) in TARGETS {
        let mut dir = corpus_dir().join(target);
        if !committed && dir.join("corpus").is_dir() {
            // `<target dir>/fuzz-runs/<target>/corpus`
            dir = dir.join("corpus");
        } else if !committed && !dir.is_dir() {
            continue;
        }
        let files = files(&dir);
        assert!(
            !committed || files.len() >= 2,
            "fuzz/corpus/{target} has too few seeds"
        );
        for file in files {
            let data = std::fs::read(&file).unwrap();
            assert!(
                data.len() <= MAX_INPUT_BYTES,
                "{} is longer than the fuzzer's max_len",
                file.display()
            );
            crashes += usize::from(
                file.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("crash-"),
            );
            let before = ALLOCATOR.allocated();
            ALLOCATOR
                .set_limit(before + budget(target, data.len(), per_byte))
                .unwrap();
            run(&data);
            ALLOCATOR.set_limit(usize::MAX).unwrap();
        }
    }
    // The worst cases, generated rather than committed (the largest input the fuzzer makes).
    for (target, what, data) in worst_cases() {
        assert!(data.len() <= MAX_INPUT_BYTES, "{target}: {what}");
        let run = TARGETS.iter().find(|(name, _)| *name == target).unwrap().1;
        let before = ALLOCATOR.allocated();
        ALLOCATOR
            .set_limit(before + budget(target, data.len(), per_byte))
            .unwrap();
        run(&data);
        ALLOCATOR.set_limit(usize::MAX).unwrap();
    }
    eprintln!("{crashes} crash regression inputs, heap budget {per_byte} bytes per input byte");
}
