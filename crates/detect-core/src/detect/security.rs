//! Security detector (SECURITY). It looks at *entry* spans only: root spans of kind SERVER (or root
//! spans with an HTTP method), whose `client.address` is the real caller. Internal hops carry the
//! addresses of other services and would make every gateway look like a flooding client.
//!
//! Per client and window (rules in docs/DETECTION.md, counts from `security.*` config):
//! - `auth_failure_burst`: ≥ `auth_failure_min` answers 401/403, making ≥ `auth_failure_min_ratio`
//!   of the client's requests. Score: failures / `auth_failure_min`.
//! - `endpoint_enumeration`: ≥ `enumeration_min_distinct_endpoints` distinct endpoints (the route
//!   template, or the path where no route matched), or
//!   ≥ `enumeration_min_not_found` 404s. Score: the larger of the two counts over its minimum.
//! - `request_flood`: ≥ `flood_min_requests` requests and ≥ `flood_min_ratio_to_median` × the median
//!   active client's count. Score: requests / `flood_min_requests`.
//! - `injection_attempt`, `path_traversal`: any request whose path matches an attack pattern
//!   (see `patterns`). Score: 2.5 × matching requests.
//!
//! Per span: `sensitive_route_new_principal`: a route under a `sensitive_route_prefixes` entry reached
//! by a principal (`enduser.id`, else the client address) not seen on that route during the first
//! `sensitive_learning_windows` windows, nor since. Score: 3 (MEDIUM by default).
//!
//! Descriptions name the client, the pattern and the counts; never a path, query string or token.

mod patterns;

use crate::anomaly::{Anomaly, Cause, Subtype, Window};
use crate::config::DetectionConfig;
use crate::detect::window_counts::push_example;
use crate::span::{Span, SpanKind, TraceId};
use hashbrown::{HashMap, HashSet};
use std::collections::BTreeMap;
use std::hash::BuildHasher;

/// Distinct endpoints remembered per client and window; enough to cross any sane threshold.
const MAX_ENDPOINTS_PER_CLIENT: usize = 4_096;
/// Principals remembered per sensitive route.
const MAX_PRINCIPALS_PER_ROUTE: usize = 10_000;
/// Sensitive routes remembered.
const MAX_SENSITIVE_ROUTES: usize = 10_000;
const INJECTION_SCORE_PER_REQUEST: f64 = 2.5;
const NEW_PRINCIPAL_SCORE: f64 = 3.0;

#[derive(Default)]
struct ClientActivity {
    service: String,
    requests: u64,
    auth_failures: u64,
    not_found: u64,
    endpoints: HashSet<u64>,
    auth_examples: Vec<TraceId>,
    enumeration_examples: Vec<TraceId>,
    examples: Vec<TraceId>,
    /// (subtype, pattern name) → (requests, examples)
    attacks: BTreeMap<(Subtype, &'static str), (u64, Vec<TraceId>)>,
}

#[derive(Default)]
struct SecurityWindow {
    clients: HashMap<String, ClientActivity>,
    untracked_requests: u64,
}

pub struct SecurityDetector {
    windows: BTreeMap<u64, SecurityWindow>,
    principals: HashMap<Box<str>, HashSet<Box<str>>>,
    first_window: Option<u64>,
    path_hasher: hashbrown::DefaultHashBuilder,
}

impl SecurityDetector {
    /// Principals seen on each sensitive route, sorted, and the first window (for [`crate::learned`]).
    pub(crate) fn principals(&self) -> (Vec<(String, Vec<String>)>, Option<u64>) {
        let mut routes: Vec<(String, Vec<String>)> = self
            .principals
            .iter()
            .map(|(route, known)| {
                let mut names: Vec<String> = known.iter().map(|p| p.to_string()).collect();
                names.sort_unstable();
                (route.to_string(), names)
            })
            .collect();
        routes.sort_unstable();
        (routes, self.first_window)
    }

    pub(crate) fn restore(
        &mut self,
        routes: Vec<(String, Vec<String>)>,
        first_window: Option<u64>,
    ) {
        self.principals = routes
            .into_iter()
            .map(|(route, names)| (route.into(), names.into_iter().map(Into::into).collect()))
            .collect();
        self.first_window = first_window;
    }

    pub fn new() -> Self {
        SecurityDetector {
            windows: BTreeMap::new(),
            principals: HashMap::new(),
            first_window: None,
            path_hasher: hashbrown::DefaultHashBuilder::default(),
        }
    }

    /// Whether the span is a request from outside: a root SERVER span, or a root with an HTTP method.
    pub fn is_entry(span: &Span) -> bool {
        span.is_root() && (span.kind == SpanKind::Server || span.attributes.http_method.is_some())
    }

