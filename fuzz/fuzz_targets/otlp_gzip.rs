//! libFuzzer entry point of [`tracewatch_fuzz::otlp_gzip`]; run it with `cargo xtask fuzz otlp_gzip`.
#![no_main]

tracewatch_fuzz::fuzz_main!(otlp_gzip);
