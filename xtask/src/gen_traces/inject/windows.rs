//! Window injections: for a few minutes a key is slower (latency incidents and shifts) or fails
//! (error spikes), a route's rate changes (throughput spikes and drops), or a service goes silent.

use super::Plan;
use super::label_draft::LabelDraft;
use crate::gen_traces::labels::Target;
use crate::gen_traces::topology::{OpId, RouteId, SvcId, Topology};
use crate::gen_traces::trace::{Faults, Role, Trace, ancestors_and_self, insert_delay};
use detect_core::Subtype;

#[derive(Debug, Clone, Copy)]
pub(super) enum WindowKind {
    LatencyIncident {
        op: OpId,
        factor: f64,
    },
    /// Like an incident, but labelled by key for the window, not by slowed span (`near_threshold`).
    LatencyShift {
        op: OpId,
        factor: f64,
    },
    ErrorSpike {
        op: OpId,
        prob: f64,
    },
    ThroughputSpike {
        route: RouteId,
        factor: f64,
    },
    ThroughputDrop {
        route: RouteId,
        factor: f64,
    },
    ServiceSilent {
        service: SvcId,
    },
}

#[derive(Debug, Clone)]
pub(super) struct Windowed {
    pub(super) kind: WindowKind,
    pub(super) start: u64,
    pub(super) end: u64,
    pub(super) label: usize,
}

impl Plan {
    /// Labels a window injection and puts it in force from `start` to `end`.
    pub(super) fn commit_window(
        &mut self,
        topo: &Topology,
        subtype: Subtype,
        kind: WindowKind,
        start: u64,
        end: u64,
    ) {
        let label = self.labels.len();
        let description = match kind {
            WindowKind::LatencyIncident { op, factor }
            | WindowKind::LatencyShift { op, factor } => {
                let key = topo.key(topo.ops[op].service, op);
                format!("{} {} is {factor:.1}× slower", key.0, key.1)
            }
            WindowKind::ErrorSpike { op, prob } => {
                let key = topo.key(topo.ops[op].service, op);
                format!(
                    "{} {} fails {:.0} % of its calls",
                    key.0,
                    key.1,
                    prob * 100.0
                )
            }
            WindowKind::ThroughputSpike { route, factor }
            | WindowKind::ThroughputDrop { route, factor } => {
                let key = topo.key(topo.gateway(), topo.routes[route].op);
                format!("route {} at {factor:.2}× its rate", key.1)
            }
            WindowKind::ServiceSilent { service } => {
                format!(
                    "{} sends no spans and refuses calls",
                    topo.service_name(service)
                )
            }
        };
        let mut draft = LabelDraft::new(subtype, start, end, description);
        match kind {
            WindowKind::LatencyIncident { op, .. }
            | WindowKind::LatencyShift { op, .. }
            | WindowKind::ErrorSpike { op, .. } => {
                draft.origin_at(&topo.key(topo.ops[op].service, op));
            }
            WindowKind::ThroughputSpike { route, .. }
            | WindowKind::ThroughputDrop { route, .. } => {
                draft.origin_at(&topo.key(topo.gateway(), topo.routes[route].op));
            }
            WindowKind::ServiceSilent { service } => {
                draft.origin = Some(Target {
                    service: Some(topo.service_name(service).to_owned()),
                    ..Target::default()
                });
            }
        }
        match kind {
            WindowKind::ThroughputSpike { route, .. }
            | WindowKind::ThroughputDrop { route, .. } => {
                for key in &topo.route_keys[route] {
                    draft.key_target(key);
                }
            }
            WindowKind::ServiceSilent { service } => {
                draft.targets.insert(Target {
                    service: Some(topo.service_name(service).to_owned()),
                    ..Target::default()
                });
            }
            WindowKind::ErrorSpike { op, .. } | WindowKind::LatencyShift { op, .. } => {
                // The operation and its callers' client spans; for errors, ancestors that
                // fail with it are added as the traces show them.
                draft.key_target(&topo.key(topo.ops[op].service, op));
                for caller in &topo.ops {
                    if caller.stages.iter().flatten().any(|s| s.target == op) {
                        draft.key_target(&topo.key(caller.service, op));
                    }
                }
            }
            WindowKind::LatencyIncident { .. } => {}
        }
        self.labels.push(draft);
        self.windowed.push(Windowed {
            kind,
            start,
            end,
            label,
        });
    }

    /// Route rate multiplier at `t` (throughput injections).
    pub fn multiplier(&self, route: RouteId, t: u64) -> f64 {
        self.windowed
            .iter()
            .filter(|w| w.start <= t && t < w.end)
            .map(|w| match w.kind {
                WindowKind::ThroughputSpike { route: r, factor }
                | WindowKind::ThroughputDrop { route: r, factor }
                    if r == route =>
                {
                    factor
                }
                _ => 1.0,
            })
            .product()
    }

    /// Faults active at `t`.
    pub fn faults(&self, t: u64) -> Faults {
        let mut faults = Faults::default();
        for w in self.windowed.iter().filter(|w| w.start <= t && t < w.end) {
            match w.kind {
                WindowKind::ErrorSpike { op, prob } => faults.failing.push((op, prob, w.label)),
                WindowKind::ServiceSilent { service } => faults.silent.push((service, w.label)),
                _ => {}
            }
        }
        faults
    }

    /// Slows every span of the keys under a latency incident or shift when the trace starts, and
    /// labels them; true if any span was slowed.
    pub(super) fn slow_latency_windows(&mut self, topo: &Topology, trace: &mut Trace) -> bool {
        let t = trace.spans[0].start;
        let mut any = false;
        let incidents: Vec<(OpId, f64, usize, bool)> = self
            .windowed
            .iter()
            .filter(|w| w.start <= t && t < w.end)
            .filter_map(|w| match w.kind {
                WindowKind::LatencyIncident { op, factor } => Some((op, factor, w.label, false)),
                WindowKind::LatencyShift { op, factor } => Some((op, factor, w.label, true)),
                _ => None,
            })
            .collect();
        for (op, factor, label, shift) in incidents {
            for idx in 0..trace.spans.len() {
                let span = &trace.spans[idx];
                if span.op != op || !matches!(span.role, Role::Server | Role::Db) || span.injected {
                    continue;
                }
                let delta = ((factor - 1.0) * span.dur as f64) as u64;
                let at = span.end();
                insert_delay(trace, idx, at, delta);
                if shift {
                    self.shifted(topo, trace, idx, label);
                } else {
                    self.slowed(topo, trace, idx, label);
                }
                any = true;
            }
        }
        any
    }

    /// Adds the slowed span `idx` and its (grown) ancestors to `label`.
    pub(super) fn slowed(&mut self, topo: &Topology, trace: &Trace, idx: usize, label: usize) {
        let draft = &mut self.labels[label];
        for i in ancestors_and_self(&trace.spans, idx) {
            let span = &trace.spans[i];
            draft.targets.insert(Target {
                service: Some(topo.service_name(span.service).to_owned()),
                operation: Some(topo.ops[span.op].name.clone()),
                client: None,
                trace_id: Some(hex::encode(trace.trace_id)),
                span_id: Some(hex::encode(span.span_id)),
            });
        }
        draft.add_trace(trace.trace_id);
    }
}
