//! Scoring detections against labels: pure, so that it is tested without the engine.
//!
//! A detection *matches* a label when the anomaly types are equal, the windows overlap (with `slack`
//! either side) and at least one target matches: every non-null field of the target equals the
//! detection's (a detection's trace id counts if it equals the target's or is among its examples).
//! Each detection is then, in this order:
//! - a true positive, if it matches a label of its type;
//! - a side effect, if it matches a label's side effect (type, subtype, key, client, trace, window);
//! - a tail, if it is a `latency_spike` on a normal span whose generator z is ≥ 3;
//! - a false positive otherwise (marked "near tail" when the span's generator z is in [2.5, 3)).
//!
//! Per type: precision = TP / (TP + FP), recall = labels matched / labels, F1.

use crate::gen_traces::labels::{Label, SideEffect, TAIL_Z, Target};
use detect_core::{Anomaly, AnomalyType, Severity, Subtype};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// What one detection was judged to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    TruePositive,
    SideEffect,
    Tail,
    FalsePositive { near_tail: bool },
}

/// Counts for one anomaly type.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct TypeScore {
    pub labels: usize,
    pub labels_detected: usize,
    pub detections: usize,
    pub true_positives: usize,
    /// True positives whose subtype is none of the matched labels' (a latency detection on a key of
    /// a throughput label, say): right type, right place, other kind.
    pub cross_subtype: usize,
    pub side_effects: usize,
    pub tails: usize,
    /// Tail detections with severity HIGH or above: these would page someone.
    pub tails_high: usize,
    pub false_positives: usize,
    pub false_positives_high: usize,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
}

impl TypeScore {
    fn finish(&mut self) {
        let judged = self.true_positives + self.false_positives;
        self.precision = if judged == 0 {
            1.0
        } else {
            self.true_positives as f64 / judged as f64
        };
        self.recall = if self.labels == 0 {
            1.0
        } else {
            self.labels_detected as f64 / self.labels as f64
        };
        self.f1 = if self.precision + self.recall == 0.0 {
            0.0
        } else {
            2.0 * self.precision * self.recall / (self.precision + self.recall)
        };
    }
}

/// Recall of one subtype: labels detected by any detection of the type, and by one of the subtype.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct SubtypeScore {
    pub labels: usize,
    pub detected: usize,
    pub detected_same_subtype: usize,
    pub recall: f64,
    /// Detections of this subtype judged false positives.
    pub false_positives: usize,
}

#[derive(Debug, Default)]
pub struct Scores {
    pub by_type: BTreeMap<AnomalyType, TypeScore>,
    pub by_subtype: BTreeMap<Subtype, SubtypeScore>,
    /// One verdict per detection, in detection order.
    pub verdicts: Vec<Verdict>,
    /// Per label (in label order): whether a detection found it (see [`Truth::finds`]).
    pub detected: Vec<bool>,
    /// Per label: the subtypes of the detections that matched it.
    pub matched_by: Vec<BTreeSet<Subtype>>,
}

/// Labels indexed for matching.
pub struct Truth<'a> {
    labels: &'a [Label],
    windows: Vec<(u64, u64)>,
    types: Vec<Option<AnomalyType>>,
    /// (trace id, span id) → generator z of normal spans with z ≥ 2.5.
    tails: &'a HashMap<(String, String), f64>,
    slack: u64,
}

impl<'a> Truth<'a> {
    pub fn new(
        labels: &'a [Label],
        tails: &'a HashMap<(String, String), f64>,
        slack_nanos: u64,
    ) -> Self {
        Truth {
            windows: labels.iter().map(Label::window).collect(),
            types: labels
                .iter()
                .map(|l| AnomalyType::parse(&l.anomaly_type))
                .collect(),
            labels,
            tails,
            slack: slack_nanos,
        }
    }

    fn overlaps(&self, (start, end): (u64, u64), a: &Anomaly) -> bool {
        a.window.start.0 <= end.saturating_add(self.slack)
            && a.window.end.0.saturating_add(self.slack) >= start
    }

    /// Labels the detection matches.
    pub fn matching_labels(&self, a: &Anomaly) -> Vec<usize> {
        let ids = Ids::of(a);
        (0..self.labels.len())
            .filter(|&i| self.types[i] == Some(a.anomaly_type()))
            .filter(|&i| self.overlaps(self.windows[i], a))
            .filter(|&i| {
                self.labels[i]
                    .targets
                    .iter()
                    .any(|t| target_matches(t, a, &ids))
            })
            .collect()
    }

    fn is_side_effect(&self, a: &Anomaly) -> bool {
        let ids = Ids::of(a);
        (0..self.labels.len()).any(|i| {
            self.overlaps(self.windows[i], a)
                && self.labels[i]
                    .side_effects
                    .iter()
                    .any(|s| side_effect_matches(s, a, &ids))
        })
    }

