//! Self-telemetry: tracing (logs on stderr; spans exported over OTLP when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set) and the seed's metrics (detection processing time, anomalies
//! detected, alert success, database query time), kept in a Prometheus registry for `/metrics` and
//! mirrored to OpenTelemetry instruments, which the OTLP metrics exporter sends when configured.

use detect_core::Anomaly;
use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter as OtelCounter, Histogram as OtelHistogram};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::time::Duration;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AnomalyLabels {
    pub anomaly_type: String,
    pub severity: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabels {
    pub operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: String,
}

struct Otel {
    detection: OtelHistogram<f64>,
    anomalies: OtelCounter<u64>,
    db: OtelHistogram<f64>,
    alerts: OtelCounter<u64>,
    alert_delivery: OtelHistogram<f64>,
    spans: OtelCounter<u64>,
}

/// Every metric tracewatch exports about itself.
pub struct Metrics {
    registry: Registry,
    detection_seconds: Histogram,
    anomalies: Family<AnomalyLabels, Counter>,
    db_query_seconds: Family<OperationLabels, Histogram>,
    alerts: Family<OutcomeLabels, Counter>,
    alert_delivery_seconds: Histogram,
    spans: Family<OutcomeLabels, Counter>,
    pub queued_spans: Gauge,
    otel: Otel,
}

fn seconds_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_05, 2.5, 14))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("tracewatch");
        let detection_seconds = seconds_histogram();
        registry.register(
            "detection_processing_seconds",
            "Time the detectors spent on one batch of spans",
            detection_seconds.clone(),
        );
        let anomalies = Family::<AnomalyLabels, Counter>::default();
        registry.register(
            "anomalies_detected",
            "Anomalies detected, by type and severity",
            anomalies.clone(),
        );
        let db_query_seconds =
            Family::<OperationLabels, Histogram>::new_with_constructor(seconds_histogram);
        registry.register(
            "db_query_seconds",
            "Time of store calls, by operation",
            db_query_seconds.clone(),
        );
        let alerts = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "alerts",
            "Alert deliveries, by outcome (sent, failed); the success rate is sent / all",
            alerts.clone(),
        );
        let alert_delivery_seconds = Histogram::new(exponential_buckets(0.05, 2.0, 14));
        registry.register(
            "alert_delivery_seconds",
            "Time from an anomaly being stored to Telegram accepting its alert",
            alert_delivery_seconds.clone(),
        );
        let spans = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "intake_spans",
            "Spans received over OTLP, by outcome (accepted, rejected, throttled)",
            spans.clone(),
        );
        let queued_spans = Gauge::default();
        registry.register(
            "intake_queued_spans",
            "Spans accepted and waiting for the detectors",
            queued_spans.clone(),
        );
        let meter = opentelemetry::global::meter("tracewatch");
        let otel = Otel {
            detection: meter
                .f64_histogram("tracewatch.detection.processing_time")
                .with_unit("s")
                .build(),
            anomalies: meter.u64_counter("tracewatch.anomalies.detected").build(),
            db: meter
                .f64_histogram("tracewatch.db.query_time")
                .with_unit("s")
                .build(),
            alerts: meter.u64_counter("tracewatch.alerts").build(),
            alert_delivery: meter
                .f64_histogram("tracewatch.alerts.delivery_time")
                .with_unit("s")
                .build(),
            spans: meter.u64_counter("tracewatch.intake.spans").build(),
        };
        Metrics {
            registry,
            detection_seconds,
            anomalies,
            db_query_seconds,
            alerts,
            alert_delivery_seconds,
            spans,
            queued_spans,
            otel,
        }
    }

    pub fn detection_batch(&self, took: Duration) {
        self.detection_seconds.observe(took.as_secs_f64());
        self.otel.detection.record(took.as_secs_f64(), &[]);
    }

    pub fn anomaly(&self, anomaly: &Anomaly) {
        let labels = AnomalyLabels {
            anomaly_type: anomaly.anomaly_type().as_str().to_owned(),
            severity: anomaly.severity.as_str().to_owned(),
        };
        self.otel.anomalies.add(
            1,
            &[
                KeyValue::new("anomaly_type", labels.anomaly_type.clone()),
                KeyValue::new("severity", labels.severity.clone()),
            ],
        );
        self.anomalies.get_or_create(&labels).inc();
    }

    pub fn db_query(&self, operation: &'static str, took: Duration) {
        self.db_query_seconds
            .get_or_create(&OperationLabels {
                operation: operation.to_owned(),
            })
            .observe(took.as_secs_f64());
        self.otel
            .db
            .record(took.as_secs_f64(), &[KeyValue::new("operation", operation)]);
    }

    /// An alert Telegram accepted, `waited` after its anomaly was stored.
    pub fn alert_sent(&self, waited: Duration) {
        self.alert_delivery_seconds.observe(waited.as_secs_f64());
        self.otel.alert_delivery.record(waited.as_secs_f64(), &[]);
        self.alert("sent");
    }

    /// A delivery attempt that failed (it is tried again).
    pub fn alert_failed(&self) {
        self.alert("failed");
    }

    fn alert(&self, outcome: &'static str) {
        self.alerts
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_owned(),
            })
            .inc();
        self.otel
            .alerts
            .add(1, &[KeyValue::new("outcome", outcome)]);
    }

    pub fn spans(&self, outcome: &'static str, n: usize) {
        self.spans
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_owned(),
            })
            .inc_by(n as u64);
        self.otel
            .spans
            .add(n as u64, &[KeyValue::new("outcome", outcome)]);
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// What `init_tracing` set up; dropping it flushes and stops the OTLP exporters.
pub struct TelemetryGuard {
    tracer: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
    meter: Option<opentelemetry_sdk::metrics::SdkMeterProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(t) = self.tracer.take() {
            let _ = t.shutdown();
        }
        if let Some(m) = self.meter.take() {
            let _ = m.shutdown();
        }
    }
}

