//! OTLP/HTTP intake on a real server: protobuf and JSON, gzip, partial success, and every kind of bad
//! input answered as the OTLP specification says, with back-pressure instead of silent loss.

mod common;

use common::{RpcStatus, TestServer, export, server_span, slow_after_normal, start};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;
use std::io::Write;
use std::time::Duration;

async fn post(
    server: &TestServer,
    content_type: &str,
    encoding: Option<&str>,
    body: Vec<u8>,
) -> reqwest::Response {
    let mut req = server
        .http
        .post(server.url("/v1/traces"))
        .header("Content-Type", content_type)
        .body(body);
    if let Some(e) = encoding {
        req = req.header("Content-Encoding", e);
    }
    req.send().await.unwrap()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn is_slow_checkout(a: &serde_json::Value) -> bool {
    a["anomaly_subtype"] == "latency_degradation" && a["operation"] == "POST /checkout"
}

#[actix_web::test]
async fn protobuf_spans_become_an_anomaly_read_back_through_the_api() {
    let mut server = start(|_| {}).await;
    let body = slow_after_normal("shop", "POST /checkout", 120).encode_to_vec();
    let resp = post(&server, "application/x-protobuf", None, body).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"],
        "application/x-protobuf",
        "the answer is in the request's content type"
    );
    let answer = ExportTraceServiceResponse::decode(resp.bytes().await.unwrap()).unwrap();
    assert_eq!(answer.partial_success, None);

    let found = server
        .wait_for_anomaly("service=shop", Duration::from_secs(10), is_slow_checkout)
        .await
        .expect("the slow window is stored as an anomaly");
    let expected = found["expected_value"].as_f64().unwrap();
    assert!(expected < 30.0, "{found}");
    assert!(
        found["observed_value"].as_f64().unwrap() > 3.0 * expected,
        "{found}"
    );
    assert!(
        matches!(found["severity"].as_str(), Some("HIGH" | "CRITICAL")),
        "{found}"
    );
    let (status, one) = server
        .get_json(&format!("/api/anomalies/{}", found["id"].as_str().unwrap()))
        .await;
    assert_eq!(status, 200);
    assert_eq!(one["id"], found["id"]);

    let metrics = server.metrics().await;
    assert!(
        metrics.contains("tracewatch_intake_spans_total{outcome=\"accepted\"} 480"),
        "{metrics}"
    );
    assert!(metrics.contains("tracewatch_anomalies_detected_total{anomaly_type=\"PERFORMANCE\""));
    server.stop().await;
}

#[actix_web::test]
async fn gzipped_json_is_read_and_answered_in_json() {
    let mut server = start(|_| {}).await;
    let request = slow_after_normal("shop-json", "POST /checkout", 120);
    let json = serde_json::to_vec(&request).unwrap();
    let resp = post(&server, "application/json", Some("gzip"), gzip(&json)).await;
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    assert_eq!(
        resp.json::<serde_json::Value>().await.unwrap(),
        serde_json::json!({})
    );
    server
        .wait_for_anomaly(
            "service=shop-json",
            Duration::from_secs(10),
            is_slow_checkout,
        )
        .await
        .expect("the slow window from JSON is stored");
    server.stop().await;
}

#[actix_web::test]
async fn spans_with_bad_ids_are_a_partial_success() {
    let mut server = start(|_| {}).await;
    let now = common::now_nanos();
    let mut bad = server_span(1, "GET /a", now, 5.0);
    bad.trace_id = vec![];
    let good = server_span(2, "GET /a", now, 5.0);
    let body = export("partial", vec![bad, good]).encode_to_vec();
    let resp = post(&server, "application/x-protobuf", None, body).await;
    assert_eq!(resp.status(), 200);
    let answer = ExportTraceServiceResponse::decode(resp.bytes().await.unwrap()).unwrap();
    let partial = answer.partial_success.expect("partial success reported");
    assert_eq!(partial.rejected_spans, 1);
    assert!(
        partial.error_message.contains("1 accepted"),
        "{}",
        partial.error_message
    );
    server.stop().await;
}

