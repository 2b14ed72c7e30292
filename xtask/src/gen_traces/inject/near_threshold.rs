//! Near-threshold injections: one of each window-level kind placed just past the detectors' default
//! rules, so that `eval --check` fails when a detector goes deaf, not only when it goes noisy.
//!
//! The other window injections are far beyond the rules (an incident ×5–15, 30–60 % errors, a spike
//! ×4–8, a drop to 5–20 %). These four are not:
//! - latency ×[`LATENCY_FACTOR`] on one (service, operation) with σ 0.30–0.40 (so ≈ 1.7–2.3σ per span,
//!   under the 3σ per-span rule) and ≥ 20 calls a minute, for 2–3 minutes. The label names the key and
//!   its callers' client spans for the window, no trace: finding it takes judging the window, or luck
//!   with single spans. The ancestors that grew are side effects (a slow span or a moved window);
//! - [`ERROR_RATIO`] of the calls of one internal operation with ≥ 40 calls a minute fail, for 2–3
//!   minutes (rule: 5 %);
//! - one public or user route at ×[`SPIKE_FACTOR`] its rate for 2 minutes, on a route with ≥ 20
//!   requests a minute (rule: |z| ≥ 3 and ×1.5);
//! - one route at ×[`DROP_FACTOR`] its rate for 3 minutes, on a route with ≥ 60 requests a minute.
//!
//! They are placed after every other injection (so adding them moved none of the others), after the
//! warm-up and away from any injection on the same keys, like the rest. Their labels carry
//! `near_threshold`, and `eval` counts one found only by its own detector (any latency finding for
//! the shift), not by another finding of the same type on its keys.

use super::placement::{Candidate, Placement, tag, tags};
use super::windows::WindowKind;
use super::{Plan, secs, uniform};
use crate::gen_traces::labels::Target;
use crate::gen_traces::topology::{Access, Key, OpId, RouteId, Topology};
use crate::gen_traces::trace::{Trace, ancestors_and_self};
use crate::gen_traces::traffic::{Population, Traffic};
use detect_core::Subtype;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use std::collections::BTreeSet;

/// Every span of the slowed key takes this many times as long.
pub const LATENCY_FACTOR: f64 = 2.0;
/// Share of the calls that fail.
pub const ERROR_RATIO: f64 = 0.10;
/// Rate multiplier of the spiking route.
pub const SPIKE_FACTOR: f64 = 2.5;
/// Rate multiplier of the dropping route.
pub const DROP_FACTOR: f64 = 0.5;
/// Calls a minute (at the lowest of the day) a key needs for each kind.
const LATENCY_MIN_PER_MINUTE: f64 = 20.0;
const ERROR_MIN_PER_MINUTE: f64 = 40.0;
const SPIKE_MIN_PER_MINUTE: f64 = 20.0;
const DROP_MIN_PER_MINUTE: f64 = 60.0;
/// The spread of ln(duration) of keys eligible for the latency shift: ln 2 / σ ≈ 1.7–2.3.
const LATENCY_SIGMA: std::ops::RangeInclusive<f64> = 0.30..=0.40;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Latency,
    Errors,
    Spike,
    Drop,
}

impl Kind {
    /// Most constraining first.
    const ALL: [Kind; 4] = [Kind::Drop, Kind::Errors, Kind::Latency, Kind::Spike];

    fn subtype(self) -> Subtype {
        match self {
            Kind::Latency => Subtype::LatencySpike,
            Kind::Errors => Subtype::ErrorRateSpike,
            Kind::Spike => Subtype::ThroughputSpike,
            Kind::Drop => Subtype::ThroughputDrop,
        }
    }
}

/// The operations a latency shift may slow: database calls and non-gateway server operations with
/// the spread and traffic above.
fn latency_ops(topo: &Topology, rates: &[f64]) -> Vec<OpId> {
    (0..topo.ops.len())
        .filter(|&o| {
            let def = &topo.ops[o];
            let eligible_kind = def.is_db() || (def.is_server() && def.service != topo.gateway());
            eligible_kind
                && LATENCY_SIGMA.contains(&def.sigma)
                && rates[o] >= LATENCY_MIN_PER_MINUTE
        })
        .collect()
}

