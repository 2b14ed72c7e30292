//! Decoding the trace-by-id answers recorded from a real Tempo (tests/fixtures, see its README), and
//! inputs that must not break the decoder.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::path::Path;

use detect_core::span::{Span, SpanId, SpanKind, SpanStatus, UnixNanos};
use tempo_client::{
    DecodeError, InputFormat, TempoApiVersion, decode, decode_json, decode_proto,
    decode_tempo_trace_proto, detect,
};

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn span_id(hex: &str) -> SpanId {
    let bytes = hex::decode(hex).expect("test id is hex");
    SpanId::from_slice(&bytes).expect("test id is 8 bytes")
}

fn by_operation<'a>(spans: &'a [Span], operation: &str) -> &'a Span {
    spans
        .iter()
        .find(|span| span.operation == operation)
        .unwrap_or_else(|| panic!("no span {operation:?} in {spans:?}"))
}

/// Decodes a whole fixture as `decode()` does after `detect()`, which must find no error.
fn decode_fixture(name: &str, expected_format: InputFormat) -> Vec<Span> {
    let bytes = fixture(name);
    assert_eq!(detect(&bytes), expected_format, "{name}");
    let outcome = decode(&bytes, expected_format);
    assert!(outcome.errors.is_empty(), "{name}: {:?}", outcome.errors);
    assert_eq!(outcome.skipped_spans, 0, "{name}");
    outcome.spans
}

/// The curl-pushed trace of `trace_by_id_v1.json` and `trace_by_id_v2.json`.
fn assert_curl_trace(spans: &[Span]) {
    assert_eq!(spans.len(), 2);
    let server = by_operation(spans, "GET /checkout");
    assert_eq!(
        server.trace_id.to_string(),
        "49c4101bbb405f731349a55a24395f2b"
    );
    assert_eq!(server.span_id, span_id("1111111111111111"));
    assert_eq!(server.parent_span_id, None);
    assert_eq!(server.service, "frontend");
    assert_eq!(server.kind, SpanKind::Server);
    assert_eq!(server.status, SpanStatus::Error);
    assert_eq!(server.start, UnixNanos(1_795_544_865_096_794_907));
    assert_eq!(server.duration_nanos, 1_500_000_000);
    assert_eq!(server.attributes.http_method.as_deref(), Some("GET"));
    assert_eq!(server.attributes.http_status_code, Some(500));
    assert!(server.is_error());

    let db = by_operation(spans, "SELECT orders");
    assert_eq!(db.trace_id, server.trace_id);
    assert_eq!(db.span_id, span_id("2222222222222222"));
    assert_eq!(db.parent_span_id, Some(server.span_id));
    assert_eq!(db.kind, SpanKind::Client);
    assert_eq!(db.status, SpanStatus::Unset);
    assert_eq!(db.duration_nanos, 1_200_000_000);
    assert_eq!(db.attributes.db_system.as_deref(), Some("postgresql"));
}

#[test]
fn tempo_v1_json_with_batches_base64_ids_and_enum_names() {
    assert_curl_trace(&decode_fixture(
        "trace_by_id_v1.json",
        InputFormat::OtlpJson,
    ));
}

#[test]
fn tempo_v2_json_with_trace_wrapper() {
    let spans = decode_fixture("trace_by_id_v2.json", InputFormat::OtlpJson);
    assert_curl_trace(&spans);
    assert_eq!(
        spans,
        decode_fixture("trace_by_id_v1.json", InputFormat::OtlpJson)
    );
}

#[test]
fn tempo_v2_answer_for_an_unknown_id_is_no_spans() {
    let bytes = fixture("trace_by_id_v2_unknown.body");
    assert!(decode_json(&bytes).unwrap().is_empty());
    assert!(decode_fixture("trace_by_id_v2_unknown.body", InputFormat::OtlpJson).is_empty());
}

