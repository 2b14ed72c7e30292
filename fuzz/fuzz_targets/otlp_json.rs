//! libFuzzer entry point of [`tracewatch_fuzz::otlp_json`]; run it with `cargo xtask fuzz otlp_json`.
#![no_main]

tracewatch_fuzz::fuzz_main!(otlp_json);
