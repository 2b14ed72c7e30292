//! Typed detection configuration: the five seed keys of `anomaly_detection_config`, plus what the
//! detectors need. It is read from and written to the table's key → JSON value form, and validated once:
//! an error names the key and the allowed range.

use crate::anomaly::Severity;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Why a configuration was refused. Every variant names the key (dotted for nested values).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error("unknown configuration key `{key}`")]
    UnknownKey { key: String },
    #[error("configuration key `{key}` has the wrong type: {detail}")]
    WrongType { key: String, detail: String },
    #[error("configuration key `{key}` is {got}, allowed: {allowed}")]
    OutOfRange {
        key: String,
        got: String,
        allowed: String,
    },
    #[error("configuration must be a JSON object of key → value")]
    NotAnObject,
}

impl ConfigError {
    /// The key the error is about, if any.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::UnknownKey { key }
            | ConfigError::WrongType { key, .. }
            | ConfigError::OutOfRange { key, .. } => Some(key),
            ConfigError::NotAnObject => None,
        }
    }
}

pub type Result<T> = std::result::Result<T, ConfigError>;

/// Score cut-offs at which an anomaly becomes MEDIUM, HIGH and CRITICAL (below `medium` it is LOW).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cutoffs {
    pub medium: f64,
    pub high: f64,
    pub critical: f64,
}

impl Cutoffs {
    pub const fn new(medium: f64, high: f64, critical: f64) -> Self {
        Cutoffs {
            medium,
            high,
            critical,
        }
    }

    pub fn grade(&self, score: f64) -> Severity {
        if score >= self.critical {
            Severity::Critical
        } else if score >= self.high {
            Severity::High
        } else if score >= self.medium {
            Severity::Medium
        } else {
            Severity::Low
        }
    }
}

/// Severity cut-offs per detector family, each in that detector's score units (docs/DETECTION.md).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SeverityCutoffs {
    /// Latency and call-path window findings: the percentage of the window's requests affected.
    pub latency: Cutoffs,
    /// Error ratio in the window.
    pub error_rate: Cutoffs,
    /// |z| of the window's request count.
    pub throughput: Cutoffs,
    /// How many times past its threshold the security signal is.
    pub security: Cutoffs,
    /// How many times past its threshold the resource signal is.
    pub resource: Cutoffs,
}

impl Default for SeverityCutoffs {
    fn default() -> Self {
        SeverityCutoffs {
            latency: Cutoffs::new(10.0, 25.0, 50.0),
            error_rate: Cutoffs::new(0.10, 0.25, 0.50),
            throughput: Cutoffs::new(4.5, 6.0, 10.0),
            security: Cutoffs::new(2.0, 5.0, 20.0),
            resource: Cutoffs::new(2.0, 5.0, 10.0),
        }
    }
}

/// Security detection settings. Counts are per client per window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecurityConfig {
    /// 401/403 answers to one client in a window before it is a burst.
    pub auth_failure_min: u32,
    /// …and the share of that client's requests they must be.
    pub auth_failure_min_ratio: f64,
    /// Distinct endpoints (route template, or path where no route matched) from one client in a
    /// window before it is enumeration.
    pub enumeration_min_distinct_endpoints: u32,
    /// 404 answers to one client in a window before it is enumeration.
    pub enumeration_min_not_found: u32,
    /// Requests from one client in a window before it can be a flood…
    pub flood_min_requests: u32,
    /// …and how many times the median active client's count it must be.
    pub flood_min_ratio_to_median: f64,
    /// Route prefixes whose access by a new principal is reported.
    pub sensitive_route_prefixes: Vec<String>,
    /// Windows from the first span during which principals of sensitive routes are learned, not reported.
    pub sensitive_learning_windows: u32,
    /// Distinct clients tracked per window; past it, new clients are counted but not tracked.
    pub max_clients_per_window: u32,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        SecurityConfig {
            auth_failure_min: 10,
            auth_failure_min_ratio: 0.5,
            enumeration_min_distinct_endpoints: 20,
            enumeration_min_not_found: 15,
            flood_min_requests: 300,
            flood_min_ratio_to_median: 10.0,
            sensitive_route_prefixes: ["/admin", "/internal", "/actuator", "/debug"]
                .map(String::from)
                .to_vec(),
            sensitive_learning_windows: 15,
            max_clients_per_window: 100_000,
        }
    }
}