    fn tail_z(&self, a: &Anomaly) -> Option<f64> {
        if a.subtype != Subtype::LatencySpike {
            return None;
        }
        let key = (a.trace_id?.to_string(), a.span_id?.to_string());
        self.tails.get(&key).copied()
    }

    /// Whether a detection of `subtype` that matches label `i` finds it. Any detection of the label's
    /// type on its targets finds an ordinary label (its subtype is told apart in `same-kind`). A
    /// near-threshold label is there to catch one detector going deaf, so only that detector's finding
    /// counts: the label's subtype, or either latency finding (span or window) for a latency label.
    fn finds(&self, i: usize, subtype: Subtype) -> bool {
        let label = &self.labels[i];
        if !label.near_threshold {
            return true;
        }
        let latency = [Subtype::LatencySpike, Subtype::LatencyDegradation];
        label.subtype == subtype.as_str()
            || (latency.contains(&subtype) && latency.iter().any(|l| l.as_str() == label.subtype))
    }

    pub fn judge(&self, a: &Anomaly) -> (Verdict, Vec<usize>) {
        let matched = self.matching_labels(a);
        if !matched.is_empty() {
            return (Verdict::TruePositive, matched);
        }
        if self.is_side_effect(a) {
            return (Verdict::SideEffect, matched);
        }
        match self.tail_z(a) {
            Some(z) if z >= TAIL_Z => (Verdict::Tail, matched),
            Some(_) => (Verdict::FalsePositive { near_tail: true }, matched),
            None => (Verdict::FalsePositive { near_tail: false }, matched),
        }
    }

    /// Judges every detection and adds up the scores.
    pub fn score(&self, detections: &[Anomaly]) -> Scores {
        let mut scores = Scores {
            detected: vec![false; self.labels.len()],
            matched_by: vec![BTreeSet::new(); self.labels.len()],
            ..Scores::default()
        };
        for t in AnomalyType::ALL {
            scores.by_type.insert(t, TypeScore::default());
        }
        for a in detections {
            let (verdict, matched) = self.judge(a);
            let ts = scores.by_type.entry(a.anomaly_type()).or_default();
            ts.detections += 1;
            match verdict {
                Verdict::TruePositive => {
                    ts.true_positives += 1;
                    let same = matched
                        .iter()
                        .any(|&i| self.labels[i].subtype == a.subtype.as_str());
                    ts.cross_subtype += usize::from(!same);
                }
                Verdict::SideEffect => ts.side_effects += 1,
                Verdict::Tail => {
                    ts.tails += 1;
                    ts.tails_high += usize::from(a.severity >= Severity::High);
                }
                Verdict::FalsePositive { .. } => {
                    ts.false_positives += 1;
                    if a.severity >= Severity::High {
                        ts.false_positives_high += 1;
                    }
                    scores
                        .by_subtype
                        .entry(a.subtype)
                        .or_default()
                        .false_positives += 1;
                }
            }
            for i in matched {
                scores.detected[i] |= self.finds(i, a.subtype);
                scores.matched_by[i].insert(a.subtype);
            }
            scores.verdicts.push(verdict);
        }
        for (i, label) in self.labels.iter().enumerate() {
            if let Some(t) = self.types[i] {
                let ts = scores.by_type.entry(t).or_default();
                ts.labels += 1;
                ts.labels_detected += usize::from(scores.detected[i]);
            }
            if let Some(s) = Subtype::parse(&label.subtype) {
                let ss = scores.by_subtype.entry(s).or_default();
                ss.labels += 1;
                ss.detected += usize::from(scores.detected[i]);
                ss.detected_same_subtype += usize::from(scores.matched_by[i].contains(&s));
            }
        }
        for ts in scores.by_type.values_mut() {
            ts.finish();
        }
        for ss in scores.by_subtype.values_mut() {
            ss.recall = if ss.labels == 0 {
                1.0
            } else {
                ss.detected as f64 / ss.labels as f64
            };
        }
        scores
    }
}

/// A detection's ids as the labels write them (lowercase hex), computed once per detection.
pub struct Ids {
    trace: Option<String>,
    span: Option<String>,
    examples: Vec<String>,
}

impl Ids {
    pub fn of(a: &Anomaly) -> Ids {
        Ids {
            trace: a.trace_id.map(|t| t.to_string()),
            span: a.span_id.map(|s| s.to_string()),
            examples: a.examples.iter().map(|t| t.to_string()).collect(),
        }
    }

    fn has_trace(&self, trace: &str) -> bool {
        self.trace.as_deref() == Some(trace) || self.examples.iter().any(|t| t == trace)
    }
}

fn eq(want: &Option<String>, got: Option<&str>) -> bool {
    want.as_deref().is_none_or(|w| got == Some(w))
}