/// The Python SDK trace of `trace_by_id_v2_sdk.json` and `trace_by_id_v2.pb`.
fn assert_sdk_v2_trace(spans: &[Span]) {
    assert_eq!(spans.len(), 2);
    let server = by_operation(spans, "GET /api/orders");
    assert_eq!(
        server.trace_id.to_string(),
        "0140f1cdb7388cfa06a4e738bcd523dc"
    );
    assert_eq!(server.span_id, span_id("6c3395943e97c34b"));
    assert_eq!(server.parent_span_id, None);
    assert_eq!(server.service, "checkout-api");
    assert_eq!(server.kind, SpanKind::Server);
    assert_eq!(server.status, SpanStatus::Unset);
    assert_eq!(server.start, UnixNanos(1_795_546_727_104_884_056));
    assert_eq!(server.duration_nanos, 20_705_274);
    assert_eq!(server.attributes.http_status_code, Some(200));
    assert_eq!(server.attributes.http_route.as_deref(), Some("/api/orders"));
    assert_eq!(server.attributes.http_method.as_deref(), Some("GET"));
    assert_eq!(
        server.attributes.url_path.as_deref(),
        Some("/api/orders?page=3")
    );
    assert_eq!(
        server.attributes.client_address.as_deref(),
        Some("127.0.0.181")
    );
    assert!(!server.is_error());

    let db = by_operation(spans, "SELECT orders");
    assert_eq!(db.span_id, span_id("5a18f8102e60d702"));
    assert_eq!(db.parent_span_id, Some(server.span_id));
    assert_eq!(db.service, "checkout-api");
    assert_eq!(db.kind, SpanKind::Client);
    assert_eq!(db.duration_nanos, 15_943_061);
    assert_eq!(db.attributes.db_system.as_deref(), Some("postgresql"));
    assert_eq!(
        db.attributes.db_statement_shape.as_deref(),
        Some("SELECT id, total FROM orders WHERE customer_id = ?")
    );
}

#[test]
fn tempo_v2_sdk_json() {
    assert_sdk_v2_trace(&decode_fixture(
        "trace_by_id_v2_sdk.json",
        InputFormat::OtlpJson,
    ));
}

#[test]
fn tempo_v2_protobuf_equals_its_json() {
    let bytes = fixture("trace_by_id_v2.pb");
    let spans = decode_tempo_trace_proto(&bytes, TempoApiVersion::V2).unwrap();
    assert_sdk_v2_trace(&spans);
    assert_eq!(
        spans,
        decode_fixture("trace_by_id_v2_sdk.json", InputFormat::OtlpJson)
    );
    // Without being told the version, decode() falls back to the v2 wrapper.
    assert_eq!(
        decode_fixture("trace_by_id_v2.pb", InputFormat::OtlpProto),
        spans
    );
}

#[test]
fn tempo_v2_protobuf_is_not_mistaken_for_otlp() {
    let bytes = fixture("trace_by_id_v2.pb");
    let err = decode_proto(&bytes).unwrap_err();
    assert!(matches!(err, DecodeError::Protobuf { .. }), "{err}");
}

/// The Python SDK trace of `sdk_trace_by_id_v1.json` and `sdk_trace_by_id_v1.pb`: two services.
fn assert_sdk_v1_trace(spans: &[Span]) {
    assert_eq!(spans.len(), 2);
    let db = by_operation(spans, "SELECT orders");
    assert_eq!(db.trace_id.to_string(), "bb092d8ba1000c7c09884ae5aeea4a78");
    assert_eq!(db.span_id, span_id("141581385e820afc"));
    assert_eq!(db.parent_span_id, Some(span_id("e9562cad51a4dd02")));
    assert_eq!(db.service, "checkout");
    assert_eq!(db.kind, SpanKind::Client);
    assert_eq!(db.status, SpanStatus::Error);
    assert_eq!(db.start, UnixNanos(1_795_544_915_640_013_257));
    assert_eq!(db.duration_nanos, 300_353_721);
    assert_eq!(db.attributes.db_system.as_deref(), Some("postgresql"));

    let server = by_operation(spans, "GET /checkout");
    assert_eq!(server.span_id, span_id("e9562cad51a4dd02"));
    assert_eq!(server.parent_span_id, None);
    assert_eq!(server.service, "frontend");
    assert_eq!(server.kind, SpanKind::Server);
    assert_eq!(server.status, SpanStatus::Unset);
    assert_eq!(server.duration_nanos, 303_317_756);
    assert_eq!(server.attributes.http_route.as_deref(), Some("/checkout"));
}