/// The normal (public or user) routes with at least `per_minute` requests at the lowest of the day.
fn routes_with_traffic(topo: &Topology, traffic: &Traffic, per_minute: f64) -> Vec<RouteId> {
    (0..topo.routes.len())
        .filter(|&r| matches!(topo.routes[r].access, Access::Public | Access::User))
        .filter(|&r| traffic.min_per_minute(r) >= per_minute)
        .collect()
}

/// The key of `op` and of its callers' client spans: what a slowed or failing `op` shows as itself.
fn own_keys(topo: &Topology, op: OpId) -> BTreeSet<Key> {
    let mut keys = BTreeSet::from([topo.key(topo.ops[op].service, op)]);
    for caller in &topo.ops {
        if caller.stages.iter().flatten().any(|s| s.target == op) {
            keys.insert(topo.key(caller.service, op));
        }
    }
    keys
}

fn candidate(
    topo: &Topology,
    traffic: &Traffic,
    rates: &[f64],
    rng: &mut StdRng,
    kind: Kind,
) -> Option<Placement> {
    let route_window = |route: RouteId, dur: u64, kind: WindowKind| {
        let key = topo.key(topo.gateway(), topo.routes[route].op);
        (
            dur,
            [tag(&key)].into(),
            tags(&topo.route_keys[route]),
            Candidate::Window(kind),
        )
    };
    Some(match kind {
        Kind::Latency => {
            let op = *latency_ops(topo, rates).choose(rng)?;
            let keys = tags(&own_keys(topo, op));
            let factor = LATENCY_FACTOR;
            (
                secs(uniform(rng, 120.0, 180.0)),
                keys.clone(),
                keys,
                Candidate::Window(WindowKind::LatencyShift { op, factor }),
            )
        }
        Kind::Errors => {
            let ops: Vec<OpId> = topo
                .internal_servers()
                .into_iter()
                .filter(|&o| rates[o] >= ERROR_MIN_PER_MINUTE)
                .collect();
            let op = *ops.choose(rng)?;
            let key = topo.key(topo.ops[op].service, op);
            let affected = topo.keys_of_routes_touching(&[key.clone()].into());
            let prob = ERROR_RATIO;
            (
                secs(uniform(rng, 120.0, 180.0)),
                [tag(&key)].into(),
                tags(&affected),
                Candidate::Window(WindowKind::ErrorSpike { op, prob }),
            )
        }
        Kind::Spike => {
            let routes = routes_with_traffic(topo, traffic, SPIKE_MIN_PER_MINUTE);
            let route = *routes.choose(rng)?;
            let factor = SPIKE_FACTOR;
            route_window(
                route,
                secs(120.0),
                WindowKind::ThroughputSpike { route, factor },
            )
        }
        Kind::Drop => {
            let routes = routes_with_traffic(topo, traffic, DROP_MIN_PER_MINUTE);
            let route = *routes.choose(rng)?;
            let factor = DROP_FACTOR;
            route_window(
                route,
                secs(180.0),
                WindowKind::ThroughputDrop { route, factor },
            )
        }
    })
}

