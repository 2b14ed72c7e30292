//! Building one trace: the span tree of a request, with durations, statuses and the values its paths
//! and statements carry. Also the edits injections make to a built trace (a delay inserted at a point
//! in time, extra calls appended under a span).
//!
//! Durations: a span's *total* duration is drawn first from its key's log-normal (`topology.rs`), then
//! its children are drawn from theirs and laid out inside it: stages one after the other, the steps of
//! a stage in parallel, own time spread in the gaps. A child's z is correlated with its parent's
//! (ρ = 0.95: a slow request is slow throughout) yet standard normal, so every key stays exactly
//! log-normal. When the children's critical path would still take more than 97 % of the parent, all
//! of them are scaled down to fit (counted in [`GenStats::scaled`], about 0.5 % of parents). So a
//! span's duration is its key's log-normal draw unless it was scaled (then it is shorter), and its
//! true z is `(ln(duration) − ln(median)) / sigma` of that log-normal, computed from the duration as
//! written: what the labels file's tails record. The duration is never a sum of log-normal terms,
//! except for spans an injection lengthened, which get no tail line.

use super::topology::{
    Hook, Key, OnError, OpId, OpKind, RouteId, SERVER_SHARE, Step, SvcId, Topology, When,
};
use rand::Rng;
use rand::rngs::StdRng;
use rand_distr::StandardNormal;
use std::collections::BTreeSet;

/// Children may take at most this share of a parent's duration; the rest is the parent's own time.
const MAX_CHILD_SHARE: f64 = 0.97;
/// Correlation of a child's z with its parent's: a slow request is slow throughout. Every span's
/// marginal stays exactly its key's log-normal (`z_child = ρ·z_parent + √(1−ρ²)·ε` is standard
/// normal), and children rarely need scaling to fit.
const PARENT_CHILD_CORRELATION: f64 = 0.95;
const NANOS_PER_MS: f64 = 1e6;

/// What a span stands for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Role {
    /// The server side of an HTTP operation (the root, or the callee of a call).
    Server,
    /// The caller's side of an HTTP call to a server operation.
    Client,
    Db,
    Internal,
    /// A call to a system outside the traces.
    External,
}

#[derive(Clone, Debug)]
pub struct SpanRec {
    pub span_id: [u8; 8],
    pub parent: Option<usize>,
    pub op: OpId,
    pub role: Role,
    /// The emitting service (the caller's for a client span).
    pub service: SvcId,
    /// For server spans the caller's service, for client spans the callee's.
    pub peer: Option<SvcId>,
    pub start: u64,
    pub dur: u64,
    /// HTTP status code (HTTP spans only; `None` when no answer came).
    pub code: Option<u16>,
    /// Status ERROR with this message.
    pub error: Option<&'static str>,
    /// The concrete path (HTTP) or statement (database).
    pub text: String,
    /// The duration was changed by an injection: its z is not the generator's.
    pub modified: bool,
    /// The span was added by an injection.
    pub injected: bool,
    /// The label of the injected fault that caused the status, if one did.
    pub fault: Option<usize>,
}

impl SpanRec {
    pub fn end(&self) -> u64 {
        self.start + self.dur
    }
}

/// The caller of a root request, as the gateway sees it.
#[derive(Clone, Debug)]
pub struct Caller {
    pub ip: String,
    pub user: Option<String>,
    pub user_agent: &'static str,
}

/// Per-request values used in paths and statements, and what the request provokes.
#[derive(Clone, Debug, Default)]
pub struct Ctx {
    pub product: u32,
    pub cart: u32,
    pub order: u32,
    pub item: u32,
    pub category: u32,
    pub user: Option<String>,
    pub session: String,
    pub email: String,
    /// The root's concrete path, when the request is not a normal one for its route.
    pub path_override: Option<String>,
    pub session_expired: bool,
    pub bad_password: bool,
    pub not_found: bool,
    pub bad_request: bool,
    pub forbidden: bool,
    /// The answer to a path no route matches (404 unless set).
    pub unmatched_status: Option<u16>,
}

impl Ctx {
    pub fn random(rng: &mut StdRng, user: Option<String>) -> Ctx {
        let email = match &user {
            Some(u) => format!("{u}@mail.example"),
            None => format!("guest{}@mail.example", rng.random_range(1000..99_999)),
        };
        Ctx {
            product: rng.random_range(1..=5_000),
            cart: rng.random_range(100_000..999_999),
            order: rng.random_range(1_000_000..9_999_999),
            item: rng.random_range(1..=999_999),
            category: rng.random_range(1..=60),
            user,
            session: hex_string(rng, 16),
            email,
            ..Ctx::default()
        }
    }