/// Resource (per-trace) detection settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ResourceConfig {
    /// Database calls of one statement shape under one parent before it is an N+1 pattern.
    pub n_plus_one_min_calls: u32,
    /// Direct children of one span before it can be runaway fan-out…
    pub fan_out_min_children: u32,
    /// …and how many times its operation's usual child count it must be.
    pub fan_out_min_ratio: f64,
    /// Traces of a root operation seen before its shape baseline judges.
    pub shape_min_traces: u32,
    /// z-score (on log span count) past which a trace's size is unusual for its root operation.
    pub shape_span_count_threshold_stddev: f64,
    /// Event-time seconds without a new span after which a trace is considered complete.
    pub trace_idle_seconds: u64,
    /// Traces held for assembly at once; past it the oldest is analysed early.
    pub max_inflight_traces: u32,
}

impl Default for ResourceConfig {
    fn default() -> Self {
        ResourceConfig {
            n_plus_one_min_calls: 10,
            fan_out_min_children: 30,
            fan_out_min_ratio: 4.0,
            shape_min_traces: 200,
            shape_span_count_threshold_stddev: 4.0,
            trace_idle_seconds: 30,
            max_inflight_traces: 100_000,
        }
    }
}

/// Per-service replacements of the three thresholds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServiceOverride {
    pub latency_threshold_stddev: Option<f64>,
    pub error_rate_threshold: Option<f64>,
    pub throughput_spike_threshold: Option<f64>,
}

/// The whole detection configuration. Build it with [`DetectionConfig::default`] and
/// [`DetectionConfig::from_entries`]/[`DetectionConfig::from_json`], which validate.
#[derive(Clone, Debug, PartialEq)]
pub struct DetectionConfig {
    /// z-score on log-duration at which a span is a latency anomaly.
    pub latency_threshold_stddev: f64,
    /// Error ratio in a window above which an operation is anomalous.
    pub error_rate_threshold: f64,
    /// |z| of a window's request count at which it is a spike (or drop).
    pub throughput_spike_threshold: f64,
    /// Whether per-trace analysis looks only at a deterministic sample of traces.
    pub sampling_enabled: bool,
    /// The share of traces sampled, 0–1.
    pub sampling_ratio: f64,
    /// Length of a detection window in seconds.
    pub window_seconds: u64,
    /// How late (event time) a span may arrive and still be counted in its window.
    pub allowed_lateness_seconds: u64,
    /// Spans of a (service, operation) seen before its latency baseline judges.
    pub warmup_min_samples: u32,
    /// Windows of a (service, operation) seen before its rate baselines judge.
    pub warmup_min_windows: u32,
    /// Requests in a window (observed, or expected for drops) below which rates are not judged.
    pub min_requests_per_window: u32,
    /// A throughput spike must also be this many times the expected count (a drop, this many times below).
    pub throughput_min_change_ratio: f64,
    /// An error-rate anomaly must also be this many times the operation's own baseline error ratio.
    pub error_rate_min_ratio_to_baseline: f64,
    /// An error-rate anomaly must also be this unlikely (binomial tail) under the baseline error ratio.
    pub error_rate_max_p_value: f64,
    /// A latency anomaly must also exceed the typical duration by this many milliseconds.
    pub latency_min_excess_ms: f64,
    /// A baseline that stays anomalous this long (event time) is relearned: the new level is normal now.
    pub relearn_after_seconds: u64,
    /// Distinct (service, operation) pairs tracked; past it, new pairs are counted but not judged.
    pub max_keys: u32,
    pub severity_cutoffs: SeverityCutoffs,
    pub security: SecurityConfig,
    pub resource: ResourceConfig,
    pub service_overrides: BTreeMap<String, ServiceOverride>,
}

