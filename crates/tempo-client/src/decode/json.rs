//! OTLP/JSON decoding: one document or one JSON lines line, read into opentelemetry-proto's `TracesData`
//! with its serde support, so that JSON and protobuf share one converter.
//!
//! Two paths give the same `TracesData`. Strict OTLP/JSON (the spec's shape, as the Collector writes it)
//! is read straight from the bytes. Anything else (Tempo's answers, legacy keys, base64 ids, enum names)
//! is parsed into a `serde_json::Value`, normalized (see [`super::normalize`]) and then read; building
//! that `Value` costs about five times as much as the strict read, hence the fast path.

use detect_core::span::Span;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, TracesData};
use serde_json::Value;

use crate::decode::InputFormat;
use crate::decode::convert::{ConvertedSpans, convert_traces_data};
use crate::decode::normalize::{NotAnArray, normalize_resource_spans, take_resource_spans};
use crate::error::{DecodeError, Result};

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Reads one OTLP/JSON document (`TracesData`, `ExportTraceServiceRequest`, Tempo's v1 `{"batches":..}`
/// or v2 `{"trace":..}` trace-by-id answer) into `TracesData`. Empty input is an error.
pub fn traces_data_from_json(bytes: &[u8]) -> Result<TracesData> {
    if bytes.trim_ascii().is_empty() {
        return Err(DecodeError::EmptyInput {
            format: InputFormat::OtlpJson,
        });
    }
    parse(bytes, None)
}

/// Reads one line of OTLP/JSON lines (`line_no` is 1-based and goes into errors). A blank line holds
/// no spans.
pub fn traces_data_from_json_line(line: &str, line_no: usize) -> Result<TracesData> {
    parse_line(line.as_bytes(), line_no)
}

/// Decodes one OTLP/JSON document into spans, leaving out spans with unusable ids.
pub fn decode_json(bytes: &[u8]) -> Result<Vec<Span>> {
    traces_data_from_json(bytes).map(|data| convert_traces_data(&data).spans)
}

/// Decodes one line of OTLP/JSON lines into spans, so that a caller can stream a big file line by line.
/// `line_no` (1-based) names the line in errors; a blank line holds no spans.
pub fn decode_json_line(line: &str, line_no: usize) -> Result<Vec<Span>> {
    traces_data_from_json_line(line, line_no).map(|data| convert_traces_data(&data).spans)
}

/// What [`crate::decode()`] does with a whole OTLP/JSON document.
pub(crate) fn convert_json(bytes: &[u8]) -> Result<ConvertedSpans> {
    traces_data_from_json(bytes).map(|data| convert_traces_data(&data))
}

/// What [`crate::decode()`] does with one line of JSON lines input (bytes: the line need not be UTF-8
/// checked twice).
pub(crate) fn convert_json_line(line: &[u8], line_no: usize) -> Result<ConvertedSpans> {
    parse_line(line, line_no).map(|data| convert_traces_data(&data))
}

fn parse_line(line: &[u8], line_no: usize) -> Result<TracesData> {
    if line.trim_ascii().is_empty() {
        return Ok(TracesData::default());
    }
    parse(line, Some(line_no))
}

/// `line` is `None` for a single document and the 1-based line number for JSON lines.
fn parse(bytes: &[u8], line: Option<usize>) -> Result<TracesData> {
    let bytes = bytes.strip_prefix(UTF8_BOM).unwrap_or(bytes);
    if let Some(data) = parse_strict(bytes) {
        return Ok(data);
    }
    parse_normalized(bytes, line)
}

/// The fast path: `bytes` read as strict OTLP/JSON, when that succeeds and means what the normalizing
/// path would read. opentelemetry-proto accepts hex ids of any even length and ignores the legacy
/// `instrumentationLibrarySpans` key, while the normalizer reads hex only at an id's own length (else
/// base64) and keeps legacy spans; so a result with an id of another length, or a `ResourceSpans`
/// without `scopeSpans`, goes the normalizing way instead. Any other strict success is the same
/// `TracesData` (the normalizer leaves strict OTLP/JSON as it is), and a failure is not reported.
fn parse_strict(bytes: &[u8]) -> Option<TracesData> {
    let data: TracesData = serde_json::from_slice(bytes).ok()?;
    let same_as_normalized = data.resource_spans.iter().all(|rs| {
        !rs.scope_spans.is_empty()
            && rs.scope_spans.iter().flat_map(|ss| &ss.spans).all(|span| {
                matches!(span.trace_id.len(), 16 | 8)
                    && span.span_id.len() == 8
                    && matches!(span.parent_span_id.len(), 0 | 8)
            })
    });
    same_as_normalized.then_some(data)
}

fn parse_normalized(bytes: &[u8], line: Option<usize>) -> Result<TracesData> {
    let value: Value =
        serde_json::from_slice(bytes).map_err(|source| DecodeError::JsonSyntax { line, source })?;
    let Value::Object(mut root) = value else {
        return Err(DecodeError::JsonNotAnObject {
            line,
            found: json_type(&value),
        });
    };
    let list = take_resource_spans(&mut root)
        .map_err(|NotAnArray(key)| DecodeError::JsonResourceSpansNotArray { line, key })?;
    let resource_spans = list
        .into_iter()
        .enumerate()
        .map(|(index, mut value)| {
            normalize_resource_spans(&mut value);
            serde_json::from_value::<ResourceSpans>(value).map_err(|source| {
                DecodeError::JsonNotOtlp {
                    line,
                    index,
                    source,
                }
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(TracesData { resource_spans })
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use detect_core::span::{SpanId, SpanKind, SpanStatus, TraceId, UnixNanos};

    use super::*;

    /// The example of the OTLP/JSON spec (opentelemetry-proto `examples/trace.json`), cut down.
    const SPEC_EXAMPLE: &str = r#"{
      "resourceSpans": [{
        "resource": { "attributes": [{ "key": "service.name", "value": { "stringValue": "my.service" } }] },
        "scopeSpans": [{
          "scope": { "name": "my.library", "version": "1.0.0" },
          "spans": [{
            "traceId": "5B8EFFF798038103D269B633813FC60C",
            "spanId": "EEE19B7EC3C1B174",
            "parentSpanId": "EEE19B7EC3C1B173",
            "name": "I'm a server span",
            "startTimeUnixNano": "1544712660000000000",
            "endTimeUnixNano": "1544712661000000000",
            "kind": 2,
            "attributes": [{ "key": "my.span.attr", "value": { "stringValue": "some value" } }]
          }]
        }]
      }]
    }"#;

    #[test]
    fn spec_example_with_hex_ids_and_numeric_enums() {
        let spans = decode_json(SPEC_EXAMPLE.as_bytes()).unwrap();
        let [span] = spans.as_slice() else {
            panic!("expected one span, got {spans:?}");
        };
        assert_eq!(
            span.trace_id.to_string(),
            "5b8efff798038103d269b633813fc60c"
        );
        assert_eq!(span.span_id.to_string(), "eee19b7ec3c1b174");
        assert_eq!(
            span.parent_span_id.map(|id| id.to_string()).as_deref(),
            Some("eee19b7ec3c1b173")
        );
        assert_eq!(span.service, "my.service");
        assert_eq!(span.operation, "I'm a server span");
        assert_eq!(span.kind, SpanKind::Server);
        assert_eq!(span.status, SpanStatus::Unset);
        assert_eq!(span.start, UnixNanos(1_544_712_660_000_000_000));
        assert_eq!(span.duration_nanos, 1_000_000_000);
    }

    #[test]
    fn base64_ids_names_for_enums_and_ints_as_numbers() {
        let doc = r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{
            "traceId":"ScQQG7tAX3MTSaVaJDlfKw==","spanId":"ERERERERERE=","parentSpanId":"",
            "name":"op","kind":"SPAN_KIND_CLIENT","status":{"code":"STATUS_CODE_OK"},
            "startTimeUnixNano":1000,"endTimeUnixNano":1250,
            "attributes":[{"key":"http.response.status_code","value":{"intValue":404}}]}]}]}]}"#;
        let spans = decode_json(doc.as_bytes()).unwrap();
        let [span] = spans.as_slice() else {
            panic!("expected one span, got {spans:?}");
        };
        assert_eq!(
            span.trace_id.to_string(),
            "49c4101bbb405f731349a55a24395f2b"
        );
        assert_eq!(span.span_id, SpanId([0x11; 8]));
        assert_eq!(span.parent_span_id, None);
        assert_eq!(span.service, "unknown_service");
        assert_eq!(span.kind, SpanKind::Client);
        assert_eq!(span.status, SpanStatus::Ok);
        assert_eq!(span.duration_nanos, 250);
        assert_eq!(span.attributes.http_status_code, Some(404));
    }

    #[test]
    fn legacy_instrumentation_library_spans_and_unknown_fields() {
        let doc = r#"{"resourceSpans":[{"futureField":{"x":[1,2]},
            "resource":{"attributes":[{"key":"service.name","value":{"stringValue":"legacy"}}],"entityRefs":[]},
            "instrumentationLibrarySpans":[{"instrumentationLibrary":{"name":"old"},"spans":[{
              "traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0102030405060708",
              "name":"old op","kind":1,"somethingNew":true,"status":{"code":2,"deprecatedCode":1}}]}]}],
            "extra":"ignored"}"#;
        let spans = decode_json(doc.as_bytes()).unwrap();
        let [span] = spans.as_slice() else {
            panic!("expected one span, got {spans:?}");
        };
        assert_eq!(span.service, "legacy");
        assert_eq!(span.operation, "old op");
        assert_eq!(span.kind, SpanKind::Internal);
        assert_eq!(span.status, SpanStatus::Error);
        assert_eq!(
            span.trace_id,
            TraceId([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16])
        );
    }

    #[test]
    fn errors_say_what_and_where() {
        let err = decode_json(b"  \n ").unwrap_err();
        assert!(
            matches!(
                err,
                DecodeError::EmptyInput {
                    format: InputFormat::OtlpJson
                }
            ),
            "{err}"
        );

        let err = decode_json(b"[1,2]").unwrap_err();
        assert_eq!(
            err.to_string(),
            "otlp-json: expected a JSON object at the top level, found an array"
        );

        let err = decode_json_line(r#"{"resourceSpans":{}}"#, 4).unwrap_err();
        assert_eq!(
            err.to_string(),
            "otlp-jsonl line 4: resourceSpans is not an array"
        );

        let err = decode_json_line(
            r#"{"resourceSpans":[{},{"scopeSpans":[{"spans":[{"startTimeUnixNano":"soon"}]}]}]}"#,
            9,
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                DecodeError::JsonNotOtlp {
                    line: Some(9),
                    index: 1,
                    ..
                }
            ),
            "{err}"
        );
        assert!(
            err.to_string()
                .starts_with("otlp-jsonl line 9: resourceSpans[1] is not OTLP trace data: "),
            "{err}"
        );

        let err = decode_json(b"{\"resourceSpans\":[").unwrap_err();
        assert!(
            matches!(err, DecodeError::JsonSyntax { line: None, .. }),
            "{err}"
        );
    }

    #[test]
    fn strict_and_normalizing_paths_agree() {
        let strict = SPEC_EXAMPLE.as_bytes();
        let fast = parse_strict(strict).expect("the spec example is strict OTLP/JSON");
        assert_eq!(fast, parse_normalized(strict, None).unwrap());

        let legacy = br#"{"resourceSpans":[{"instrumentationLibrarySpans":[{"spans":[
            {"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0102030405060708"}]}]}]}"#;
        assert_eq!(parse_strict(legacy), None, "legacy spans would be lost");
        assert_eq!(
            convert_traces_data(&parse(legacy, None).unwrap())
                .spans
                .len(),
            1
        );

        let short_hex = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[
            {"traceId":"deadbeef","spanId":"0102030405060708"}]}]}]}"#;
        assert_eq!(
            parse_strict(short_hex),
            None,
            "8 characters are base64 for the normalizer"
        );
    }

    #[test]
    fn blank_lines_and_a_bom_are_fine() {
        assert!(decode_json_line("   ", 3).unwrap().is_empty());
        let mut doc = UTF8_BOM.to_vec();
        doc.extend_from_slice(SPEC_EXAMPLE.as_bytes());
        assert_eq!(decode_json(&doc).unwrap().len(), 1);
    }
}