pub fn target_matches(t: &Target, a: &Anomaly, ids: &Ids) -> bool {
    eq(&t.service, Some(&a.service))
        && eq(&t.operation, a.operation.as_deref())
        && eq(&t.client, a.client.as_deref())
        && t.trace_id.as_deref().is_none_or(|id| ids.has_trace(id))
        && t.span_id
            .as_deref()
            .is_none_or(|id| ids.span.as_deref() == Some(id))
}

pub fn side_effect_matches(s: &SideEffect, a: &Anomaly, ids: &Ids) -> bool {
    s.anomaly_type == a.anomaly_type().as_str()
        && s.subtype == a.subtype.as_str()
        && eq(&s.service, Some(&a.service))
        && eq(&s.operation, a.operation.as_deref())
        && eq(&s.client, a.client.as_deref())
        && s.trace_id.as_deref().is_none_or(|id| ids.has_trace(id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use detect_core::{SpanId, TraceId, UnixNanos, Window};

    fn anomaly(subtype: Subtype, service: &str, op: Option<&str>, window: (u64, u64)) -> Anomaly {
        Anomaly {
            cause: detect_core::Cause::Itself,
            subtype,
            severity: Severity::High,
            service: service.into(),
            operation: op.map(Into::into),
            client: None,
            peer_service: None,
            trace_id: None,
            span_id: None,
            observed: 0.0,
            expected: 0.0,
            spread: 0.0,
            score: 5.0,
            threshold: 3.0,
            unit: "",
            window: Window {
                start: UnixNanos(window.0),
                end: UnixNanos(window.1),
            },
            detected_at: UnixNanos(window.1),
            examples: vec![],
            description: String::new(),
        }
    }

    fn label(
        subtype: Subtype,
        window: (u64, u64),
        targets: Vec<Target>,
        side_effects: Vec<SideEffect>,
    ) -> Label {
        Label {
            label_id: "L1".into(),
            anomaly_type: subtype.anomaly_type().as_str().into(),
            subtype: subtype.as_str().into(),
            window_start_unix_nano: window.0.to_string(),
            window_end_unix_nano: window.1.to_string(),
            targets,
            side_effects,
            examples: vec![],
            traces: vec![],
            description: String::new(),
            near_threshold: false,
            origin: None,
        }
    }

    fn key(service: &str, op: Option<&str>) -> Target {
        Target {
            service: Some(service.into()),
            operation: op.map(Into::into),
            ..Target::default()
        }
    }

    #[test]
    fn types_windows_and_targets_decide_a_match() {
        let labels = vec![
            label(
                Subtype::ErrorRateSpike,
                (1_000, 2_000),
                vec![key("cart", Some("GET /cart"))],
                vec![],
            ),
            label(
                Subtype::ServiceSilent,
                (5_000, 6_000),
                vec![key("search", None)],
                vec![SideEffect {
                    anomaly_type: "PERFORMANCE".into(),
                    subtype: "error_rate_spike".into(),
                    service: Some("gateway".into()),
                    operation: None,
                    client: None,
                    trace_id: None,
                }],
            ),
        ];
        let tails = HashMap::new();
        let truth = Truth::new(&labels, &tails, 100);
        let detections = vec![
            // Same type (PERFORMANCE), other subtype, inside the slack: a match.
            anomaly(
                Subtype::ThroughputDrop,
                "cart",
                Some("GET /cart"),
                (2_050, 2_060),
            ),
            // Outside the slack.
            anomaly(
                Subtype::ErrorRateSpike,
                "cart",
                Some("GET /cart"),
                (2_200, 2_300),
            ),
            // Wildcard operation.
            anomaly(Subtype::ServiceSilent, "search", None, (5_500, 5_600)),
            // A side effect of the silent service.
            anomaly(
                Subtype::ErrorRateSpike,
                "gateway",
                Some("GET /api/search"),
                (5_500, 5_600),
            ),
            // Wrong type.
            anomaly(
                Subtype::NPlusOneQuery,
                "cart",
                Some("GET /cart"),
                (1_500, 1_600),
            ),
        ];
        let scores = truth.score(&detections);
        assert_eq!(
            scores.verdicts,
            vec![
                Verdict::TruePositive,
                Verdict::FalsePositive { near_tail: false },
                Verdict::TruePositive,
                Verdict::SideEffect,
                Verdict::FalsePositive { near_tail: false },
            ]
        );
        let perf = &scores.by_type[&AnomalyType::Performance];
        assert_eq!(
            (perf.true_positives, perf.false_positives, perf.side_effects),
            (2, 1, 1)
        );
        assert_eq!((perf.labels, perf.labels_detected), (2, 2));
        assert!((perf.precision - 2.0 / 3.0).abs() < 1e-9);
        let error = &scores.by_subtype[&Subtype::ErrorRateSpike];
        assert_eq!((error.detected, error.detected_same_subtype), (1, 0));
    }

    #[test]
    fn a_window_level_latency_label_is_found_on_its_key_whatever_the_trace() {
        // A near-threshold shift names the key for the window, no trace; grown ancestors are side
        // effects.
        let labels = vec![label(
            Subtype::LatencySpike,
            (1_000, 2_000),
            vec![key("cart", Some("SELECT cart_items"))],
            vec![SideEffect {
                anomaly_type: "PERFORMANCE".into(),
                subtype: "latency_spike".into(),
                service: Some("gateway".into()),
                operation: Some("GET /api/cart".into()),
                client: None,
                trace_id: None,
            }],
        )];
        let tails = HashMap::new();
        let truth = Truth::new(&labels, &tails, 0);
        let mut span = anomaly(
            Subtype::LatencySpike,
            "cart",
            Some("SELECT cart_items"),
            (1_500, 1_500),
        );
        span.trace_id = Some(TraceId([3; 16]));
        let window = anomaly(
            Subtype::LatencySpike,
            "cart",
            Some("SELECT cart_items"),
            (1_000, 1_600),
        );
        let ancestor = anomaly(
            Subtype::LatencySpike,
            "gateway",
            Some("GET /api/cart"),
            (1_000, 1_600),
        );
        let elsewhere = anomaly(
            Subtype::LatencySpike,
            "cart",
            Some("INSERT cart_items"),
            (1_000, 1_600),
        );
        let scores = truth.score(&[span, window, ancestor, elsewhere]);
        assert_eq!(
            scores.verdicts,
            vec![
                Verdict::TruePositive,
                Verdict::TruePositive,
                Verdict::SideEffect,
                Verdict::FalsePositive { near_tail: false },
            ]
        );
        assert_eq!(scores.detected, vec![true]);
    }

    #[test]
    fn only_its_own_detector_finds_a_near_threshold_label() {
        let near = |subtype, target| Label {
            near_threshold: true,
            ..label(subtype, (1_000, 2_000), vec![target], vec![])
        };
        let labels = vec![
            near(
                Subtype::ThroughputDrop,
                key("gateway", Some("GET /api/search")),
            ),
            near(Subtype::LatencySpike, key("cart", Some("GET /v1/cart"))),
        ];
        let tails = HashMap::new();
        let truth = Truth::new(&labels, &tails, 0);
        let at = |subtype, service, op| anomaly(subtype, service, Some(op), (1_500, 1_600));
        // A slow span on the dropping route: right type and place, so no false positive, but not
        // the drop detector.
        let scores = truth.score(&[
            at(Subtype::LatencySpike, "gateway", "GET /api/search"),
            at(Subtype::LatencyDegradation, "cart", "GET /v1/cart"),
        ]);
        assert_eq!(
            scores.verdicts,
            vec![Verdict::TruePositive, Verdict::TruePositive]
        );
        assert_eq!(scores.detected, vec![false, true]);
        let drop = &scores.by_subtype[&Subtype::ThroughputDrop];
        assert_eq!((drop.labels, drop.detected, drop.recall), (1, 0, 0.0));
        let scores = truth.score(&[at(Subtype::ThroughputDrop, "gateway", "GET /api/search")]);
        assert_eq!(scores.detected, vec![true, false]);
    }

    #[test]
    fn traces_count_by_example_and_tails_are_set_apart() {
        let trace = TraceId([7; 16]);
        let span = SpanId([9; 8]);
        let labels = vec![label(
            Subtype::FanOut,
            (0, 10),
            vec![Target {
                trace_id: Some(trace.to_string()),
                ..Target::default()
            }],
            vec![],
        )];
        let mut tails = HashMap::new();
        tails.insert((TraceId([1; 16]).to_string(), span.to_string()), 3.4);
        tails.insert((TraceId([2; 16]).to_string(), span.to_string()), 2.7);
        let truth = Truth::new(&labels, &tails, 0);
        let mut shape = anomaly(Subtype::UnusualTraceShape, "gateway", Some("GET /"), (5, 6));
        shape.examples = vec![trace];
        let mut tail = anomaly(Subtype::LatencySpike, "cart", Some("x"), (5, 6));
        tail.trace_id = Some(TraceId([1; 16]));
        tail.span_id = Some(span);
        let mut near = tail.clone();
        near.trace_id = Some(TraceId([2; 16]));
        let scores = truth.score(&[shape, tail, near]);
        assert_eq!(
            scores.verdicts,
            vec![
                Verdict::TruePositive,
                Verdict::Tail,
                Verdict::FalsePositive { near_tail: true }
            ]
        );
        assert_eq!(scores.by_type[&AnomalyType::Resource].f1, 1.0);
    }
}