/// Logs to stderr (filter with `RUST_LOG`, default `info`); with an OTLP endpoint (the standard
/// `OTEL_EXPORTER_OTLP_ENDPOINT`, read by `main`), also exports spans and metrics over OTLP/HTTP to
/// `<endpoint>/v1/traces` and `<endpoint>/v1/metrics`. Must run before [`Metrics::new`] so that the
/// instruments use the installed meter provider.
pub fn init_tracing(
    service_name: &'static str,
    otlp_endpoint: Option<&str>,
) -> anyhow::Result<TelemetryGuard> {
    use opentelemetry::trace::TracerProvider as _;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;

    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let Some(endpoint) = otlp_endpoint
        .map(|e| e.trim_end_matches('/'))
        .filter(|e| !e.is_empty())
    else {
        tracing_subscriber::registry()
            .with(filter)
            .with(fmt)
            .try_init()?;
        return Ok(TelemetryGuard {
            tracer: None,
            meter: None,
        });
    };
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(service_name)
        .build();
    use opentelemetry_otlp::WithExportConfig;
    tempo_client::install_tls_provider();
    let span_exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(format!("{endpoint}/v1/traces"))
        .build()?;
    let tracer = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_resource(resource.clone())
        .with_batch_exporter(span_exporter)
        .build();
    let metric_exporter = opentelemetry_otlp::MetricExporter::builder()
        .with_http()
        .with_endpoint(format!("{endpoint}/v1/metrics"))
        .build()?;
    let meter = opentelemetry_sdk::metrics::SdkMeterProvider::builder()
        .with_resource(resource)
        .with_periodic_exporter(metric_exporter)
        .build();
    opentelemetry::global::set_meter_provider(meter.clone());
    let layer = tracing_opentelemetry::layer().with_tracer(tracer.tracer(service_name));
    tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(layer)
        .try_init()?;
    Ok(TelemetryGuard {
        tracer: Some(tracer),
        meter: Some(meter),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_metrics_are_in_the_text_exposition() {
        let m = Metrics::new();
        m.detection_batch(Duration::from_millis(3));
        m.db_query("insert_anomalies", Duration::from_millis(2));
        m.alert_sent(Duration::from_millis(1_500));
        m.alert_failed();
        m.spans("accepted", 10);
        let text = m.render();
        for name in [
            "tracewatch_detection_processing_seconds_bucket",
            "tracewatch_db_query_seconds_count{operation=\"insert_anomalies\"} 1",
            "tracewatch_alerts_total{outcome=\"sent\"} 1",
            "tracewatch_alerts_total{outcome=\"failed\"} 1",
            "tracewatch_alert_delivery_seconds_count 1",
            "tracewatch_intake_spans_total{outcome=\"accepted\"} 10",
            "tracewatch_intake_queued_spans 0",
        ] {
            assert!(text.contains(name), "{name} missing in\n{text}");
        }
    }
}
