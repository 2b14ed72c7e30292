//! Labelled anomalies: where and when each is injected, how it changes the traffic or a trace, and the
//! label that says what a detector should find.
//!
//! Nothing is injected in the first [`WARMUP_SECONDS`] (detectors need a warm-up). Each subtype gets
//! 3–6 injections per 44 minutes of injectable time, spread at random ([`Spacing::Dense`]), or one
//! each, every one alone in time ([`Spacing::OneAtATime`]). Injections that change counts
//! (throughput, silent services, error spikes, attacks) are placed so that they do not overlap in time
//! (with a margin) with another whose keys they touch: a drop of a route under a flood of the same
//! route would be neither. Per-trace injections (slow spans, N+1, fan-out, shapes) go to healthy
//! traces that nothing else touched (no incident, fault or attack), so each label's effect is its own.
//!
//! Targets are what the injection changed, read off the generated traces where possible: the slowed
//! spans and every ancestor that grew; the keys whose spans failed because of a fault; a route's keys
//! for throughput; the client for attacks. Side effects are the other detections an injection
//! legitimately causes (calls skipped behind a fault look like a drop; a flood is also a spike).
//!
//! Every injection is made clearly beyond the detectors' default rules (see the constants), and what
//! it legitimately causes besides (a flood also raises throughput; an N+1 parent is slow) is listed as
//! the label's side effects. Four more are placed last just past those rules, so that a detector that
//! goes deaf fails the gate too (`near_threshold`).
//!
//! Code map: `candidates` (what each subtype may change) and `placement` (when, away from the others);
//! `windows` (latency, errors, throughput, silence for a few minutes), `attacks` (security traffic,
//! with `payloads`), `trace_mutations` (N+1, fan-out, unusual shapes) and `slow_span`; `label_draft`
//! and `record_trace` (what the built traces add to the labels).

mod attacks;
mod candidates;
mod label_draft;
mod near_threshold;
mod payloads;
mod placement;
mod record_trace;
mod slow_span;
mod trace_mutations;
mod windows;

pub use label_draft::LabelDraft;

use super::topology::{OpId, Topology};
use super::trace::{Builder, Request, Trace};
use super::traffic::{NANOS_PER_SEC, Population, Traffic};
use detect_core::Subtype;
use placement::Footprint;
use rand::Rng;
use rand::rngs::StdRng;
use slow_span::SLOW_SPAN_PROB;
use std::collections::{BTreeSet, VecDeque};
use trace_mutations::TraceInjection;
use windows::Windowed;

/// No injection starts before this (event seconds from the start).
pub const WARMUP_SECONDS: u64 = 16 * 60;
/// Injectable minutes that give 3–6 of each subtype.
const REFERENCE_MINUTES: f64 = 44.0;

/// How injections share the timeline.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Spacing {
    /// 3–6 of each subtype per 44 minutes, kept apart only from injections on the same keys: a
    /// problem every minute or so, to measure what each detector finds and wrongly finds.
    #[default]
    Dense,
    /// One of each subtype, each at least [`ALONE_GAP_SECONDS`] from every other: one problem at a
    /// time, as an on-call person meets them, to measure whether each forms an incident of its own
    /// that names where it starts. (Dense problems that overlap in time behind one entry service are
    /// one incident by design, and one incident has one first origin.)
    OneAtATime,
}

/// Between two injections of [`Spacing::OneAtATime`]: an incident's quiet period (5 minutes) and
/// the minute within which findings join, with a minute to spare.
pub const ALONE_GAP_SECONDS: u64 = 7 * 60;

/// Every injection of one generation, and the labels they make.
pub struct Plan {
    pub labels: Vec<LabelDraft>,
    windowed: Vec<Windowed>,
    attacks: Vec<Request>,
    next_attack: usize,
    pending: VecDeque<TraceInjection>,
    footprints: Vec<Footprint>,
    spacing: Spacing,
    warmup_end: u64,
    /// Injections that found no room (for the summary).
    pub unplaced: Vec<Subtype>,
    next_attacker: u32,
    used_users: BTreeSet<usize>,
    /// Indices into `windowed` of the near-threshold injections.
    near_threshold: Vec<usize>,
}

/// Expected calls per minute of each operation at the lowest point of the rate cycle.
pub fn op_rates(topo: &Topology, traffic: &Traffic) -> Vec<f64> {
    fn visit(topo: &Topology, op: OpId, weight: f64, acc: &mut [f64]) {
        acc[op] += weight;
        for step in topo.ops[op].stages.iter().flatten() {
            let when = if step.when == super::topology::When::LoggedIn {
                0.6
            } else {
                1.0
            };
            let mean = f64::from(step.count.0 + step.count.1) / 2.0;
            visit(topo, step.target, weight * step.prob * when * mean, acc);
        }
    }
    let mut acc = vec![0.0; topo.ops.len()];
    for (r, route) in topo.routes.iter().enumerate() {
        visit(topo, route.op, traffic.min_per_minute(r), &mut acc);
    }
    acc
}

