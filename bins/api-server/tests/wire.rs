//! One anomaly shape on the wire: a detection as `detector-worker replay` prints it and the same
//! detection as `GET /api/anomalies/:id` answers it, once stored, are the same JSON.

mod common;

use detect_core::{Anomaly, Severity, SpanId, Subtype, TraceId, UnixNanos, Window};
use store_pg::{NewAnomaly, Repository, Store};

fn detection() -> Anomaly {
    let start = common::judged_window_start();
    Anomaly {
        cause: detect_core::Cause::Itself,
        subtype: Subtype::LatencyDegradation,
        severity: Severity::High,
        service: "checkout".into(),
        operation: Some("POST /api/orders".into()),
        client: None,
        peer_service: Some("payments".into()),
        trace_id: Some(TraceId([7; 16])),
        span_id: Some(SpanId([9; 8])),
        observed: 240.5,
        expected: 41.0,
        spread: 0.8,
        score: 32.0,
        threshold: 5.0,
        unit: "ms",
        window: Window {
            start: UnixNanos(start),
            end: UnixNanos(start + 60 * UnixNanos::NANOS_PER_SEC),
        },
        detected_at: UnixNanos(start + 60 * UnixNanos::NANOS_PER_SEC),
        examples: vec![TraceId([7; 16]), TraceId([8; 16])],
        description: "checkout `POST /api/orders`: time on the way to payments ×5.9".into(),
    }
}

#[tokio::test]
async fn replay_and_the_api_give_the_same_json_for_the_same_detection() {
    let anomaly = detection();
    let mut server = common::start(|_| {}).await;
    server.stop().await;
    let id = {
        let store = Store::open(None, server.data_dir()).await.unwrap();
        let outcomes = store
            .insert_anomalies(&[NewAnomaly::from_anomaly(&anomaly, false)])
            .await
            .unwrap();
        match outcomes[..] {
            [store_pg::InsertOutcome::Inserted(id)] => id,
            ref other => panic!("{other:?}"),
        }
    };
    server.restart(|_| {}).await;
    let (status, api) = server.get_json(&format!("/api/anomalies/{id}")).await;
    assert_eq!(status, 200, "{api}");

    let replayed = serde_json::to_value(store_pg::wire::replay_json(&anomaly)).unwrap();
    let keys = |v: &serde_json::Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(keys(&api), keys(&replayed));
    // The finding leads to all of its traces: a TraceQL query for its slow requests.
    let expected_query = format!(
        r#"{{ resource.service.name = "checkout" && name = "POST /api/orders" && duration > {}ms }}"#,
        (41.0f64 * 0.8f64.exp()).floor()
    );
    assert_eq!(api["details"]["traceql"], expected_query.as_str());
    for (key, value) in replayed.as_object().unwrap() {
        // Ids differ: the store makes its own, replay derives one from the detection.
        if key != "id" {
            assert_eq!(&api[key], value, "{key}");
        }
    }
}

#[tokio::test]
async fn the_dashboard_learns_where_to_search_a_findings_traces() {
    let template = "https://grafana.example/explore?traceql={traceql}&from={start}&to={end}";
    let mut server = common::start(|s| s.trace_search_url_template = Some(template.into())).await;
    let (status, me) = server.get_json("/api/whoami").await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["trace_search_url_template"], template);
    server.stop().await;
}
