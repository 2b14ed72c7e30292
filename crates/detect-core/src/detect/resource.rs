//! Resource detector (RESOURCE), on whole sampled traces.
//!
//! - `n_plus_one_query`: one parent span with ≥ `n_plus_one_min_calls` database child spans (those with
//!   `db.system`) of one (service, operation, statement shape). Score: calls / minimum.
//! - `fan_out`: one span with ≥ `fan_out_min_children` direct children and ≥ `fan_out_min_ratio` × its
//!   operation's usual child count (an exponentially weighted mean over its normal spans, once 20 are
//!   seen). Not reported for a parent already reported as N+1 for the same children. Score:
//!   children / usual.
//! - `unusual_trace_shape`: once `shape_min_traces` traces of a root operation have been seen, a trace
//!   that calls (service, operation) pairs never seen under that root, or whose span count is
//!   ≥ `shape_span_count_threshold_stddev` σ (log scale) and ≥ 2× above its usual. Not reported when
//!   N+1 or fan-out already explains the trace. Score: new operations + 1, or the span-count ratio.
//!
//! Severity: `severity_cutoffs.resource`; an unusual shape (one trace) is at most MEDIUM.

use crate::anomaly::{Anomaly, Cause, Subtype, Window};
use crate::config::DetectionConfig;
use crate::keys::{KeyId, KeyInterner};
use crate::span::SpanId;
use crate::stats::probability::upper_truncated_variance;
use crate::stats::{Baseline, BaselineParams};
use crate::traces::KeyedSpan;
use hashbrown::HashMap;
use std::collections::BTreeMap;

/// Spans of an operation seen before its usual child count is trusted.
const FAN_OUT_WARMUP: u32 = 20;
const FAN_OUT_MEMORY: f64 = 1_000.0;
/// Operations remembered per root operation.
const MAX_OPERATIONS_PER_ROOT: usize = 2_000;
/// A shape-size anomaly must also be this many times the usual span count.
const SHAPE_MIN_SIZE_RATIO: f64 = 2.0;
const MAX_SHAPE_IN_DESCRIPTION: usize = 120;

#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct ChildCount {
    n: u32,
    mean: f64,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct RootShape {
    traces: u32,
    operations: HashMap<KeyId, u32>,
    span_count: Baseline,
}

/// A root operation's learned shape, with operations by key index (for [`crate::learned`]).
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct ShapeState {
    traces: u32,
    operations: Vec<(u32, u32)>,
    span_count: Baseline,
}

pub struct ResourceDetector {
    children: Vec<ChildCount>,
    shapes: Vec<RootShape>,
    size_params: BaselineParams,
}

impl ResourceDetector {
    pub(crate) fn children(&self) -> &[ChildCount] {
        &self.children
    }

    pub(crate) fn shape_states(&self) -> Vec<ShapeState> {
        self.shapes
            .iter()
            .map(|s| {
                let mut operations: Vec<(u32, u32)> =
                    s.operations.iter().map(|(k, n)| (k.0, *n)).collect();
                operations.sort_unstable();
                ShapeState {
                    traces: s.traces,
                    operations,
                    span_count: s.span_count.clone(),
                }
            })
            .collect()
    }

    pub(crate) fn restore(&mut self, children: Vec<ChildCount>, shapes: Vec<ShapeState>) {
        self.children = children;
        self.shapes = shapes
            .into_iter()
            .map(|s| RootShape {
                traces: s.traces,
                operations: s
                    .operations
                    .into_iter()
                    .map(|(k, n)| (KeyId(k), n))
                    .collect(),
                span_count: s.span_count,
            })
            .collect();
    }

    pub fn new(config: &DetectionConfig) -> Self {
        let threshold = config.resource.shape_span_count_threshold_stddev;
        ResourceDetector {
            children: Vec::new(),
            shapes: Vec::new(),
            size_params: BaselineParams {
                warmup: config.resource.shape_min_traces,
                memory: 2_000.0,
                min_spread: 0.05,
                truncation_variance: upper_truncated_variance(threshold),
                relearn_after_nanos: config.relearn_after_seconds * crate::UnixNanos::NANOS_PER_SEC,
            },
        }
    }

