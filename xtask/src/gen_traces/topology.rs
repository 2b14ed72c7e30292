//! The simulated shop: its services, their operations, the public routes of the gateway and who calls
//! whom. The data is in `topology/data.rs`; this file builds it into ids and derives a few tables
//! (medians, the keys each route's traces can contain).
//!
//! Duration model: every (service, operation) key has one log-normal duration distribution
//! `LN(ln median, sigma)`, whatever the caller. A server operation's median is derived bottom-up:
//! `own_ms + CHILD_MARGIN × Σ_stage max_step(calls × child median)`, so that its children usually fit
//! inside a duration drawn from its own distribution (see `trace.rs` for the fitting). An HTTP call
//! appears twice: a CLIENT span in the caller, whose key is (caller service, callee operation name)
//! with `LN(median / SERVER_SHARE, sigma)` of the callee, and the callee's SERVER span, which takes
//! exactly `SERVER_SHARE` of the client span (the rest is network), so both have the same z.
//! A parent's sigma is raised to its widest child's: with correlated draws (`trace.rs`), a child
//! spreading wider than its parent would often outgrow it.

mod data;

use data::{Call, CatchAll, DbOp, ExternalOp, GatewayRoute, InProcessOp, ServerOp};
use std::collections::{BTreeMap, BTreeSet};

pub type SvcId = usize;
pub type OpId = usize;
pub type RouteId = usize;

/// The share of an HTTP client span that its server span takes; the rest is network and queueing.
pub const SERVER_SHARE: f64 = 0.96;
/// Headroom of a parent's median over its children's, so that children rarely need scaling to fit.
const CHILD_MARGIN: f64 = 1.35;
/// The gateway is the first service of `data::SERVICES`.
const GATEWAY: SvcId = 0;

/// Which OpenTelemetry semantic conventions a service's instrumentation writes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Conv {
    /// `http.method`, `http.target`, `http.status_code`, `net.peer.ip`, `db.statement`, …
    Old,
    /// `http.request.method`, `url.path`, `http.response.status_code`, `db.query.text`, …
    New,
}

pub struct ServiceDef {
    pub name: &'static str,
    pub conv: Conv,
    pub version: &'static str,
    pub language: &'static str,
    pub scope: &'static str,
    pub scope_version: &'static str,
}

/// What an operation is, which decides its span kind and attributes.
#[derive(Clone, Debug)]
pub enum OpKind {
    /// An HTTP server operation. `route` is the template (`None`: no route matched), `path` the
    /// concrete path template filled from the trace context.
    Server {
        method: &'static str,
        route: Option<&'static str>,
        path: &'static str,
    },
    /// A PostgreSQL call (a CLIENT span in the calling service).
    Db {
        operation: &'static str,
        table: &'static str,
    },
    /// An in-process step (INTERNAL span).
    Internal,
    /// An HTTP call to a system outside the traces (a CLIENT span without a server span).
    External {
        method: &'static str,
        url: &'static str,
    },
}

/// What a caller does when a call fails (5xx) or is refused (4xx).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum OnError {
    /// Fail too (5xx become 502, 4xx are passed on) and skip the remaining calls.
    Propagate,
    /// Carry on without it (a recommendation box left empty).
    Degrade,
}

/// When a call is made at all.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum When {
    Always,
    LoggedIn,
}

/// Special answers an operation gives, checked after the given stage (0: before any call).
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Hook {
    /// 401 after the session lookup when the session expired.
    Session,
    /// 401 after the password check when the password is wrong.
    Login,
    /// 404 after the first lookup, with this probability (or when the request asks for it).
    NotFound(f64),
    /// 400 before anything, when the request is malformed.
    BadRequest,
    /// 403 after the session check, for a user who is not an administrator.
    AdminCheck,
    /// The gateway found no route: 404 (or the status the request asks for) at once.
    Unmatched,
}

#[derive(Clone, Debug)]
pub struct Step {
    pub target: OpId,
    pub prob: f64,
    pub count: (u32, u32),
    pub on_error: OnError,
    pub when: When,
    /// The statement template of a database call.
    pub statement: Option<&'static str>,
}

pub struct OpDef {
    pub service: SvcId,
    pub name: String,
    pub kind: OpKind,
    pub own_ms: f64,
    /// Median of the operation's total duration; derived for server operations.
    pub median_ms: f64,
    /// Spread of ln(duration).
    pub sigma: f64,
    /// Background probability that the operation fails by itself.
    pub error_rate: f64,
    pub hooks: Vec<Hook>,
    /// Children: stages run one after the other, the steps of a stage in parallel.
    pub stages: Vec<Vec<Step>>,
}