impl Default for DetectionConfig {
    fn default() -> Self {
        DetectionConfig {
            latency_threshold_stddev: 3.0,
            error_rate_threshold: 0.05,
            throughput_spike_threshold: 3.0,
            sampling_enabled: true,
            sampling_ratio: 0.1,
            window_seconds: 60,
            allowed_lateness_seconds: 30,
            warmup_min_samples: 50,
            warmup_min_windows: 10,
            min_requests_per_window: 20,
            throughput_min_change_ratio: 1.5,
            error_rate_min_ratio_to_baseline: 2.0,
            error_rate_max_p_value: 0.0001,
            latency_min_excess_ms: 1.0,
            relearn_after_seconds: 1800,
            max_keys: 100_000,
            severity_cutoffs: SeverityCutoffs::default(),
            security: SecurityConfig::default(),
            resource: ResourceConfig::default(),
            service_overrides: BTreeMap::new(),
        }
    }
}

/// One row of the key → value form, as stored in `anomaly_detection_config`.
#[derive(Clone, Debug, PartialEq)]
pub struct ConfigEntry {
    pub key: &'static str,
    pub value: Value,
    pub description: &'static str,
}

/// Lists every key once, with its description: the key → value table, [`KEYS`], reading and
/// writing all follow from this list, so a new key cannot be half added.
macro_rules! config_keys {
    ($($field:ident: $description:literal,)*) => {
        /// Every key with its description, in a stable order. The first five are the seed's.
        pub const KEYS: &[(&str, &str)] = &[$((stringify!($field), $description)),*];

        impl DetectionConfig {
            fn apply(&mut self, key: &str, value: &Value) -> Result<()> {
                match key {
                    $(stringify!($field) => self.$field = parse(key, value)?,)*
                    _ => return Err(ConfigError::UnknownKey { key: key.to_owned() }),
                }
                Ok(())
            }

            fn value_of(&self, key: &str) -> Value {
                match key {
                    $(stringify!($field) => serde_json::to_value(&self.$field).unwrap_or(Value::Null),)*
                    _ => Value::Null,
                }
            }
        }
    };
}

config_keys! {
    latency_threshold_stddev: "Standard deviations (on log-duration) above its operation's baseline at which a span is a latency anomaly",
    error_rate_threshold: "Error ratio of an operation in a window above which it is an error-rate anomaly",
    throughput_spike_threshold: "Standard deviations of a window's request count from its history at which traffic is a spike or drop",
    sampling_enabled: "Whether per-trace analysis looks at a deterministic sample of traces only",
    sampling_ratio: "Share of traces sampled for per-trace analysis (0-1)",
    window_seconds: "Length of a detection window in seconds",
    allowed_lateness_seconds: "How late (event time) a span may arrive and still count in its window",
    warmup_min_samples: "Spans of an operation seen before its latency baseline judges",
    warmup_min_windows: "Windows of an operation seen before its rate baselines judge",
    min_requests_per_window: "Requests in a window below which rates are not judged",
    throughput_min_change_ratio: "A throughput spike (drop) must also be this many times above (below) the expected count",
    error_rate_min_ratio_to_baseline: "An error-rate anomaly must also be this many times the operation's own error ratio",
    error_rate_max_p_value: "An error-rate anomaly must also be this unlikely under the operation's own error ratio",
    latency_min_excess_ms: "A latency anomaly must also exceed the typical duration by this many milliseconds",
    relearn_after_seconds: "A baseline anomalous for this long is relearned at its new level",
    max_keys: "Distinct (service, operation) pairs tracked",
    severity_cutoffs: "Scores at which anomalies become MEDIUM, HIGH and CRITICAL, per detector",
    security: "Security detection settings",
    resource: "Resource (per-trace) detection settings",
    service_overrides: "Per-service thresholds",
}

