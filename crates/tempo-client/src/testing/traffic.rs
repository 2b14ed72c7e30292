//! What the fake Tempo holds: traces, by start (for search) and by id (for fetches), each with its
//! v2 trace-by-id answer encoded once (a bench fetches tens of thousands).

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    ResourceSpans, ScopeSpans, Span, Status, TracesData, span, status,
};
use prost::Message;
use std::collections::HashMap;

/// Tempo's v2 trace-by-id answer: field 1 is the trace. Written here rather than taken from the
/// decoder, so that the fake does not share what it tests.
#[derive(Clone, PartialEq, prost::Message)]
struct TraceByIdResponse {
    #[prost(message, optional, tag = "1")]
    trace: Option<TracesData>,
}

/// Traces, by start and by id.
#[derive(Default)]
pub struct Traffic {
    /// In start order.
    traces: Vec<StoredTrace>,
    /// 32-digit hex id → index in `traces`.
    by_id: HashMap<String, usize>,
}

/// One trace, as search shows it.
pub struct StoredTrace {
    /// 32 hex digits.
    pub id: String,
    /// Its earliest span's start.
    pub start_unix_nanos: u64,
    /// The service of its root span (the one without a parent, else the earliest).
    pub root_service: String,
    pub duration_ms: u64,
    /// `TraceByIDResponse` in protobuf.
    pub(super) v2_answer: Vec<u8>,
}

/// Traces without spans are left out; a trace's id is its root span's.
impl FromIterator<TracesData> for Traffic {
    fn from_iter<I: IntoIterator<Item = TracesData>>(traces: I) -> Traffic {
        let mut traces: Vec<StoredTrace> =
            traces.into_iter().filter_map(StoredTrace::new).collect();
        traces.sort_by(|a, b| (a.start_unix_nanos, &a.id).cmp(&(b.start_unix_nanos, &b.id)));
        let by_id = traces
            .iter()
            .enumerate()
            .map(|(i, t)| (t.id.clone(), i))
            .collect();
        Traffic { traces, by_id }
    }
}

impl Traffic {
    pub fn len(&self) -> usize {
        self.traces.len()
    }

    pub fn is_empty(&self) -> bool {
        self.traces.is_empty()
    }

    /// The trace of this 32-digit hex id.
    pub fn get(&self, id: &str) -> Option<&StoredTrace> {
        self.by_id.get(id).map(|&i| &self.traces[i])
    }

    /// The traces that start in `[start, end)` (Unix nanoseconds), in start order.
    pub fn starting_in(&self, start: u64, end: u64) -> &[StoredTrace] {
        let from = self.traces.partition_point(|t| t.start_unix_nanos < start);
        let to = self.traces.partition_point(|t| t.start_unix_nanos < end);
        &self.traces[from..to.max(from)]
    }
}

impl StoredTrace {
    fn new(data: TracesData) -> Option<StoredTrace> {
        let spans = || {
            data.resource_spans.iter().flat_map(|rs| {
                let spans = rs.scope_spans.iter().flat_map(|s| &s.spans);
                spans.map(move |span| (rs, span))
            })
        };
        let (root_resource, root) = spans()
            .find(|(_, s)| s.parent_span_id.is_empty())
            .or_else(|| spans().min_by_key(|(_, s)| s.start_time_unix_nano))?;
        let start = spans().map(|(_, s)| s.start_time_unix_nano).min()?;
        let end = spans().map(|(_, s)| s.end_time_unix_nano).max()?;
        let (id, root_service) = (hex::encode(&root.trace_id), service_of(root_resource));
        Some(StoredTrace {
            id,
            start_unix_nanos: start,
            root_service,
            duration_ms: end.saturating_sub(start) / 1_000_000,
            v2_answer: TraceByIdResponse { trace: Some(data) }.encode_to_vec(),
        })
    }

    pub fn data(&self) -> TracesData {
        // The fake encoded it: it decodes.
        TraceByIdResponse::decode(self.v2_answer.as_slice())
            .ok()
            .and_then(|answer| answer.trace)
            .unwrap_or_default()
    }
}

/// The `service.name` of a resource ("" without one).
pub(super) fn service_of(rs: &ResourceSpans) -> String {
    let attributes = rs.resource.iter().flat_map(|r| &r.attributes);
    attributes
        .filter(|kv| kv.key == "service.name")
        .find_map(|kv| match kv.value.as_ref()?.value.as_ref()? {
            any_value::Value::StringValue(s) => Some(s.clone()),
            _ => None,
        })
        .unwrap_or_default()
}

/// A trace of one SERVER span of `service` from `start` to `end` (Unix nanoseconds), the shape of
/// the traffic tests make up. Its span id is the trace id's low half, which must not be zero.
pub fn one_span_trace(
    trace_id: [u8; 16],
    service: &str,
    name: &str,
    start: u64,
    end: u64,
    error: bool,
) -> TracesData {
    let service_name = KeyValue {
        key: "service.name".into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(service.into())),
        }),
        ..KeyValue::default()
    };
    let span = Span {
        trace_id: trace_id.to_vec(),
        span_id: trace_id[8..].to_vec(),
        name: name.into(),
        kind: span::SpanKind::Server as i32,
        start_time_unix_nano: start,
        end_time_unix_nano: end,
        status: error.then(|| Status {
            code: status::StatusCode::Error as i32,
            ..Status::default()
        }),
        ..Span::default()
    };
    TracesData {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![service_name],
                ..Resource::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans: vec![span],
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }],
    }
}
