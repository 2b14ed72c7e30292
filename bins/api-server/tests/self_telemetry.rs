//! tracewatch's own telemetry over OTLP: a server started with `OTEL_EXPORTER_OTLP_ENDPOINT` pointing at
//! a second tracewatch sends its request spans there, through the same `/v1/traces` intake any service
//! uses. (Its own process: it installs the global tracing subscriber.)

mod common;

use std::time::Duration;

#[actix_web::test]
async fn request_spans_are_exported_over_otlp() {
    let mut receiver = common::start(|_| {}).await;
    let guard =
        api_server::telemetry::init_tracing("tracewatch-self-test", Some(&receiver.base)).unwrap();
    let mut sender = common::start(|_| {}).await;
    for _ in 0..5 {
        let (status, _) = sender.get_json("/api/anomalies").await;
        assert_eq!(status, 200);
    }
    sender.stop().await;
    // Dropping the guard flushes the batch exporter.
    tokio::task::spawn_blocking(move || drop(guard))
        .await
        .unwrap();
    let mut accepted = 0;
    for _ in 0..50 {
        let metrics = receiver.metrics().await;
        accepted = metrics
            .lines()
            .find_map(|l| l.strip_prefix("tracewatch_intake_spans_total{outcome=\"accepted\"} "))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0);
        if accepted >= 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        accepted >= 5,
        "{accepted} spans of tracewatch itself arrived"
    );
    receiver.stop().await;
}