impl OpDef {
    pub fn is_server(&self) -> bool {
        matches!(self.kind, OpKind::Server { .. })
    }
    pub fn is_db(&self) -> bool {
        matches!(self.kind, OpKind::Db { .. })
    }
    pub fn has_hook(&self, hook: Hook) -> bool {
        self.hooks.contains(&hook)
    }
    pub fn not_found_prob(&self) -> Option<f64> {
        self.hooks.iter().find_map(|h| match h {
            Hook::NotFound(p) => Some(*p),
            _ => None,
        })
    }
}

/// Who may call a route.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Access {
    Public,
    /// Needs a logged-in user (the gateway validates the session first).
    User,
    /// Administrators only (`/admin/...`).
    Admin,
    /// Paths no route matches (old links, icons); 404.
    Unmatched,
}

pub struct RouteDef {
    /// The gateway's root operation.
    pub op: OpId,
    /// Share of normal traffic (admin routes: 0, they have their own schedule).
    pub weight: f64,
    pub access: Access,
}

/// A (service, operation) key as detectors see it: (service name, span name).
pub type Key = (String, String);

pub struct Topology {
    pub services: &'static [ServiceDef],
    pub ops: Vec<OpDef>,
    pub routes: Vec<RouteDef>,
    /// Every key a trace of each route can contain, including client spans.
    pub route_keys: Vec<BTreeSet<Key>>,
}

/// Builds the operations and routes of `data` in table order: an operation's id is its position.
#[derive(Default)]
struct Builder {
    ops: Vec<OpDef>,
    routes: Vec<RouteDef>,
    /// Operation ids by their handle in `data`.
    ids: BTreeMap<&'static str, OpId>,
}

impl Builder {
    fn op(&mut self, service: SvcId, name: String, kind: OpKind, own_ms: f64, sigma: f64) -> OpId {
        self.ops.push(OpDef {
            service,
            name,
            kind,
            own_ms,
            median_ms: own_ms,
            sigma,
            error_rate: 0.0,
            hooks: Vec::new(),
            stages: Vec::new(),
        });
        self.ops.len() - 1
    }

    fn name(&mut self, handle: &'static str, op: OpId) {
        assert!(
            self.ids.insert(handle, op).is_none(),
            "duplicate handle {handle}"
        );
    }

    fn step(&self, call: &Call) -> Step {
        let target = *self
            .ids
            .get(call.target)
            .unwrap_or_else(|| panic!("no operation {:?}", call.target));
        Step {
            target,
            prob: call.prob,
            count: call.count,
            on_error: call.on_error,
            when: call.when,
            statement: call.statement,
        }
    }

    fn db(&mut self, d: &DbOp) {
        let kind = OpKind::Db {
            operation: d.operation,
            table: d.table,
        };
        let name = format!("{} {}", d.operation, d.table);
        let id = self.op(service_id(d.service), name, kind, d.median_ms, d.sigma);
        self.ops[id].error_rate = data::DB_ERROR_RATE;
        self.name(d.id, id);
    }

    fn in_process(&mut self, d: &InProcessOp) {
        let name = d.name.to_owned();
        let id = self.op(
            service_id(d.service),
            name,
            OpKind::Internal,
            d.median_ms,
            d.sigma,
        );
        self.name(d.id, id);
    }

    fn external(&mut self, d: &ExternalOp) {
        let kind = OpKind::External {
            method: d.method,
            url: d.url,
        };
        let name = d.method.to_owned();
        let id = self.op(service_id(d.service), name, kind, d.median_ms, d.sigma);
        self.ops[id].error_rate = d.error_rate;
        self.name(d.id, id);
    }

    /// An internal server operation, without its calls (see `server_calls`).
    fn server(&mut self, d: &ServerOp) {
        let kind = OpKind::Server {
            method: d.method,
            route: Some(d.route),
            path: d.path,
        };
        let name = format!("{} {}", d.method, d.route);
        let id = self.op(service_id(d.service), name, kind, d.own_ms, d.sigma);
        self.ops[id].error_rate = d.error_rate;
        self.ops[id].hooks = d.hooks.to_vec();
        self.name(d.id, id);
    }

