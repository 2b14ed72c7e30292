//! What a detector reports: an anomaly that explains itself (observed, expected, spread, score,
//! window, examples) and carries a fingerprint so that repeated detections of one incident can merge.

use crate::span::{SpanId, TraceId, UnixNanos};
use sha2::{Digest, Sha256};
use std::fmt;

/// The seed schema's `anomaly_type` values.
#[derive(
    Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "UPPERCASE")]
pub enum AnomalyType {
    Performance,
    Security,
    Resource,
}

impl AnomalyType {
    pub const ALL: [AnomalyType; 3] = [
        AnomalyType::Performance,
        AnomalyType::Security,
        AnomalyType::Resource,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            AnomalyType::Performance => "PERFORMANCE",
            AnomalyType::Security => "SECURITY",
            AnomalyType::Resource => "RESOURCE",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(s))
    }
}

impl fmt::Display for AnomalyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The precise kind of anomaly (`anomaly_subtype` in the schema).
#[derive(
    Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Subtype {
    /// One trace whose slowest span is extreme given how many spans the trace has (never pages alone).
    LatencySpike,
    /// An operation's durations in a window moved: its median, or its share above the usual p99.
    LatencyDegradation,
    /// An operation's spans in a window stopped making a usual call, or made one never made before.
    CallPathChange,
    /// An operation's error ratio in a window above threshold and above its own baseline.
    ErrorRateSpike,
    /// An operation's request count in a window far above its history.
    ThroughputSpike,
    /// An operation's request count in a window far below its history.
    ThroughputDrop,
    /// A service that had steady traffic sent no spans at all in a window.
    ServiceSilent,
    /// Many 401/403 answers to one client in a window.
    AuthFailureBurst,
    /// One client probing many distinct routes or drawing many 404s in a window.
    EndpointEnumeration,
    /// One client sending far more requests than any normal client in a window.
    RequestFlood,
    /// SQL/script/command injection patterns in a request path or route.
    InjectionAttempt,
    /// `../` and its encodings in a request path.
    PathTraversal,
    /// A sensitive route reached by a principal never seen on it before.
    SensitiveRouteNewPrincipal,
    /// One parent span issuing many database calls of one statement shape.
    NPlusOneQuery,
    /// One span with far more children than its operation usually has.
    FanOut,
    /// A trace whose size or set of operations is far from what its root operation usually produces.
    UnusualTraceShape,
}

impl Subtype {
    pub const ALL: [Subtype; 16] = [
        Subtype::LatencySpike,
        Subtype::LatencyDegradation,
        Subtype::CallPathChange,
        Subtype::ErrorRateSpike,
        Subtype::ThroughputSpike,
        Subtype::ThroughputDrop,
        Subtype::ServiceSilent,
        Subtype::AuthFailureBurst,
        Subtype::EndpointEnumeration,
        Subtype::RequestFlood,
        Subtype::InjectionAttempt,
        Subtype::PathTraversal,
        Subtype::SensitiveRouteNewPrincipal,
        Subtype::NPlusOneQuery,
        Subtype::FanOut,
        Subtype::UnusualTraceShape,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Subtype::LatencySpike => "latency_spike",
            Subtype::LatencyDegradation => "latency_degradation",
            Subtype::CallPathChange => "call_path_change",
            Subtype::ErrorRateSpike => "error_rate_spike",
            Subtype::ThroughputSpike => "throughput_spike",
            Subtype::ThroughputDrop => "throughput_drop",
            Subtype::ServiceSilent => "service_silent",
            Subtype::AuthFailureBurst => "auth_failure_burst",
            Subtype::EndpointEnumeration => "endpoint_enumeration",
            Subtype::RequestFlood => "request_flood",
            Subtype::InjectionAttempt => "injection_attempt",
            Subtype::PathTraversal => "path_traversal",
            Subtype::SensitiveRouteNewPrincipal => "sensitive_route_new_principal",
            Subtype::NPlusOneQuery => "n_plus_one_query",
            Subtype::FanOut => "fan_out",
            Subtype::UnusualTraceShape => "unusual_trace_shape",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    pub fn anomaly_type(self) -> AnomalyType {
        match self {
            Subtype::LatencySpike
            | Subtype::LatencyDegradation
            | Subtype::CallPathChange
            | Subtype::ErrorRateSpike
            | Subtype::ThroughputSpike
            | Subtype::ThroughputDrop
            | Subtype::ServiceSilent => AnomalyType::Performance,
            Subtype::AuthFailureBurst
            | Subtype::EndpointEnumeration
            | Subtype::RequestFlood
            | Subtype::InjectionAttempt
            | Subtype::PathTraversal
            | Subtype::SensitiveRouteNewPrincipal => AnomalyType::Security,
            Subtype::NPlusOneQuery | Subtype::FanOut | Subtype::UnusualTraceShape => {
                AnomalyType::Resource
            }
        }
    }
}

impl fmt::Display for Subtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The seed schema's `severity` values, ordered from least to most urgent.
#[derive(
    Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "UPPERCASE")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 4] = [
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "LOW",
            Severity::Medium => "MEDIUM",
            Severity::High => "HIGH",
            Severity::Critical => "CRITICAL",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(s))
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Reads a stored or sent word (`HIGH`, `PERFORMANCE`); an unknown word is an error that names it.
macro_rules! read_from_words {
    ($($enum:ty: $what:literal),*) => {$(
        impl TryFrom<String> for $enum {
            type Error = String;
            fn try_from(word: String) -> Result<Self, String> {
                Self::parse(&word).ok_or_else(|| format!("unknown {} {word}", $what))
            }
        }
    )*};
}

