//! The configuration table: every key once, with its type, allowed values and description. Validation
//! (`check`), the key → value list, the API's schema and the table in docs/DETECTION.md (`docs`) all
//! come from it. Defaults stay typed in the `Default` impls, written once; `docs` reads them there.

/// One configuration key. Nested keys are listed under their object's row.
#[derive(Debug)]
pub struct Field {
    pub key: &'static str,
    pub kind: Kind,
    pub description: &'static str,
}

#[derive(Debug)]
pub enum Kind {
    Bool,
    /// A finite number in `min..=max`.
    Number {
        min: f64,
        max: f64,
    },
    /// A whole number in `min..=max`.
    Integer {
        min: u64,
        max: u64,
    },
    /// Severity cut-offs `{medium, high, critical}`: positive and ascending.
    Cutoffs,
    /// A list of URL paths.
    Paths,
    /// An object of these keys; a key left out takes its default.
    Object(&'static [Field]),
    /// Service name → an object of these keys; a key left out (or null) keeps the global value.
    PerService(&'static [Field]),
}

impl Kind {
    /// The JSON type, as the docs and the API's schema name it.
    pub fn type_name(&self) -> &'static str {
        match self {
            Kind::Bool => "boolean",
            Kind::Number { .. } => "number",
            Kind::Integer { .. } => "integer",
            Kind::Paths => "array of strings",
            Kind::Cutoffs | Kind::Object(_) | Kind::PerService(_) => "object",
        }
    }

    /// What is allowed, in the words of the error messages.
    pub fn allowed(&self) -> String {
        match self {
            Kind::Bool => "true or false".into(),
            Kind::Number { min, max } => format!("{min} to {max}"),
            Kind::Integer { min, max } => format!("{min} to {max}"),
            Kind::Cutoffs => "finite, positive and 0 < medium <= high <= critical".into(),
            Kind::Paths => "paths starting with /".into(),
            Kind::Object(_) => "an object of the keys below; one left out takes its default".into(),
            Kind::PerService(_) => {
                "service name → an object of the keys below; one left out keeps the global value"
                    .into()
            }
        }
    }
}

const fn number(key: &'static str, min: f64, max: f64, description: &'static str) -> Field {
    Field {
        key,
        kind: Kind::Number { min, max },
        description,
    }
}

const fn integer(key: &'static str, min: u64, max: u64, description: &'static str) -> Field {
    Field {
        key,
        kind: Kind::Integer { min, max },
        description,
    }
}

const fn field(key: &'static str, kind: Kind, description: &'static str) -> Field {
    Field {
        key,
        kind,
        description,
    }
}

// The three thresholds' ranges, which their per-service overrides share.
const LATENCY_THRESHOLD: Kind = Kind::Number {
    min: 1.0,
    max: 50.0,
};
const ERROR_RATE_THRESHOLD: Kind = Kind::Number {
    min: 0.0001,
    max: 1.0,
};
const THROUGHPUT_THRESHOLD: Kind = Kind::Number {
    min: 1.0,
    max: 50.0,
};

/// Every top-level key, in a stable order. The first five are the seed's. (Unformatted, the tables
/// keep one key a line.)
#[rustfmt::skip]
pub const KEYS: &[Field] = &[
    field("latency_threshold_stddev", LATENCY_THRESHOLD, "Standard deviations (on log-duration) above its operation's baseline at which a span is a latency anomaly"),
    field("error_rate_threshold", ERROR_RATE_THRESHOLD, "Error ratio of an operation in a window above which it is an error-rate anomaly"),
    field("throughput_spike_threshold", THROUGHPUT_THRESHOLD, "Standard deviations of a window's request count from its history at which traffic is a spike or drop"),
    field("sampling_enabled", Kind::Bool, "Whether per-trace analysis looks at a deterministic sample of traces only"),
    number("sampling_ratio", 0.0, 1.0, "Share of traces sampled for per-trace analysis (0-1)"),
    integer("window_seconds", 10, 86_400, "Length of a detection window in seconds"),
    integer("allowed_lateness_seconds", 0, 86_400, "How late (event time) a span may arrive and still count in its window"),
    integer("incident_quiet_seconds", 10, 86_400, "An incident closes (and resolves) after this long (event time) without a new finding"),
    integer("warmup_min_samples", 10, 100_000, "Spans of an operation seen before its latency baseline judges"),
    integer("warmup_min_windows", 3, 10_000, "Windows of an operation seen before its rate baselines judge"),
    integer("min_requests_per_window", 1, 10_000_000, "Requests in a window (observed, or expected for drops) below which rates are not judged"),
    number("throughput_min_change_ratio", 1.0, 100.0, "A throughput spike (drop) must also be this many times above (below) the expected count"),
    number("error_rate_min_ratio_to_baseline", 1.0, 100.0, "An error-rate anomaly must also be this many times the operation's own error ratio"),
    number("error_rate_max_p_value", 1e-12, 0.5, "An error-rate anomaly must also be this unlikely (binomial tail) under the operation's own error ratio"),
    number("latency_min_excess_ms", 0.0, 3_600_000.0, "A latency anomaly must also exceed the typical duration by this many milliseconds"),
    integer("relearn_after_seconds", 60, 30 * 86_400, "A baseline anomalous for this long (event time) is relearned at its new level"),
    integer("max_keys", 1, 10_000_000, "Distinct (service, operation) pairs tracked; past it, new pairs are counted but not judged"),
    field("severity_cutoffs", Kind::Object(SEVERITY_CUTOFFS), "Scores at which anomalies become MEDIUM, HIGH and CRITICAL, per detector"),
    field("security", Kind::Object(SECURITY), "Security detection settings"),
    field("resource", Kind::Object(RESOURCE), "Resource (per-trace) detection settings"),
    field("service_overrides", Kind::PerService(SERVICE_OVERRIDE), "Per-service thresholds"),
];

#[rustfmt::skip]
const SEVERITY_CUTOFFS: &[Field] = &[
    field("latency", Kind::Cutoffs, "Latency and call-path window findings: the percentage of the window's requests affected"),
    field("error_rate", Kind::Cutoffs, "Error-rate findings: the error ratio in the window"),
    field("throughput", Kind::Cutoffs, "Throughput findings: |z| of the window's request count"),
    field("security", Kind::Cutoffs, "Security findings: how many times past its threshold the signal is"),
    field("resource", Kind::Cutoffs, "Resource findings: how many times past its threshold the signal is"),
];

/// Counts are per client per window.
#[rustfmt::skip]
const SECURITY: &[Field] = &[
    integer("auth_failure_min", 1, 1_000_000, "401/403 answers to one client in a window before it is a burst"),
    number("auth_failure_min_ratio", 0.0, 1.0, "…and the share of that client's requests they must be"),
    integer("enumeration_min_distinct_endpoints", 2, 1_000_000, "Distinct endpoints (route template, or path where no route matched) from one client in a window before it is enumeration"),
    integer("enumeration_min_not_found", 1, 1_000_000, "404 answers to one client in a window before it is enumeration"),
    integer("flood_min_requests", 1, 100_000_000, "Requests from one client in a window before it can be a flood…"),
    number("flood_min_ratio_to_median", 1.0, 1e6, "…and how many times the median active client's count it must be"),
    field("sensitive_route_prefixes", Kind::Paths, "Route prefixes whose access by a new principal is reported"),
    integer("sensitive_learning_windows", 0, 100_000, "Windows from the first span during which principals of sensitive routes are learned, not reported"),
    integer("max_clients_per_window", 1, 10_000_000, "Distinct clients tracked per window; past it, new clients are counted but not tracked"),
];

#[rustfmt::skip]
const RESOURCE: &[Field] = &[
    integer("n_plus_one_min_calls", 2, 1_000_000, "Database calls of one statement shape under one parent before it is an N+1 pattern"),
    integer("fan_out_min_children", 2, 1_000_000, "Direct children of one span before it can be runaway fan-out…"),
    number("fan_out_min_ratio", 1.0, 1e6, "…and how many times its operation's usual child count it must be"),
    integer("shape_min_traces", 1, 10_000_000, "Traces of a root operation seen before its shape baseline judges"),
    number("shape_span_count_threshold_stddev", 1.0, 50.0, "z-score (on log span count) past which a trace's size is unusual for its root operation"),
    integer("trace_idle_seconds", 1, 86_400, "Event-time seconds without a new span after which a trace is considered complete"),
    integer("max_inflight_traces", 1, 100_000_000, "Traces held for assembly at once; past it the oldest is analysed early"),
];

#[rustfmt::skip]
const SERVICE_OVERRIDE: &[Field] = &[
    field("latency_threshold_stddev", LATENCY_THRESHOLD, "This service's `latency_threshold_stddev`"),
    field("error_rate_threshold", ERROR_RATE_THRESHOLD, "This service's `error_rate_threshold`"),
    field("throughput_spike_threshold", THROUGHPUT_THRESHOLD, "This service's `throughput_spike_threshold`"),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{DetectionConfig, ServiceOverride};
    use serde_json::Value;
    use std::collections::BTreeSet;

    /// The keys of `object` are the table's `fields`, all the way down.
    fn same_keys(fields: &[Field], object: &Value, at: &str) {
        let in_json: BTreeSet<&str> = object
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        let in_table: BTreeSet<&str> = fields.iter().map(|f| f.key).collect();
        assert_eq!(in_json, in_table, "keys of `{at}`");
        for field in fields {
            let value = &object[field.key];
            match field.kind {
                Kind::Object(nested) => same_keys(nested, value, field.key),
                Kind::PerService(nested) => {
                    for per_service in value.as_object().unwrap().values() {
                        same_keys(nested, per_service, field.key);
                    }
                }
                _ => {}
            }
        }
    }

    #[test]
    fn the_table_has_a_row_for_every_field() {
        let mut config = DetectionConfig::default();
        let all_set = ServiceOverride {
            latency_threshold_stddev: Some(3.0),
            error_rate_threshold: Some(0.1),
            throughput_spike_threshold: Some(3.0),
        };
        config.service_overrides.insert("checkout".into(), all_set);
        same_keys(KEYS, &config.to_json(), "");
    }
}
