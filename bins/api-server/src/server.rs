//! Builds and starts the whole server from validated settings: store, access control, in-process
//! detection, run claiming, the demo traffic, and the HTTP server. `main.rs` and the tests both start
//! it through [`start`].

use crate::auth::Authenticator;
use crate::events::EventHub;
use crate::pipeline::{Pipeline, PipelineSettings};
use crate::routes::otlp::IntakeLimits;
use crate::telemetry::Metrics;
use crate::{AppState, demo, pipeline, routes};
use actix_web::{App, HttpServer, web};
use anyhow::{Context, bail};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use store_pg::{Repository, Store};
use tracing::info;

/// Everything the server needs, validated.
pub struct ServerSettings {
    pub listen: SocketAddr,
    /// PostgreSQL; the embedded store in `data_dir` when `None`. Never printed.
    pub database_url: Option<String>,
    pub data_dir: PathBuf,
    pub auth: Authenticator,
    /// Run detection in this process (OTLP intake on `/v1/traces`, manual runs claimed here).
    pub detect: bool,
    /// Generate demo traffic into the in-process detectors.
    pub demo: bool,
    pub max_body_bytes: usize,
    /// Most spans one OTLP body may hold, counted before decoding (413 past it).
    pub max_spans_per_request: usize,
    pub pipeline: PipelineSettings,
    /// HTTP worker threads; 0 for one per core.
    pub http_workers: usize,
    /// How long a first page of the anomaly list may be served from memory (zero: never).
    pub list_cache_ttl: std::time::Duration,
    pub alerts: crate::alerts::AlertSettings,
    /// A trace search's URL (Grafana Explore on Tempo) with `{traceql}`, and optionally `{start}` and
    /// `{end}` (Unix milliseconds), in it: the link from a finding to all of its traces.
    pub trace_search_url_template: Option<String>,
    /// What the retention job keeps, and how often it runs (in whichever instance holds its lease).
    pub retention: store_pg::RetentionSettings,
}

impl ServerSettings {
    /// Defaults for a loopback server on `listen` with the embedded store in `data_dir`.
    pub fn local(listen: SocketAddr, data_dir: PathBuf) -> Self {
        ServerSettings {
            listen,
            database_url: None,
            data_dir,
            auth: Authenticator::disabled(),
            detect: true,
            demo: false,
            max_body_bytes: 16 * 1024 * 1024,
            max_spans_per_request: tempo_client::DEFAULT_MAX_SPANS_PER_BODY,
            pipeline: PipelineSettings::default(),
            trace_search_url_template: None,
            http_workers: 0,
            list_cache_ttl: std::time::Duration::from_secs(1),
            alerts: crate::alerts::AlertSettings::default(),
            retention: store_pg::RetentionSettings::default(),
        }
    }

    /// Refuses settings that would be unsafe to serve.
    pub fn validate(&self) -> anyhow::Result<()> {
        if !self.auth.is_enabled() && !self.listen.ip().is_loopback() {
            bail!(
                "refusing to listen on {} without access control: anyone who can reach it could read and \
                 change everything. Set TRACEWATCH_API_KEYS (role:key pairs) or TRACEWATCH_JWT_SECRET, \
                 or listen on a loopback address such as 127.0.0.1",
                self.listen
            );
        }
        if self.demo && !self.detect {
            bail!("--demo needs the in-process detectors; drop --no-detect");
        }
        if self.max_body_bytes < 1024 {
            bail!("--max-body-bytes must be at least 1024");
        }
        if self.max_spans_per_request == 0 {
            bail!("--max-spans-per-request must be at least 1");
        }
        Ok(())
    }
}

/// A started server.
pub struct Running {
    pub addr: SocketAddr,
    pub store: Store,
    /// The running HTTP server (actix's server only runs while it is polled, so it is spawned).
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    handle: actix_web::dev::ServerHandle,
    pipeline: Option<Pipeline>,
    events: EventHub,
    background: Vec<tokio::task::JoinHandle<()>>,
    alerts: Option<crate::alerts::AlertTasks>,
}

