//! Normal traffic: who calls, how often, which routes. Root requests arrive per route as a Poisson
//! process whose rate follows a slow sinusoid (±20 % over an hour); clients are ~300 addresses with a
//! Zipf-like popularity (the busiest stays near 30 requests per minute at the peak rate); 60 % of them
//! are logged-in users. Three administrators visit every `/admin` route from the first minutes on.

use super::topology::{Access, Hook, RouteId, Topology};
use super::trace::{Caller, Ctx, Request};
use rand::Rng;
use rand::distr::weighted::WeightedIndex;
use rand::prelude::Distribution;
use rand::rngs::StdRng;
use rand_distr::Poisson;

pub const NANOS_PER_SEC: u64 = 1_000_000_000;
/// How many normal clients there are.
const CLIENTS: usize = 300;
/// Zipf-like popularity: weight of the i-th client is (i + OFFSET)^-EXPONENT.
const POPULARITY_EXPONENT: f64 = 0.8;
const POPULARITY_OFFSET: f64 = 5.0;
const LOGGED_IN_SHARE: f64 = 0.6;
/// Relative amplitude of the hourly rate cycle.
const SEASON_AMPLITUDE: f64 = 0.2;
const SESSION_EXPIRY_PROB: f64 = 0.004;
const WRONG_PASSWORD_PROB: f64 = 0.03;
/// A normal client draws at most one 401 in this long.
const AUTH_FAILURE_COOLDOWN: u64 = 600 * NANOS_PER_SEC;

const USER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "ShopApp/5.2.1 (Android 14; Pixel 8)",
];

#[derive(Clone, Debug)]
pub struct Client {
    pub ip: String,
    pub user: Option<String>,
    pub user_agent: &'static str,
}

impl Client {
    pub fn caller(&self) -> Caller {
        Caller {
            ip: self.ip.clone(),
            user: self.user.clone(),
            user_agent: self.user_agent,
        }
    }
}

pub struct Population {
    pub clients: Vec<Client>,
    all: WeightedIndex<f64>,
    /// Indexes of logged-in clients, and their popularity.
    pub logged_in: Vec<usize>,
    logged_in_weights: WeightedIndex<f64>,
    last_auth_failure: Vec<Option<u64>>,
    pub admins: Vec<Client>,
}

impl Population {
    pub fn new(rng: &mut StdRng) -> Population {
        let mut clients = Vec::with_capacity(CLIENTS);
        for i in 0..CLIENTS {
            let ip = if i < 250 {
                format!("198.51.100.{}", i + 1)
            } else {
                format!("203.0.113.{}", i - 249)
            };
            let user = rng
                .random_bool(LOGGED_IN_SHARE)
                .then(|| format!("u-{}", 10_000 + i * 37 + rng.random_range(0..37)));
            clients.push(Client {
                ip,
                user,
                user_agent: USER_AGENTS[rng.random_range(0..USER_AGENTS.len())],
            });
        }
        let weight = |i: usize| (i as f64 + POPULARITY_OFFSET).powf(-POPULARITY_EXPONENT);
        let all = WeightedIndex::new((0..CLIENTS).map(weight)).expect("positive weights");
        let logged_in: Vec<usize> = (0..CLIENTS)
            .filter(|&i| clients[i].user.is_some())
            .collect();
        let logged_in_weights =
            WeightedIndex::new(logged_in.iter().map(|&i| weight(i))).expect("positive weights");
        let admins = (1..=3)
            .map(|k| Client {
                ip: format!("198.18.0.{}", 10 + k),
                user: Some(format!("admin-{k}")),
                user_agent: USER_AGENTS[0],
            })
            .collect();
        Population {
            last_auth_failure: vec![None; clients.len()],
            clients,
            all,
            logged_in,
            logged_in_weights,
            admins,
        }
    }

    /// Whether client `i` may draw a 401 at `now` (then it is recorded).
    fn allow_auth_failure(&mut self, i: usize, now: u64) -> bool {
        let ok = self.last_auth_failure[i].is_none_or(|t| now >= t + AUTH_FAILURE_COOLDOWN);
        if ok {
            self.last_auth_failure[i] = Some(now);
        }
        ok
    }
}

/// The normal arrival process.
pub struct Traffic {
    pub base_rate: f64,
    /// Event time of second 0 (Unix nanoseconds).
    epoch: u64,
    phase: f64,
    /// Route shares among normal (non-admin) routes, summing to 1.
    pub shares: Vec<f64>,
    login_route: Option<RouteId>,
}