    /// The calls of an internal server operation, once every callee has its id.
    fn server_calls(&mut self, d: &ServerOp) {
        let stages = d
            .stages
            .iter()
            .map(|stage| stage.iter().map(|call| self.step(call)).collect())
            .collect();
        let id = self.ids[d.id];
        self.ops[id].stages = stages;
    }

    fn route(&mut self, d: &GatewayRoute) {
        let kind = OpKind::Server {
            method: d.method,
            route: Some(d.route),
            path: d.path,
        };
        let name = format!("{} {}", d.method, d.route);
        let id = self.op(GATEWAY, name, kind, data::ROUTE_OWN_MS, data::ROUTE_SIGMA);
        let main = self.step(&data::call(d.forward_to));
        self.ops[id].error_rate = data::ROUTE_ERROR_RATE;
        self.ops[id].stages = match d.access {
            Access::Public => vec![vec![main]],
            _ => vec![vec![self.step(&data::call("session"))], vec![main]],
        };
        if d.access == Access::Admin {
            self.ops[id].hooks.push(Hook::AdminCheck);
        }
        self.routes.push(RouteDef {
            op: id,
            weight: d.weight,
            access: d.access,
        });
    }

    fn catch_all(&mut self, d: &CatchAll) {
        let kind = OpKind::Server {
            method: d.method,
            route: None,
            path: d.path,
        };
        let id = self.op(GATEWAY, d.method.to_owned(), kind, d.own_ms, d.sigma);
        self.ops[id].hooks.push(Hook::Unmatched);
        self.routes.push(RouteDef {
            op: id,
            weight: d.weight,
            access: Access::Unmatched,
        });
    }
}

/// The id of the service named `name` in `data::SERVICES`.
fn service_id(name: &str) -> SvcId {
    data::SERVICES
        .iter()
        .position(|s| s.name == name)
        .unwrap_or_else(|| panic!("no service {name:?}"))
}

impl Topology {
    /// The shop of `data`. Order matters only for determinism; nothing is ever iterated from a hash map.
    pub fn shop() -> Topology {
        let mut b = Builder::default();
        data::DATABASES.iter().for_each(|d| b.db(d));
        data::IN_PROCESS.iter().for_each(|d| b.in_process(d));
        data::EXTERNAL.iter().for_each(|d| b.external(d));
        data::SERVERS.iter().for_each(|d| b.server(d));
        data::SERVERS.iter().for_each(|d| b.server_calls(d));
        data::ROUTES.iter().for_each(|d| b.route(d));
        b.catch_all(&data::CATCH_ALL);
        data::ADMIN_ROUTES.iter().for_each(|d| b.route(d));

        let mut topology = Topology {
            services: data::SERVICES,
            ops: b.ops,
            routes: b.routes,
            route_keys: Vec::new(),
        };
        topology.derive_medians();
        topology.route_keys = (0..topology.routes.len())
            .map(|r| topology.subtree_keys(topology.routes[r].op))
            .collect();
        topology.check_keys();
        topology
    }

    fn derive_medians(&mut self) {
        // A parent is at least as variable as its most variable child: with correlated draws, a
        // child with a wider spread would often outgrow a narrower parent.
        fn median(ops: &mut [OpDef], id: OpId, done: &mut [bool]) -> f64 {
            if done[id] {
                return ops[id].median_ms;
            }
            let stages = ops[id].stages.clone();
            let mut children = 0.0;
            for stage in &stages {
                let mut longest: f64 = 0.0;
                for step in stage {
                    let m = median(ops, step.target, done);
                    ops[id].sigma = ops[id].sigma.max(ops[step.target].sigma);
                    let call = if ops[step.target].is_server() {
                        m / SERVER_SHARE
                    } else {
                        m
                    };
                    longest = longest.max(call * f64::from(step.count.1));
                }
                children += longest;
            }
            ops[id].median_ms = ops[id].own_ms + CHILD_MARGIN * children;
            done[id] = true;
            ops[id].median_ms
        }
        let mut done = vec![false; self.ops.len()];
        for id in 0..self.ops.len() {
            median(&mut self.ops, id, &mut done);
        }
    }

