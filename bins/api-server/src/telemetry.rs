//! Self-telemetry: tracing (logs on stderr; spans exported over OTLP when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set) and the self-metrics ([`Metrics`]), each declared once and
//! exported both to Prometheus (`/metrics`) and over OTLP when configured.

mod instrument;
mod metrics;

pub use metrics::Metrics;

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
