//! The worker's own metrics for Prometheus (`run --metrics-listen ADDR`, `GET /metrics`): windows
//! processed by outcome, spans read, and what reading Tempo cost (queries, lookups, bytes, seconds
//! waited): the figures of the windows' run records, summed since the process started.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use store_pg::ReadCost;

type Labels = Vec<(&'static str, &'static str)>;

pub struct WorkerMetrics {
    registry: Registry,
    windows: Family<Labels, Counter>,
    spans: Counter,
    tempo_queries: Counter,
    tempo_lookups: Counter,
    tempo_bytes: Counter,
    tempo_seconds: Counter<f64, AtomicU64>,
}

impl Default for WorkerMetrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("tracewatch_worker");
        let windows = Family::<Labels, Counter>::default();
        let (spans, tempo_queries, tempo_lookups, tempo_bytes) = Default::default();
        let tempo_seconds = Counter::<f64, AtomicU64>::default();
        registry.register(
            "windows",
            "Windows processed, by outcome (succeeded, failed)",
            windows.clone(),
        );
        registry.register(
            "spans",
            "Spans read from Tempo and detected on",
            Clone::clone(&spans),
        );
        registry.register(
            "tempo_queries",
            "Tempo queries made: searches and TraceQL metrics",
            Clone::clone(&tempo_queries),
        );
        registry.register(
            "tempo_lookups",
            "Traces fetched from Tempo by id",
            Clone::clone(&tempo_lookups),
        );
        registry.register(
            "tempo_bytes",
            "Bytes of Tempo's answers",
            Clone::clone(&tempo_bytes),
        );
        registry.register(
            "tempo_seconds",
            "Seconds spent waiting on Tempo, summed over concurrent requests",
            tempo_seconds.clone(),
        );
        WorkerMetrics {
            registry,
            windows,
            spans,
            tempo_queries,
            tempo_lookups,
            tempo_bytes,
            tempo_seconds,
        }
    }
}

impl WorkerMetrics {
    /// One window done (`spans` read) or failed, and what reading it cost.
    pub fn window(&self, succeeded: bool, spans: u64, cost: &ReadCost) {
        let outcome = if succeeded { "succeeded" } else { "failed" };
        self.windows
            .get_or_create(&vec![("outcome", outcome)])
            .inc();
        let count = |n: i64| u64::try_from(n).unwrap_or(0);
        self.spans.inc_by(spans);
        self.tempo_queries.inc_by(count(cost.queries));
        self.tempo_lookups.inc_by(count(cost.lookups));
        self.tempo_bytes.inc_by(count(cost.bytes));
        self.tempo_seconds.inc_by(cost.seconds.max(0.0));
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut text, &self.registry);
        text
    }
}

/// Serves `GET /metrics` on `addr` until the process ends.
pub fn serve(metrics: Arc<WorkerMetrics>, addr: std::net::SocketAddr) -> std::io::Result<()> {
    use actix_web::{App, HttpResponse, HttpServer, web};
    let server = HttpServer::new(move || {
        let metrics = metrics.clone();
        App::new().route(
            "/metrics",
            web::get().to(move || {
                let body = metrics.render();
                async move {
                    HttpResponse::Ok()
                        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
                        .body(body)
                }
            }),
        )
    })
    .workers(1)
    .disable_signals()
    .bind(addr)?
    .run();
    tokio::spawn(server);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_run_records_figures_are_summed() {
        let metrics = WorkerMetrics::default();
        let cost = ReadCost {
            queries: 3,
            lookups: 2,
            bytes: 1_000,
            seconds: 1.5,
        };
        metrics.window(true, 500, &cost);
        metrics.window(true, 700, &cost);
        metrics.window(false, 0, &ReadCost::default());
        let text = metrics.render();
        for line in [
            "tracewatch_worker_windows_total{outcome=\"succeeded\"} 2",
            "tracewatch_worker_windows_total{outcome=\"failed\"} 1",
            "tracewatch_worker_spans_total 1200",
            "tracewatch_worker_tempo_queries_total 6",
            "tracewatch_worker_tempo_lookups_total 4",
            "tracewatch_worker_tempo_bytes_total 2000",
            "tracewatch_worker_tempo_seconds_total 3.0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
    }
}
