//! tracewatch's detection heart: the span model, typed configuration, statistics and the five
//! detectors (latency, error rate, throughput, security, resource), driven by [`Engine`].
//!
//! Pure by design: no I/O, no async, no clock, no database types. Time is the spans' own event time,
//! so the same input always gives the same anomalies.

pub mod anomaly;
pub mod config;
pub mod span;
pub mod sql_shape;
pub mod stats;

pub use anomaly::{Anomaly, AnomalyType, Severity, Subtype, Window};
pub use span::{AttrValue, Span, SpanAttributes, SpanId, SpanKind, SpanStatus, TraceId, UnixNanos};
pub use config::{ConfigError, DetectionConfig};
