//! The live parts on a real server: the Server-Sent Events stream carries new and resolved anomalies,
//! manual runs are served by the in-process detectors, and the OpenAPI document lists every endpoint.

mod common;

use common::{slow_after_normal, start};
use futures_util::StreamExt;
use serde_json::Value;
use std::time::Duration;

/// Reads SSE frames until one of `event` arrives, or the timeout passes.
async fn next_event(
    stream: &mut (impl futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin),
    buffer: &mut String,
    event: &str,
) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        while let Some(end) = buffer.find("\n\n") {
            let frame: String = buffer.drain(..end + 2).collect();
            let mut kind = "";
            let mut data = "";
            for line in frame.lines() {
                if let Some(k) = line.strip_prefix("event: ") {
                    kind = k;
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data = d;
                }
            }
            if kind == event {
                return serde_json::from_str(data).ok();
            }
        }
        let chunk = tokio::time::timeout_at(deadline, stream.next())
            .await
            .ok()??
            .ok()?;
        buffer.push_str(&String::from_utf8_lossy(&chunk));
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
    let mut stream = resp.bytes_stream();
    let mut buffer = String::new();

    let request = slow_after_normal("live", "POST /pay", 120);
    let sent = server.post_otlp(&request).await;
    assert_eq!(sent.status(), 200);
    // Trace-level findings (LOW) may come first, as traces complete; the window's finding follows.
    let mut new = Value::Null;
    for _ in 0..20 {
        new = next_event(&mut stream, &mut buffer, "new")
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
    let event = next_event(&mut stream, &mut buffer, "resolved")
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