    pub fn observe(
        &mut self,
        window_index: u64,
        span: &Span,
        config: &DetectionConfig,
        out: &mut Vec<Anomaly>,
    ) {
        if !Self::is_entry(span) {
            return;
        }
        let first_window = *self.first_window.get_or_insert(window_index);
        self.check_sensitive_route(window_index, first_window, span, config, out);
        let Some(client) = span.attributes.client_address.as_deref() else {
            return;
        };
        let window = self.windows.entry(window_index).or_default();
        let tracked = window.clients.len() < config.security.max_clients_per_window as usize;
        if !tracked && !window.clients.contains_key(client) {
            window.untracked_requests += 1;
            return;
        }
        let activity = window
            .clients
            .entry_ref(client)
            .or_insert_with(|| ClientActivity {
                service: span.service.clone(),
                ..ClientActivity::default()
            });
        activity.requests += 1;
        push_example(&mut activity.examples, span.trace_id);
        match span.attributes.http_status_code {
            Some(401 | 403) => {
                activity.auth_failures += 1;
                push_example(&mut activity.auth_examples, span.trace_id);
            }
            Some(404) => {
                activity.not_found += 1;
                push_example(&mut activity.enumeration_examples, span.trace_id);
            }
            _ => {}
        }
        if let Some(path) = span.attributes.url_path.as_deref() {
            if activity.endpoints.len() < MAX_ENDPOINTS_PER_CLIENT {
                // An endpoint is the route template; a path only where no route matched, so that
                // /items/1 and /items/2 are one endpoint and probes of unknown paths are many.
                let endpoint = span
                    .attributes
                    .http_route
                    .as_deref()
                    .or(span.attributes.path_only())
                    .unwrap_or(path);
                activity
                    .endpoints
                    .insert(self.path_hasher.hash_one(endpoint));
            }
            if let Some((subtype, pattern)) = patterns::find(path) {
                let entry = activity.attacks.entry((subtype, pattern)).or_default();
                entry.0 += 1;
                push_example(&mut entry.1, span.trace_id);
            }
        }
    }

    fn check_sensitive_route(
        &mut self,
        window_index: u64,
        first_window: u64,
        span: &Span,
        config: &DetectionConfig,
        out: &mut Vec<Anomaly>,
    ) {
        let attrs = &span.attributes;
        let Some(route) = attrs.http_route.as_deref().or(attrs.path_only()) else {
            return;
        };
        let sensitive = config
            .security
            .sensitive_route_prefixes
            .iter()
            .any(|prefix| {
                route
                    .strip_prefix(prefix.as_str())
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
            });
        if !sensitive {
            return;
        }
        let Some(principal) = attrs
            .enduser_id
            .as_deref()
            .or(attrs.client_address.as_deref())
        else {
            return;
        };
        if self.principals.len() >= MAX_SENSITIVE_ROUTES && !self.principals.contains_key(route) {
            return;
        }
        if !self.principals.contains_key(route) {
            self.principals.insert(route.into(), HashSet::new());
        }
        let Some(known) = self.principals.get_mut(route) else {
            return;
        };
        if known.contains(principal) {
            return;
        }
        if known.len() < MAX_PRINCIPALS_PER_ROUTE {
            known.insert(principal.into());
        }
        let learning =
            window_index < first_window + u64::from(config.security.sensitive_learning_windows);
        if learning {
            return;
        }
        let who = if attrs.enduser_id.is_some() {
            "user"
        } else {
            "client"
        };
        out.push(Anomaly {
            cause: Cause::Itself,
            subtype: Subtype::SensitiveRouteNewPrincipal,
            severity: config.severity_cutoffs.security.grade(NEW_PRINCIPAL_SCORE),
            service: span.service.clone(),
            operation: Some(span.operation.clone()),
            client: attrs.client_address.clone(),
            peer_service: None,
            trace_id: Some(span.trace_id),
            span_id: Some(span.span_id),
            observed: 1.0,
            expected: 0.0,
            spread: 0.0,
            score: NEW_PRINCIPAL_SCORE,
            threshold: 1.0,
            unit: "requests",
            window: Window { start: span.start, end: span.end() },
            detected_at: span.end(),
            examples: vec![span.trace_id],
            description: format!(
                "{who} {principal} reached the sensitive route {route} on {svc} for the first time; \
                 {n} other principals use it",
                svc = span.service,
                n = known.len() - 1,
            ),
        });
    }

