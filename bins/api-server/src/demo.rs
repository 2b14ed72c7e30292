//! `--demo`: live traffic of a small shop (frontend → catalog / checkout → payments, with database
//! calls), about 40 requests a second from a few hundred clients, with an incident every so often so
//! that a newcomer sees anomalies appear within a minute or two:
//!
//! | from (s, every 5 min) | incident | detector |
//! |---|---|---|
//! | 40–45 | one client fails `POST /api/login` 30 times; probes with a SQL injection | security |
//! | 90–120 | catalog runs one query per item (N+1) | resource |
//! | 180–240 | payments `Charge` slows down: 80 % of charges 5× slower (after three learned minutes: findings page from a key's third window) | latency |
//! | 240–290 | checkout fails 40 % of orders (judged once the error baseline has 10 minutes) | error rate |
//!
//! Latency is judged per window once the window is closed and its traces are complete, so the
//! slowdown shows about two minutes after it starts; a single slow request never pages.
//!
//! Spans go to the same in-process detectors as the OTLP intake, in the wall clock's time.

use crate::pipeline::{Intake, Refusal};
use detect_core::{Span, SpanAttributes, SpanId, SpanKind, SpanStatus, TraceId, UnixNanos};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, LogNormal};
use std::time::{Duration, SystemTime};
use tracing::{info, warn};

const TICK: Duration = Duration::from_millis(100);
const REQUESTS_PER_SECOND: f64 = 40.0;
const CYCLE_SECONDS: u64 = 300;
const ATTACKER: &str = "203.0.113.66";

/// Which incident is on at `t` seconds into the cycle.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Incidents {
    slow_payments: bool,
    login_attack: bool,
    n_plus_one: bool,
    checkout_errors: bool,
}

fn incidents_at(second_of_cycle: u64) -> Incidents {
    Incidents {
        login_attack: (40..45).contains(&second_of_cycle),
        n_plus_one: (90..120).contains(&second_of_cycle),
        slow_payments: (180..240).contains(&second_of_cycle),
        checkout_errors: (240..290).contains(&second_of_cycle),
    }
}

struct Generator {
    rng: StdRng,
    started: u64,
}

fn wall_nanos() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// A span builder: one call per span keeps the trace code short.
struct SpanSpec<'a> {
    service: &'a str,
    operation: &'a str,
    kind: SpanKind,
    start: u64,
    duration_ms: f64,
    error: bool,
    attributes: SpanAttributes,
}

impl Generator {
    fn new(seed: u64, started: u64) -> Self {
        Generator {
            rng: StdRng::seed_from_u64(seed),
            started,
        }
    }

    fn ms(&mut self, median: f64, sigma: f64) -> f64 {
        LogNormal::new(median.ln(), sigma).map_or(median, |d| d.sample(&mut self.rng))
    }

    fn span(&mut self, trace: TraceId, parent: Option<SpanId>, spec: SpanSpec) -> Span {
        Span {
            trace_id: trace,
            span_id: SpanId(self.rng.random::<u64>().max(1).to_be_bytes()),
            parent_span_id: parent,
            service: spec.service.to_owned(),
            operation: spec.operation.to_owned(),
            kind: spec.kind,
            start: UnixNanos(spec.start),
            duration_nanos: (spec.duration_ms * 1e6) as u64,
            status: if spec.error {
                SpanStatus::Error
            } else {
                SpanStatus::Unset
            },
            attributes: spec.attributes,
        }
    }

    fn http(
        &self,
        route: &str,
        path: &str,
        method: &str,
        status: u16,
        client: &str,
    ) -> SpanAttributes {
        SpanAttributes {
            http_status_code: Some(status),
            http_route: Some(route.to_owned()),
            url_path: Some(path.to_owned()),
            http_method: Some(method.to_owned()),
            client_address: Some(client.to_owned()),
            ..SpanAttributes::default()
        }
    }

    fn db(statement: &str) -> SpanAttributes {
        SpanAttributes {
            db_system: Some("postgresql".into()),
            db_statement_shape: Some(statement.to_owned()),
            ..SpanAttributes::default()
        }
    }

    fn trace_id(&mut self) -> TraceId {
        TraceId(self.rng.random::<u128>().max(1).to_be_bytes())
    }