read_from_words!(AnomalyType: "anomaly type", Severity: "severity");

/// The event-time window an anomaly covers. For a single-span anomaly it is the span's own extent.
#[derive(
    Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, serde::Serialize, serde::Deserialize,
)]
pub struct Window {
    pub start: UnixNanos,
    pub end: UnixNanos,
}

/// Where a finding places the cause of what it saw: what an incident's probable origins are ranked by.
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Debug,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// The service's own behaviour changed: its own time, the way into it, its errors, what it calls,
    /// its resource use, a client's requests to it.
    #[default]
    Itself,
    /// The finding points at `peer_service`: time on the way to it, or waiting on it.
    Peer,
    /// Only the service's totals or traffic changed: it is involved, but where the cause lies is not
    /// known from this finding alone.
    Unknown,
    /// Something the services share (the telemetry pipeline, a common dependency): not one service.
    Shared,
}

/// One detected anomaly, with everything an operator needs to audit why it fired.
#[derive(Clone, PartialEq, Debug)]
pub struct Anomaly {
    pub subtype: Subtype,
    /// Where the cause lies, as far as this finding says.
    pub cause: Cause,
    pub severity: Severity,
    pub service: String,
    /// `None` for service-wide anomalies (a silent service) and per-client security anomalies.
    pub operation: Option<String>,
    /// The client address, for security anomalies that concern one client.
    pub client: Option<String>,
    /// The service called, when the finding is about time spent on the way to it (a client span's own
    /// time: the wire and queues between two services) or about a call to it.
    pub peer_service: Option<String>,
    /// The trace the anomaly is about or, for window-level anomalies, the first example.
    pub trace_id: Option<TraceId>,
    pub span_id: Option<SpanId>,
    /// What was measured, in `unit`.
    pub observed: f64,
    /// What the baseline expected, in `unit`.
    pub expected: f64,
    /// The baseline's spread (a standard deviation, in the space the score is computed in).
    pub spread: f64,
    /// The detector's score (a z-score, a ratio or a count; see docs/DETECTION.md for each subtype).
    pub score: f64,
    /// The score at which the detector fires.
    pub threshold: f64,
    pub unit: &'static str,
    pub window: Window,
    /// Event time at which the anomaly was detected (window close or span end); never the wall clock.
    pub detected_at: UnixNanos,
    /// A few example trace ids (at most [`MAX_EXAMPLES`]).
    pub examples: Vec<TraceId>,
    /// A human explanation. Names patterns, never secrets, tokens or full query strings.
    pub description: String,
}

/// How many example trace ids an anomaly carries.
pub const MAX_EXAMPLES: usize = 3;

impl Anomaly {
    pub fn anomaly_type(&self) -> AnomalyType {
        self.subtype.anomaly_type()
    }

    /// A stable id of the incident: type, subtype, service, operation and client. Two detections of
    /// one ongoing incident share it; it does not depend on time or trace.
    pub fn fingerprint(&self) -> String {
        let mut hasher = Sha256::new();
        for part in [
            self.anomaly_type().as_str(),
            self.subtype.as_str(),
            &self.service,
            self.operation.as_deref().unwrap_or(""),
            self.client.as_deref().unwrap_or(""),
        ] {
            hasher.update(part.as_bytes());
            hasher.update([0u8]);
        }
        let digest = hasher.finalize();
        digest[..16].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// A deterministic order for reports: by detection time, then window, type, subtype and key.
    pub fn sort_key(&self) -> impl Ord + '_ {
        (
            self.detected_at,
            self.window,
            self.subtype,
            self.service.as_str(),
            self.operation.as_deref(),
            self.client.as_deref(),
            self.trace_id,
            self.span_id,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Anomaly {
        Anomaly {
            cause: Cause::Itself,
            subtype: Subtype::LatencySpike,
            severity: Severity::High,
            service: "checkout".into(),
            operation: Some("POST /pay".into()),
            client: None,
            peer_service: None,
            trace_id: Some(TraceId([1; 16])),
            span_id: None,
            observed: 900.0,
            expected: 40.0,
            spread: 0.3,
            score: 9.0,
            threshold: 3.0,
            unit: "ms",
            window: Window {
                start: UnixNanos(0),
                end: UnixNanos(1),
            },
            detected_at: UnixNanos(1),
            examples: vec![],
            description: String::new(),
        }
    }

    #[test]
    fn fingerprint_ignores_time_and_trace_but_not_the_key() {
        let a = sample();
        let mut b = sample();
        b.trace_id = Some(TraceId([2; 16]));
        b.detected_at = UnixNanos(99);
        assert_eq!(a.fingerprint(), b.fingerprint());
        b.operation = Some("GET /cart".into());
        assert_ne!(a.fingerprint(), b.fingerprint());
        assert_eq!(a.fingerprint().len(), 32);
    }

    #[test]
    fn names_round_trip() {
        for s in Subtype::ALL {
            assert_eq!(Subtype::parse(s.as_str()), Some(s));
        }
        for s in Severity::ALL {
            assert_eq!(Severity::parse(s.as_str()), Some(s));
        }
        assert!(Severity::Critical > Severity::High);
        assert_eq!(AnomalyType::parse("security"), Some(AnomalyType::Security));
    }
}