#[test]
fn tempo_v1_sdk_json() {
    assert_sdk_v1_trace(&decode_fixture(
        "sdk_trace_by_id_v1.json",
        InputFormat::OtlpJson,
    ));
}

#[test]
fn tempo_v1_protobuf_equals_its_json() {
    let bytes = fixture("sdk_trace_by_id_v1.pb");
    let spans = decode_tempo_trace_proto(&bytes, TempoApiVersion::V1).unwrap();
    assert_sdk_v1_trace(&spans);
    assert_eq!(spans, decode_proto(&bytes).unwrap());
    assert_eq!(
        spans,
        decode_fixture("sdk_trace_by_id_v1.pb", InputFormat::OtlpProto)
    );
    assert_eq!(
        spans,
        decode_fixture("sdk_trace_by_id_v1.json", InputFormat::OtlpJson)
    );
}

#[test]
fn fixtures_as_json_lines() {
    let mut input = Vec::new();
    for name in [
        "trace_by_id_v1.json",
        "trace_by_id_v2_unknown.body",
        "trace_by_id_v2_sdk.json",
    ] {
        input.extend(fixture(name).trim_ascii());
        input.push(b'\n');
    }
    assert_eq!(detect(&input), InputFormat::OtlpJsonLines);
    let outcome = decode(&input, InputFormat::OtlpJsonLines);
    assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
    assert_eq!(outcome.spans.len(), 4);
}

#[test]
fn truncated_protobuf_is_an_error_not_a_panic() {
    for name in ["sdk_trace_by_id_v1.pb", "trace_by_id_v2.pb"] {
        let bytes = fixture(name);
        for len in [1, 2, 10, bytes.len() / 2, bytes.len() - 1] {
            let prefix = bytes.get(..len).expect("prefix within the fixture");
            let outcome = decode(prefix, InputFormat::OtlpProto);
            assert!(outcome.spans.is_empty(), "{name}[..{len}]");
            assert!(
                matches!(outcome.errors.as_slice(), [DecodeError::Protobuf { .. }]),
                "{name}[..{len}]: {:?}",
                outcome.errors
            );
        }
    }
}

#[test]
fn truncated_json_is_an_error_not_a_panic() {
    let bytes = fixture("trace_by_id_v2_sdk.json");
    for len in 0..bytes.len() {
        let prefix = bytes.get(..len).expect("prefix within the fixture");
        assert!(decode_json(prefix).is_err(), "[..{len}]");
    }
}

#[test]
fn garbage_bytes_never_panic() {
    // Seeded, so that the garbage is the same on every run.
    let mut rng = StdRng::seed_from_u64(0x9e37_79b9_7f4a_7c15);
    let seeds: Vec<Vec<u8>> = [
        "sdk_trace_by_id_v1.pb",
        "trace_by_id_v2.pb",
        "trace_by_id_v2_sdk.json",
    ]
    .into_iter()
    .map(fixture)
    .collect();
    for round in 0..600 {
        let len = (rng.random::<u64>() % 256) as usize;
        let bytes: Vec<u8> = if round % 2 == 0 {
            // Pure noise, sometimes opened like JSON.
            let mut noise: Vec<u8> = (0..len).map(|_| rng.random::<u64>() as u8).collect();
            if round % 4 == 0
                && let Some(first) = noise.first_mut()
            {
                *first = b'{';
            }
            noise
        } else {
            // A real answer with a few bytes flipped: gets much deeper into the decoders.
            let mut mutated = seeds.get(round % seeds.len()).cloned().unwrap_or_default();
            for _ in 0..1 + rng.random::<u64>() % 4 {
                let at = (rng.random::<u64>() as usize) % mutated.len().max(1);
                if let Some(byte) = mutated.get_mut(at) {
                    *byte = rng.random::<u64>() as u8;
                }
            }
            mutated
        };
        for format in [
            InputFormat::OtlpJson,
            InputFormat::OtlpJsonLines,
            InputFormat::OtlpProto,
        ] {
            let _ = decode(&bytes, format);
        }
        let _ = decode_tempo_trace_proto(&bytes, TempoApiVersion::V2);
        let _ = detect(&bytes);
    }
}