    /// `GET /api/products/{id}`: frontend → catalog → database.
    fn product_page(&mut self, at: u64, client: &str, now: Incidents, out: &mut Vec<Span>) {
        let trace = self.trace_id();
        let item = self.rng.random_range(1..5_000);
        let queries = if now.n_plus_one { 25 } else { 1 };
        let query_ms: Vec<f64> = (0..queries).map(|_| self.ms(1.5, 0.3)).collect();
        let catalog_ms = self.ms(4.0, 0.3) + query_ms.iter().sum::<f64>();
        let total_ms = catalog_ms + self.ms(6.0, 0.3);
        let path = format!("/api/products/{item}");
        let root = self.span(
            trace,
            None,
            SpanSpec {
                service: "frontend",
                operation: "GET /api/products/{id}",
                kind: SpanKind::Server,
                start: at,
                duration_ms: total_ms,
                error: false,
                attributes: self.http("/api/products/{id}", &path, "GET", 200, client),
            },
        );
        let catalog = self.span(
            trace,
            Some(root.span_id),
            SpanSpec {
                service: "catalog",
                operation: "GetProduct",
                kind: SpanKind::Server,
                start: at + 2_000_000,
                duration_ms: catalog_ms,
                error: false,
                attributes: SpanAttributes::default(),
            },
        );
        let mut t = at + 3_000_000;
        for ms in query_ms {
            let statement = if queries == 1 {
                "SELECT * FROM products WHERE id = ?"
            } else {
                "SELECT * FROM prices WHERE product_id = ?"
            };
            let q = self.span(
                trace,
                Some(catalog.span_id),
                SpanSpec {
                    service: "catalog",
                    operation: "SELECT products",
                    kind: SpanKind::Client,
                    start: t,
                    duration_ms: ms,
                    error: false,
                    attributes: Self::db(statement),
                },
            );
            t += (ms * 1e6) as u64;
            out.push(q);
        }
        out.push(catalog);
        out.push(root);
    }

    /// `POST /api/checkout`: frontend → checkout → payments.
    fn checkout(&mut self, at: u64, client: &str, now: Incidents, out: &mut Vec<Span>) {
        let trace = self.trace_id();
        let failed = now.checkout_errors && self.rng.random_bool(0.4);
        // A slowdown hits most charges, not all: some go through another, healthy path.
        let slowed = now.slow_payments && self.rng.random_bool(0.8);
        let charge_ms = self.ms(40.0, 0.25) * if slowed { 5.0 } else { 1.0 };
        let checkout_ms = charge_ms + self.ms(10.0, 0.3);
        let total_ms = checkout_ms + self.ms(5.0, 0.3);
        let status = if failed { 500 } else { 200 };
        let root = self.span(
            trace,
            None,
            SpanSpec {
                service: "frontend",
                operation: "POST /api/checkout",
                kind: SpanKind::Server,
                start: at,
                duration_ms: total_ms,
                error: failed,
                attributes: self.http("/api/checkout", "/api/checkout", "POST", status, client),
            },
        );
        let checkout = self.span(
            trace,
            Some(root.span_id),
            SpanSpec {
                service: "checkout",
                operation: "PlaceOrder",
                kind: SpanKind::Server,
                start: at + 1_000_000,
                duration_ms: checkout_ms,
                error: failed,
                attributes: SpanAttributes::default(),
            },
        );
        let charge = self.span(
            trace,
            Some(checkout.span_id),
            SpanSpec {
                service: "payments",
                operation: "Charge",
                kind: SpanKind::Server,
                start: at + 3_000_000,
                duration_ms: charge_ms,
                error: false,
                attributes: SpanAttributes::default(),
            },
        );
        out.extend([charge, checkout, root]);
    }

    /// `POST /api/login`, failing with 401 for the attacker.
    fn login(&mut self, at: u64, client: &str, path: &str, out: &mut Vec<Span>) {
        let trace = self.trace_id();
        let attacker = client == ATTACKER;
        let ms = self.ms(30.0, 0.3);
        let attributes = self.http(
            "/api/login",
            path,
            "POST",
            if attacker { 401 } else { 200 },
            client,
        );
        let span = self.span(
            trace,
            None,
            SpanSpec {
                service: "frontend",
                operation: "POST /api/login",
                kind: SpanKind::Server,
                start: at,
                duration_ms: ms,
                error: false,
                attributes,
            },
        );
        out.push(span);
    }

