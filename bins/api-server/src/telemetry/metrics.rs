//! The seed's self-metrics (detection processing time, anomalies detected, alert success, database
//! query time), the intake's and the retention job's, each declared once below and exported both to
//! Prometheus (`/metrics`) and to OpenTelemetry (the OTLP metrics exporter, when configured).

use super::instrument::{Buckets, Counter, Gauge, Histogram, Kind, Registrar, Spec};
use detect_core::Anomaly;
use opentelemetry::metrics::Meter;
use std::time::Duration;

/// Store calls and detection batches: 50 µs to about 7 min.
const SECONDS: Buckets = Buckets {
    start: 0.000_05,
    factor: 2.5,
    count: 14,
};

static DETECTION: Spec = Spec {
    prometheus: "detection_processing_seconds",
    otel: "tracewatch.detection.processing_time",
    help: "Time the detectors spent on one batch of spans",
    unit: "s",
    kind: Kind::Histogram(SECONDS),
    labels: &[],
};

static ANOMALIES: Spec = Spec {
    prometheus: "anomalies_detected",
    otel: "tracewatch.anomalies.detected",
    help: "Anomalies detected, by type and severity",
    unit: "{anomaly}",
    kind: Kind::Counter,
    labels: &["anomaly_type", "severity"],
};

static DB_QUERY: Spec = Spec {
    prometheus: "db_query_seconds",
    otel: "tracewatch.db.query_time",
    help: "Time of store calls, by operation",
    unit: "s",
    kind: Kind::Histogram(SECONDS),
    labels: &["operation"],
};

static ALERTS: Spec = Spec {
    prometheus: "alerts",
    otel: "tracewatch.alerts",
    help: "Alert deliveries, by outcome (sent, failed); the success rate is sent / all",
    unit: "{alert}",
    kind: Kind::Counter,
    labels: &["outcome"],
};

static ALERT_DELIVERY: Spec = Spec {
    prometheus: "alert_delivery_seconds",
    otel: "tracewatch.alerts.delivery_time",
    help: "Time from an anomaly being stored to Telegram accepting its alert",
    unit: "s",
    // 50 ms to about 7 min.
    kind: Kind::Histogram(Buckets {
        start: 0.05,
        factor: 2.0,
        count: 14,
    }),
    labels: &[],
};

static INTAKE_SPANS: Spec = Spec {
    prometheus: "intake_spans",
    otel: "tracewatch.intake.spans",
    help: "Spans received over OTLP, by outcome (accepted, rejected, throttled)",
    unit: "{span}",
    kind: Kind::Counter,
    labels: &["outcome"],
};

static INTAKE_QUEUED_SPANS: Spec = Spec {
    prometheus: "intake_queued_spans",
    otel: "tracewatch.intake.queued_spans",
    help: "Spans accepted and waiting for the detectors",
    unit: "{span}",
    kind: Kind::Gauge,
    labels: &[],
};

static RETENTION_DELETED: Spec = Spec {
    prometheus: "retention_deleted_rows",
    otel: "tracewatch.retention.deleted_rows",
    help: "Rows the retention job deleted, by table",
    unit: "{row}",
    kind: Kind::Counter,
    labels: &["table"],
};

static RETENTION_RUN: Spec = Spec {
    prometheus: "retention_run_seconds",
    otel: "tracewatch.retention.run_time",
    help: "Time one run of the retention job took",
    unit: "s",
    kind: Kind::Histogram(SECONDS),
    labels: &[],
};

static LIVE_EVENTS: Spec = Spec {
    prometheus: "live_events",
    otel: "tracewatch.live.events",
    help: "Live events read from the store's journal and put on this instance's streams, by subject",
    unit: "{event}",
    kind: Kind::Counter,
    labels: &["subject"],
};

static LIVE_LISTENER: Spec = Spec {
    prometheus: "live_listener_connected",
    otel: "tracewatch.live.listener_connected",
    help: "1 while this instance listens for other processes' writes (PostgreSQL NOTIFY), else 0",
    unit: "1",
    kind: Kind::Gauge,
    labels: &[],
};

/// Every metric tracewatch exports about itself.
pub struct Metrics {
    detection: Histogram,
    anomalies: Counter,
    db_query: Histogram,
    alerts: Counter,
    alert_delivery: Histogram,
    spans: Counter,
    queued_spans: Gauge,
    retention_deleted: Counter,
    retention_run: Histogram,
    live_events: Counter,
    live_listener: Gauge,
    registrar: Registrar,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// The instruments on the global meter provider (see [`super::init_tracing`]).
    pub fn new() -> Self {
        Self::with_meter(opentelemetry::global::meter("tracewatch"))
    }

    pub fn with_meter(meter: Meter) -> Self {
        let mut r = Registrar::new(meter);
        Metrics {
            detection: r.histogram(&DETECTION),
            anomalies: r.counter(&ANOMALIES),
            db_query: r.histogram(&DB_QUERY),
            alerts: r.counter(&ALERTS),
            alert_delivery: r.histogram(&ALERT_DELIVERY),
            spans: r.counter(&INTAKE_SPANS),
            queued_spans: r.gauge(&INTAKE_QUEUED_SPANS),
            retention_deleted: r.counter(&RETENTION_DELETED),
            retention_run: r.histogram(&RETENTION_RUN),
            live_events: r.counter(&LIVE_EVENTS),
            live_listener: r.gauge(&LIVE_LISTENER),
            registrar: r,
        }
    }

