//! Fuzz targets for tracewatch's decoders: one plain function per target, each feeding arbitrary bytes
//! to the decoders exactly as tracewatch does and checking what must hold for any input. A failed check
//! or a panic is a finding.
//!
//! The same functions run two ways:
//! - as ordinary tests over the committed corpus (`tests/corpus.rs`, `fuzz/corpus/<target>/`), in
//!   `cargo test --workspace`;
//! - under libFuzzer, with the feature `libfuzzer` (the binaries in `fuzz_targets/`), through
//!   `cargo xtask fuzz <target> --minutes N`, which builds them with coverage instrumentation on stable.
//!
//! The allocation bound: under libFuzzer the heap is capped at [`HEAP_LIMIT_BYTES`] for inputs of up to
//! [`MAX_INPUT_BYTES`]; an allocation past the cap aborts, which libFuzzer reports as a crash.

use tempo_client::decode::{
    InputFormat, TempoApiVersion, decode, decode_gzip, decode_proto, decode_tempo_trace_proto,
    detect, traces_data_from_json, traces_data_from_tempo_proto,
};
use tempo_client::http::metrics::parse_query_range;
use tempo_client::http::search::{parse_search, parse_trace_id};
use tempo_client::{DEFAULT_MAX_SPANS_PER_BODY, DecodeOutcome, GzipError};

/// Longest input the fuzzer makes (`-max_len`).
pub const MAX_INPUT_BYTES: usize = 256 * 1024;

/// The most heap a fuzz target may hold at once, for any input up to [`MAX_INPUT_BYTES`] (1024 bytes
/// per input byte; the decoders' real need is far lower, see docs/PERFORMANCE.md). A length field
/// claiming gigabytes would go past it.
pub const HEAP_LIMIT_BYTES: usize = 256 * 1024 * 1024;

/// libFuzzer's `-rss_limit_mb` for `cargo xtask fuzz`: the heap cap plus room for libFuzzer's own
/// in-memory corpus and the binary.
pub const RSS_LIMIT_MB: usize = 1024;

/// A target's function: any bytes in, a panic (a failed check) for a finding.
pub type Target = fn(&[u8]);

/// Every target: its name (the binary in `fuzz_targets/` and the folder in `fuzz/corpus/`) and function.
pub const TARGETS: &[(&str, Target)] = &[
    ("otlp_proto", otlp_proto),
    ("otlp_json", otlp_json),
    ("json_lines", json_lines),
    ("tempo_trace_by_id", tempo_trace_by_id),
    ("tempo_search", tempo_search),
    ("otlp_gzip", otlp_gzip),
];

/// The decompressed-size limit of the gzip target: the api-server's default body limit is 16 MiB,
/// which would let a tiny bomb be decoded as 16 MiB of JSON, far past [`HEAP_LIMIT_BYTES`] by design
/// (decoding costs memory proportional to the body); the fuzz target keeps the decompressed body within
/// the same size as the other targets' inputs. The code path is the handler's own.
pub const GZIP_LIMIT_BYTES: usize = MAX_INPUT_BYTES;

/// A decoded span holds at least two bytes of its input (an empty protobuf `Span` is a tag and a
/// length, an empty JSON one is `{}`): more spans than half the input means spans made from nothing.
fn check_outcome(input_len: usize, outcome: &DecodeOutcome) {
    let spans = outcome.spans.len() + outcome.skipped_spans;
    assert!(
        spans <= input_len / 2,
        "{spans} spans (usable and skipped) from {input_len} bytes"
    );
}

/// A length-delimited protobuf field: its key byte, the length as a varint, the payload. For building
/// worst-case inputs by hand (the corpus test, the amplification example).
pub fn proto_field(key: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![key];
    let mut len = payload.len();
    while len >= 0x80 {
        out.push((len as u8) | 0x80);
        len >>= 7;
    }
    out.push(len as u8);
    out.extend_from_slice(payload);
    out
}

/// OTLP protobuf `TracesData` / `ExportTraceServiceRequest`, as `decode(.., OtlpProto)` reads it
/// (`/v1/traces` with `application/x-protobuf`, `tracewatch` file input): protobuf, then Tempo's v2 wrapper.
pub fn otlp_proto(data: &[u8]) {
    let _ = detect(data);
    let outcome = decode(data, InputFormat::OtlpProto);
    check_outcome(data.len(), &outcome);
    assert!(outcome.errors.len() <= 1);
    assert!(outcome.errors.is_empty() || outcome.spans.is_empty());
    // When the input is `TracesData`, decode() must give exactly what decode_proto gives.
    if let Ok(spans) = decode_proto(data) {
        assert!(outcome.errors.is_empty());
        assert_eq!(spans, outcome.spans);
    }
}