    /// Analyses one whole trace.
    pub fn analyse(
        &mut self,
        trace: &[KeyedSpan],
        keys: &KeyInterner,
        config: &DetectionConfig,
        out: &mut Vec<Anomaly>,
    ) {
        if trace.is_empty() {
            return;
        }
        let index: HashMap<SpanId, usize> = trace
            .iter()
            .enumerate()
            .map(|(i, (_, s))| (s.span_id, i))
            .collect();
        let mut children: Vec<Vec<usize>> = vec![Vec::new(); trace.len()];
        let mut roots = Vec::new();
        for (i, (_, span)) in trace.iter().enumerate() {
            match span.parent_span_id.and_then(|p| index.get(&p)) {
                Some(&parent) if parent != i => children[parent].push(i),
                _ => roots.push(i),
            }
        }
        let window = Window {
            start: trace.iter().map(|(_, s)| s.start).min().unwrap_or_default(),
            end: trace.iter().map(|(_, s)| s.end()).max().unwrap_or_default(),
        };
        let mut explained = false;
        for (parent, kids) in children.iter().enumerate() {
            let n_plus_one = self.n_plus_one(trace, parent, kids, keys, window, config);
            let covers_most = n_plus_one
                .as_ref()
                .is_some_and(|a| a.observed * 2.0 >= kids.len() as f64);
            if let Some(a) = n_plus_one {
                out.push(a);
                explained = true;
            }
            if let Some(a) =
                self.fan_out(trace, parent, kids.len(), keys, window, config, covers_most)
            {
                out.push(a);
                explained = true;
            }
        }
        // The root that started the trace: the earliest of the spans without a parent in it.
        let root = roots
            .iter()
            .min_by_key(|&&i| (trace[i].1.start, trace[i].1.span_id));
        if let Some(a) =
            root.and_then(|&root| self.shape(trace, root, keys, window, config, explained))
        {
            out.push(a);
        }
    }

