//! Per-trace injections: one healthy trace gets an N+1 loop of database calls, a fan-out of many
//! calls, or calls its route never makes (an unusual shape).

use super::Plan;
use super::label_draft::LabelDraft;
use crate::gen_traces::labels::Target;
use crate::gen_traces::topology::{Key, OnError, OpId, Step, Topology, When};
use crate::gen_traces::trace::{Builder, Role, Trace};
use detect_core::Subtype;
use rand::seq::{IndexedRandom, SliceRandom};
use std::collections::BTreeSet;

/// Traces a root must have had before a shape injection (the detector learns from 200).
const SHAPE_MIN_ROOT_TRACES: u32 = 250;

#[derive(Debug, Clone, Copy)]
pub(super) enum TraceKind {
    NPlusOne { calls: usize },
    FanOut { calls: usize },
    Shape { operations: usize },
}

/// A per-trace injection waiting for the first fitting trace from `at` on.
#[derive(Debug, Clone)]
pub(super) struct TraceInjection {
    pub(super) at: u64,
    pub(super) kind: TraceKind,
}

/// The calls an injection appends under one span of a trace, and its label's subtype and text.
struct Mutation {
    parent: usize,
    steps: Vec<Step>,
    /// Calls made in parallel at a time.
    batch: usize,
    /// New literals in every call (an N+1 loop over ids).
    vary: bool,
    subtype: Subtype,
    description: String,
}

/// The non-root server spans of `trace`.
fn server_spans(trace: &Trace) -> Vec<usize> {
    (1..trace.spans.len())
        .filter(|&i| trace.spans[i].role == Role::Server)
        .collect()
}

fn has_child(trace: &Trace, parent: usize, op: OpId) -> bool {
    trace
        .spans
        .iter()
        .any(|s| s.parent == Some(parent) && s.op == op)
}

/// A server span that made a database call, now making it `calls` times.
fn n_plus_one(b: &mut Builder, trace: &Trace, calls: usize) -> Option<Mutation> {
    let topo = b.topo;
    let candidates: Vec<(usize, Step)> = server_spans(trace)
        .iter()
        .filter_map(|&i| {
            let op = &topo.ops[trace.spans[i].op];
            op.stages
                .iter()
                .flatten()
                .find(|s| s.statement.is_some() && has_child(trace, i, s.target))
                .map(|s| (i, s.clone()))
        })
        .collect();
    let (parent, step) = candidates.choose(b.rng).cloned()?;
    let db = topo.key(trace.spans[parent].service, step.target);
    let description = format!(
        "{calls} calls of `{}` ({}) in one request",
        step.statement.unwrap_or(""),
        db.1
    );
    Some(Mutation {
        parent,
        steps: vec![step; calls],
        batch: 1,
        vary: true,
        subtype: Subtype::NPlusOneQuery,
        description,
    })
}

/// A server span that called a leaf service, now calling it `calls` times, 10 at a time.
fn fan_out(b: &mut Builder, trace: &Trace, calls: usize) -> Option<Mutation> {
    let topo = b.topo;
    let candidates: Vec<(usize, Step)> = server_spans(trace)
        .iter()
        .filter_map(|&i| {
            let op = &topo.ops[trace.spans[i].op];
            op.stages
                .iter()
                .flatten()
                .find(|s| {
                    let target = &topo.ops[s.target];
                    let leafish = target.is_server()
                        && target
                            .stages
                            .iter()
                            .flatten()
                            .all(|c| !topo.ops[c.target].is_server());
                    leafish && has_child(trace, i, s.target)
                })
                .map(|s| (i, s.clone()))
        })
        .collect();
    let (parent, step) = candidates.choose(b.rng).cloned()?;
    let description = format!(
        "{calls} calls of {} in one request, 10 at a time",
        topo.ops[step.target].name
    );
    Some(Mutation {
        parent,
        steps: vec![step; calls],
        batch: 10,
        vary: true,
        subtype: Subtype::FanOut,
        description,
    })
}