pub async fn start(settings: ServerSettings) -> anyhow::Result<Running> {
    settings.validate()?;
    tempo_client::install_tls_provider();
    let store = Store::open(settings.database_url.as_deref(), &settings.data_dir)
        .await
        .context("cannot open the store")?;
    let metrics = Arc::new(Metrics::new());
    let events = EventHub::default();
    let mut background = Vec::new();
    let pipeline = if settings.detect {
        let config = store
            .load_config()
            .await
            .context("cannot load the detection configuration")?;
        let p = Pipeline::start(
            config,
            settings.pipeline.clone(),
            store.clone(),
            events.clone(),
            metrics.clone(),
        );
        background.push(tokio::spawn(pipeline::serve_runs(
            store.clone(),
            p.intake.clone(),
        )));
        if settings.demo {
            background.push(tokio::spawn(demo::run(p.intake.clone())));
        }
        Some(p)
    } else {
        None
    };
    background.push(tokio::spawn(crate::events::follow(
        store.clone(),
        events.clone(),
        metrics.clone(),
    )));
    background.push(crate::retention::spawn(
        store.clone(),
        settings.retention.clone(),
        metrics.clone(),
    ));
    let alerts = crate::alerts::spawn(
        &store,
        settings.alerts.clone(),
        metrics.clone(),
        events.clone(),
    )?;
    let intake = pipeline.as_ref().map(|p| p.intake.clone());
    let state = web::Data::new(AppState {
        store: store.clone(),
        events: events.clone(),
        intake: intake.clone(),
        metrics: metrics.clone(),
        list_cache: crate::list_cache::ListCache::new(settings.list_cache_ttl),
        trace_url_template: settings.alerts.policy.links.trace.clone(),
        trace_search_url_template: settings.trace_search_url_template.clone(),
    });
    let access_control = settings.auth.is_enabled();
    let auth = web::Data::new(settings.auth);
    let metrics_data = web::Data::from(metrics);
    let events_data = web::Data::new(events.clone());
    let intake_data = intake.map(web::Data::new);
    let limits = web::Data::new(IntakeLimits {
        max_body_bytes: settings.max_body_bytes,
        max_spans: settings.max_spans_per_request,
    });
    let with_intake = intake_data.is_some();
    let mut http = HttpServer::new(move || {
        let mut app = App::new()
            .app_data(state.clone())
            .app_data(auth.clone())
            .app_data(metrics_data.clone())
            .app_data(events_data.clone())
            .app_data(limits.clone());
        if let Some(intake) = &intake_data {
            app = app.app_data(intake.clone());
        }
        app.wrap_fn(trace_request)
            .configure(|cfg| routes::configure(cfg, with_intake))
    })
    // Tells the process manager quickly; the pipeline drains after the HTTP server has stopped.
    .shutdown_timeout(10)
    // Signals are handled in `Running::wait`, which ends the live streams before the graceful stop.
    .disable_signals();
    if settings.http_workers > 0 {
        http = http.workers(settings.http_workers);
    }
    let http = http
        .bind(settings.listen)
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    let addr = http.addrs()[0];
    let server = http.run();
    let handle = server.handle();
    let server = tokio::spawn(server);
    info!(
        store = store.backend_name(),
        detection = settings.detect,
        demo = settings.demo,
        access_control = access_control,
        "api-server listening on http://{addr}"
    );
    Ok(Running {
        addr,
        store,
        server,
        handle,
        pipeline,
        events,
        background,
        alerts: Some(alerts),
    })
}

impl Running {
    /// Serves until the server is stopped (SIGINT/SIGTERM, or [`Running::stop`]), then drains the
    /// detectors so that nothing accepted is lost.
    pub async fn wait(mut self) -> anyhow::Result<()> {
        let served = tokio::select! {
            served = &mut self.server => served,
            _ = shutdown_signal() => {
                info!("stopping: finishing requests, then draining the detectors");
                self.events.close();
                self.handle.stop(true).await;
                (&mut self.server).await
            }
        };
        self.drain().await;
        served
            .context("the HTTP server task failed")?
            .context("the HTTP server failed")
    }

    /// Stops the server gracefully and drains the detectors.
    pub async fn stop(mut self) {
        self.events.close();
        self.handle.stop(true).await;
        let _ = (&mut self.server).await;
        self.drain().await;
    }

    async fn drain(&mut self) {
        for task in self.background.drain(..) {
            task.abort();
        }
        if let Some(alerts) = self.alerts.take() {
            alerts.stop(&self.store).await;
        }
        if let Some(pipeline) = self.pipeline.take() {
            info!("draining the detectors");
            pipeline.shutdown().await;
        }
    }
}

/// One tracing span per request (exported over OTLP when configured): method, route template and
/// status, never headers (they may hold tokens) or query strings.
fn trace_request<S>(
    req: actix_web::dev::ServiceRequest,
    service: &S,
) -> impl std::future::Future<Output = Result<actix_web::dev::ServiceResponse, actix_web::Error>> + use<S>
where
    S: actix_web::dev::Service<
            actix_web::dev::ServiceRequest,
            Response = actix_web::dev::ServiceResponse,
            Error = actix_web::Error,
        >,
{
    use tracing::Instrument;
    let span = tracing::info_span!(
        "http.request",
        otel.kind = "server",
        http.request.method = %req.method(),
        http.route = req.match_pattern().unwrap_or_else(|| "unmatched".into()),
        http.response.status_code = tracing::field::Empty,
    );
    let response = service.call(req);
    let recorder = span.clone();
    async move {
        let response = response.await;
        if let Ok(r) = &response {
            recorder.record("http.response.status_code", r.status().as_u16());
        }
        response
    }
    .instrument(span)
}

/// SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}
