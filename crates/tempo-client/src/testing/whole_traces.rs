//! The fake's answer to a whole-trace search (`{ } | select(…, nestedSetLeft, nestedSetParent, …)`,
//! asked as protobuf): each trace's spans, up to `spss`, with `matched` saying how many there are,
//! and each span's place in the nested set as Tempo numbers it (depth first from 1, the root's parent
//! -1). A span that is not connected to the root gets no place, as in Tempo. Encoded with message types
//! of its own, so that the fake does not share what it tests.

use super::answers::kind_and_status;
use super::traffic::{StoredTrace, service_of};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use std::collections::HashMap;

#[derive(Clone, PartialEq, Message)]
struct SearchResponse {
    #[prost(message, repeated, tag = "1")]
    traces: Vec<TraceSearchMetadata>,
}

#[derive(Clone, PartialEq, Message)]
struct TraceSearchMetadata {
    #[prost(string, tag = "1")]
    trace_id: String,
    #[prost(string, tag = "2")]
    root_service_name: String,
    #[prost(string, tag = "3")]
    root_trace_name: String,
    #[prost(uint64, tag = "4")]
    start_time_unix_nano: u64,
    #[prost(uint32, tag = "5")]
    duration_ms: u32,
    /// The older field, which Tempo still fills with the first span set.
    #[prost(message, optional, tag = "6")]
    span_set: Option<SpanSet>,
    #[prost(message, repeated, tag = "7")]
    span_sets: Vec<SpanSet>,
}

#[derive(Clone, PartialEq, Message)]
struct SpanSet {
    #[prost(message, repeated, tag = "1")]
    spans: Vec<SearchSpan>,
    #[prost(uint32, tag = "2")]
    matched: u32,
}

#[derive(Clone, PartialEq, Message)]
struct SearchSpan {
    #[prost(string, tag = "1")]
    span_id: String,
    #[prost(string, tag = "2")]
    name: String,
    #[prost(uint64, tag = "3")]
    start_time_unix_nano: u64,
    #[prost(uint64, tag = "4")]
    duration_nanos: u64,
    #[prost(message, repeated, tag = "5")]
    attributes: Vec<KeyValue>,
}

/// The answer for `traces`, each with at most `spss` spans.
pub(super) fn whole_traces_answer(traces: &[StoredTrace], spss: usize) -> Vec<u8> {
    let traces = traces.iter().map(|t| metadata(t, spss)).collect();
    SearchResponse { traces }.encode_to_vec()
}

fn metadata(trace: &StoredTrace, spss: usize) -> TraceSearchMetadata {
    let data = trace.data();
    let spans: Vec<(String, &Span)> = data
        .resource_spans
        .iter()
        .flat_map(|rs| {
            let service = service_of(rs);
            rs.scope_spans
                .iter()
                .flat_map(|s| &s.spans)
                .map(move |span| (service.clone(), span))
        })
        .collect();
    let places = nested_set(spans.iter().map(|(_, s)| *s));
    let root_name = spans
        .iter()
        .find(|(_, s)| s.parent_span_id.is_empty())
        .map(|(_, s)| s.name.clone())
        .unwrap_or_default();
    let sent: Vec<SearchSpan> = spans
        .iter()
        .take(spss)
        .map(|(service, span)| search_span(service, span, places.get(span.span_id.as_slice())))
        .collect();
    let set = SpanSet {
        spans: sent,
        matched: spans.len() as u32,
    };
    TraceSearchMetadata {
        trace_id: trace.id.trim_start_matches('0').to_owned(),
        root_service_name: trace.root_service.clone(),
        root_trace_name: root_name,
        start_time_unix_nano: trace.start_unix_nanos,
        duration_ms: trace.duration_ms as u32,
        span_set: Some(set.clone()),
        span_sets: vec![set],
    }
}

/// Span id → (left, parent's left or -1), depth first from the root, children in start order.
fn nested_set<'a>(spans: impl Iterator<Item = &'a Span>) -> HashMap<&'a [u8], (i64, i64)> {
    let mut children: HashMap<&[u8], Vec<&Span>> = HashMap::new();
    for span in spans {
        children
            .entry(span.parent_span_id.as_slice())
            .or_default()
            .push(span);
    }
    for list in children.values_mut() {
        list.sort_by_key(|s| s.start_time_unix_nano);
    }
    let mut places = HashMap::new();
    let mut next = 1;
    // (span, its parent's left), depth first.
    let mut stack: Vec<(&Span, i64)> = children
        .get([].as_slice())
        .into_iter()
        .flatten()
        .rev()
        .map(|s| (*s, -1))
        .collect();
    while let Some((span, parent)) = stack.pop() {
        let left = next;
        next += 1;
        places.insert(span.span_id.as_slice(), (left, parent));
        for child in children
            .get(span.span_id.as_slice())
            .into_iter()
            .flatten()
            .rev()
        {
            stack.push((child, left));
        }
    }
    places
}

fn search_span(service: &str, span: &Span, place: Option<&(i64, i64)>) -> SearchSpan {
    let text = |key: &str, value: &str| KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..KeyValue::default()
    };
    let int = |key: &str, value: i64| KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(value)),
        }),
        ..KeyValue::default()
    };
    let (kind, status) = kind_and_status(span);
    let mut attributes = vec![
        text("service.name", service),
        text("kind", kind),
        text("status", status),
    ];
    if let Some(&(left, parent)) = place {
        attributes.push(int("nestedSetLeft", left));
        attributes.push(int("nestedSetParent", parent));
    }
    attributes.extend(span.attributes.iter().cloned());
    SearchSpan {
        span_id: hex::encode(&span.span_id),
        name: span.name.clone(),
        start_time_unix_nano: span.start_time_unix_nano,
        duration_nanos: span
            .end_time_unix_nano
            .saturating_sub(span.start_time_unix_nano),
        attributes,
    }
}
