//! Conversion from opentelemetry-proto's `TracesData` to detect-core [`Span`]s: the one place where OTLP
//! meets the span model, shared by the protobuf and the JSON decoders.

use detect_core::span::{
    AttrValue, Span, SpanAttributes, SpanId, SpanKind, SpanStatus, TraceId, UnixNanos,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::Span as OtlpSpan;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, TracesData};

/// The service name the OpenTelemetry SDKs report when a resource has no `service.name`.
pub const UNKNOWN_SERVICE: &str = "unknown_service";

/// The spans read from some OTLP trace data.
#[derive(Clone, PartialEq, Debug, Default)]
pub struct ConvertedSpans {
    pub spans: Vec<Span>,
    /// Spans left out because their trace id or span id was missing, all zeros or of the wrong length.
    pub skipped_spans: usize,
}

impl ConvertedSpans {
    /// Appends another batch, keeping the order.
    pub fn extend(&mut self, other: ConvertedSpans) {
        self.spans.extend(other.spans);
        self.skipped_spans += other.skipped_spans;
    }
}

/// Converts every span of `data`, in document order.
pub fn convert_traces_data(data: &TracesData) -> ConvertedSpans {
    convert_resource_spans(&data.resource_spans)
}

/// Converts the spans of a list of `ResourceSpans` (the body of `TracesData` and of
/// `ExportTraceServiceRequest`), in document order.
pub fn convert_resource_spans(resource_spans: &[ResourceSpans]) -> ConvertedSpans {
    let span_count = resource_spans
        .iter()
        .flat_map(|rs| &rs.scope_spans)
        .map(|ss| ss.spans.len())
        .sum();
    let mut out = ConvertedSpans {
        spans: Vec::with_capacity(span_count),
        skipped_spans: 0,
    };
    for rs in resource_spans {
        let service = service_name(rs.resource.as_ref());
        for span in rs.scope_spans.iter().flat_map(|ss| &ss.spans) {
            match convert_span(span, service) {
                Some(span) => out.spans.push(span),
                None => out.skipped_spans += 1,
            }
        }
    }
    out
}

/// The resource's `service.name`, or [`UNKNOWN_SERVICE`] when it is missing, empty or not a string.
fn service_name(resource: Option<&Resource>) -> &str {
    resource
        .into_iter()
        .flat_map(|r| &r.attributes)
        .filter(|kv| kv.key == "service.name")
        .find_map(
            |kv| match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(any_value::Value::StringValue(s)) if !s.is_empty() => Some(s.as_str()),
                _ => None,
            },
        )
        .unwrap_or(UNKNOWN_SERVICE)
}

/// One span, or `None` when its trace id or span id is unusable.
fn convert_span(span: &OtlpSpan, service: &str) -> Option<Span> {
    let trace_id = trace_id(&span.trace_id)?;
    let span_id = span_id(&span.span_id)?;
    let start = span.start_time_unix_nano;
    let status = span.status.as_ref().map_or(0, |s| s.code);
    Some(Span {
        trace_id,
        span_id,
        parent_span_id: span_id_or_none(&span.parent_span_id),
        service: service.to_owned(),
        operation: span.name.clone(),
        kind: SpanKind::from_otlp(span.kind),
        start: UnixNanos(start),
        duration_nanos: span.end_time_unix_nano.saturating_sub(start),
        status: SpanStatus::from_otlp(status),
        attributes: SpanAttributes::from_pairs(span.attributes.iter().map(attr_pair)),
    })
}

/// A trace id of 1 to 16 bytes (shorter ones are left-padded, as some systems send 8-byte ids) that is not
/// all zeros.
fn trace_id(bytes: &[u8]) -> Option<TraceId> {
    if bytes.is_empty() {
        return None;
    }
    TraceId::from_slice(bytes).filter(TraceId::is_valid)
}

/// An 8-byte span id that is not all zeros.
fn span_id(bytes: &[u8]) -> Option<SpanId> {
    SpanId::from_slice(bytes).filter(|id| id.0 != [0; 8])
}

/// A parent span id; empty, all-zero and malformed ids all mean "no parent".
fn span_id_or_none(bytes: &[u8]) -> Option<SpanId> {
    span_id(bytes)
}

fn attr_pair(kv: &KeyValue) -> (&str, AttrValue<'_>) {
    (kv.key.as_str(), attr_value(kv.value.as_ref()))
}