    /// The spans of one tick starting at `from` (nanoseconds).
    fn tick(&mut self, from: u64, out: &mut Vec<Span>) {
        let second_of_cycle = (from.saturating_sub(self.started) / 1_000_000_000) % CYCLE_SECONDS;
        let now = incidents_at(second_of_cycle);
        let expected = REQUESTS_PER_SECOND * TICK.as_secs_f64();
        let n = expected.floor() as usize + usize::from(self.rng.random_bool(expected.fract()));
        let tick_nanos = TICK.as_nanos() as u64;
        for _ in 0..n {
            let at = from + self.rng.random_range(0..tick_nanos);
            let client = format!("198.51.100.{}", self.rng.random_range(1..250));
            match self.rng.random_range(0..10) {
                0..=5 => self.product_page(at, &client, now, out),
                6..=8 => self.checkout(at, &client, now, out),
                _ => self.login(at, &client, "/api/login", out),
            }
        }
        if now.login_attack {
            // One failed login a tick (50 in all); the first second also probes with an injection.
            let path = if second_of_cycle == 40 {
                "/api/login?user=admin'%20OR%20'1'='1"
            } else {
                "/api/login"
            };
            self.login(from, ATTACKER, path, out);
        }
    }
}

/// Generates traffic until the task is aborted.
pub async fn run(intake: Intake) {
    let started = wall_nanos();
    let mut generator = Generator::new(started, started);
    info!(
        "demo traffic: ~{REQUESTS_PER_SECOND} requests/s; incidents every {} minutes, the first after 40 s",
        CYCLE_SECONDS / 60
    );
    let mut interval = tokio::time::interval(TICK);
    let mut spans = Vec::new();
    loop {
        interval.tick().await;
        let from = wall_nanos().saturating_sub(TICK.as_nanos() as u64);
        generator.tick(from, &mut spans);
        match intake.try_submit(std::mem::take(&mut spans)) {
            Ok(()) => {}
            Err(Refusal::Stopped) => return,
            Err(Refusal::Busy { reason, .. }) => warn!(reason, "demo traffic held back"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use detect_core::{DetectionConfig, Engine, Subtype};

    /// One cycle of demo traffic through the real engine: each incident the demo promises in its
    /// first cycle is found, the payments slowdown pages as a window-level latency finding, and no
    /// other latency finding pages.
    #[test]
    fn the_first_cycle_shows_its_incidents() {
        let start = 1_767_571_200_000_000_000u64;
        let mut generator = Generator::new(7, start);
        let mut engine = Engine::new(DetectionConfig::default());
        let mut found = Vec::new();
        let mut spans = Vec::new();
        let tick = TICK.as_nanos() as u64;
        for i in 0..(CYCLE_SECONDS * 1_000 / TICK.as_millis() as u64) {
            generator.tick(start + i * tick, &mut spans);
            spans.sort_by_key(|s| s.start);
            for span in spans.drain(..) {
                engine.ingest(span, &mut found);
            }
        }
        engine.advance_to(
            UnixNanos(start + (CYCLE_SECONDS + 200) * 1_000_000_000),
            &mut found,
        );
        let seen = |s: Subtype| found.iter().any(|a| a.subtype == s);
        assert!(seen(Subtype::AuthFailureBurst), "{found:#?}");
        assert!(seen(Subtype::InjectionAttempt), "{found:#?}");
        assert!(seen(Subtype::NPlusOneQuery), "{found:#?}");
        let latency = |a: &&detect_core::Anomaly| {
            matches!(
                a.subtype,
                Subtype::LatencySpike | Subtype::LatencyDegradation
            )
        };
        let pages = |a: &&detect_core::Anomaly| a.severity >= detect_core::Severity::High;
        // The slowdown of payments `Charge` (180–240 s) pages, from its window.
        let window_start = |a: &detect_core::Anomaly| (a.window.start.0 - start) / 1_000_000_000;
        let slowdown: Vec<_> = found
            .iter()
            .filter(latency)
            .filter(pages)
            .filter(|a| a.service == "payments" && a.operation.as_deref() == Some("Charge"))
            .collect();
        assert!(
            slowdown
                .iter()
                .any(|a| a.subtype == Subtype::LatencyDegradation
                    && (180..240).contains(&window_start(a))),
            "{found:#?}"
        );
        // No other latency finding pages: not the callers of `Charge` (only affected), not the
        // catalog during the N+1 queries, not the log-normal's own tails.
        let others: Vec<_> = found
            .iter()
            .filter(latency)
            .filter(pages)
            .filter(|a| !(a.service == "payments" && a.operation.as_deref() == Some("Charge")))
            .collect();
        assert!(others.is_empty(), "{others:#?}");
        // Trace-level latency findings are rare outside the incidents.
        let offset = |a: &detect_core::Anomaly| (a.detected_at.0 - start) / 1_000_000_000;
        let stray = found
            .iter()
            .filter(|a| a.subtype == Subtype::LatencySpike)
            .filter(|a| !matches!(offset(a) % CYCLE_SECONDS, 90..=121 | 180..=241))
            .count() as u64;
        let spans = engine.stats().spans;
        assert!(stray * 2_000 < spans, "{stray} stray in {spans}");
    }
}