impl Plan {
    /// Places one injection of each near-threshold kind in `[first, limit)`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn place_near_threshold(
        &mut self,
        topo: &Topology,
        traffic: &Traffic,
        population: &Population,
        rates: &[f64],
        rng: &mut StdRng,
        first: u64,
        limit: u64,
    ) {
        for kind in Kind::ALL {
            let placed = self.place_with(
                topo,
                traffic,
                population,
                rng,
                kind.subtype(),
                (first, limit),
                |rng| candidate(topo, traffic, rates, rng, kind),
            );
            if !placed {
                self.unplaced.push(kind.subtype());
                continue;
            }
            let w = self.windowed.len() - 1;
            let label = &mut self.labels[self.windowed[w].label];
            label.near_threshold = true;
            label.description = format!("near threshold: {}", label.description);
            self.near_threshold.push(w);
        }
    }

    /// Records a span of `idx`'s key slowed by a latency shift: the trace, and the ancestors that grew
    /// with it as side effects (the label's targets are the keys, set when it was placed).
    pub(super) fn shifted(&mut self, topo: &Topology, trace: &Trace, idx: usize, label: usize) {
        let draft = &mut self.labels[label];
        for i in ancestors_and_self(&trace.spans, idx) {
            let span = &trace.spans[i];
            let key = topo.key(span.service, span.op);
            let target = Target {
                service: Some(key.0.clone()),
                operation: Some(key.1.clone()),
                ..Target::default()
            };
            if !draft.targets.contains(&target) {
                for subtype in [Subtype::LatencySpike, Subtype::LatencyDegradation] {
                    draft.side_effect(subtype, Some(&key), None, None);
                }
            }
        }
        draft.add_trace(trace.trace_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gen_traces::EPOCH_NANOS;
    use crate::gen_traces::inject::WARMUP_SECONDS;
    use crate::gen_traces::trace::{Builder, Caller, Ctx, GenStats, Request, Role};
    use crate::gen_traces::traffic::NANOS_PER_SEC;
    use rand::{Rng, SeedableRng};

    const MINUTES: u64 = 60;

    fn plan(seed: u64) -> (Topology, Traffic, Plan) {
        let topo = Topology::shop();
        let mut rng = StdRng::seed_from_u64(seed);
        let population = Population::new(&mut rng);
        let traffic = Traffic::new(&topo, 15.0, EPOCH_NANOS, &mut rng);
        let mut plan_rng = StdRng::seed_from_u64(seed);
        let plan = Plan::new(
            &topo,
            &traffic,
            &population,
            &mut plan_rng,
            EPOCH_NANOS,
            MINUTES,
            crate::gen_traces::inject::Spacing::Dense,
        );
        (topo, traffic, plan)
    }

    /// The keys a window injection is about.
    fn own(topo: &Topology, w: &crate::gen_traces::inject::windows::Windowed) -> BTreeSet<Key> {
        match w.kind {
            WindowKind::LatencyIncident { op, .. }
            | WindowKind::LatencyShift { op, .. }
            | WindowKind::ErrorSpike { op, .. } => own_keys(topo, op),
            WindowKind::ThroughputSpike { route, .. }
            | WindowKind::ThroughputDrop { route, .. } => {
                [topo.key(topo.gateway(), topo.routes[route].op)].into()
            }
            WindowKind::ServiceSilent { service } => (0..topo.ops.len())
                .filter(|&o| topo.ops[o].service == service)
                .map(|o| topo.key(service, o))
                .collect(),
        }
    }

    #[test]
    fn every_plan_holds_the_four_after_the_warm_up_on_busy_keys() {
        for seed in 1..=20 {
            let (topo, traffic, plan) = plan(seed);
            let rates = crate::gen_traces::inject::op_rates(&topo, &traffic);
            let warmup_end = EPOCH_NANOS + WARMUP_SECONDS * NANOS_PER_SEC;
            let end = EPOCH_NANOS + MINUTES * 60 * NANOS_PER_SEC;
            assert!(plan.unplaced.is_empty(), "seed {seed}: {:?}", plan.unplaced);
            let mut kinds = Vec::new();
            for &w in &plan.near_threshold {
                let w = &plan.windowed[w];
                assert!(w.start >= warmup_end && w.end <= end, "seed {seed}");
                let minutes = (w.end - w.start) as f64 / (60 * NANOS_PER_SEC) as f64;
                let label = &plan.labels[w.label];
                assert!(label.near_threshold, "{label:?}");
                kinds.push(match w.kind {
                    WindowKind::LatencyShift { op, factor } => {
                        assert_eq!(factor, 2.0);
                        assert!(rates[op] >= 20.0 && (2.0..=3.0).contains(&minutes));
                        assert!(!label.targets.is_empty());
                        assert!(label.targets.iter().all(|t| t.trace_id.is_none()));
                        Kind::Latency
                    }
                    WindowKind::ErrorSpike { op, prob } => {
                        assert_eq!(prob, 0.1);
                        assert!(rates[op] >= 40.0 && (2.0..=3.0).contains(&minutes));
                        Kind::Errors
                    }
                    WindowKind::ThroughputSpike { route, factor } => {
                        assert_eq!((factor, minutes), (2.5, 2.0));
                        assert!(traffic.min_per_minute(route) >= 20.0);
                        Kind::Spike
                    }
                    WindowKind::ThroughputDrop { route, factor } => {
                        assert_eq!((factor, minutes), (0.5, 3.0));
                        assert!(traffic.min_per_minute(route) >= 60.0);
                        Kind::Drop
                    }
                    other => panic!("{other:?}"),
                });
                // No other window injection on the same keys at the same time.
                for other in &plan.windowed {
                    let apart = other.end <= w.start || w.end <= other.start;
                    if std::ptr::eq(other, w) || apart {
                        continue;
                    }
                    assert!(
                        own(&topo, other).is_disjoint(&own(&topo, w)),
                        "seed {seed}: {:?} overlaps {:?}",
                        w.kind,
                        other.kind
                    );
                }
            }
            kinds.sort_by_key(|k| *k as u8);
            assert_eq!(
                kinds,
                [Kind::Latency, Kind::Errors, Kind::Spike, Kind::Drop],
                "seed {seed}"
            );
            let flagged = plan.labels.iter().filter(|l| l.near_threshold).count();
            assert_eq!(flagged, 4, "seed {seed}");
        }
    }

    /// Durations (ms) of the spans of `op` in `n` traces of routes through it starting at `at`.
    fn durations(topo: &Topology, plan: &mut Plan, op: OpId, at: u64, n: usize) -> Vec<f64> {
        let key = topo.key(topo.ops[op].service, op);
        let routes: Vec<RouteId> = (0..topo.routes.len())
            .filter(|&r| {
                topo.routes[r].access == Access::User || topo.routes[r].access == Access::Public
            })
            .filter(|&r| topo.route_keys[r].contains(&key))
            .collect();
        let mut rng = StdRng::seed_from_u64(at);
        let mut stats = GenStats::default();
        let root_traces = vec![0; topo.routes.len()];
        let mut out = Vec::new();
        for i in 0..n {
            let start = at + i as u64 * 1_000_000;
            let caller = Caller {
                ip: "198.51.100.7".into(),
                user: Some("u-1".into()),
                user_agent: "test",
            };
            let ctx = Ctx::random(&mut rng, caller.user.clone());
            let request = Request {
                start,
                route: routes[rng.random_range(0..routes.len())],
                caller,
                ctx,
                label: None,
            };
            let faults = plan.faults(start);
            let mut b = Builder {
                topo,
                rng: &mut rng,
                faults: &faults,
                ctx: Ctx::default(),
                stats: &mut stats,
            };
            let mut trace = b.build(&request);
            plan.after_build(&mut b, &mut trace, &root_traces);
            out.extend(
                trace
                    .spans
                    .iter()
                    .filter(|s| s.op == op && matches!(s.role, Role::Server | Role::Db))
                    .map(|s| s.dur as f64 / 1e6),
            );
        }
        out.sort_by(f64::total_cmp);
        out
    }

    #[test]
    fn a_latency_shift_makes_every_span_of_its_key_twice_as_slow() {
        let (topo, _, mut plan) = plan(3);
        let (op, start, label) = plan
            .near_threshold
            .iter()
            .find_map(|&w| match plan.windowed[w].kind {
                WindowKind::LatencyShift { op, .. } => {
                    Some((op, plan.windowed[w].start, plan.windowed[w].label))
                }
                _ => None,
            })
            .expect("a latency shift");
        let median_ms = topo.ops[op].median_ms;
        // One minute of the injection, against traces from before the warm-up ended.
        let slow = durations(&topo, &mut plan, op, start, 400);
        let normal = durations(&topo, &mut plan, op, EPOCH_NANOS, 400);
        assert!(slow.len() >= 300 && normal.len() >= 300);
        let ratio = slow[slow.len() / 2] / median_ms;
        assert!((1.8..2.2).contains(&ratio), "{ratio}");
        let ratio = normal[normal.len() / 2] / median_ms;
        assert!((0.9..1.1).contains(&ratio), "{ratio}");
        let draft = &plan.labels[label];
        assert!(draft.traces.len() >= 300);
        assert!(
            draft
                .side_effects
                .iter()
                .any(|s| s.service.as_deref() == Some("gateway"))
        );
    }
}