fn attr_value(value: Option<&AnyValue>) -> AttrValue<'_> {
    match value.and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => AttrValue::Str(s),
        Some(any_value::Value::IntValue(i)) => AttrValue::Int(*i),
        _ => AttrValue::Other,
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::trace::v1::{ScopeSpans, Status};

    use super::*;

    fn string_attr(key: &str, value: &str) -> KeyValue {
        KeyValue {
            key: key.to_owned(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(value.to_owned())),
            }),
            ..KeyValue::default()
        }
    }

    fn int_attr(key: &str, value: i64) -> KeyValue {
        KeyValue {
            key: key.to_owned(),
            value: Some(AnyValue {
                value: Some(any_value::Value::IntValue(value)),
            }),
            ..KeyValue::default()
        }
    }

    fn otlp_span(trace_id: &[u8], span_id: &[u8], parent: &[u8]) -> OtlpSpan {
        OtlpSpan {
            trace_id: trace_id.to_vec(),
            span_id: span_id.to_vec(),
            parent_span_id: parent.to_vec(),
            name: "GET /users/{id}".to_owned(),
            kind: 2,
            start_time_unix_nano: 1_000,
            end_time_unix_nano: 4_500,
            attributes: vec![
                int_attr("http.response.status_code", 503),
                string_attr("http.route", "/users/{id}"),
                KeyValue {
                    key: "http.request.method".to_owned(),
                    value: Some(AnyValue {
                        value: Some(any_value::Value::BoolValue(true)),
                    }),
                    ..KeyValue::default()
                },
            ],
            status: Some(Status {
                message: "boom".to_owned(),
                code: 2,
            }),
            ..OtlpSpan::default()
        }
    }

    fn data(resource: Option<Resource>, spans: Vec<OtlpSpan>) -> TracesData {
        TracesData {
            resource_spans: vec![ResourceSpans {
                resource,
                scope_spans: vec![ScopeSpans {
                    spans,
                    ..ScopeSpans::default()
                }],
                ..ResourceSpans::default()
            }],
        }
    }

    #[test]
    fn converts_every_field() {
        let resource = Resource {
            attributes: vec![string_attr("service.name", "users")],
            ..Resource::default()
        };
        let converted = convert_traces_data(&data(
            Some(resource),
            vec![otlp_span(&[7; 16], &[2; 8], &[1; 8])],
        ));
        assert_eq!(converted.skipped_spans, 0);
        let [span] = converted.spans.as_slice() else {
            panic!("expected one span, got {:?}", converted.spans);
        };
        assert_eq!(span.trace_id, TraceId([7; 16]));
        assert_eq!(span.span_id, SpanId([2; 8]));
        assert_eq!(span.parent_span_id, Some(SpanId([1; 8])));
        assert_eq!(span.service, "users");
        assert_eq!(span.operation, "GET /users/{id}");
        assert_eq!(span.kind, SpanKind::Server);
        assert_eq!(span.status, SpanStatus::Error);
        assert_eq!(span.start, UnixNanos(1_000));
        assert_eq!(span.duration_nanos, 3_500);
        assert_eq!(span.attributes.http_status_code, Some(503));
        assert_eq!(span.attributes.http_route.as_deref(), Some("/users/{id}"));
        assert_eq!(
            span.attributes.http_method, None,
            "a bool attribute is not a method"
        );
    }

    #[test]
    fn missing_service_name_end_before_start_and_zero_parent() {
        let mut span = otlp_span(&[7; 16], &[2; 8], &[0; 8]);
        span.end_time_unix_nano = 10;
        span.status = None;
        let converted = convert_traces_data(&data(None, vec![span]));
        let [span] = converted.spans.as_slice() else {
            panic!("expected one span, got {:?}", converted.spans);
        };
        assert_eq!(span.service, UNKNOWN_SERVICE);
        assert_eq!(span.duration_nanos, 0);
        assert_eq!(span.parent_span_id, None);
        assert_eq!(span.status, SpanStatus::Unset);
    }

    #[test]
    fn short_trace_ids_are_left_padded() {
        let converted = convert_traces_data(&data(None, vec![otlp_span(&[0xab; 8], &[2; 8], &[])]));
        let [span] = converted.spans.as_slice() else {
            panic!("expected one span, got {:?}", converted.spans);
        };
        assert_eq!(
            span.trace_id.to_string(),
            "0000000000000000abababababababab"
        );
        assert_eq!(span.parent_span_id, None);
    }

    #[test]
    fn spans_with_unusable_ids_are_skipped_and_counted() {
        let spans = vec![
            otlp_span(&[], &[2; 8], &[]),
            otlp_span(&[0; 16], &[2; 8], &[]),
            otlp_span(&[1; 17], &[2; 8], &[]),
            otlp_span(&[1; 16], &[], &[]),
            otlp_span(&[1; 16], &[0; 8], &[]),
            otlp_span(&[1; 16], &[2; 7], &[]),
            otlp_span(&[1; 16], &[2; 8], &[3; 5]),
        ];
        let converted = convert_traces_data(&data(None, spans));
        assert_eq!(converted.skipped_spans, 6);
        assert_eq!(converted.spans.len(), 1);
        assert_eq!(
            converted.spans[0].parent_span_id, None,
            "a malformed parent id means no parent"
        );
    }
}