impl DetectionConfig {
    /// Applies `(key, value)` pairs over the defaults, then validates. Unknown keys are refused.
    pub fn from_entries<'a>(
        entries: impl IntoIterator<Item = (&'a str, &'a Value)>,
    ) -> Result<Self> {
        let mut config = DetectionConfig::default();
        for (key, value) in entries {
            config.apply(key, value)?;
        }
        config.validate()?;
        Ok(config)
    }

    /// Applies a JSON object of key → value (a partial update) over the defaults, then validates.
    pub fn from_json(object: &Value) -> Result<Self> {
        DetectionConfig::default().merged(object)
    }

    /// This configuration with a partial update applied, validated as a whole: nothing is half-applied.
    pub fn merged(&self, object: &Value) -> Result<Self> {
        let map = object.as_object().ok_or(ConfigError::NotAnObject)?;
        let mut config = self.clone();
        for (key, value) in map {
            config.apply(key, value)?;
        }
        config.validate()?;
        Ok(config)
    }

    /// The key → value form, with descriptions, for every key.
    pub fn to_entries(&self) -> Vec<ConfigEntry> {
        KEYS.iter()
            .map(|&(key, description)| ConfigEntry {
                key,
                value: self.value_of(key),
                description,
            })
            .collect()
    }

    /// The configuration as one JSON object of key → value.
    pub fn to_json(&self) -> Value {
        Value::Object(
            self.to_entries()
                .into_iter()
                .map(|e| (e.key.to_owned(), e.value))
                .collect::<Map<_, _>>(),
        )
    }

    pub fn latency_threshold_for(&self, service: &str) -> f64 {
        self.service_overrides
            .get(service)
            .and_then(|o| o.latency_threshold_stddev)
            .unwrap_or(self.latency_threshold_stddev)
    }
    pub fn error_rate_threshold_for(&self, service: &str) -> f64 {
        self.service_overrides
            .get(service)
            .and_then(|o| o.error_rate_threshold)
            .unwrap_or(self.error_rate_threshold)
    }
    pub fn throughput_threshold_for(&self, service: &str) -> f64 {
        self.service_overrides
            .get(service)
            .and_then(|o| o.throughput_spike_threshold)
            .unwrap_or(self.throughput_spike_threshold)
    }
    pub fn window_nanos(&self) -> u64 {
        self.window_seconds * crate::UnixNanos::NANOS_PER_SEC
    }

    /// Checks every range; the error names the (dotted) key and what is allowed.
    pub fn validate(&self) -> Result<()> {
        check_f64(
            "latency_threshold_stddev",
            self.latency_threshold_stddev,
            1.0,
            50.0,
        )?;
        check_f64(
            "error_rate_threshold",
            self.error_rate_threshold,
            0.0001,
            1.0,
        )?;
        check_f64(
            "throughput_spike_threshold",
            self.throughput_spike_threshold,
            1.0,
            50.0,
        )?;
        check_f64("sampling_ratio", self.sampling_ratio, 0.0, 1.0)?;
        check_u64("window_seconds", self.window_seconds, 10, 86_400)?;
        check_u64(
            "allowed_lateness_seconds",
            self.allowed_lateness_seconds,
            0,
            86_400,
        )?;
        check_u64(
            "warmup_min_samples",
            self.warmup_min_samples.into(),
            10,
            100_000,
        )?;
        check_u64(
            "warmup_min_windows",
            self.warmup_min_windows.into(),
            3,
            10_000,
        )?;
        check_u64(
            "min_requests_per_window",
            self.min_requests_per_window.into(),
            1,
            10_000_000,
        )?;
        check_f64(
            "throughput_min_change_ratio",
            self.throughput_min_change_ratio,
            1.0,
            100.0,
        )?;
        check_f64(
            "error_rate_min_ratio_to_baseline",
            self.error_rate_min_ratio_to_baseline,
            1.0,
            100.0,
        )?;
        check_f64(
            "error_rate_max_p_value",
            self.error_rate_max_p_value,
            1e-12,
            0.5,
        )?;
        check_f64(
            "latency_min_excess_ms",
            self.latency_min_excess_ms,
            0.0,
            3_600_000.0,
        )?;
        check_u64(
            "relearn_after_seconds",
            self.relearn_after_seconds,
            60,
            30 * 86_400,
        )?;
        check_u64("max_keys", self.max_keys.into(), 1, 10_000_000)?;
        for (name, cutoffs) in [
            ("latency", &self.severity_cutoffs.latency),
            ("error_rate", &self.severity_cutoffs.error_rate),
            ("throughput", &self.severity_cutoffs.throughput),
            ("security", &self.severity_cutoffs.security),
            ("resource", &self.severity_cutoffs.resource),
        ] {
            let ascending = cutoffs.medium.is_finite()
                && cutoffs.critical.is_finite()
                && 0.0 < cutoffs.medium
                && cutoffs.medium <= cutoffs.high
                && cutoffs.high <= cutoffs.critical;
            if !ascending {
                return Err(ConfigError::OutOfRange {
                    key: format!("severity_cutoffs.{name}"),
                    got: format!("{cutoffs:?}"),
                    allowed: "finite, positive and 0 < medium <= high <= critical".into(),
                });
            }
        }
        let s = &self.security;
        check_u64(
            "security.auth_failure_min",
            s.auth_failure_min.into(),
            1,
            1_000_000,
        )?;
        check_f64(
            "security.auth_failure_min_ratio",
            s.auth_failure_min_ratio,
            0.0,
            1.0,
        )?;
        check_u64(
            "security.enumeration_min_distinct_endpoints",
            s.enumeration_min_distinct_endpoints.into(),
            2,
            1_000_000,
        )?;
        check_u64(
            "security.enumeration_min_not_found",
            s.enumeration_min_not_found.into(),
            1,
            1_000_000,
        )?;
        check_u64(
            "security.flood_min_requests",
            s.flood_min_requests.into(),
            1,
            100_000_000,
        )?;
        check_f64(
            "security.flood_min_ratio_to_median",
            s.flood_min_ratio_to_median,
            1.0,
            1e6,
        )?;
        check_u64(
            "security.sensitive_learning_windows",
            s.sensitive_learning_windows.into(),
            0,
            100_000,
        )?;
        check_u64(
            "security.max_clients_per_window",
            s.max_clients_per_window.into(),
            1,
            10_000_000,
        )?;
        if s.sensitive_route_prefixes
            .iter()
            .any(|p| !p.starts_with('/'))
        {
            return Err(ConfigError::OutOfRange {
                key: "security.sensitive_route_prefixes".into(),
                got: format!("{:?}", s.sensitive_route_prefixes),
                allowed: "paths starting with /".into(),
            });
        }
        let r = &self.resource;
        check_u64(
            "resource.n_plus_one_min_calls",
            r.n_plus_one_min_calls.into(),
            2,
            1_000_000,
        )?;
        check_u64(
            "resource.fan_out_min_children",
            r.fan_out_min_children.into(),
            2,
            1_000_000,
        )?;
        check_f64("resource.fan_out_min_ratio", r.fan_out_min_ratio, 1.0, 1e6)?;
        check_u64(
            "resource.shape_min_traces",
            r.shape_min_traces.into(),
            1,
            10_000_000,
        )?;
        check_f64(
            "resource.shape_span_count_threshold_stddev",
            r.shape_span_count_threshold_stddev,
            1.0,
            50.0,
        )?;
        check_u64(
            "resource.trace_idle_seconds",
            r.trace_idle_seconds,
            1,
            86_400,
        )?;
        check_u64(
            "resource.max_inflight_traces",
            r.max_inflight_traces.into(),
            1,
            100_000_000,
        )?;
        for (service, o) in &self.service_overrides {
            if let Some(v) = o.latency_threshold_stddev {
                check_f64(
                    &format!("service_overrides.{service}.latency_threshold_stddev"),
                    v,
                    1.0,
                    50.0,
                )?;
            }
            if let Some(v) = o.error_rate_threshold {
                check_f64(
                    &format!("service_overrides.{service}.error_rate_threshold"),
                    v,
                    0.0001,
                    1.0,
                )?;
            }
            if let Some(v) = o.throughput_spike_threshold {
                check_f64(
                    &format!("service_overrides.{service}.throughput_spike_threshold"),
                    v,
                    1.0,
                    50.0,
                )?;
            }
        }
        Ok(())
    }
}