    pub fn close(
        &mut self,
        window_index: u64,
        window: Window,
        config: &DetectionConfig,
        out: &mut Vec<Anomaly>,
    ) {
        let Some(state) = self.windows.remove(&window_index) else {
            return;
        };
        let s = &config.security;
        let mut counts: Vec<u64> = state.clients.values().map(|a| a.requests).collect();
        let median = if counts.is_empty() {
            0
        } else {
            let mid = counts.len() / 2;
            *counts.select_nth_unstable(mid).1
        };
        let mut found = Vec::new();
        for (client, a) in &state.clients {
            let anomaly = |subtype,
                           score: f64,
                           observed: f64,
                           expected: f64,
                           threshold: f64,
                           examples: &Vec<TraceId>,
                           description: String| Anomaly {
                cause: Cause::Itself,
                subtype,
                severity: config.severity_cutoffs.security.grade(score),
                service: a.service.clone(),
                operation: None,
                client: Some(client.to_string()),
                peer_service: None,
                trace_id: examples.first().copied(),
                span_id: None,
                observed,
                expected,
                spread: 0.0,
                score,
                threshold,
                unit: "requests",
                window,
                detected_at: window.end,
                examples: examples.clone(),
                description,
            };
            let auth_share = a.auth_failures as f64 / a.requests.max(1) as f64;
            if a.auth_failures >= u64::from(s.auth_failure_min)
                && auth_share >= s.auth_failure_min_ratio
            {
                found.push(anomaly(
                    Subtype::AuthFailureBurst,
                    a.auth_failures as f64 / f64::from(s.auth_failure_min),
                    a.auth_failures as f64,
                    f64::from(s.auth_failure_min),
                    f64::from(s.auth_failure_min),
                    &a.auth_examples,
                    format!(
                        "client {client} drew {f} authentication failures (401/403) in {r} requests \
                         ({pct:.0} %) in the window; the limit is {min}",
                        f = a.auth_failures,
                        r = a.requests,
                        pct = auth_share * 100.0,
                        min = s.auth_failure_min,
                    ),
                ));
            }
            let paths = a.endpoints.len() as u64;
            let path_score = paths as f64 / f64::from(s.enumeration_min_distinct_endpoints);
            let not_found_score = a.not_found as f64 / f64::from(s.enumeration_min_not_found);
            if path_score >= 1.0 || not_found_score >= 1.0 {
                let examples = if a.enumeration_examples.is_empty() {
                    &a.examples
                } else {
                    &a.enumeration_examples
                };
                found.push(anomaly(
                    Subtype::EndpointEnumeration,
                    path_score.max(not_found_score),
                    paths as f64,
                    f64::from(s.enumeration_min_distinct_endpoints),
                    f64::from(s.enumeration_min_distinct_endpoints),
                    examples,
                    format!(
                        "client {client} reached {paths} distinct endpoints and drew {nf} not-found \
                         answers in the window (limits {p} endpoints, {n} not-found)",
                        nf = a.not_found,
                        p = s.enumeration_min_distinct_endpoints,
                        n = s.enumeration_min_not_found,
                    ),
                ));
            }
            let flood_floor =
                (s.flood_min_ratio_to_median * median as f64).max(f64::from(s.flood_min_requests));
            if a.requests as f64 >= flood_floor {
                found.push(anomaly(
                    Subtype::RequestFlood,
                    a.requests as f64 / f64::from(s.flood_min_requests),
                    a.requests as f64,
                    median as f64,
                    flood_floor,
                    &a.examples,
                    format!(
                        "client {client} sent {r} requests in the window, {x:.0}× the median client's {median} \
                         (limits {min} requests and {ratio}× the median)",
                        r = a.requests,
                        x = a.requests as f64 / median.max(1) as f64,
                        min = s.flood_min_requests,
                        ratio = s.flood_min_ratio_to_median,
                    ),
                ));
            }
            let mut by_subtype: BTreeMap<Subtype, (u64, Vec<&str>, Vec<TraceId>)> = BTreeMap::new();
            for ((subtype, pattern), (n, examples)) in &a.attacks {
                let e = by_subtype.entry(*subtype).or_default();
                e.0 += n;
                e.1.push(pattern);
                for id in examples {
                    push_example(&mut e.2, *id);
                }
            }
            for (subtype, (n, names, examples)) in by_subtype {
                found.push(anomaly(
                    subtype,
                    INJECTION_SCORE_PER_REQUEST * n as f64,
                    n as f64,
                    0.0,
                    1.0,
                    &examples,
                    format!(
                        "client {client} sent {n} request(s) whose path matches {patterns}",
                        patterns = names.join(", "),
                    ),
                ));
            }
        }
        found.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
        out.extend(found);
    }
}

impl Default for SecurityDetector {
    fn default() -> Self {
        Self::new()
    }
}
