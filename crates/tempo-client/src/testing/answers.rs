//! Tempo's answers computed from the [`Traffic`]: search by window (ids without their leading
//! zeros, as Tempo writes them), trace by id (v2 `TraceByIDResponse` and v1 `Trace` in protobuf; an
//! unknown id as Tempo answers it), and TraceQL metrics' `count_over_time()`.

use super::traffic::service_of;
use super::whole_traces::whole_traces_answer;
use super::{Reply, Route, Traffic};
use opentelemetry_proto::tonic::common::v1::any_value;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::{Span, TracesData, status};
use prost::Message;
use serde_json::json;
use std::collections::{BTreeMap, HashMap};

const NANOS: u64 = 1_000_000_000;

type Query = HashMap<String, String>;

/// Tempo's answer to a request of `route` (`None`: a path Tempo does not serve).
pub(super) fn answer(traffic: &Traffic, route: Option<Route>, path: &str, query: &Query) -> Reply {
    let id = path.rsplit('/').next().unwrap_or_default();
    let answer = match route {
        None => Ok(Reply::unknown_path()),
        Some(Route::Ready) => Ok(Reply::text(200, "ready")),
        // A fixed answer: no test asks which tags the traffic has.
        Some(Route::SearchTags) => Ok(Reply::json(
            r#"{"tagNames":["http.method","service.name"]}"#,
        )),
        Some(Route::Search) => search(traffic, query),
        Some(Route::TraceV2) => Ok(match traffic.get(id) {
            Some(trace) => Reply::protobuf(trace.v2_answer.clone()),
            // As Tempo v2 answers an id it does not have (tests/fixtures/trace_by_id_v2_unknown.*).
            None => Reply::json(r#"{"trace":{},"metrics":{}}"#),
        }),
        Some(Route::TraceV1) => Ok(match traffic.get(id) {
            Some(trace) => Reply::protobuf(trace.data().encode_to_vec()),
            None => Reply::text(404, "trace not found"),
        }),
        Some(Route::Metrics) => count_over_time(traffic, query),
    };
    answer.unwrap_or_else(|bad_request| bad_request)
}

/// Every trace that starts in the window, up to `limit`. A whole-trace search (one that selects
/// `nestedSetLeft`) is answered in protobuf with every span (`whole_traces`). Of other TraceQL, only a search for root spans
/// (`{ nestedSetParent = -1 } | select(…)`) is read: it adds each root span, with all its attributes,
/// as Tempo gives selected ones (`tests/fixtures/search_entry_spans.json`).
fn search(traffic: &Traffic, query: &Query) -> Result<Reply, Reply> {
    let (start, end) = (number(query, "start")?, number(query, "end")?);
    let limit = number(query, "limit")? as usize;
    if query.get("q").is_some_and(|q| q.contains("nestedSetLeft")) {
        let spss = number(query, "spss")? as usize;
        let traces = traffic.starting_in(start * NANOS, end * NANOS);
        let traces = &traces[..traces.len().min(limit)];
        return Ok(Reply::protobuf(whole_traces_answer(traces, spss)));
    }
    let roots = query
        .get("q")
        .is_some_and(|q| q.contains("nestedSetParent = -1"));
    let traces: Vec<_> = traffic
        .starting_in(start * NANOS, end * NANOS)
        .iter()
        .take(limit)
        .map(|t| {
            let mut trace = json!({
                "traceID": t.id.trim_start_matches('0'),
                "rootServiceName": t.root_service,
                "startTimeUnixNano": t.start_unix_nanos.to_string(),
                "durationMs": t.duration_ms,
            });
            if roots && let Some((name, span)) = root_span(&t.data()) {
                trace["rootTraceName"] = json!(name);
                trace["spanSets"] = json!([{ "spans": [span], "matched": 1 }]);
            }
            trace
        })
        .collect();
    Ok(Reply::json(json!({ "traces": traces }).to_string()))
}

/// The root span's name, and the span as a search that selects its attributes answers it.
fn root_span(data: &TracesData) -> Option<(String, serde_json::Value)> {
    let span = data
        .resource_spans
        .iter()
        .flat_map(|rs| rs.scope_spans.iter().flat_map(|s| &s.spans))
        .find(|s| s.parent_span_id.is_empty())?;
    let (kind, status) = kind_and_status(span);
    let mut attributes = vec![
        json!({ "key": "nestedSetParent", "value": { "intValue": "-1" } }),
        json!({ "key": "kind", "value": { "stringValue": kind } }),
        json!({ "key": "status", "value": { "stringValue": status } }),
    ];
    for kv in &span.attributes {
        let value = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
            Some(any_value::Value::StringValue(s)) => json!({ "stringValue": s }),
            Some(any_value::Value::IntValue(i)) => json!({ "intValue": i.to_string() }),
            _ => continue,
        };
        attributes.push(json!({ "key": kv.key, "value": value }));
    }
    let name = span.name.clone();
    let span = json!({
        "spanID": hex::encode(&span.span_id),
        "startTimeUnixNano": span.start_time_unix_nano.to_string(),
        "durationNanos": span.end_time_unix_nano.saturating_sub(span.start_time_unix_nano).to_string(),
        "attributes": attributes,
    });
    Some((name, span))
}

