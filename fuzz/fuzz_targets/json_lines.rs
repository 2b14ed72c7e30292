//! libFuzzer entry point of [`tracewatch_fuzz::json_lines`]; run it with `cargo xtask fuzz json_lines`.
#![no_main]

tracewatch_fuzz::fuzz_main!(json_lines);