    /// New literals for one call of an N+1 loop.
    pub fn vary(&mut self, rng: &mut StdRng) {
        self.product = rng.random_range(1..=5_000);
        self.item = rng.random_range(1..=999_999);
    }
}

/// A request reaching the gateway.
#[derive(Clone, Debug)]
pub struct Request {
    pub start: u64,
    pub route: RouteId,
    pub caller: Caller,
    pub ctx: Ctx,
    /// The label this request belongs to (attack traffic).
    pub label: Option<usize>,
}

/// Faults active when a trace starts.
#[derive(Default, Debug, Clone)]
pub struct Faults {
    /// Operations failing with this probability, and the label.
    pub failing: Vec<(OpId, f64, usize)>,
    /// Services that emit nothing and refuse calls, and the label.
    pub silent: Vec<(SvcId, usize)>,
}

impl Faults {
    fn failure(&self, op: OpId) -> Option<(f64, usize)> {
        self.failing.iter().find(|f| f.0 == op).map(|f| (f.1, f.2))
    }
    fn silence(&self, service: SvcId) -> Option<usize> {
        self.silent.iter().find(|s| s.0 == service).map(|s| s.1)
    }
}

/// Counters for the summary.
#[derive(Default, Debug, Clone)]
pub struct GenStats {
    pub parents: u64,
    /// Parents whose children had to be scaled down to fit.
    pub scaled: u64,
}

pub struct Trace {
    pub trace_id: [u8; 16],
    pub route: RouteId,
    pub caller: Caller,
    pub spans: Vec<SpanRec>,
    /// (label, key) of calls skipped because of an injected fault.
    pub skipped: BTreeSet<(usize, Key)>,
    /// Labels this trace belongs to.
    pub labels: Vec<usize>,
}

#[derive(Clone, Copy, Debug)]
pub struct Outcome {
    pub code: u16,
    /// The label of the injected fault behind this outcome.
    pub fault: Option<usize>,
}

impl Outcome {
    fn ok() -> Self {
        Outcome {
            code: 200,
            fault: None,
        }
    }
    pub fn is_error(&self) -> bool {
        self.code >= 500
    }
}

/// One planned call instance: where it starts and how long its (client) span lasts.
struct Planned {
    step: Step,
    start: u64,
    dur: u64,
    /// The z the duration was drawn with (before any scaling).
    z: f64,
}

/// Builds the spans of one trace; also used to extend a built trace.
pub struct Builder<'a> {
    pub topo: &'a Topology,
    pub rng: &'a mut StdRng,
    pub faults: &'a Faults,
    pub ctx: Ctx,
    pub stats: &'a mut GenStats,
}

pub fn hex_string(rng: &mut StdRng, bytes: usize) -> String {
    let raw: Vec<u8> = (0..bytes).map(|_| rng.random()).collect();
    hex::encode(raw)
}

pub fn span_id(rng: &mut StdRng) -> [u8; 8] {
    loop {
        let id: [u8; 8] = rng.random();
        if id != [0; 8] {
            return id;
        }
    }
}

pub fn trace_id(rng: &mut StdRng) -> [u8; 16] {
    loop {
        let id: [u8; 16] = rng.random();
        if id != [0; 16] {
            return id;
        }
    }
}

/// A draw of `LN(ln median, sigma)` in nanoseconds whose z is correlated with `parent_z` (`None`:
/// independent); returns (nanoseconds, z).
fn draw_nanos(
    rng: &mut StdRng,
    (median_ms, sigma): (f64, f64),
    parent_z: Option<f64>,
) -> (f64, f64) {
    let e: f64 = rng.sample(StandardNormal);
    let z = match parent_z {
        Some(p) => {
            let rho = PARENT_CHILD_CORRELATION;
            rho * p + (1.0 - rho * rho).sqrt() * e
        }
        None => e,
    };
    (median_ms * (sigma * z).exp() * NANOS_PER_MS, z)
}

const JUNK_PATHS: &[&str] = &[
    "/favicon.ico",
    "/apple-touch-icon.png",
    "/apple-touch-icon-precomposed.png",
    "/api/v0/products",
    "/products/winter-sale-2024",
    "/.well-known/assetlinks.json",
];

