//! Security traffic: requests from an attacker's client (failed logins, scans, floods, injection and
//! traversal attempts, a user trying admin routes), merged into the normal traffic in time order.

use super::label_draft::LabelDraft;
use super::payloads::{INJECTIONS, TRAVERSALS, probe_paths};
use super::{Plan, secs, uniform};
use crate::gen_traces::labels::Target;
use crate::gen_traces::topology::{Access, OpKind, RouteId, Topology};
use crate::gen_traces::trace::{Caller, Ctx, Request};
use crate::gen_traces::traffic::{Population, Traffic};
use detect_core::Subtype;
use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};

impl Plan {
    /// Makes the requests of one attack and its label.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn commit_attack(
        &mut self,
        topo: &Topology,
        traffic: &Traffic,
        population: &Population,
        rng: &mut StdRng,
        subtype: Subtype,
        start: u64,
        end: u64,
    ) {
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

    /// Attack requests starting before `before`, in order.
    pub fn attacks_before(&mut self, before: u64) -> &[Request] {
        let from = self.next_attack;
        while self.next_attack < self.attacks.len() && self.attacks[self.next_attack].start < before
        {
            self.next_attack += 1;
        }
        &self.attacks[from..self.next_attack]
    }
}