#[actix_web::test]
async fn bad_bodies_are_refused_with_a_status_naming_the_problem() {
    let mut server = start(|s| {
        s.max_body_bytes = 64 * 1024;
        s.max_spans_per_request = 100;
    })
    .await;

    // Not protobuf at all: 400 with a google.rpc.Status in protobuf.
    let resp = post(&server, "application/x-protobuf", None, vec![0xff; 40]).await;
    assert_eq!(resp.status(), 400);
    let status = RpcStatus::decode(resp.bytes().await.unwrap()).unwrap();
    assert_eq!(status.code, 3);
    assert!(
        status.message.contains("not a valid OTLP"),
        "{}",
        status.message
    );

    // Malformed JSON: 400 with the Status in JSON, and tracewatch's error code.
    let resp = post(
        &server,
        "application/json",
        None,
        b"{\"resourceSpans\": [".to_vec(),
    )
    .await;
    assert_eq!(resp.status(), 400);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["code"], 3);
    assert_eq!(body["error"], "bad_request");
    assert!(body["message"].as_str().unwrap().contains("JSON"), "{body}");

    // Corrupt gzip.
    let resp = post(
        &server,
        "application/json",
        Some("gzip"),
        b"not gzip".to_vec(),
    )
    .await;
    assert_eq!(resp.status(), 400);

    // Unknown content type and encoding.
    let resp = post(&server, "text/plain", None, b"hello".to_vec()).await;
    assert_eq!(resp.status(), 415);
    let resp = post(&server, "application/json", Some("br"), b"{}".to_vec()).await;
    assert_eq!(resp.status(), 415);

    // Over the limit as sent, and over the limit only after decompression (a small bomb).
    let resp = post(&server, "application/json", None, vec![b' '; 65 * 1024]).await;
    assert_eq!(resp.status(), 413);
    let bomb = gzip(&vec![b' '; 8 * 1024 * 1024]);
    assert!(bomb.len() < 64 * 1024);
    let resp = post(&server, "application/json", Some("gzip"), bomb).await;
    assert_eq!(resp.status(), 413);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "payload_too_large");

    // The cheapest spans there are (empty ones: two bytes of protobuf, three of JSON) past the span
    // limit: refused before decoding, as sent and gzipped (16 KiB that would decode into gigabytes).
    let empty_spans = |n: usize| {
        let spans = vec!["{}"; n].join(",");
        format!(r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{spans}]}}]}}]}}"#).into_bytes()
    };
    let resp = post(&server, "application/json", None, empty_spans(101)).await;
    assert_eq!(resp.status(), 413);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("more than 100 spans"),
        "{body}"
    );
    let resp = post(
        &server,
        "application/json",
        Some("gzip"),
        gzip(&empty_spans(101)),
    )
    .await;
    assert_eq!(resp.status(), 413);
    let resp = post(&server, "application/json", None, empty_spans(100)).await;
    assert_eq!(
        resp.status(),
        200,
        "at the limit: taken (empty spans are skipped)"
    );

    // The server is still well and takes good data.
    let request = slow_after_normal("after-bad", "GET /x", 10);
    assert_eq!(server.post_otlp(&request).await.status(), 200);
    server.stop().await;
}

#[actix_web::test]
async fn a_full_pipeline_answers_429_with_retry_after_and_keeps_nothing() {
    // No room for anomalies waiting for the store: every batch is refused.
    let mut server = start(|s| s.pipeline.max_unsaved_anomalies = 0).await;
    let body = slow_after_normal("refused", "GET /x", 10).encode_to_vec();
    let resp = post(&server, "application/x-protobuf", None, body).await;
    assert_eq!(resp.status(), 429);
    assert!(
        resp.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    let status = RpcStatus::decode(resp.bytes().await.unwrap()).unwrap();
    assert!(status.message.contains("retry"), "{}", status.message);
    let metrics = server.metrics().await;
    assert!(
        metrics.contains("tracewatch_intake_spans_total{outcome=\"throttled\"} 40"),
        "{metrics}"
    );
    assert!(!metrics.contains("outcome=\"accepted\""), "{metrics}");
    server.stop().await;
}

#[actix_web::test]
async fn spans_accepted_before_a_stop_are_detected_and_stored() {
    let mut server = start(|_| {}).await;
    let store = server.running.as_ref().unwrap().store.clone();
    let request = slow_after_normal("drained", "POST /checkout", 120);
    assert_eq!(server.post_otlp(&request).await.status(), 200);
    // Stop at once: the detectors drain what was accepted before the process would exit.
    server.stop().await;
    use store_pg::Repository;
    let page = store
        .list_anomalies(
            &store_pg::AnomalyFilter {
                service: Some("drained".into()),
                ..Default::default()
            },
            50,
            None,
        )
        .await
        .unwrap();
    assert!(
        page.items
            .iter()
            .any(|a| a.anomaly_subtype.as_deref() == Some("latency_degradation")),
        "{:?}",
        page.items
    );
}

#[actix_web::test]
async fn without_in_process_detection_there_is_no_intake() {
    let mut server = start(|s| s.detect = false).await;
    let resp = post(&server, "application/x-protobuf", None, vec![]).await;
    assert_eq!(resp.status(), 404);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "not_found");
    server.stop().await;
}