    /// Asserts that every key has one duration distribution: no two operations share a
    /// (service, name), and a client span name in a service always calls the same operation.
    fn check_keys(&self) {
        let mut owners: std::collections::BTreeMap<Key, OpId> = std::collections::BTreeMap::new();
        for (id, op) in self.ops.iter().enumerate() {
            if matches!(op.kind, OpKind::External { .. }) {
                continue;
            }
            let key = self.key(op.service, id);
            assert!(
                owners.insert(key.clone(), id).is_none(),
                "duplicate key {key:?}"
            );
        }
        for op in &self.ops {
            for step in op.stages.iter().flatten() {
                if self.ops[step.target].is_server() {
                    let key = self.key(op.service, step.target);
                    let owner = owners
                        .entry(key.clone())
                        .or_insert(usize::MAX - step.target);
                    assert_eq!(
                        *owner,
                        usize::MAX - step.target,
                        "client key {key:?} is ambiguous"
                    );
                }
            }
        }
    }

    pub fn service_name(&self, service: SvcId) -> &'static str {
        self.services[service].name
    }

    /// The key of a span of `op` emitted by `service` (the callee's own service, or the caller's for
    /// a client span).
    pub fn key(&self, service: SvcId, op: OpId) -> Key {
        (
            self.services[service].name.to_owned(),
            self.ops[op].name.clone(),
        )
    }

    /// The keys a call of `step` from `caller` can produce: the client span, the callee and below.
    pub fn step_keys(&self, caller: SvcId, step: &Step) -> BTreeSet<Key> {
        let target = &self.ops[step.target];
        let mut keys = self.subtree_keys(step.target);
        if target.is_server() {
            keys.insert(self.key(caller, step.target));
        }
        keys
    }

    /// The keys a span of `op` and its descendants can produce.
    pub fn subtree_keys(&self, op: OpId) -> BTreeSet<Key> {
        let mut keys = BTreeSet::new();
        keys.insert(self.key(self.ops[op].service, op));
        for step in self.ops[op].stages.iter().flatten() {
            keys.extend(self.step_keys(self.ops[op].service, step));
        }
        keys
    }

    /// All keys of the routes whose traces can contain any of `keys`.
    pub fn keys_of_routes_touching(&self, keys: &BTreeSet<Key>) -> BTreeSet<Key> {
        let mut out = keys.clone();
        for r in 0..self.routes.len() {
            if self.route_keys[r].iter().any(|k| keys.contains(k)) {
                out.extend(self.route_keys[r].iter().cloned());
            }
        }
        out
    }

    /// Log-normal parameters (median ms, sigma) of a span of `op`: the operation's own for server,
    /// database, internal and external spans; for the client span of an HTTP call, the callee's
    /// stretched by the network share.
    pub fn ln_params(&self, op: OpId, client: bool) -> (f64, f64) {
        let def = &self.ops[op];
        if client {
            (def.median_ms / SERVER_SHARE, def.sigma)
        } else {
            (def.median_ms, def.sigma)
        }
    }

    pub fn gateway(&self) -> SvcId {
        GATEWAY
    }

    /// Server operations of non-gateway services.
    pub fn internal_servers(&self) -> Vec<OpId> {
        (0..self.ops.len())
            .filter(|&o| self.ops[o].is_server() && self.ops[o].service != self.gateway())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_cover_children_and_stay_in_range() {
        let t = Topology::shop();
        for op in &t.ops {
            assert!(op.median_ms >= op.own_ms);
            assert!((0.15..=0.6).contains(&op.sigma), "{}", op.name);
            assert!(
                (2.0..=200.0).contains(&op.median_ms),
                "{} {}",
                op.name,
                op.median_ms
            );
        }
    }

    #[test]
    fn every_call_happens_in_at_least_ten_percent_of_its_roots_traces() {
        fn walk(t: &Topology, op: OpId, p: f64, route: &str) {
            for step in t.ops[op].stages.iter().flatten() {
                // Logged-in users make at least half of any route's traffic.
                let when = if step.when == When::LoggedIn {
                    0.5
                } else {
                    1.0
                };
                let q = p * step.prob * when;
                assert!(q >= 0.1, "{} under {route}: {q}", t.ops[step.target].name);
                walk(t, step.target, q, route);
            }
        }
        let t = Topology::shop();
        for r in &t.routes {
            walk(&t, r.op, 1.0, &t.ops[r.op].name);
        }
    }

    #[test]
    fn normal_parents_have_at_most_ten_children() {
        let t = Topology::shop();
        for op in &t.ops {
            let max: u32 = op.stages.iter().flatten().map(|s| s.count.1).sum();
            assert!(max <= 10, "{}", op.name);
        }
    }
}