impl Traffic {
    pub fn new(topo: &Topology, base_rate: f64, epoch: u64, rng: &mut StdRng) -> Traffic {
        let total: f64 = topo.routes.iter().map(|r| r.weight).sum();
        let shares = topo.routes.iter().map(|r| r.weight / total).collect();
        let login_route = (0..topo.routes.len()).find(|&r| {
            topo.ops[topo.routes[r].op]
                .stages
                .iter()
                .flatten()
                .any(|s| topo.ops[s.target].has_hook(Hook::Login))
        });
        Traffic {
            base_rate,
            epoch,
            phase: rng.random_range(0.0..std::f64::consts::TAU),
            shares,
            login_route,
        }
    }

    pub fn login_route(&self) -> Option<RouteId> {
        self.login_route
    }

    /// The normal rate (requests per second) of `route` at event second `second`.
    pub fn rate(&self, route: RouteId, second: u64) -> f64 {
        let season = 1.0
            + SEASON_AMPLITUDE
                * (std::f64::consts::TAU * second as f64 / 3600.0 + self.phase).sin();
        self.base_rate * self.shares[route] * season
    }

    /// The lowest the rate of `route` gets (per minute).
    pub fn min_per_minute(&self, route: RouteId) -> f64 {
        self.base_rate * self.shares[route] * (1.0 - SEASON_AMPLITUDE) * 60.0
    }

    /// Appends the normal requests starting in event second `second` (counted from the epoch);
    /// `multiplier(route)` scales a route's rate (throughput injections).
    pub fn arrivals(
        &self,
        topo: &Topology,
        population: &mut Population,
        rng: &mut StdRng,
        second: u64,
        multiplier: impl Fn(RouteId) -> f64,
        out: &mut Vec<Request>,
    ) {
        for route in 0..topo.routes.len() {
            let mult = multiplier(route);
            let lambda = self.rate(route, second) * mult;
            if lambda <= 0.0 {
                continue;
            }
            let n = Poisson::new(lambda).expect("positive rate").sample(rng) as u64;
            for _ in 0..n {
                let start =
                    self.epoch + second * NANOS_PER_SEC + rng.random_range(0..NANOS_PER_SEC);
                let access = topo.routes[route].access;
                // Extra traffic of a throughput spike comes from everyone alike (a campaign, not
                // the busiest clients), so that no normal client passes ~40 requests a minute.
                let extra = mult > 1.0 && rng.random_bool(1.0 - 1.0 / mult);
                let i = match (access, extra) {
                    (Access::User, false) => {
                        population.logged_in[population.logged_in_weights.sample(rng)]
                    }
                    (Access::User, true) => {
                        population.logged_in[rng.random_range(0..population.logged_in.len())]
                    }
                    (_, false) => population.all.sample(rng),
                    (_, true) => rng.random_range(0..population.clients.len()),
                };
                let client = &population.clients[i];
                // Public pages carry the user of a logged-in client too; login itself does not.
                let user = if Some(route) == self.login_route {
                    None
                } else {
                    client.user.clone()
                };
                let mut ctx = Ctx::random(rng, client.user.clone());
                let caller = Caller {
                    user,
                    ..client.caller()
                };
                if access == Access::User && rng.random_bool(SESSION_EXPIRY_PROB) {
                    ctx.session_expired = population.allow_auth_failure(i, start);
                }
                if Some(route) == self.login_route && rng.random_bool(WRONG_PASSWORD_PROB) {
                    ctx.bad_password = population.allow_auth_failure(i, start);
                }
                out.push(Request {
                    start,
                    route,
                    caller,
                    ctx,
                    label: None,
                });
            }
        }
    }
}

/// The administrators' sessions: each visits every admin route within the first two minutes, then
/// every 3–6 minutes, so that all of them are known on every admin route before detection starts.
pub fn admin_requests(
    topo: &Topology,
    population: &Population,
    rng: &mut StdRng,
    epoch: u64,
    seconds: u64,
) -> Vec<Request> {
    let admin_routes: Vec<RouteId> = (0..topo.routes.len())
        .filter(|&r| topo.routes[r].access == Access::Admin)
        .collect();
    let mut out = Vec::new();
    for admin in &population.admins {
        let mut t = rng.random_range(5.0..90.0);
        while t < seconds as f64 {
            let mut at = t;
            for &route in &admin_routes {
                let start = epoch + (at * NANOS_PER_SEC as f64) as u64;
                if start < epoch + seconds * NANOS_PER_SEC {
                    out.push(Request {
                        start,
                        route,
                        caller: admin.caller(),
                        ctx: Ctx::random(rng, admin.user.clone()),
                        label: None,
                    });
                }
                at += rng.random_range(2.0..8.0);
            }
            t += rng.random_range(180.0..360.0);
        }
    }
    out.sort_by_key(|r| r.start);
    out
}
