//! Whole traces from searches (`TempoClient::whole_traces`) against the fake Tempo: call trees rebuilt
//! from the nested set equal what a lookup by id gives; a trace over Tempo's spans per span set, or
//! with a span Tempo could not place, is left for a lookup; answers Tempo refuses as too large are split
//! down to one second; failures are retried. The real Tempo's side of the
//! same is in `bins/detector-worker/tests/real_tempo.rs`.

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, TracesData, span};
use std::time::Duration;
use tempo_client::decode::{TempoApiVersion, traces_data_from_tempo_proto};
use tempo_client::testing::{FakeTempo, Reply, Route, Traffic};
use tempo_client::{TempoClient, TempoConfig, TempoError};

const NANOS: u64 = 1_000_000_000;

fn client(base: &str) -> TempoClient {
    TempoClient::new(TempoConfig {
        endpoint: base.to_owned(),
        timeout: Duration::from_millis(2_000),
        max_retries: 2,
        backoff_base: Duration::from_millis(10),
        ..TempoConfig::default()
    })
    .unwrap()
}

/// A root span and `children` spans under it (the first child's parent set to `orphan_parent` when
/// given), starting at `at` seconds.
fn fan_out(n: u8, children: usize, at: u64, orphan_parent: Option<[u8; 8]>) -> TracesData {
    let trace_id = [n; 16];
    let span_id = |i: usize| ((i as u64 + 1) | u64::from(n) << 56).to_be_bytes();
    let start = at * NANOS;
    let root = Span {
        trace_id: trace_id.to_vec(),
        span_id: span_id(0).to_vec(),
        name: "GET /orders".into(),
        kind: span::SpanKind::Server as i32,
        start_time_unix_nano: start,
        end_time_unix_nano: start + 50_000_000,
        ..Span::default()
    };
    let spans = std::iter::once(root).chain((1..=children).map(|i| Span {
        trace_id: trace_id.to_vec(),
        span_id: span_id(i).to_vec(),
        parent_span_id: match (i, orphan_parent) {
            (1, Some(missing)) => missing.to_vec(),
            _ => span_id(0).to_vec(),
        },
        name: "SELECT orders".into(),
        kind: span::SpanKind::Client as i32,
        start_time_unix_nano: start + i as u64 * 1_000,
        end_time_unix_nano: start + i as u64 * 1_000 + 200_000,
        attributes: vec![KeyValue {
            key: "db.system".into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue("postgresql".into())),
            }),
            ..KeyValue::default()
        }],
        ..Span::default()
    }));
    TracesData {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![KeyValue {
                    key: "service.name".into(),
                    value: Some(AnyValue {
                        value: Some(any_value::Value::StringValue("orders".into())),
                    }),
                    ..KeyValue::default()
                }],
                ..Resource::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans: spans.collect(),
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }],
    }
}

fn recorded() -> TracesData {
    let body = std::fs::read(format!(
        "{}/tests/fixtures/trace_by_id_v2.pb",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    traces_data_from_tempo_proto(&body, TempoApiVersion::V2).unwrap()
}

/// Sorted, to compare regardless of order.
fn sorted(mut spans: Vec<detect_core::Span>) -> Vec<detect_core::Span> {
    spans.sort_by_key(|s| s.span_id.0);
    spans
}

#[actix_web::test]
async fn trees_from_the_search_are_the_traces_a_lookup_gives() {
    let traffic: Traffic = [
        recorded(),
        fan_out(1, 6, 10, None),
        // Over the 100 spans a span set carries.
        fan_out(2, 120, 20, None),
        // A span whose parent never arrived: Tempo cannot place it.
        fan_out(3, 4, 30, Some([9; 8])),
    ]
    .into_iter()
    .collect();
    let t = FakeTempo::start(traffic).unwrap();
    let tempo = client(&t.url);
    let found = tempo.whole_traces(0, 4_000_000_000, 1).await.unwrap();
    assert_eq!(found.len(), 4, "{found:#?}");
    assert_eq!(t.count(Route::Search), 1);
    let request = &t.requests()[0];
    assert_eq!(request.query["spss"], "100");
    assert!(request.query["q"].contains("nestedSetParent"));
    for trace in &found {
        let id = trace.summary.trace_id;
        let looked_up = tempo.trace(&id).await.unwrap().unwrap().spans;
        match id.0[0] {
            2 | 3 => assert_eq!(trace.spans, None, "{id} needs a lookup"),
            _ => assert_eq!(
                sorted(trace.spans.clone().expect("whole")),
                sorted(looked_up),
                "{id}"
            ),
        }
    }
    t.stop().await;
}

#[actix_web::test]
async fn answers_too_large_are_split_and_failures_retried() {
    // One 7-span trace every second for two minutes.
    let traffic: Traffic = (0..120u64)
        .map(|s| fan_out((s % 250 + 1) as u8, 6, 60 + s, None))
        .collect();
    let t = FakeTempo::start(traffic).unwrap();
    let tempo = client(&t.url);
    // About 15 traces' worth an answer: a minute is refused, and split until each part passes.
    let one_trace = tempo.whole_traces(60, 61, 1).await.unwrap();
    assert_eq!(one_trace.len(), 1);
    let one_answer = tempo.usage().bytes as usize;
    t.limit_search_answers(15 * one_answer);
    t.fail_next(1, Reply::text(503, "busy"));
    let found = tempo.whole_traces(60, 180, 2).await.unwrap();
    assert_eq!(found.len(), 120);
    assert!(
        found
            .iter()
            .all(|t| t.spans.as_ref().is_some_and(|s| s.len() == 7))
    );
    let searches = t.count(Route::Search);
    assert!(
        searches > 8,
        "split into parts that fit: {searches} searches"
    );
    // One second over the limit cannot be split: the error says so.
    t.limit_search_answers(100);
    let err = tempo.whole_traces(60, 61, 1).await.unwrap_err();
    assert!(matches!(err, TempoError::Malformed { .. }), "{err}");
    assert!(err.to_string().contains("one second"), "{err}");
    t.stop().await;
}

#[actix_web::test]
async fn a_tempo_with_fewer_spans_per_span_set_is_asked_within_its_limit() {
    let traffic: Traffic = [fan_out(1, 3, 10, None), fan_out(2, 8, 20, None)]
        .into_iter()
        .collect();
    let t = FakeTempo::start(traffic).unwrap();
    t.limit_spans_per_span_set(5);
    let tempo = client(&t.url);
    for _ in 0..2 {
        let found = tempo.whole_traces(0, 60, 1).await.unwrap();
        let spans = |n: u8| {
            let trace = found.iter().find(|t| t.summary.trace_id.0[0] == n).unwrap();
            trace.spans.as_ref().map(Vec::len)
        };
        assert_eq!(spans(1), Some(4), "within the limit: whole");
        assert_eq!(spans(2), None, "over it: to be looked up");
    }
    // Refused once, then asked within the limit.
    let asked: Vec<String> = t
        .requests()
        .iter()
        .map(|r| r.query["spss"].clone())
        .collect();
    assert_eq!(asked, ["100", "5", "5"]);
    t.stop().await;
}
