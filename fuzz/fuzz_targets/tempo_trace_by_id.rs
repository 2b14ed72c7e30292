//! libFuzzer entry point of [`tracewatch_fuzz::tempo_trace_by_id`]; run it with `cargo xtask fuzz tempo_trace_by_id`.
#![no_main]

tracewatch_fuzz::fuzz_main!(tempo_trace_by_id);