/// One plain call of `target`.
fn plain_call(target: OpId) -> Step {
    Step {
        target,
        prob: 1.0,
        count: (1, 1),
        on_error: OnError::Degrade,
        when: When::Always,
        statement: None,
    }
}

/// The first server span under the root calling `operations` services its route never reaches.
fn unusual_shape(
    b: &mut Builder,
    trace: &Trace,
    operations: usize,
    root_traces: &[u32],
) -> Option<Mutation> {
    let topo = b.topo;
    if root_traces[trace.route] < SHAPE_MIN_ROOT_TRACES {
        return None;
    }
    let parent = *server_spans(trace).first()?;
    let known = &topo.route_keys[trace.route];
    let caller = trace.spans[parent].service;
    let mut fresh: Vec<OpId> = topo
        .internal_servers()
        .into_iter()
        .filter(|&o| {
            topo.ops[o].service != caller
                && topo.step_keys(caller, &plain_call(o)).is_disjoint(known)
        })
        .collect();
    if fresh.len() < operations {
        return None;
    }
    fresh.shuffle(b.rng);
    let steps: Vec<Step> = fresh[..operations].iter().map(|&o| plain_call(o)).collect();
    let names: Vec<String> = steps
        .iter()
        .map(|s| topo.key(topo.ops[s.target].service, s.target).1)
        .collect();
    let description = format!(
        "{} calls {} never used under this route",
        topo.key(caller, trace.spans[parent].op).1,
        names.join(", ")
    );
    Some(Mutation {
        parent,
        steps,
        batch: 1,
        vary: false,
        subtype: Subtype::UnusualTraceShape,
        description,
    })
}

impl Plan {
    /// Applies a pending injection of `kind` to `trace` and labels it; false if the trace does not
    /// fit (the injection then waits for the next one).
    pub(super) fn apply_trace_injection(
        &mut self,
        b: &mut Builder,
        trace: &mut Trace,
        kind: TraceKind,
        root_traces: &[u32],
    ) -> bool {
        let mutation = match kind {
            TraceKind::NPlusOne { calls } => n_plus_one(b, trace, calls),
            TraceKind::FanOut { calls } => fan_out(b, trace, calls),
            TraceKind::Shape { operations } => unusual_shape(b, trace, operations, root_traces),
        };
        let Some(Mutation {
            parent,
            steps,
            batch,
            vary,
            subtype,
            description,
        }) = mutation
        else {
            return false;
        };
        let topo = b.topo;
        let first_new = b.append_calls(trace, parent, &steps, batch, vary);
        self.labels.push(mutation_label(
            topo,
            trace,
            parent,
            first_new,
            subtype,
            description,
        ));
        true
    }
}

/// The label of a mutated trace: the parent span (for N+1 and fan-out), any resource finding on the
/// trace, and what the new calls legitimately cause besides.
fn mutation_label(
    topo: &Topology,
    trace: &Trace,
    parent: usize,
    first_new: usize,
    subtype: Subtype,
    description: String,
) -> LabelDraft {
    let root = &trace.spans[0];
    let mut draft = LabelDraft::new(subtype, root.start, root.end(), description);
    let p = &trace.spans[parent];
    let trace_hex = hex::encode(trace.trace_id);
    if subtype != Subtype::UnusualTraceShape {
        draft.targets.insert(Target {
            service: Some(topo.service_name(p.service).to_owned()),
            operation: Some(topo.ops[p.op].name.clone()),
            client: None,
            trace_id: Some(trace_hex.clone()),
            span_id: Some(hex::encode(p.span_id)),
        });
    }
    // Any resource finding on this trace is about this injection.
    draft.targets.insert(Target {
        trace_id: Some(trace_hex),
        ..Target::default()
    });
    draft.side_effect(Subtype::LatencySpike, None, None, Some(trace.trace_id));
    if subtype != Subtype::UnusualTraceShape {
        let keys: BTreeSet<Key> = trace.spans[first_new..]
            .iter()
            .map(|s| topo.key(s.service, s.op))
            .collect();
        for key in &keys {
            draft.side_effect(Subtype::ThroughputSpike, Some(key), None, None);
        }
    }
    draft.add_trace(trace.trace_id);
    draft
}
