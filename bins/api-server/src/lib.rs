//! tracewatch's API server: the REST API over the store, OTLP/HTTP intake with in-process detection,
//! the live anomaly stream, access control, self-telemetry and the `--demo` traffic generator.
//! `main.rs` parses the command line; [`server::start`] builds everything, the same way for tests.

pub mod alerts;
pub mod auth;
pub mod demo;
pub mod error;
pub mod events;
pub mod list_cache;
pub mod openapi;
pub mod pipeline;
pub mod retention;
pub mod routes;
pub mod server;
pub mod telemetry;

use store_pg::Store;

/// What every REST handler shares.
pub struct AppState {
    pub store: Store,
    pub events: events::EventHub,
    /// The in-process detectors, when this instance runs them.
    pub intake: Option<pipeline::Intake>,
    pub metrics: std::sync::Arc<telemetry::Metrics>,
    pub list_cache: list_cache::ListCache,
    /// For links from the dashboard to a trace in Grafana or Tempo.
    pub trace_url_template: Option<String>,
    /// A trace search's URL with `{traceql}` (and `{start}`, `{end}`) in it, when configured.
    pub trace_search_url_template: Option<String>,
}
