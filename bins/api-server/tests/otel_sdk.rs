//! The OpenTelemetry SDK's own OTLP/HTTP exporter (opentelemetry-otlp, protobuf) sends spans to
//! `/v1/traces`, exactly as an instrumented service would; the anomaly they make is read back through
//! the API.

mod common;

use opentelemetry::KeyValue;
use opentelemetry::trace::{Span as _, SpanKind, Tracer as _, TracerProvider as _};
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::time::{Duration, SystemTime};

/// Exports, through the SDK, three windows of 100 ordinary `GET /orders/{id}` spans of about 20 ms
/// and then a window of 100 in which 9 in 10 take 5× as long, far enough back that the server judges
/// it at once (as `common::slowdown` does).
fn export_with_the_sdk(endpoint: String) {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(endpoint)
        .with_timeout(Duration::from_secs(5))
        .build()
        .expect("exporter builds");
    let provider = SdkTracerProvider::builder()
        .with_resource(Resource::builder().with_service_name("sdk-orders").build())
        .with_batch_exporter(exporter)
        .build();
    let tracer = provider.tracer("tracewatch-test");
    let slow_window = SystemTime::UNIX_EPOCH + Duration::from_nanos(common::judged_window_start());
    let t0 = slow_window - Duration::from_secs(3 * 60);
    // 100 spans a window: one every 600 ms.
    let one = |i: u32, ms: f64| {
        let start = t0 + Duration::from_millis(u64::from(i) * 600);
        let mut span = tracer
            .span_builder("GET /orders/{id}")
            .with_kind(SpanKind::Server)
            .with_start_time(start)
            .with_attributes([
                KeyValue::new("http.request.method", "GET"),
                KeyValue::new("http.route", "/orders/{id}"),
                KeyValue::new("http.response.status_code", 200),
            ])
            .start(&tracer);
        span.end_with_timestamp(start + Duration::from_secs_f64(ms / 1_000.0));
    };
    for i in 0..400 {
        let slow = i >= 300 && i % 10 != 9;
        let ms = 20.0 * (1.0 + 0.2 * (f64::from(i * 37 % 100) / 100.0 - 0.5));
        one(i, if slow { 5.0 * ms } else { ms });
    }
    provider
        .force_flush()
        .expect("the SDK's exporter delivered the spans");
    provider.shutdown().expect("the SDK shuts down");
}

#[actix_web::test]
async fn spans_from_the_sdk_exporter_become_an_anomaly_in_the_api() {
    let mut server = common::start(|_| {}).await;
    let endpoint = server.url("/v1/traces");
    tokio::task::spawn_blocking(move || export_with_the_sdk(endpoint))
        .await
        .unwrap();
    let found = server
        .wait_for_anomaly("service=sdk-orders", Duration::from_secs(10), |a| {
            a["anomaly_subtype"] == "latency_degradation" && a["operation"] == "GET /orders/{id}"
        })
        .await
        .expect("the slow window is an anomaly");
    let expected = found["expected_value"].as_f64().unwrap();
    assert!(
        found["observed_value"].as_f64().unwrap() >= 3.0 * expected,
        "{found}"
    );
    assert!(
        matches!(found["severity"].as_str(), Some("HIGH" | "CRITICAL")),
        "{found}"
    );
    assert_eq!(found["anomaly_type"], "PERFORMANCE");
    assert!(
        found["description"]
            .as_str()
            .unwrap()
            .contains("GET /orders/{id}"),
        "{found}"
    );
    server.stop().await;
}