    pub fn detection_batch(&self, took: Duration) {
        self.detection.observe(took.as_secs_f64(), &[]);
    }

    pub fn anomaly(&self, anomaly: &Anomaly) {
        let labels = [anomaly.anomaly_type().as_str(), anomaly.severity.as_str()];
        self.anomalies.add(1, &labels);
    }

    pub fn db_query(&self, operation: &'static str, took: Duration) {
        self.db_query.observe(took.as_secs_f64(), &[operation]);
    }

    /// An alert Telegram accepted, `waited` after its anomaly was stored.
    pub fn alert_sent(&self, waited: Duration) {
        self.alert_delivery.observe(waited.as_secs_f64(), &[]);
        self.alerts.add(1, &["sent"]);
    }

    /// A delivery attempt that failed (it is tried again).
    pub fn alert_failed(&self) {
        self.alerts.add(1, &["failed"]);
    }

    pub fn spans(&self, outcome: &'static str, n: usize) {
        self.spans.add(n as u64, &[outcome]);
    }

    /// How many accepted spans wait for the detectors now.
    pub fn queued_spans(&self, n: usize) {
        self.queued_spans
            .set(i64::try_from(n).unwrap_or(i64::MAX), &[]);
    }

    /// One run of the retention job: rows deleted per table, and its duration.
    pub fn retention(&self, report: &store_pg::RetentionReport) {
        for (table, rows) in report.by_table() {
            self.retention_deleted.add(rows, &[table]);
        }
        self.retention_run.observe(report.took.as_secs_f64(), &[]);
    }

    /// A live event put on the streams; `subject` is `anomaly` or `incident`.
    pub fn live_event(&self, subject: &'static str) {
        self.live_events.add(1, &[subject]);
    }

    /// Whether the live-event follower listens for other processes' writes.
    pub fn live_listener(&self, connected: bool) {
        self.live_listener.set(i64::from(connected), &[]);
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registrar.registry);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::metrics::MeterProvider as _;
    use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};
    use std::collections::HashMap;

    #[test]
    fn the_seed_metrics_are_in_the_text_exposition() {
        let m = Metrics::new();
        m.detection_batch(Duration::from_millis(3));
        m.db_query("insert_anomalies", Duration::from_millis(2));
        m.alert_sent(Duration::from_millis(1_500));
        m.alert_failed();
        m.spans("accepted", 10);
        m.retention(&store_pg::RetentionReport {
            anomalies: 3,
            took: Duration::from_millis(40),
            ..Default::default()
        });
        let text = m.render();
        for name in [
            "tracewatch_detection_processing_seconds_bucket",
            "tracewatch_db_query_seconds_count{operation=\"insert_anomalies\"} 1",
            "tracewatch_alerts_total{outcome=\"sent\"} 1",
            "tracewatch_alerts_total{outcome=\"failed\"} 1",
            "tracewatch_alert_delivery_seconds_count 1",
            "tracewatch_intake_spans_total{outcome=\"accepted\"} 10",
            "tracewatch_intake_queued_spans 0",
            "tracewatch_retention_deleted_rows_total{table=\"trace_anomalies\"} 3",
            "tracewatch_retention_deleted_rows_total{table=\"alert_outbox\"} 0",
            "tracewatch_retention_run_seconds_count 1",
        ] {
            assert!(text.contains(name), "{name} missing in\n{text}");
        }
    }

    #[test]
    fn every_declared_metric_is_exported_both_ways() {
        let exporter = InMemoryMetricExporter::default();
        let provider = SdkMeterProvider::builder()
            .with_reader(PeriodicReader::builder(exporter.clone()).build())
            .build();
        let m = Metrics::with_meter(provider.meter("tracewatch"));
        // One measurement on every metric: OpenTelemetry exports only the measured.
        m.detection_batch(Duration::from_millis(3));
        m.db_query("insert_anomalies", Duration::from_millis(2));
        m.alert_sent(Duration::from_millis(1_500));
        m.spans("accepted", 10);
        m.queued_spans(7);
        m.retention(&store_pg::RetentionReport::default());
        m.live_event("anomaly");
        m.live_listener(true);
        // What `anomaly` records, without building a whole detection.
        m.anomalies.add(1, &["PERFORMANCE", "HIGH"]);
        provider.force_flush().unwrap();
        let otel: HashMap<String, String> = exporter
            .get_finished_metrics()
            .unwrap()
            .iter()
            .flat_map(|rm| rm.scope_metrics())
            .flat_map(|scope| scope.metrics())
            .map(|metric| (metric.name().to_owned(), metric.unit().to_owned()))
            .collect();
        let text = m.render();
        for spec in &m.registrar.declared {
            let kind = match spec.kind {
                Kind::Counter => "counter",
                Kind::Gauge => "gauge",
                Kind::Histogram(_) => "histogram",
            };
            let declaration = format!("# TYPE tracewatch_{} {kind}", spec.prometheus);
            assert!(
                text.contains(&declaration),
                "{declaration} missing in\n{text}"
            );
            assert_eq!(
                otel.get(spec.otel).map(String::as_str),
                Some(spec.unit),
                "{} missing from the OpenTelemetry export {otel:?}",
                spec.otel
            );
        }
        assert!(text.contains("tracewatch_intake_queued_spans 7"), "{text}");
    }
}