/// One OTLP/JSON document, as `decode(.., OtlpJson)` reads it (`/v1/traces` with `application/json`,
/// Tempo's JSON answers): the strict fast path and the normalizing path.
pub fn otlp_json(data: &[u8]) {
    let _ = detect(data);
    let outcome = decode(data, InputFormat::OtlpJson);
    check_outcome(data.len(), &outcome);
    assert!(outcome.errors.len() <= 1);
    assert!(outcome.errors.is_empty() || outcome.spans.is_empty());
    assert_eq!(
        traces_data_from_json(data).is_ok(),
        outcome.errors.is_empty()
    );
}

/// OTLP/JSON lines: every line decoded on its own, one error per bad line, blank lines skipped.
pub fn json_lines(data: &[u8]) {
    let outcome = decode(data, InputFormat::OtlpJsonLines);
    check_outcome(data.len(), &outcome);
    let lines = data.split(|&b| b == b'\n').count();
    assert!(outcome.errors.len() <= lines);
    // The streaming reader's entry point (one &str line at a time) agrees with decode() line by line.
    if let Ok(text) = std::str::from_utf8(data) {
        let mut spans = 0;
        let mut errors = 0;
        for (index, line) in text.split('\n').enumerate() {
            match tempo_client::decode_json_line(line, index + 1) {
                Ok(decoded) => spans += decoded.len(),
                Err(_) => errors += 1,
            }
        }
        assert_eq!(spans, outcome.spans.len());
        assert_eq!(errors, outcome.errors.len());
    }
}

/// Tempo's trace-by-id answers as the client reads them: protobuf for both API versions
/// (`decode_tempo_trace_proto`), and JSON (`decode(.., OtlpJson)`, v1 `{"batches":..}`, v2 `{"trace":..}`).
pub fn tempo_trace_by_id(data: &[u8]) {
    for version in [TempoApiVersion::V1, TempoApiVersion::V2] {
        if let Ok(spans) = decode_tempo_trace_proto(data, version) {
            assert!(spans.len() <= data.len() / 2);
            assert!(traces_data_from_tempo_proto(data, version).is_ok());
        }
    }
    if data.first() == Some(&b'{') {
        let outcome = decode(data, InputFormat::OtlpJson);
        check_outcome(data.len(), &outcome);
    }
}

/// Tempo's search (`/api/search`) and TraceQL metrics (`/api/metrics/query_range`) answers, and the
/// trace ids found in them.
pub fn tempo_search(data: &[u8]) {
    if let Ok((traces, _)) = parse_search(data) {
        assert!(traces.len() <= data.len() / 2);
    }
    if let Ok(series) = parse_query_range(data) {
        assert!(series.len() <= data.len() / 2);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse_trace_id(text);
    }
}

/// `POST /v1/traces` with `Content-Encoding: gzip`: the handler's bounded gunzip and decoding
/// ([`decode_gzip`]), in both of its formats.
pub fn otlp_gzip(data: &[u8]) {
    for format in [InputFormat::OtlpProto, InputFormat::OtlpJson] {
        match decode_gzip(data, GZIP_LIMIT_BYTES, format, DEFAULT_MAX_SPANS_PER_BODY) {
            Ok(outcome) => check_outcome(GZIP_LIMIT_BYTES, &outcome),
            Err(GzipError::TooLarge | GzipError::Corrupt(_) | GzipError::TooManySpans) => {}
        }
    }
}

/// What a target binary in `fuzz_targets/` holds: the capped allocator and libFuzzer's entry point.
#[cfg(feature = "libfuzzer")]
#[macro_export]
macro_rules! fuzz_main {
    ($target:ident) => {
        #[global_allocator]
        static ALLOCATOR: $crate::cap::Cap<std::alloc::System> =
            $crate::cap::Cap::new(std::alloc::System, $crate::HEAP_LIMIT_BYTES);

        $crate::libfuzzer_sys::fuzz_target!(|data: &[u8]| $crate::$target(data));
    };
}

#[cfg(feature = "libfuzzer")]
#[doc(hidden)]
pub use {cap, libfuzzer_sys};
