//! tracewatch's detection heart: the span model, typed configuration, statistics and the five
//! detectors (latency, error rate, throughput, security, resource), driven by [`Engine`].
//!
//! Pure by design: no I/O, no async, no clock, no database types. Time is the spans' own event time,
//! so the same input always gives the same anomalies.

pub mod anomaly;
pub mod config;
pub mod detect;
pub mod engine;
pub mod keys;
pub mod learned;
pub mod sampling;
pub mod span;
pub mod sql_shape;
pub mod stats;
pub mod traces;

pub use anomaly::{Anomaly, AnomalyType, MAX_EXAMPLES, Severity, Subtype, Window};
pub use config::{ConfigEntry, ConfigError, DetectionConfig};
pub use engine::{Engine, EngineStats};
pub use learned::{LearnedError, LearnedState};
pub use sampling::is_sampled;
pub use span::{AttrValue, Span, SpanAttributes, SpanId, SpanKind, SpanStatus, TraceId, UnixNanos};
