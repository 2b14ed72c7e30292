//! The labels file: one JSON object per line, either a label of an injected anomaly or a statistical
//! tail of normal traffic. Written by `gen-traces`, read by `eval`.
//!
//! A label: `{"label_id","anomaly_type","subtype","window_start_unix_nano","window_end_unix_nano",
//! "targets":[{"service","operation","client","trace_id","span_id"}],"side_effects":[{"anomaly_type",
//! "subtype","service","operation","client","trace_id"}],"examples":[…],"traces":[…],"description"}`.
//! `null` fields of targets and side effects are wildcards. `traces` lists every trace the injection
//! created or altered (for counting normal spans); `examples` a few of them. `"near_threshold":true`
//! marks the few injections placed just past a detector's default rule (absent otherwise);
//! `"origin":{"service","operation",…}` names where a performance injection starts.
//!
//! A tail: `{"tail":true,"trace_id","span_id","z"}` for a normal span whose duration is ≥ 3σ above its
//! key's median in the generator's own log-normal. Spans with 2.5 ≤ z < 3 are written too, with
//! `"tail":false`, so that the evaluation can tell "near misses" among false positives.

use serde::{Deserialize, Serialize};

/// z at which a normal span is a true statistical tail.
pub const TAIL_Z: f64 = 3.0;
/// z from which near-tails are written (`"tail": false`).
pub const NEAR_TAIL_Z: f64 = 2.5;

#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Target {
    pub service: Option<String>,
    pub operation: Option<String>,
    pub client: Option<String>,
    pub trace_id: Option<String>,
    pub span_id: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SideEffect {
    pub anomaly_type: String,
    pub subtype: String,
    pub service: Option<String>,
    pub operation: Option<String>,
    #[serde(default)]
    pub client: Option<String>,
    #[serde(default)]
    pub trace_id: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Label {
    pub label_id: String,
    pub anomaly_type: String,
    pub subtype: String,
    /// Decimal nanoseconds since the Unix epoch, as strings (OTLP/JSON's style for 64-bit numbers).
    pub window_start_unix_nano: String,
    pub window_end_unix_nano: String,
    pub targets: Vec<Target>,
    pub side_effects: Vec<SideEffect>,
    #[serde(default)]
    pub examples: Vec<String>,
    #[serde(default)]
    pub traces: Vec<String>,
    #[serde(default)]
    pub description: String,
    /// The injection sits just past a detector's default rule, to catch lost sensitivity.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub near_threshold: bool,
    /// Where the injection starts: the service (and operation) it changed, which an incident
    /// should name as its probable origin. For a route's rate, the entry service that serves it.
    /// Absent for injections about a client (security) or a trace's shape.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Target>,
}

impl Label {
    pub fn window(&self) -> (u64, u64) {
        (
            self.window_start_unix_nano.parse().unwrap_or(0),
            self.window_end_unix_nano.parse().unwrap_or(u64::MAX),
        )
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tail {
    pub tail: bool,
    pub trace_id: String,
    pub span_id: String,
    pub z: f64,
}

/// One line of the labels file.
#[derive(Clone, Debug, PartialEq)]
pub enum Line {
    Label(Box<Label>),
    Tail(Tail),
}

impl Line {
    pub fn parse(line: &str) -> serde_json::Result<Line> {
        let value: serde_json::Value = serde_json::from_str(line)?;
        if value.get("tail").is_some() {
            serde_json::from_value(value).map(Line::Tail)
        } else {
            serde_json::from_value(value).map(|l| Line::Label(Box::new(l)))
        }
    }
}

/// The labels file beside a traces file: `x.jsonl` → `x.labels.jsonl` (other names get `.labels.jsonl`
/// appended).
pub fn default_labels_path(out: &std::path::Path) -> std::path::PathBuf {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = name.strip_suffix(".jsonl").unwrap_or(&name);
    out.with_file_name(format!("{stem}.labels.jsonl"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip_and_paths_are_derived() {
        let tail = Line::parse(r#"{"tail":true,"trace_id":"ab","span_id":"cd","z":3.2}"#).unwrap();
        assert!(matches!(tail, Line::Tail(Tail { tail: true, .. })));
        let label = Line::parse(
            r#"{"label_id":"L0001","anomaly_type":"PERFORMANCE","subtype":"latency_spike",
            "window_start_unix_nano":"1","window_end_unix_nano":"2","targets":[],"side_effects":[]}"#,
        )
        .unwrap();
        let Line::Label(label) = label else { panic!() };
        assert_eq!(label.window(), (1, 2));
        assert_eq!(
            default_labels_path(std::path::Path::new("target/a.jsonl")),
            std::path::Path::new("target/a.labels.jsonl")
        );
        assert_eq!(
            default_labels_path(std::path::Path::new("out.json")),
            std::path::Path::new("out.json.labels.jsonl")
        );
    }
}
