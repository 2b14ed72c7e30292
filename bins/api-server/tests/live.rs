//! The live parts on a real server: the Server-Sent Events stream carries new and resolved anomalies,
//! manual runs are served by the in-process detectors, and the OpenAPI document lists every endpoint.

mod common;

use common::{slow_after_normal, sse, start, stored_detection};
use serde_json::Value;
use std::time::Duration;
use store_pg::{NewAnomaly, Repository};

/// The data of the next frame of `event` (others are skipped), within 10 s.
async fn next_event<S>(stream: &mut sse::Sse<S>, event: &str) -> Option<Value>
where
    S: futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let frame = stream.next(left).await?;
        if frame.event == event {
            return Some(frame.data);
        }
    }
}

#[actix_web::test]
async fn the_stream_carries_new_and_resolved_anomalies() {
    let mut server = start(|_| {}).await;
    let resp = server
        .http
        .get(server.url("/api/anomalies/stream"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut stream = sse::Sse::new(resp.bytes_stream());

    let request = slow_after_normal("live", "POST /pay", 120);
    let sent = server.post_otlp(&request).await;
    assert_eq!(sent.status(), 200);
    // Trace-level findings (LOW) may come first, as traces complete; the window's finding follows.
    let mut new = Value::Null;
    for _ in 0..20 {
        new = next_event(&mut stream, "new")
            .await
            .expect("a new anomaly arrives on the stream");
        assert_eq!(new["service_name"], "live");
        if new["anomaly_subtype"] != "latency_spike" {
            break;
        }
    }
    assert_eq!(new["anomaly_subtype"], "latency_degradation", "{new}");

    let id = new["id"].as_str().unwrap();
    // The first page is served from memory now…
    let (_, before) = server.get_json("/api/anomalies?service=live").await;
    assert_eq!(before["items"][0]["resolved"], false);
    let resolved = server
        .http
        .put(server.url(&format!("/api/anomalies/{id}/resolve")))
        .json(&serde_json::json!({ "resolution_notes": "deploy rolled back" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resolved.status(), 200);
    let event = next_event(&mut stream, "resolved")
        .await
        .expect("the resolution arrives on the stream");
    assert_eq!(event["id"], id);
    assert_eq!(event["resolution_notes"], "deploy rolled back");
    // …and a change through this instance is seen at once, not after the cache's second.
    let (_, after) = server.get_json("/api/anomalies?service=live").await;
    let item = after["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == id)
        .unwrap();
    assert_eq!(item["resolved"], true, "{after}");
    server.stop().await;
}

#[actix_web::test]
async fn a_manual_run_is_served_by_the_in_process_detectors() {
    let mut server = start(|_| {}).await;
    let request = slow_after_normal("runs", "GET /x", 60);
    server.post_otlp(&request).await;
    let resp = server
        .http
        .post(server.url("/api/anomaly-detection/run"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let run: Value = resp.json().await.unwrap();
    assert_eq!(run["status"], "pending");
    let path = format!(
        "/api/anomaly-detection/runs/{}",
        run["id"].as_str().unwrap()
    );
    let mut last = Value::Null;
    for _ in 0..100 {
        let (status, body) = server.get_json(&path).await;
        assert_eq!(status, 200);
        if body["status"] == "succeeded" {
            last = body;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(last["status"], "succeeded", "{last}");
    assert_eq!(last["spans"], 240, "{last}");
    assert!(last["anomalies"].as_i64().unwrap() >= 1, "{last}");
    server.stop().await;
}

#[actix_web::test]
async fn the_openapi_document_lists_every_endpoint() {
    let mut server = start(|_| {}).await;
    let (status, doc) = server.get_json("/api/openapi.json").await;
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/api/anomalies", "get"),
        ("/api/anomalies/{id}", "get"),
        ("/api/anomalies/{id}/resolve", "put"),
        ("/api/anomalies/stream", "get"),
        ("/api/anomaly-config", "get"),
        ("/api/anomaly-config", "put"),
        ("/api/anomaly-detection/run", "post"),
        ("/api/anomaly-detection/runs/{id}", "get"),
        ("/v1/traces", "post"),
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/metrics", "get"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing"
        );
    }
    let anomaly = &doc["components"]["schemas"]["AnomalyJson"]["properties"];
    for field in [
        "id",
        "severity",
        "observed_value",
        "expected_value",
        "fingerprint",
    ] {
        assert!(
            anomaly.get(field).is_some(),
            "{field} missing from the anomaly schema"
        );
    }
    server.stop().await;
}

#[actix_web::test]
async fn a_reconnecting_stream_gets_what_it_missed_or_is_told_to_reload() {
    let mut server = start(|_| {}).await;
    let store = server.running.as_ref().unwrap().store.clone();
    let batch: Vec<NewAnomaly> = (0..3).map(|n| stored_detection(n, "reload")).collect();
    store.insert_anomalies(&batch).await.unwrap();
    let url = server.url("/api/anomalies/stream");
    let mut replay = sse::open(&server.http, &url, Some(0)).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let frame = replay.next(Duration::from_secs(5)).await.expect("replayed");
        assert_eq!(frame.event, "new");
        ids.push(frame.id.unwrap());
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    // From the second: only the third.
    let mut later = sse::open(&server.http, &url, Some(ids[1])).await;
    let frame = later.next(Duration::from_secs(5)).await.unwrap();
    assert_eq!(frame.id, Some(ids[2]));

    // The journal keeps the newest event only: a client further behind is told to reload.
    let keep_one = store_pg::RetentionSettings {
        live_events: 1,
        ..Default::default()
    };
    let report = store
        .apply_retention(&keep_one, chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(report.live_events, 2);
    let mut behind = sse::open(&server.http, &url, Some(0)).await;
    let frame = behind.next(Duration::from_secs(5)).await.unwrap();
    assert_eq!(frame.event, "lagged");
    assert_eq!(frame.data["missed"], ids[2]);
    server.stop().await;
}
