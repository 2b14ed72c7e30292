//! Detection quality of what a worker stored, against the generator's labels: the stored rows (one per
//! finding, folded) are judged as `cargo xtask eval` judges detections, per anomaly type.

use crate::eval::scoring::Truth;
use crate::gen_traces::labels::{Label, Line};
use detect_core::{Anomaly, AnomalyType, Cause, SpanId, Subtype, TraceId, UnixNanos, Window};
use std::collections::HashMap;
use store_pg::{AnomalyFilter, AnomalyRecord, Repository};

/// The labels of generated traffic whose event time was moved by `shift` nanoseconds.
pub struct Labels {
    labels: Vec<Label>,
    tails: HashMap<(String, String), f64>,
}

impl Labels {
    pub fn parse(jsonl: &[u8], shift: u64) -> anyhow::Result<Labels> {
        let (mut labels, mut tails) = (Vec::new(), HashMap::new());
        for line in String::from_utf8_lossy(jsonl)
            .lines()
            .filter(|l| !l.trim().is_empty())
        {
            match Line::parse(line)? {
                Line::Label(label) => {
                    let mut label = *label;
                    let (start, end) = label.window();
                    label.window_start_unix_nano = start.saturating_add(shift).to_string();
                    label.window_end_unix_nano = end.saturating_add(shift).to_string();
                    labels.push(label);
                }
                Line::Tail(tail) => {
                    tails.insert((tail.trace_id, tail.span_id), tail.z);
                }
            }
        }
        Ok(Labels { labels, tails })
    }

    /// Precision, recall and F1 per anomaly type of every detection the worker wrote with `once
    /// --detections` (JSON lines as `replay` prints them), as `eval` judges the replay's; the labels
    /// missed are listed.
    pub fn score_detections(
        &self,
        jsonl: &[u8],
        window_nanos: u64,
    ) -> anyhow::Result<Vec<(AnomalyType, crate::eval::scoring::TypeScore)>> {
        let mut detections = Vec::new();
        for line in String::from_utf8_lossy(jsonl)
            .lines()
            .filter(|l| !l.trim().is_empty())
        {
            let value: serde_json::Value = serde_json::from_str(line)?;
            detections.extend(detection_of_json(&value));
        }
        Ok(self.judge(&detections, window_nanos))
    }

    /// Precision, recall and F1 per anomaly type of every row in `store` (a row folds the detections
    /// of one finding: it names its first window's trace and up to ten example traces).
    pub async fn score(
        &self,
        store: &store_pg::PgStore,
        window_nanos: u64,
    ) -> anyhow::Result<Vec<(AnomalyType, crate::eval::scoring::TypeScore)>> {
        let mut rows = Vec::new();
        let mut cursor = None;
        loop {
            let page = store
                .list_anomalies(&AnomalyFilter::default(), store_pg::MAX_PAGE, cursor)
                .await?;
            rows.extend(page.items);
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        let detections: Vec<Anomaly> = rows.iter().filter_map(detection_of).collect();
        Ok(self.judge(&detections, window_nanos))
    }

    fn judge(
        &self,
        detections: &[Anomaly],
        window_nanos: u64,
    ) -> Vec<(AnomalyType, crate::eval::scoring::TypeScore)> {
        let truth = Truth::new(&self.labels, &self.tails, window_nanos);
        let scores = truth.score(detections);
        for (label, found) in self.labels.iter().zip(&scores.detected) {
            if !found {
                eprintln!(
                    "    missed {} {}: {}",
                    label.label_id, label.subtype, label.description
                );
            }
        }
        scores.by_type.into_iter().collect()
    }
}

/// A detection as `replay` (and `once --detections`) prints it.
fn detection_of_json(v: &serde_json::Value) -> Option<Anomaly> {
    let text = |key: &str| v.get(key).and_then(|x| x.as_str());
    let time = |key: &str| {
        text(key)
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .and_then(|t| t.timestamp_nanos_opt())
            .map(|n| n.max(0) as u64)
    };
    let window = Window {
        start: UnixNanos(time("window_start")?),
        end: UnixNanos(time("window_end")?),
    };
    let trace_id = text("trace_id").and_then(TraceId::from_hex);
    let examples = v
        .pointer("/details/example_trace_ids")
        .and_then(|x| x.as_array())
        .map(|ids| {
            ids.iter()
                .filter_map(|id| TraceId::from_hex(id.as_str()?))
                .collect()
        })
        .unwrap_or_else(|| trace_id.into_iter().collect());
    let owned = |key: &str| text(key).map(str::to_owned);
    Some(Anomaly {
        subtype: Subtype::parse(text("anomaly_subtype")?)?,
        cause: Cause::Unknown,
        severity: detect_core::Severity::parse(text("severity")?)?,
        service: owned("service_name").unwrap_or_default(),
        operation: owned("operation"),
        client: owned("client"),
        peer_service: owned("peer_service"),
        trace_id,
        span_id: text("span_id")
            .and_then(|s| hex::decode(s).ok())
            .and_then(|b| SpanId::from_slice(&b)),
        observed: v
            .get("observed_value")
            .and_then(|x| x.as_f64())
            .unwrap_or(0.0),
        expected: v
            .get("expected_value")
            .and_then(|x| x.as_f64())
            .unwrap_or(0.0),
        spread: 0.0,
        score: v.get("score").and_then(|x| x.as_f64()).unwrap_or(0.0),
        threshold: 0.0,
        unit: "",
        window,
        detected_at: window.end,
        examples,
        description: String::new(),
    })
}

/// A stored row as the detection it folds (what scoring reads: kind, place, client, window, trace).
fn detection_of(row: &AnomalyRecord) -> Option<Anomaly> {
    let subtype = Subtype::parse(row.anomaly_subtype.as_deref()?)?;
    let nanos = |t: Option<chrono::DateTime<chrono::Utc>>| {
        UnixNanos(t.and_then(|t| t.timestamp_nanos_opt()).unwrap_or(0).max(0) as u64)
    };
    let window = Window {
        start: nanos(row.window_start),
        end: nanos(row.window_end),
    };
    let trace_id = TraceId::from_hex(&row.trace_id);
    Some(Anomaly {
        subtype,
        cause: Cause::Unknown,
        severity: row.severity,
        service: row.service_name.clone().unwrap_or_default(),
        operation: row.operation.clone(),
        client: row.client.clone(),
        peer_service: row.peer_service.clone(),
        trace_id,
        span_id: row
            .span_id
            .as_deref()
            .and_then(|s| hex::decode(s).ok())
            .and_then(|b| SpanId::from_slice(&b)),
        observed: row.observed_value.unwrap_or(0.0),
        expected: row.expected_value.unwrap_or(0.0),
        spread: 0.0,
        score: row.score.unwrap_or(0.0),
        threshold: 0.0,
        unit: "",
        window,
        detected_at: window.end,
        examples: trace_id.into_iter().collect(),
        description: String::new(),
    })
}