    fn n_plus_one(
        &self,
        trace: &[KeyedSpan],
        parent: usize,
        kids: &[usize],
        keys: &KeyInterner,
        window: Window,
        config: &DetectionConfig,
    ) -> Option<Anomaly> {
        let min = config.resource.n_plus_one_min_calls as usize;
        if kids.len() < min {
            return None;
        }
        let mut groups: BTreeMap<(KeyId, &str), usize> = BTreeMap::new();
        for &k in kids {
            let (key, span) = &trace[k];
            if span.is_database_call() {
                let shape = span.attributes.db_statement_shape.as_deref().unwrap_or("");
                *groups.entry((*key, shape)).or_default() += 1;
            }
        }
        let (&(db_key, shape), &calls) = groups.iter().max_by_key(|(_, n)| **n)?;
        if calls < min {
            return None;
        }
        let (pkey, pspan) = &trace[parent];
        let score = calls as f64 / min as f64;
        let shape_text: String = shape.chars().take(MAX_SHAPE_IN_DESCRIPTION).collect();
        Some(Anomaly {
            cause: Cause::Itself,
            subtype: Subtype::NPlusOneQuery,
            severity: config.severity_cutoffs.resource.grade(score),
            service: keys.service(*pkey).to_owned(),
            operation: Some(keys.operation(*pkey).to_owned()),
            client: None,
            peer_service: None,
            trace_id: Some(pspan.trace_id),
            span_id: Some(pspan.span_id),
            observed: calls as f64,
            expected: min as f64,
            spread: 0.0,
            score,
            threshold: min as f64,
            unit: "queries",
            window,
            detected_at: window.end,
            examples: vec![pspan.trace_id],
            description: format!(
                "{op} on {svc} made {calls} calls of one query shape through {dbop} ({db}) in one \
                 request, an N+1 pattern (limit {min}): `{shape_text}`",
                op = pspan.operation,
                svc = pspan.service,
                dbop = keys.operation(db_key),
                db = trace
                    .iter()
                    .find(|(k, _)| *k == db_key)
                    .and_then(|(_, s)| s.attributes.db_system.as_deref())
                    .unwrap_or("database"),
            ),
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn fan_out(
        &mut self,
        trace: &[KeyedSpan],
        parent: usize,
        children: usize,
        keys: &KeyInterner,
        window: Window,
        config: &DetectionConfig,
        explained_by_n_plus_one: bool,
    ) -> Option<Anomaly> {
        let (key, span) = &trace[parent];
        if self.children.len() <= key.index() {
            self.children
                .resize_with(key.index() + 1, ChildCount::default);
        }
        let usual = &mut self.children[key.index()];
        let c = children as f64;
        let r = &config.resource;
        let trusted = usual.n >= FAN_OUT_WARMUP;
        let anomalous = children >= r.fan_out_min_children as usize
            && (!trusted || c >= r.fan_out_min_ratio * usual.mean.max(1.0));
        if !anomalous {
            usual.n = usual.n.saturating_add(1);
            let weight = (1.0 / f64::from(usual.n)).max(1.0 / FAN_OUT_MEMORY);
            usual.mean += weight * (c - usual.mean);
            return None;
        }
        if explained_by_n_plus_one {
            return None;
        }
        let expected = usual.mean.max(1.0);
        let score = c / expected;
        Some(Anomaly {
            cause: Cause::Itself,
            subtype: Subtype::FanOut,
            severity: config.severity_cutoffs.resource.grade(score),
            service: keys.service(*key).to_owned(),
            operation: Some(keys.operation(*key).to_owned()),
            client: None,
            peer_service: None,
            trace_id: Some(span.trace_id),
            span_id: Some(span.span_id),
            observed: c,
            expected: usual.mean,
            spread: 0.0,
            score,
            threshold: r.fan_out_min_ratio,
            unit: "child spans",
            window,
            detected_at: window.end,
            examples: vec![span.trace_id],
            description: format!(
                "{op} on {svc} started {children} child spans in one request where {mean:.1} is usual \
                 (limits {min} children and {ratio}× usual)",
                op = span.operation,
                svc = span.service,
                mean = usual.mean,
                min = r.fan_out_min_children,
                ratio = r.fan_out_min_ratio,
            ),
        })
    }

    fn shape(
        &mut self,
        trace: &[KeyedSpan],
        root: usize,
        keys: &KeyInterner,
        window: Window,
        config: &DetectionConfig,
        explained: bool,
    ) -> Option<Anomaly> {
        let (root_key, root_span) = &trace[root];
        if self.shapes.len() <= root_key.index() {
            self.shapes
                .resize_with(root_key.index() + 1, RootShape::default);
        }
        let shape = &mut self.shapes[root_key.index()];
        let mut operations: Vec<KeyId> = trace.iter().map(|(k, _)| *k).collect();
        operations.sort_unstable();
        operations.dedup();
        let judging = shape.traces >= config.resource.shape_min_traces;
        let unseen: Vec<KeyId> = if judging {
            operations
                .iter()
                .copied()
                .filter(|k| !shape.operations.contains_key(k))
                .collect()
        } else {
            Vec::new()
        };
        let size = trace.len() as f64;
        let judgement = shape.span_count.judge(
            size.ln(),
            config.resource.shape_span_count_threshold_stddev,
            &self.size_params,
        );
        let usual_size = judgement.map(|j| j.mean.exp());
        let too_big = judging
            && judgement.is_some_and(|j| j.z >= j.threshold)
            && usual_size.is_some_and(|u| size >= SHAPE_MIN_SIZE_RATIO * u);
        shape.traces = shape.traces.saturating_add(1);
        for k in &operations {
            if shape.operations.len() < MAX_OPERATIONS_PER_ROOT || shape.operations.contains_key(k)
            {
                *shape.operations.entry(*k).or_default() += 1;
            }
        }
        shape
            .span_count
            .learn(size.ln(), too_big, window.end.0, &self.size_params);
        if explained || (unseen.is_empty() && !too_big) {
            return None;
        }
        let usual = usual_size.unwrap_or(size);
        let score = (unseen.len() as f64 + 1.0).max(if too_big { size / usual } else { 0.0 });
        let mut reasons = Vec::new();
        if !unseen.is_empty() {
            let names: Vec<String> = unseen
                .iter()
                .take(5)
                .map(|k| format!("{}/{}", keys.service(*k), keys.operation(*k)))
                .collect();
            reasons.push(format!(
                "calls {} operation(s) never seen under this root: {}",
                unseen.len(),
                names.join(", ")
            ));
        }
        if too_big {
            reasons.push(format!("has {size:.0} spans where {usual:.0} is usual"));
        }
        Some(Anomaly {
            cause: Cause::Itself,
            subtype: Subtype::UnusualTraceShape,
            // One odd trace never pages by itself; a share of an operation's requests changing its
            // calls is a window-level `call_path_change`.
            severity: config
                .severity_cutoffs
                .resource
                .grade(score)
                .min(crate::Severity::Medium),
            service: keys.service(*root_key).to_owned(),
            operation: Some(keys.operation(*root_key).to_owned()),
            client: None,
            peer_service: None,
            trace_id: Some(root_span.trace_id),
            span_id: Some(root_span.span_id),
            observed: size,
            expected: usual,
            spread: judgement.map_or(0.0, |j| j.spread),
            score,
            threshold: config.resource.shape_span_count_threshold_stddev,
            unit: "spans",
            window,
            detected_at: window.end,
            examples: vec![root_span.trace_id],
            description: format!(
                "a trace of {op} on {svc} {reasons} ({n} traces of this root learned)",
                op = root_span.operation,
                svc = root_span.service,
                reasons = reasons.join(" and "),
                n = shape.traces - 1,
            ),
        })
    }
}
