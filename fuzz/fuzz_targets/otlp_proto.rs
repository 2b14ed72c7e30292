//! libFuzzer entry point of [`tracewatch_fuzz::otlp_proto`]; run it with `cargo xtask fuzz otlp_proto`.
#![no_main]

tracewatch_fuzz::fuzz_main!(otlp_proto);