fn uniform(rng: &mut StdRng, lo: f64, hi: f64) -> f64 {
    rng.random_range(lo..hi)
}

fn secs(s: f64) -> u64 {
    (s * NANOS_PER_SEC as f64) as u64
}

impl Plan {
    pub fn new(
        topo: &Topology,
        traffic: &Traffic,
        population: &Population,
        rng: &mut StdRng,
        epoch: u64,
        minutes: u64,
        spacing: Spacing,
    ) -> Plan {
        let mut plan = Plan {
            labels: Vec::new(),
            windowed: Vec::new(),
            attacks: Vec::new(),
            next_attack: 0,
            pending: VecDeque::new(),
            footprints: Vec::new(),
            spacing,
            warmup_end: epoch + WARMUP_SECONDS * NANOS_PER_SEC,
            unplaced: Vec::new(),
            next_attacker: 10,
            used_users: BTreeSet::new(),
            near_threshold: Vec::new(),
        };
        let first = plan.warmup_end;
        let last = epoch + minutes * 60 * NANOS_PER_SEC;
        // Leave the last minute alone: its windows close at the end of the input.
        let Some(usable) = last.checked_sub(first + 60 * NANOS_PER_SEC) else {
            return plan;
        };
        let usable_minutes = usable as f64 / (60.0 * NANOS_PER_SEC as f64);
        if usable_minutes < 5.0 {
            return plan;
        }
        let limit = first + usable;
        let rates = op_rates(topo, traffic);
        let count = |rng: &mut StdRng| -> usize {
            if spacing == Spacing::OneAtATime {
                return 1;
            }
            let n = rng.random_range(3..=6) as f64 * usable_minutes / REFERENCE_MINUTES;
            (n.round() as usize).max(1)
        };
        // Most constraining first.
        for subtype in [
            Subtype::ServiceSilent,
            Subtype::ThroughputDrop,
            Subtype::ErrorRateSpike,
            Subtype::RequestFlood,
            Subtype::ThroughputSpike,
            Subtype::AuthFailureBurst,
            Subtype::EndpointEnumeration,
            Subtype::LatencySpike,
            Subtype::InjectionAttempt,
            Subtype::PathTraversal,
            Subtype::SensitiveRouteNewPrincipal,
            Subtype::NPlusOneQuery,
            Subtype::FanOut,
            Subtype::UnusualTraceShape,
        ] {
            for _ in 0..count(rng) {
                let placed = plan.place(
                    topo, traffic, population, &rates, rng, subtype, first, limit,
                );
                if !placed {
                    plan.unplaced.push(subtype);
                }
            }
        }
        // Last, so that they move none of the others.
        plan.place_near_threshold(topo, traffic, population, &rates, rng, first, limit);
        plan.attacks.sort_by_key(|r| r.start);
        let mut pending: Vec<TraceInjection> = plan.pending.drain(..).collect();
        pending.sort_by_key(|p| p.at);
        plan.pending = pending.into();
        plan
    }

    /// Applies per-trace injections to a freshly built trace and records what the trace tells the
    /// labels. `root_traces[route]` counts the traces of each root so far.
    pub fn after_build(&mut self, b: &mut Builder, trace: &mut Trace, root_traces: &[u32]) {
        let topo = b.topo;
        let t = trace.spans[0].start;
        let mut injected = !trace.labels.is_empty();
        injected |= self.slow_latency_windows(topo, trace);
        let healthy = trace.spans[0].code.is_some_and(|c| c < 400)
            && trace
                .spans
                .iter()
                .all(|s| s.fault.is_none() && s.error.is_none());
        // A trace already slowed by an incident, failed by a fault or sent by an attacker gets nothing
        // more, so that every label's effect is its own.
        if !injected && healthy && t >= self.warmup_end {
            if self.pending.front().is_some_and(|p| p.at <= t) {
                let kind = self.pending[0].kind;
                if self.apply_trace_injection(b, trace, kind, root_traces) {
                    self.pending.pop_front();
                }
            } else if b.rng.random_bool(SLOW_SPAN_PROB) {
                self.slow_span(b, trace);
            }
        }
        self.record_trace(topo, trace);
    }

    /// Per-trace injections that found no fitting trace (for the summary).
    pub fn pending_trace_injections(&self) -> usize {
        self.pending.len()
    }
}