/// A span's kind and status as TraceQL writes them (`server`, `error`, …).
pub(super) fn kind_and_status(span: &Span) -> (&'static str, &'static str) {
    let kind = match SpanKind::try_from(span.kind).unwrap_or(SpanKind::Unspecified) {
        SpanKind::Server => "server",
        SpanKind::Client => "client",
        SpanKind::Producer => "producer",
        SpanKind::Consumer => "consumer",
        SpanKind::Internal => "internal",
        SpanKind::Unspecified => "unspecified",
    };
    let status = match span.status.as_ref().map(|s| s.code) {
        Some(c) if c == status::StatusCode::Error as i32 => "error",
        Some(c) if c == status::StatusCode::Ok as i32 => "ok",
        _ => "unset",
    };
    (kind, status)
}

/// `… | count_over_time() by (resource.service.name, name)` over the spans that start in
/// `[start, end)`, as one sample per series; of TraceQL's filters only `status = error` is read.
fn count_over_time(traffic: &Traffic, query: &Query) -> Result<Reply, Reply> {
    let q = query.get("q").map_or("", String::as_str);
    if !q.contains("count_over_time()") {
        return Err(Reply::text(
            400,
            "the fake Tempo answers count_over_time() only",
        ));
    }
    let errors_only = q.contains("status = error");
    let (start, end) = (number(query, "start")?, number(query, "end")?);
    let mut counts: BTreeMap<(String, String), u64> = BTreeMap::new();
    // No span starts before its trace: the traces that start after `end` hold none of the range.
    for trace in traffic.starting_in(0, end * NANOS) {
        for rs in trace.data().resource_spans {
            let service = service_of(&rs);
            for span in rs.scope_spans.iter().flat_map(|s| &s.spans) {
                let error = span
                    .status
                    .as_ref()
                    .is_some_and(|s| s.code == status::StatusCode::Error as i32);
                if (start * NANOS..end * NANOS).contains(&span.start_time_unix_nano)
                    && (error || !errors_only)
                {
                    let key = (service.clone(), span.name.clone());
                    *counts.entry(key).or_default() += 1;
                }
            }
        }
    }
    let series: Vec<_> = counts
        .into_iter()
        .map(|((service, name), n)| {
            json!({
                "labels": [
                    { "key": "resource.service.name", "value": { "stringValue": service } },
                    { "key": "name", "value": { "stringValue": name } },
                ],
                "samples": [{ "timestampMs": (start * 1_000).to_string(), "value": n }],
            })
        })
        .collect();
    Ok(Reply::json(json!({ "series": series }).to_string()))
}

fn number(query: &Query, key: &str) -> Result<u64, Reply> {
    query
        .get(key)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| Reply::text(400, &format!("bad or missing {key}")))
}
