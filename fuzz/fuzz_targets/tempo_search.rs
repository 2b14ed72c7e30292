//! libFuzzer entry point of [`tracewatch_fuzz::tempo_search`]; run it with `cargo xtask fuzz tempo_search`.
#![no_main]

tracewatch_fuzz::fuzz_main!(tempo_search);
