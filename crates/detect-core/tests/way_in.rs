//! The way into a service as a whole: a service with little traffic gets a few calls a minute, spread
//! over its operations, too few for any one operation's test. When the network into it slows down,
//! the calls it gets are pooled and judged together; a service with no history yet is judged against
//! the way into all services.

use detect_core::{
    Anomaly, Cause, DetectionConfig, Engine, Severity, Span, SpanId, SpanKind, Subtype, TraceId,
    UnixNanos,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const T0_MS: u64 = 1_767_571_200_000;
const MS: u64 = 1_000_000;

/// `shop` `GET /cart` (ten a second) calls `pricing` `Quote`; one request in `sparse_every` also calls
/// `loyalty`, alternating between its operations `Points` and `Badge`.
struct Traffic {
    rng: StdRng,
    next_id: u64,
    spans: Vec<Span>,
}

impl Traffic {
    fn span(
        &mut self,
        trace: TraceId,
        parent: Option<SpanId>,
        what: (&str, &str),
        from: u64,
        to: u64,
    ) -> SpanId {
        self.next_id += 1;
        let id = SpanId(self.next_id.to_be_bytes());
        self.spans.push(Span {
            trace_id: trace,
            span_id: id,
            parent_span_id: parent,
            service: what.0.into(),
            operation: what.1.into(),
            kind: if parent.is_none() {
                SpanKind::Server
            } else {
                SpanKind::Internal
            },
            start: UnixNanos(from),
            duration_nanos: to - from,
            ..Span::default()
        });
        id
    }

    /// One request at `t`; `wire_ms` on the way into `loyalty` when it is called.
    fn request(&mut self, n: u64, t: u64, loyalty: Option<(&str, u64)>) {
        let mut trace = [1u8; 16];
        trace[8..].copy_from_slice(&n.to_be_bytes());
        let trace = TraceId(trace);
        let jitter = |rng: &mut StdRng, ms: u64| ms * MS + rng.random_range(0..ms * MS / 2);
        let quote_start = t + jitter(&mut self.rng, 1);
        let quote_end = quote_start + jitter(&mut self.rng, 4);
        let mut end = quote_end + jitter(&mut self.rng, 1);
        let mut calls = vec![(("pricing", "Quote"), quote_start, quote_end)];
        if let Some((operation, wire_ms)) = loyalty {
            let from = end + wire_ms * MS / 2 + jitter(&mut self.rng, 1);
            let to = from + jitter(&mut self.rng, 3);
            end = to + wire_ms * MS / 2 + jitter(&mut self.rng, 1);
            calls.push((("loyalty", operation), from, to));
        }
        let root = self.span(trace, None, ("shop", "GET /cart"), t, end + MS);
        for (what, from, to) in calls {
            self.span(trace, Some(root), what, from, to);
        }
    }
}

/// `minutes` of traffic; from minute 20 to 22 the way into `loyalty` takes `slow_wire_ms`. With
/// `loyalty_from_minute`, `loyalty` is first called then.
fn run(minutes: u64, slow_wire_ms: u64, loyalty_from_minute: u64) -> Vec<Anomaly> {
    run_with_onset(minutes, slow_wire_ms, loyalty_from_minute, None)
}

/// [`run`], where the last call into `loyalty` of minute 19 already takes `onset_ms` on the wire.
fn run_with_onset(
    minutes: u64,
    slow_wire_ms: u64,
    loyalty_from_minute: u64,
    onset_ms: Option<u64>,
) -> Vec<Anomaly> {
    let mut traffic = Traffic {
        rng: StdRng::seed_from_u64(7),
        next_id: 1,
        spans: Vec::new(),
    };
    for i in 0..minutes * 600 {
        let t = (T0_MS + i * 100) * MS + traffic.rng.random_range(0..50 * MS);
        let minute = i / 600;
        // Four calls a minute into loyalty, two per operation: too few for either operation's test.
        let loyalty = (i % 150 == 0 && minute >= loyalty_from_minute).then(|| {
            let operation = if (i / 150) % 2 == 0 {
                "Points"
            } else {
                "Badge"
            };
            let wire = match onset_ms {
                _ if (20..22).contains(&minute) => slow_wire_ms,
                Some(onset) if i == 20 * 600 - 150 => onset,
                // A heavy tail: one call in six waits in a queue.
                _ if (i / 150) % 6 == 5 => 12,
                _ => 1,
            };
            (operation, wire)
        });
        traffic.request(i, t, loyalty);
    }
    let mut spans = std::mem::take(&mut traffic.spans);
    spans.sort_by_key(|s| s.start);
    let mut engine = Engine::new(DetectionConfig {
        sampling_enabled: false,
        ..DetectionConfig::default()
    });
    let mut out = Vec::new();
    for span in spans {
        engine.ingest(span, &mut out);
    }
    engine.finish(&mut out);
    out
}

fn about_the_way_into_loyalty(out: &[Anomaly]) -> Vec<&Anomaly> {
    out.iter()
        .filter(|a| {
            a.service == "loyalty"
                && a.operation.is_none()
                && a.subtype == Subtype::LatencyDegradation
        })
        .collect()
}

#[test]
fn a_slow_network_into_a_quiet_service_is_found_over_all_its_operations() {
    let out = run(25, 1_500, 0);
    let found = about_the_way_into_loyalty(&out);
    let first = found.first().unwrap_or_else(|| panic!("{out:#?}"));
    assert_eq!(first.cause, Cause::Itself);
    assert!(first.observed > 500.0, "{first:#?}");
    assert!(
        first.description.contains("over all its operations"),
        "{}",
        first.description
    );
    let (from, to) = ((T0_MS + 20 * 60_000) * MS, (T0_MS + 23 * 60_000) * MS);
    assert!(
        found
            .iter()
            .all(|a| a.window.start.0 >= from && a.window.end.0 <= to),
        "{found:#?}"
    );
    // No operation of loyalty had calls enough for a test of its own.
    assert!(
        out.iter()
            .all(|a| a.service != "loyalty" || a.operation.is_none()),
        "{out:#?}"
    );
}

#[test]
fn a_quiet_service_with_an_ordinary_network_is_not_flagged() {
    let out = run(30, 1, 0);
    assert!(about_the_way_into_loyalty(&out).is_empty(), "{out:#?}");
}

#[test]
fn a_service_without_history_is_judged_against_the_way_into_all_services_and_does_not_page() {
    let out = run(25, 1_500, 20);
    let found = about_the_way_into_loyalty(&out);
    let first = found.first().unwrap_or_else(|| panic!("{out:#?}"));
    assert!(
        first
            .description
            .contains("against the way into all services"),
        "{}",
        first.description
    );
    assert!(
        found.iter().all(|a| a.severity <= Severity::Medium),
        "{found:#?}"
    );
}

/// The slow network's first call lands in the minute before, among ordinary ones: too few to be
/// significant, and learned it would be the quiet service's p99 (a few dozen values learned), hiding
/// the next minute. A window is learned only once the next one is ordinary too.
#[test]
fn the_first_slow_call_before_a_slow_network_is_found_does_not_hide_it() {
    let out = run_with_onset(25, 1_500, 0, Some(5_000));
    let found = about_the_way_into_loyalty(&out);
    let minute_20 = (T0_MS + 20 * 60_000) * MS;
    assert!(
        found.iter().any(|a| a.window.start.0 == minute_20),
        "{out:#?}"
    );
}