impl Builder<'_> {
    /// Fills `{name}` placeholders of a path or statement template from the context.
    pub fn fill(&mut self, template: &str) -> String {
        let mut out = String::with_capacity(template.len() + 16);
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let Some(close) = rest[open..].find('}') else {
                break;
            };
            let name = &rest[open + 1..open + close];
            rest = &rest[open + close + 1..];
            let ctx = &self.ctx;
            let value = match name {
                "product" => ctx.product.to_string(),
                "sku" => format!("SKU-{:05}", ctx.product),
                "cart" => ctx.cart.to_string(),
                "order" => ctx.order.to_string(),
                "item" => ctx.item.to_string(),
                "category" => ctx.category.to_string(),
                "user" => ctx.user.clone().unwrap_or_else(|| "u-0".to_owned()),
                "session" => ctx.session.clone(),
                "email" => ctx.email.clone(),
                "segment" => ["new", "returning", "loyal", "deal-seeker"]
                    [self.rng.random_range(0..4)]
                .to_owned(),
                "offset" => (24 * self.rng.random_range(0..5)).to_string(),
                "qty" => self.rng.random_range(1..=4).to_string(),
                "price" => self.rng.random_range(199..=49_999).to_string(),
                "hex" => hex_string(self.rng, 8),
                "ids" => {
                    let n = self.rng.random_range(2..=8);
                    let ids: Vec<String> = (0..n)
                        .map(|_| self.rng.random_range(1..=5_000).to_string())
                        .collect();
                    ids.join(", ")
                }
                "skus" => {
                    let n = self.rng.random_range(2..=8);
                    let ids: Vec<String> = (0..n)
                        .map(|_| format!("'SKU-{:05}'", self.rng.random_range(1..=5_000)))
                        .collect();
                    ids.join(", ")
                }
                "junk" => match &ctx.path_override {
                    Some(p) => p.clone(),
                    None => JUNK_PATHS[self.rng.random_range(0..JUNK_PATHS.len())].to_owned(),
                },
                other => panic!("unknown placeholder {other}"),
            };
            out.push_str(&value);
        }
        out.push_str(rest);
        out
    }

    /// Builds the whole trace of a request: the gateway's root span and everything below it.
    pub fn build(&mut self, request: &Request) -> Trace {
        self.ctx = request.ctx.clone();
        let mut trace = Trace {
            trace_id: trace_id(self.rng),
            route: request.route,
            caller: request.caller.clone(),
            spans: Vec::new(),
            skipped: BTreeSet::new(),
            labels: request.label.into_iter().collect(),
        };
        let op = self.topo.routes[request.route].op;
        let (dur, z) = draw_nanos(self.rng, self.topo.ln_params(op, false), None);
        let dur = dur.max(1_000.0) as u64;
        let path = match &self.ctx.path_override {
            Some(p) => p.clone(),
            None => {
                let OpKind::Server { path, .. } = self.topo.ops[op].kind else {
                    unreachable!("routes are server operations")
                };
                self.fill(path)
            }
        };
        self.server(&mut trace, op, None, None, (request.start, dur, z), path);
        trace
    }

    fn push(&self, trace: &mut Trace, span: SpanRec) -> usize {
        trace.spans.push(span);
        trace.spans.len() - 1
    }

    #[allow(clippy::too_many_arguments)]
    fn server(
        &mut self,
        trace: &mut Trace,
        op: OpId,
        parent: Option<usize>,
        caller: Option<SvcId>,
        (start, dur, z): (u64, u64, f64),
        path: String,
    ) -> Outcome {
        let topo = self.topo;
        let def = &topo.ops[op];
        let id = span_id(self.rng);
        let idx = self.push(
            trace,
            SpanRec {
                span_id: id,
                parent,
                op,
                role: Role::Server,
                service: def.service,
                peer: caller,
                start,
                dur,
                code: None,
                error: None,
                text: path,
                modified: false,
                injected: false,
                fault: None,
            },
        );
        let finish = |trace: &mut Trace, outcome: Outcome| {
            let span = &mut trace.spans[idx];
            span.code = Some(outcome.code);
            span.fault = outcome.fault;
            if outcome.is_error() {
                span.error = Some(if outcome.code == 500 {
                    "internal server error"
                } else {
                    "upstream request failed"
                });
            }
            outcome
        };
        if def.has_hook(Hook::BadRequest) && self.ctx.bad_request {
            return finish(
                trace,
                Outcome {
                    code: 400,
                    fault: None,
                },
            );
        }
        if def.has_hook(Hook::Unmatched) {
            let code = self.ctx.unmatched_status.unwrap_or(404);
            return finish(trace, Outcome { code, fault: None });
        }
        // Some(fault label) when the operation fails by itself.
        let own_failure = match self.faults.failure(op) {
            Some((p, label)) if self.rng.random_bool(p) => Some(Some(label)),
            _ if def.error_rate > 0.0 && self.rng.random_bool(def.error_rate) => Some(None),
            _ => None,
        };
        let plan = self.plan(op, start, dur, z);
        let mut outcome = Outcome::ok();
        let mut stopped_at = None;
        for (si, stage) in plan.iter().enumerate() {
            for planned in stage {
                let child = self.call(trace, idx, def.service, planned);
                if planned.step.on_error == OnError::Propagate
                    && child.code >= 400
                    && outcome.code < 400
                {
                    outcome = Outcome {
                        code: if child.is_error() { 502 } else { child.code },
                        fault: child.fault,
                    };
                }
            }
            if outcome.code < 400 {
                let ctx = &self.ctx;
                let hook = def.hooks.iter().find_map(|h| match h {
                    Hook::Session if si == 0 && ctx.session_expired => Some(401),
                    Hook::Login if si == 1 && ctx.bad_password => Some(401),
                    Hook::AdminCheck if si == 0 && ctx.forbidden => Some(403),
                    _ => None,
                });
                let not_found = si == 0
                    && def
                        .not_found_prob()
                        .is_some_and(|p| self.ctx.not_found || self.rng.random_bool(p));
                if let Some(code) = hook.or(not_found.then_some(404)) {
                    // An attack's request (a burst of bad passwords) stops here because of the
                    // attack: what it no longer calls is the attack's doing.
                    let fault = hook.and(trace.labels.first().copied());
                    outcome = Outcome { code, fault };
                }
            }
            if outcome.code >= 400 {
                stopped_at = Some(si);
                break;
            }
        }
        if let (Some(si), Some(label)) = (stopped_at, outcome.fault) {
            for stage in &plan[si + 1..] {
                for planned in stage {
                    let keys = topo.step_keys(def.service, &planned.step);
                    trace.skipped.extend(keys.into_iter().map(|k| (label, k)));
                }
            }
        }
        if let Some(fault) = own_failure
            && outcome.code < 400
        {
            outcome = Outcome { code: 500, fault };
        }
        finish(trace, outcome)
    }

    /// Decides which calls a span of `op` makes and lays them out inside `[start, start + dur)`.
    fn plan(&mut self, op: OpId, start: u64, dur: u64, parent_z: f64) -> Vec<Vec<Planned>> {
        let topo = self.topo;
        let def = &topo.ops[op];
        // (step, (duration, z) of its sequential calls) per stage
        type Draws = Vec<(Step, Vec<(f64, f64)>)>;
        let mut stages: Vec<Draws> = Vec::new();
        for stage in &def.stages {
            let mut steps = Vec::new();
            for step in stage {
                if step.when == When::LoggedIn && self.ctx.user.is_none() {
                    continue;
                }
                if step.prob < 1.0 && !self.rng.random_bool(step.prob) {
                    continue;
                }
                let n = if step.count.0 == step.count.1 {
                    step.count.0
                } else {
                    self.rng.random_range(step.count.0..=step.count.1)
                };
                let client = topo.ops[step.target].is_server();
                let params = topo.ln_params(step.target, client);
                let durations = (0..n)
                    .map(|_| draw_nanos(self.rng, params, Some(parent_z)))
                    .collect();
                steps.push((step.clone(), durations));
            }
            if !steps.is_empty() {
                stages.push(steps);
            }
        }
        if stages.is_empty() {
            return Vec::new();
        }
        self.stats.parents += 1;
        let lengths: Vec<f64> = stages
            .iter()
            .map(|s| {
                s.iter()
                    .map(|(_, d)| d.iter().map(|(d, _)| d).sum::<f64>())
                    .fold(0.0, f64::max)
            })
            .collect();
        let critical: f64 = lengths.iter().sum();
        let total = dur as f64;
        let scale = if critical > MAX_CHILD_SHARE * total {
            self.stats.scaled += 1;
            MAX_CHILD_SHARE * total / critical
        } else {
            1.0
        };
        let own = total - critical * scale;
        let weights: Vec<f64> = (0..=stages.len())
            .map(|_| self.rng.random_range(0.3..1.0))
            .collect();
        let weight_sum: f64 = weights.iter().sum();
        let mut t = own * weights[0] / weight_sum;
        let mut out = Vec::with_capacity(stages.len());
        for (si, stage) in stages.into_iter().enumerate() {
            let mut planned = Vec::new();
            for (step, durations) in stage {
                let mut tt = t;
                for (d, z) in durations {
                    let d = d * scale;
                    planned.push(Planned {
                        step: step.clone(),
                        start: start + tt as u64,
                        dur: (d as u64).max(1_000),
                        z,
                    });
                    tt += d;
                }
            }
            t += lengths[si] * scale + own * weights[si + 1] / weight_sum;
            out.push(planned);
        }
        out
    }

    /// Makes one planned call from the span `parent` of service `caller`.
    fn call(
        &mut self,
        trace: &mut Trace,
        parent: usize,
        caller: SvcId,
        planned: &Planned,
    ) -> Outcome {
        let topo = self.topo;
        let target = &topo.ops[planned.step.target];
        let mut span = SpanRec {
            span_id: span_id(self.rng),
            parent: Some(parent),
            op: planned.step.target,
            role: Role::Internal,
            service: caller,
            peer: None,
            start: planned.start,
            dur: planned.dur,
            code: None,
            error: None,
            text: String::new(),
            modified: false,
            injected: false,
            fault: None,
        };
        match &target.kind {
            OpKind::Server { path, .. } => {
                span.role = Role::Client;
                span.peer = Some(target.service);
                span.text = self.fill(path);
                if let Some(label) = self.faults.silence(target.service) {
                    // The callee is gone: the call is refused at once.
                    span.dur = self.rng.random_range(1_000_000..5_000_000).min(planned.dur);
                    span.modified = true;
                    span.error = Some("connection refused");
                    span.fault = Some(label);
                    let keys = topo.subtree_keys(planned.step.target);
                    trace.skipped.extend(keys.into_iter().map(|k| (label, k)));
                    self.push(trace, span);
                    return Outcome {
                        code: 503,
                        fault: Some(label),
                    };
                }
                let path = span.text.clone();
                let client_idx = self.push(trace, span);
                let server_dur = (planned.dur as f64 * SERVER_SHARE) as u64;
                let network = (planned.dur - server_dur) / 2;
                let outcome = self.server(
                    trace,
                    planned.step.target,
                    Some(client_idx),
                    Some(caller),
                    (planned.start + network, server_dur, planned.z),
                    path,
                );
                let client = &mut trace.spans[client_idx];
                client.code = Some(outcome.code);
                client.fault = outcome.fault;
                if outcome.is_error() {
                    client.error = Some("HTTP 5xx from upstream");
                }
                outcome
            }
            OpKind::Db { .. } => {
                span.role = Role::Db;
                span.text = self.fill(planned.step.statement.unwrap_or(""));
                let failed = self.rng.random_bool(target.error_rate);
                if failed {
                    span.error = Some("could not serialize access due to concurrent update");
                }
                self.push(trace, span);
                Outcome {
                    code: if failed { 500 } else { 200 },
                    fault: None,
                }
            }
            OpKind::Internal => {
                self.push(trace, span);
                Outcome::ok()
            }
            OpKind::External { url, .. } => {
                span.role = Role::External;
                span.text = (*url).to_owned();
                let failed = self.rng.random_bool(target.error_rate);
                span.code = Some(if failed { 502 } else { 200 });
                if failed {
                    span.error = Some("HTTP 502 from payment provider");
                }
                self.push(trace, span);
                Outcome {
                    code: if failed { 502 } else { 200 },
                    fault: None,
                }
            }
        }
    }

    /// Appends `n` calls of `step` under the span `parent`, after its last child, sequentially or in
    /// parallel batches of `batch`, delaying the rest of the trace by the time they take. New spans
    /// are marked injected; returns their index range start.
    pub fn append_calls(
        &mut self,
        trace: &mut Trace,
        parent: usize,
        steps: &[Step],
        batch: usize,
        vary: bool,
    ) -> usize {
        let topo = self.topo;
        let p = &trace.spans[parent];
        let last_child_end = trace
            .spans
            .iter()
            .filter(|s| s.parent == Some(parent))
            .map(SpanRec::end)
            .max()
            .unwrap_or(p.start + p.dur / 10);
        let at = last_child_end.min(p.end());
        let mut planned = Vec::new();
        let mut t = 0.0;
        for chunk in steps.chunks(batch.max(1)) {
            let mut longest: f64 = 0.0;
            for step in chunk {
                let client = topo.ops[step.target].is_server();
                let (d, z) = draw_nanos(self.rng, topo.ln_params(step.target, client), None);
                planned.push(Planned {
                    step: step.clone(),
                    start: at + t as u64,
                    dur: (d as u64).max(1_000),
                    z,
                });
                longest = longest.max(d);
            }
            let gap = self.rng.random_range(50_000.0..300_000.0);
            t += longest + gap;
        }
        insert_delay(trace, parent, at, t as u64);
        let first = trace.spans.len();
        let caller = trace.spans[parent].service;
        for call in &planned {
            if vary {
                self.ctx.vary(self.rng);
            }
            self.call(trace, parent, caller, call);
        }
        for span in &mut trace.spans[first..] {
            span.injected = true;
        }
        first
    }
}

