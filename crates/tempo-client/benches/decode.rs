//! Decode throughput, in spans per second, of a synthetic 10k-span batch as OTLP protobuf, as strict
//! OTLP/JSON (hex ids, numeric enums: the fast path) and as Tempo-style JSON (`batches`, base64 ids,
//! enum names: the normalizing path).

use std::hint::black_box;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use detect_core::{DetectionConfig, Engine as DetectEngine};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, TracesData};
use prost::Message;
use serde_json::{Value, json};
use tempo_client::{InputFormat, decode};

const SPANS: usize = 10_000;
const SERVICES: usize = 10;

fn attr(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        ..KeyValue::default()
    }
}

fn span(i: usize) -> Span {
    let trace = (i / 10) as u128 + 1;
    let start = 1_795_544_865_000_000_000 + i as u64 * 1_000_000;
    Span {
        trace_id: trace.to_be_bytes().to_vec(),
        span_id: (i as u64 + 1).to_be_bytes().to_vec(),
        parent_span_id: if i.is_multiple_of(10) {
            Vec::new()
        } else {
            ((i - i % 10) as u64 + 1).to_be_bytes().to_vec()
        },
        name: format!("GET /api/items/{}", i % 50),
        kind: if i.is_multiple_of(10) { 2 } else { 3 },
        start_time_unix_nano: start,
        end_time_unix_nano: start + 2_500_000,
        attributes: vec![
            attr(
                "http.request.method",
                any_value::Value::StringValue("GET".to_owned()),
            ),
            attr(
                "http.route",
                any_value::Value::StringValue(format!("/api/items/{}", i % 50)),
            ),
            attr("http.response.status_code", any_value::Value::IntValue(200)),
            attr("server.port", any_value::Value::IntValue(8080)),
            attr(
                "db.system",
                any_value::Value::StringValue("postgresql".to_owned()),
            ),
            attr(
                "db.query.text",
                any_value::Value::StringValue(format!("SELECT * FROM items WHERE id = {i}")),
            ),
        ],
        status: Some(Status {
            message: String::new(),
            code: if i.is_multiple_of(97) { 2 } else { 0 },
        }),
        ..Span::default()
    }
}

fn batch() -> TracesData {
    let per_service = SPANS / SERVICES;
    let resource_spans = (0..SERVICES)
        .map(|s| ResourceSpans {
            resource: Some(Resource {
                attributes: vec![attr(
                    "service.name",
                    any_value::Value::StringValue(format!("service-{s}")),
                )],
                ..Resource::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans: (s * per_service..(s + 1) * per_service).map(span).collect(),
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        })
        .collect();
    TracesData { resource_spans }
}

/// The batch as Tempo's v1 trace-by-id JSON shows it: `batches`, base64 ids, enum names.
fn tempo_style_json(data: &TracesData) -> Vec<u8> {
    let mut value = serde_json::to_value(data).expect("TracesData serializes to JSON");
    let spans = value["resourceSpans"]
        .as_array_mut()
        .into_iter()
        .flatten()
        .flat_map(|rs| rs["scopeSpans"].as_array_mut().into_iter().flatten())
        .flat_map(|ss| ss["spans"].as_array_mut().into_iter().flatten());
    for span in spans {
        for key in ["traceId", "spanId", "parentSpanId"] {
            if let Some(hex_id) = span[key].as_str() {
                let bytes = hex::decode(hex_id).expect("serialized ids are hex");
                span[key] = Value::String(BASE64.encode(bytes));
            }
        }
        let kind = span["kind"]
            .as_i64()
            .and_then(|k| SpanKind::try_from(k as i32).ok());
        if let Some(kind) = kind {
            span["kind"] = json!(kind.as_str_name());
        }
    }
    serde_json::to_vec(&json!({ "batches": value["resourceSpans"].take() }))
        .expect("a Value serializes")
}

fn decode_throughput(c: &mut Criterion) {
    let data = batch();
    let proto = data.encode_to_vec();
    let json = serde_json::to_vec(&data).expect("TracesData serializes to JSON");
    let tempo_json = tempo_style_json(&data);
    for (format, bytes) in [
        (InputFormat::OtlpProto, &proto),
        (InputFormat::OtlpJson, &json),
        (InputFormat::OtlpJson, &tempo_json),
    ] {
        let outcome = decode(bytes, format);
        assert_eq!(
            outcome.spans.len(),
            SPANS,
            "{format}: {:?}",
            outcome.errors.first()
        );
    }

    let mut group = c.benchmark_group("decode_10k_spans");
    group.throughput(Throughput::Elements(SPANS as u64));
    group.bench_function("otlp_proto", |b| {
        b.iter(|| decode(black_box(&proto), InputFormat::OtlpProto))
    });
    group.bench_function("otlp_json", |b| {
        b.iter(|| decode(black_box(&json), InputFormat::OtlpJson))
    });
    group.bench_function("tempo_json", |b| {
        b.iter(|| decode(black_box(&tempo_json), InputFormat::OtlpJson))
    });
    group.finish();

    // Decode and run every detector (all traces analysed: sampling off, the costliest setting).
    let mut group = c.benchmark_group("decode_and_detect_10k_spans");
    group.throughput(Throughput::Elements(SPANS as u64));
    for (name, format, bytes) in [
        ("otlp_proto", InputFormat::OtlpProto, &proto),
        ("otlp_json", InputFormat::OtlpJson, &json),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let config = DetectionConfig {
                    sampling_enabled: false,
                    ..DetectionConfig::default()
                };
                let mut engine = DetectEngine::new(config);
                let mut out = Vec::new();
                for span in decode(black_box(bytes), format).spans {
                    engine.ingest(span, &mut out);
                }
                engine.finish(&mut out);
                out.len()
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = decode_throughput
}
criterion_main!(benches);
