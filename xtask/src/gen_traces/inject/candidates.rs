//! What each subtype's injection may be: a random target (a busy key, route or service), its size
//! and duration, and the keys it occupies, for placement.

use super::placement::{Candidate, Placement, tag, tags};
use super::trace_mutations::TraceKind;
use super::windows::WindowKind;
use super::{secs, uniform};
use crate::gen_traces::topology::{Access, Key, OpId, RouteId, SvcId, Topology};
use crate::gen_traces::traffic::Traffic;
use detect_core::Subtype;
use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use std::collections::BTreeSet;

/// A random candidate of `subtype`: what it changes, for how long, and the keys it occupies.
pub(super) fn random_candidate(
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