/// The chain from `idx` up to the root, `idx` first.
pub fn ancestors_and_self(spans: &[SpanRec], mut idx: usize) -> Vec<usize> {
    let mut chain = vec![idx];
    while let Some(p) = spans[idx].parent {
        chain.push(p);
        idx = p;
    }
    chain
}

/// Inserts `delta` nanoseconds of waiting into the span `idx` at time `at` (within it): `idx` and its
/// ancestors grow by `delta`; every span that starts at or after `at` under one of them moves later by
/// `delta`, with its subtree. Spans already running at `at` in other branches are left as they are
/// (they were concurrent). The trees stay well nested. Grown spans are marked modified.
pub fn insert_delay(trace: &mut Trace, idx: usize, at: u64, delta: u64) {
    if delta == 0 {
        return;
    }
    let chain = ancestors_and_self(&trace.spans, idx);
    let mut in_chain = vec![false; trace.spans.len()];
    for &c in &chain {
        in_chain[c] = true;
    }
    // Spans are stored parents first, so one pass in index order sees every parent before its children.
    let mut shifted = vec![false; trace.spans.len()];
    for j in 0..trace.spans.len() {
        if in_chain[j] {
            trace.spans[j].dur += delta;
            trace.spans[j].modified = true;
            continue;
        }
        let Some(p) = trace.spans[j].parent else {
            continue;
        };
        let shift = if in_chain[p] {
            trace.spans[j].start >= at
        } else {
            shifted[p]
        };
        if shift {
            trace.spans[j].start += delta;
            shifted[j] = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn build(seed: u64, route: RouteId) -> Trace {
        let topo = Topology::shop();
        let mut rng = StdRng::seed_from_u64(seed);
        let faults = Faults::default();
        let mut stats = GenStats::default();
        let ctx = Ctx::random(&mut rng, Some("u-1".into()));
        let mut b = Builder {
            topo: &topo,
            rng: &mut rng,
            faults: &faults,
            ctx: Ctx::default(),
            stats: &mut stats,
        };
        let caller = Caller {
            ip: "198.51.100.7".into(),
            user: Some("u-1".into()),
            user_agent: "test",
        };
        b.build(&Request {
            start: 1_000_000_000,
            route,
            caller,
            ctx,
            label: None,
        })
    }

    fn assert_nested(trace: &Trace) {
        for s in &trace.spans {
            if let Some(p) = s.parent {
                let p = &trace.spans[p];
                assert!(
                    s.start >= p.start && s.end() <= p.end(),
                    "{s:?} outside {p:?}"
                );
            }
        }
    }

    #[test]
    fn children_fit_inside_parents_and_delays_keep_nesting() {
        for seed in 0..50 {
            let mut trace = build(seed, (seed % 14) as usize);
            assert_nested(&trace);
            let n = trace.spans.len();
            let idx = n / 2;
            let at = trace.spans[idx].end();
            insert_delay(&mut trace, idx, at, 50_000_000);
            assert_nested(&trace);
            assert!(trace.spans[0].modified);
        }
    }
}
