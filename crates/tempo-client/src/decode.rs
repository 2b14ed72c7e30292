//! Decoding trace data (OTLP/JSON, OTLP/JSON lines, OTLP protobuf, Tempo trace-by-id answers) into
//! detect-core [`Span`]s. Never panics on any input: bad input is a [`DecodeError`].
//!
//! Every path reads into opentelemetry-proto's `TracesData` first (submodules `json`, `proto`) and then
//! goes through one converter ([`convert_traces_data`]), so that JSON and protobuf of the same trace give
//! equal spans.

mod convert;
mod format;
mod gzip;
mod json;
mod normalize;
mod proto;
mod span_budget;

use detect_core::span::Span;

pub use convert::{ConvertedSpans, UNKNOWN_SERVICE, convert_resource_spans, convert_traces_data};
pub use format::{InputFormat, detect};
pub use gzip::{GzipError, decode_gzip, gunzip};
pub use json::{decode_json, decode_json_line, traces_data_from_json, traces_data_from_json_line};
pub use proto::{
    TempoApiVersion, decode_proto, decode_tempo_trace_proto, traces_data_from_proto,
    traces_data_from_tempo_proto,
};
pub use span_budget::{DEFAULT_MAX_SPANS_PER_BODY, spans_over};

use crate::error::{DecodeError, Result};

/// Everything [`decode()`] read from an input: the spans it could decode and what went wrong.
#[derive(Debug, Default)]
pub struct DecodeOutcome {
    pub spans: Vec<Span>,
    /// For JSON lines, one error per bad line (the good lines are still decoded); otherwise at most one
    /// error, and then no spans.
    pub errors: Vec<DecodeError>,
    /// Spans left out because their trace id or span id was missing, all zeros or of the wrong length.
    pub skipped_spans: usize,
}

impl DecodeOutcome {
    fn add(&mut self, result: Result<ConvertedSpans>) {
        match result {
            Ok(converted) => {
                self.spans.extend(converted.spans);
                self.skipped_spans += converted.skipped_spans;
            }
            Err(error) => self.errors.push(error),
        }
    }
}

/// Decodes a whole input in the given format (see [`detect`] to guess it).
///
/// - [`InputFormat::OtlpJson`]: one document; empty input is an error.
/// - [`InputFormat::OtlpJsonLines`]: one document per line; a bad line gives an error naming its 1-based
///   line number, blank lines are skipped.
/// - [`InputFormat::OtlpProto`]: OTLP `TracesData` / `ExportTraceServiceRequest` / Tempo v1 `Trace`, or,
///   when that fails, Tempo's v2 `TraceByIDResponse`. Empty input is a valid empty message: no spans.
pub fn decode(bytes: &[u8], format: InputFormat) -> DecodeOutcome {
    let mut outcome = DecodeOutcome::default();
    match format {
        InputFormat::OtlpJson => outcome.add(json::convert_json(bytes)),
        InputFormat::OtlpProto => outcome.add(proto::convert_any_proto(bytes)),
        InputFormat::OtlpJsonLines => {
            for (index, line) in bytes.split(|&b| b == b'\n').enumerate() {
                outcome.add(json::convert_json_line(line, index + 1));
            }
        }
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0102030405060708","name":"op"},{"traceId":"","spanId":"0102030405060708","name":"no trace id"}]}]}]}"#;

    #[test]
    fn json_lines_keep_good_lines_and_name_the_bad_one() {
        let input = format!("{LINE}\n{{\"resourceSpans\": [\n\n{LINE}\r\n");
        assert_eq!(detect(input.as_bytes()), InputFormat::OtlpJsonLines);
        let outcome = decode(input.as_bytes(), InputFormat::OtlpJsonLines);
        assert_eq!(outcome.spans.len(), 2);
        assert_eq!(outcome.skipped_spans, 2);
        let [error] = outcome.errors.as_slice() else {
            panic!("expected one error, got {:?}", outcome.errors);
        };
        assert_eq!(error.line(), Some(2));
        assert!(
            error
                .to_string()
                .starts_with("otlp-jsonl line 2: invalid JSON"),
            "{error}"
        );
    }

    #[test]
    fn a_bad_single_document_is_one_error_and_no_spans() {
        let outcome = decode(b"{\"resourceSpans\": 3}", InputFormat::OtlpJson);
        assert!(outcome.spans.is_empty());
        assert_eq!(outcome.errors.len(), 1);
    }

    #[test]
    fn empty_input_per_format() {
        let json = decode(b"", InputFormat::OtlpJson);
        assert!(matches!(
            json.errors.as_slice(),
            [DecodeError::EmptyInput { .. }]
        ));
        let lines = decode(b"", InputFormat::OtlpJsonLines);
        assert!(lines.errors.is_empty() && lines.spans.is_empty());
        let proto = decode(b"", InputFormat::OtlpProto);
        assert!(proto.errors.is_empty() && proto.spans.is_empty());
    }
}
