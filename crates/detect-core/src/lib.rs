//! tracewatch's detection heart: the span model, typed configuration, statistics and the five
//! detectors (latency, error rate, throughput, security, resource), driven by [`Engine`], and the
//! incidents their findings form, with ranked probable origins ([`IncidentTracker`]).
//!
//! Pure by design: no I/O, no async, no clock, no database types. Time is the spans' own event time,
//! so the same input always gives the same anomalies.

pub mod anomaly;
pub mod config;
pub mod detect;
pub mod engine;
pub mod incident;
pub mod keys;
pub mod learned;
pub mod sampling;
pub mod service_graph;
pub mod span;
pub mod sql_shape;
pub mod stats;
pub mod traceql;
pub mod traces;

pub use anomaly::{Anomaly, AnomalyType, Cause, MAX_EXAMPLES, Severity, Subtype, Window};
pub use config::{ConfigEntry, ConfigError, DetectionConfig};
pub use engine::{Engine, EngineStats};
pub use incident::{Finding, Incident, IncidentEvent, IncidentSettings, IncidentTracker, Origin};
pub use learned::{LearnedError, LearnedState};
pub use sampling::is_sampled;
pub use service_graph::ServiceGraph;
pub use span::{AttrValue, Span, SpanAttributes, SpanId, SpanKind, SpanStatus, TraceId, UnixNanos};
pub use traceql::traceql;