fn parse<T: for<'de> Deserialize<'de>>(key: &str, value: &Value) -> Result<T> {
    T::deserialize(value).map_err(|e| ConfigError::WrongType {
        key: key.to_owned(),
        detail: e.to_string(),
    })
}

fn check_f64(key: &str, got: f64, min: f64, max: f64) -> Result<()> {
    if got.is_finite() && (min..=max).contains(&got) {
        Ok(())
    } else {
        Err(ConfigError::OutOfRange {
            key: key.to_owned(),
            got: got.to_string(),
            allowed: format!("{min} to {max}"),
        })
    }
}

fn check_u64(key: &str, got: u64, min: u64, max: u64) -> Result<()> {
    if (min..=max).contains(&got) {
        Ok(())
    } else {
        Err(ConfigError::OutOfRange {
            key: key.to_owned(),
            got: got.to_string(),
            allowed: format!("{min} to {max}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_are_the_seed_values_and_valid() {
        let c = DetectionConfig::default();
        c.validate().unwrap();
        let j = c.to_json();
        assert_eq!(j["latency_threshold_stddev"], json!(3.0));
        assert_eq!(j["error_rate_threshold"], json!(0.05));
        assert_eq!(j["throughput_spike_threshold"], json!(3.0));
        assert_eq!(j["sampling_enabled"], json!(true));
        assert_eq!(j["sampling_ratio"], json!(0.1));
    }

    #[test]
    fn entries_round_trip() {
        let mut c = DetectionConfig {
            error_rate_threshold: 0.2,
            ..DetectionConfig::default()
        };
        c.security.flood_min_requests = 5;
        c.service_overrides.insert(
            "checkout".into(),
            ServiceOverride {
                latency_threshold_stddev: Some(4.0),
                ..ServiceOverride::default()
            },
        );
        let entries = c.to_entries();
        assert_eq!(entries.len(), KEYS.len());
        let back =
            DetectionConfig::from_entries(entries.iter().map(|e| (e.key, &e.value))).unwrap();
        assert_eq!(back, c);
        assert_eq!(back.latency_threshold_for("checkout"), 4.0);
        assert_eq!(back.latency_threshold_for("cart"), 3.0);
    }

    #[test]
    fn errors_name_the_key_and_the_range() {
        let err = DetectionConfig::from_json(&json!({"sampling_ratio": 1.5})).unwrap_err();
        assert_eq!(err.key(), Some("sampling_ratio"));
        assert!(err.to_string().contains("0 to 1"), "{err}");

        let err =
            DetectionConfig::from_json(&json!({"latency_threshold_stddev": "high"})).unwrap_err();
        assert!(matches!(err, ConfigError::WrongType { .. }));
        assert_eq!(err.key(), Some("latency_threshold_stddev"));

        let err = DetectionConfig::from_json(&json!({"latency_treshold": 3})).unwrap_err();
        assert_eq!(
            err,
            ConfigError::UnknownKey {
                key: "latency_treshold".into()
            }
        );

        let err = DetectionConfig::from_json(&json!({"security": {"flood_min_requests": 0}}))
            .unwrap_err();
        assert_eq!(err.key(), Some("security.flood_min_requests"));

        let err = DetectionConfig::from_json(&json!({"security": {"flod": 1}})).unwrap_err();
        assert_eq!(err.key(), Some("security"));

        let err = DetectionConfig::from_json(
            &json!({"severity_cutoffs": {"latency": {"medium": 9, "high": 6, "critical": 10}}}),
        )
        .unwrap_err();
        assert_eq!(err.key(), Some("severity_cutoffs.latency"));
        assert_eq!(
            DetectionConfig::from_json(&json!([1])).unwrap_err(),
            ConfigError::NotAnObject
        );
    }

    #[test]
    fn a_refused_update_changes_nothing() {
        let base = DetectionConfig::default();
        let update = json!({"error_rate_threshold": 0.1, "window_seconds": 1});
        assert!(base.merged(&update).is_err());
        assert_eq!(base, DetectionConfig::default());
        let ok = base.merged(&json!({"error_rate_threshold": 0.1})).unwrap();
        assert_eq!(ok.error_rate_threshold, 0.1);
        assert_eq!(ok.window_seconds, 60);
    }

    #[test]
    fn nested_objects_may_be_partial() {
        let c =
            DetectionConfig::from_json(&json!({"resource": {"n_plus_one_min_calls": 5}})).unwrap();
        assert_eq!(c.resource.n_plus_one_min_calls, 5);
        assert_eq!(c.resource.fan_out_min_children, 30);
    }

    #[test]
    fn cutoffs_grade_scores() {
        let c = Cutoffs::new(2.0, 5.0, 10.0);
        assert_eq!(c.grade(1.0), Severity::Low);
        assert_eq!(c.grade(2.0), Severity::Medium);
        assert_eq!(c.grade(9.9), Severity::High);
        assert_eq!(c.grade(f64::INFINITY), Severity::Critical);
    }
}
