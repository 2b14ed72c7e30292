//! Typed detection configuration: the five seed keys of `anomaly_detection_config`, plus what the
//! detectors need. It is read from and written to the table's key → JSON value form, and validated once:
//! an error names the key and the allowed range. Every key, its type, range and description is one
//! row of [`KEYS`]; validation, the API's schema and the docs' table all follow from it.

mod check;
mod docs;
mod table;

pub use docs::{KeySchema, markdown_table, schema};
pub use table::{Field, KEYS, Kind};

use crate::anomaly::Severity;
use serde::{Deserialize, Serialize};
use serde_json::Value;
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

/// Severity cut-offs per detector family, each in that detector's score units: the
/// `severity_cutoffs.*` rows of [`KEYS`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SeverityCutoffs {
    pub latency: Cutoffs,
    pub error_rate: Cutoffs,
    pub throughput: Cutoffs,
    pub security: Cutoffs,
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

/// Security detection settings, counted per client per window: the `security.*` rows of [`KEYS`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecurityConfig {
    pub auth_failure_min: u32,
    pub auth_failure_min_ratio: f64,
    pub enumeration_min_distinct_endpoints: u32,
    pub enumeration_min_not_found: u32,
    pub flood_min_requests: u32,
    pub flood_min_ratio_to_median: f64,
    pub sensitive_route_prefixes: Vec<String>,
    pub sensitive_learning_windows: u32,
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

/// Resource (per-trace) detection settings: the `resource.*` rows of [`KEYS`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ResourceConfig {
    pub n_plus_one_min_calls: u32,
    pub fan_out_min_children: u32,
    pub fan_out_min_ratio: f64,
    pub shape_min_traces: u32,
    pub shape_span_count_threshold_stddev: f64,
    pub trace_idle_seconds: u64,
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

/// The whole detection configuration: each field is the row of [`KEYS`] of its name (meaning and
/// allowed range). Build it with [`DetectionConfig::default`] and
/// [`DetectionConfig::from_entries`]/[`DetectionConfig::from_json`], which validate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectionConfig {
    pub latency_threshold_stddev: f64,
    pub error_rate_threshold: f64,
    pub throughput_spike_threshold: f64,
    pub sampling_enabled: bool,
    pub sampling_ratio: f64,
    pub window_seconds: u64,
    pub allowed_lateness_seconds: u64,
    /// An incident closes after this long (event time) without a new finding.
    pub incident_quiet_seconds: u64,
    pub warmup_min_samples: u32,
    pub warmup_min_windows: u32,
    pub min_requests_per_window: u32,
    pub throughput_min_change_ratio: f64,
    pub error_rate_min_ratio_to_baseline: f64,
    pub error_rate_max_p_value: f64,
    pub latency_min_excess_ms: f64,
    pub relearn_after_seconds: u64,
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
            incident_quiet_seconds: 300,
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
        let json = self.to_json();
        KEYS.iter()
            .map(|field| ConfigEntry {
                key: field.key,
                value: json[field.key].clone(),
                description: field.description,
            })
            .collect()
    }

    /// The configuration as one JSON object of key → value.
    pub fn to_json(&self) -> Value {
        // Serializing plain data cannot fail.
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// Replaces one top-level key's value: the value is read as that field's type (nested objects
    /// fill what they leave out with defaults), through the JSON form, so [`KEYS`] is the only list.
    fn apply(&mut self, key: &str, value: &Value) -> Result<()> {
        if !KEYS.iter().any(|field| field.key == key) {
            return Err(ConfigError::UnknownKey {
                key: key.to_owned(),
            });
        }
        let mut json = self.to_json();
        json[key] = value.clone();
        *self = DetectionConfig::deserialize(&json).map_err(|e| ConfigError::WrongType {
            key: key.to_owned(),
            detail: e.to_string(),
        })?;
        Ok(())
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

    /// How findings group into incidents under this configuration.
    pub fn incident_settings(&self) -> crate::IncidentSettings {
        crate::IncidentSettings {
            quiet_nanos: self.incident_quiet_seconds * crate::UnixNanos::NANOS_PER_SEC,
            ..crate::IncidentSettings::default()
        }
    }

    /// Checks every range; the error names the (dotted) key and what is allowed.
    pub fn validate(&self) -> Result<()> {
        check::validate(&self.to_json())
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
