//! End-to-end behaviour of the engine on small synthetic traffic: every detector fires on its
//! pattern, stays quiet on normal traffic, and the output is deterministic.

use detect_core::{
    Anomaly, DetectionConfig, Engine, Span, SpanAttributes, SpanId, SpanKind, SpanStatus, Subtype,
    TraceId, UnixNanos,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const T0: u64 = 1_767_571_200; // 2026-01-05T00:00:00Z

struct Traffic {
    rng: StdRng,
    next_id: u64,
    spans: Vec<Span>,
}

impl Traffic {
    fn new(seed: u64) -> Self {
        Traffic {
            rng: StdRng::seed_from_u64(seed),
            next_id: 1,
            spans: Vec::new(),
        }
    }

    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1
    }

    /// A request to the gateway from `client`, with a database child span.
    fn request(
        &mut self,
        at_ms: u64,
        client: &str,
        path: &str,
        status: u16,
        db_calls: usize,
    ) -> TraceId {
        let trace_id = TraceId::from_slice(
            &u128::from(self.id())
                .wrapping_mul(0x1_0000_0001)
                .to_be_bytes(),
        )
        .unwrap();
        let root = SpanId(self.id().to_be_bytes());
        let jitter = 1.0 + 0.2 * (self.rng.random::<f64>() - 0.5);
        let start = UnixNanos(T0 * 1_000_000_000 + at_ms * 1_000_000);
        self.spans.push(Span {
            trace_id,
            span_id: root,
            parent_span_id: None,
            service: "gateway".into(),
            operation: "GET /api/items/{id}".into(),
            kind: SpanKind::Server,
            start,
            duration_nanos: (20e6 * jitter) as u64,
            status: if status >= 500 {
                SpanStatus::Error
            } else {
                SpanStatus::Unset
            },
            attributes: SpanAttributes {
                http_status_code: Some(status),
                http_route: Some("/api/items/{id}".into()),
                url_path: Some(path.into()),
                http_method: Some("GET".into()),
                client_address: Some(client.into()),
                ..SpanAttributes::default()
            },
        });
        for i in 0..db_calls {
            let span_id = SpanId(self.id().to_be_bytes());
            self.spans.push(Span {
                trace_id,
                span_id,
                parent_span_id: Some(root),
                service: "gateway".into(),
                operation: "SELECT items".into(),
                kind: SpanKind::Client,
                start: start.saturating_add(1_000_000 + i as u64 * 100_000),
                duration_nanos: (2e6 * jitter) as u64,
                attributes: SpanAttributes {
                    db_system: Some("postgresql".into()),
                    db_statement_shape: Some("SELECT * FROM items WHERE id = ?".into()),
                    ..SpanAttributes::default()
                },
                ..Span::default()
            });
        }
        trace_id
    }

    /// `minutes` of normal traffic: ~10 requests a second from 50 clients.
    fn normal(&mut self, from_min: u64, minutes: u64) {
        for ms in (from_min * 60_000..(from_min + minutes) * 60_000).step_by(100) {
            let client = format!("198.51.100.{}", self.rng.random::<u64>() % 50);
            let item = self.rng.random::<u64>() % 1_000;
            self.request(ms, &client, &format!("/api/items/{item}"), 200, 1);
        }
    }

    fn run(self, config: DetectionConfig) -> Vec<Anomaly> {
        self.run_with(config, false)
    }

    /// As [`Traffic::run`], with per-trace analysis of every trace when `every_trace`.
    fn run_with(mut self, config: DetectionConfig, every_trace: bool) -> Vec<Anomaly> {
        self.spans.sort_by_key(|s| s.start);
        let mut engine = Engine::new(config);
        engine.analyse_every_trace(every_trace);
        let mut out = Vec::new();
        for span in self.spans {
            engine.ingest(span, &mut out);
        }
        engine.finish(&mut out);
        out
    }
}

fn config() -> DetectionConfig {
    DetectionConfig {
        sampling_enabled: false,
        ..DetectionConfig::default()
    }
}

fn subtypes(anomalies: &[Anomaly]) -> Vec<Subtype> {
    let mut s: Vec<Subtype> = anomalies.iter().map(|a| a.subtype).collect();
    s.dedup();
    s
}

#[test]
fn normal_traffic_is_quiet() {
    let mut t = Traffic::new(1);
    t.normal(0, 40);
    let out = t.run(config());
    let loud: Vec<_> = out
        .iter()
        .filter(|a| a.subtype != Subtype::LatencySpike)
        .collect();
    assert!(loud.is_empty(), "{loud:#?}");
    // Latency tails are rare, low-severity: a uniform ±10 % jitter has no 3σ tail at all.
    assert!(out.is_empty(), "{out:#?}");
}

#[test]
fn auth_failure_burst_and_enumeration_from_one_client() {
    let mut t = Traffic::new(2);
    t.normal(0, 30);
    for i in 0..40 {
        t.request(20 * 60_000 + i * 500, "203.0.113.66", "/api/login", 401, 0);
    }
    for i in 0..60 {
        t.request(
            25 * 60_000 + i * 500,
            "203.0.113.77",
            &format!("/probe/{i}.php"),
            404,
            0,
        );
    }
    let out = t.run(config());
    let burst: Vec<_> = out
        .iter()
        .filter(|a| a.subtype == Subtype::AuthFailureBurst)
        .collect();
    assert_eq!(burst.len(), 1, "{out:#?}");
    assert_eq!(burst[0].client.as_deref(), Some("203.0.113.66"));
    assert_eq!(burst[0].observed, 40.0);
    assert_eq!(burst[0].examples.len(), 3);
    let enumeration: Vec<_> = out
        .iter()
        .filter(|a| a.subtype == Subtype::EndpointEnumeration)
        .collect();
    assert_eq!(enumeration.len(), 1, "{out:#?}");
    assert_eq!(enumeration[0].client.as_deref(), Some("203.0.113.77"));
    assert!(
        !enumeration[0].description.contains(".php"),
        "no paths in descriptions"
    );
}

#[test]
fn a_flood_is_one_client_far_above_the_rest() {
    let mut t = Traffic::new(3);
    t.normal(0, 30);
    for i in 0..1_200 {
        t.request(22 * 60_000 + i * 50, "192.0.2.9", "/api/items/1", 200, 1);
    }
    let out = t.run(config());
    let flood: Vec<_> = out
        .iter()
        .filter(|a| a.subtype == Subtype::RequestFlood)
        .collect();
    assert_eq!(flood.len(), 1, "{out:#?}");
    assert_eq!(flood[0].client.as_deref(), Some("192.0.2.9"));
    // The flood is also a real throughput spike on the route.
    assert!(
        subtypes(&out).contains(&Subtype::ThroughputSpike),
        "{:?}",
        subtypes(&out)
    );
}

#[test]
fn injection_is_named_without_leaking_the_query() {
    let mut t = Traffic::new(4);
    t.normal(0, 20);
    t.request(
        12 * 60_000,
        "192.0.2.50",
        "/api/items/1?token=s3cr3t&q=1%27%20UNION%20SELECT%20pw",
        200,
        1,
    );
    t.request(
        12 * 60_000 + 10,
        "192.0.2.51",
        "/static/..%2f..%2fetc/passwd",
        404,
        0,
    );
    let out = t.run(config());
    let injection: Vec<_> = out
        .iter()
        .filter(|a| a.subtype == Subtype::InjectionAttempt)
        .collect();
    assert_eq!(injection.len(), 1, "{out:#?}");
    assert!(injection[0].description.contains("UNION SELECT"));
    assert!(!injection[0].description.contains("s3cr3t"));
    assert!(
        out.iter()
            .any(|a| a.subtype == Subtype::PathTraversal
                && a.client.as_deref() == Some("192.0.2.51"))
    );
}

#[test]
fn n_plus_one_is_found_in_a_sampled_trace() {
    let mut t = Traffic::new(5);
    t.normal(0, 15);
    let trace = t.request(10 * 60_000, "198.51.100.1", "/api/items/7", 200, 25);
    let out = t.run(config());
    let n1: Vec<_> = out
        .iter()
        .filter(|a| a.subtype == Subtype::NPlusOneQuery)
        .collect();
    assert_eq!(n1.len(), 1, "{out:#?}");
    assert_eq!(n1[0].trace_id, Some(trace));
    assert_eq!(n1[0].observed, 25.0);
    assert!(
        n1[0]
            .description
            .contains("SELECT * FROM items WHERE id = ?")
    );
}

#[test]
fn every_trace_is_analysed_when_asked_whatever_the_sampling_rule() {
    let make = || {
        let mut t = Traffic::new(5);
        t.normal(0, 15);
        let trace = t.request(10 * 60_000, "198.51.100.1", "/api/items/7", 200, 25);
        (t, trace)
    };
    // A rule that keeps almost no trace (the N+1 trace is not among them) …
    let sparse = DetectionConfig {
        sampling_ratio: 1e-6,
        ..DetectionConfig::default()
    };
    let (t, trace) = make();
    assert!(!detect_core::is_sampled(
        &trace,
        true,
        sparse.sampling_ratio
    ));
    let n_plus_one = |out: &[Anomaly]| {
        out.iter()
            .filter(|a| a.subtype == Subtype::NPlusOneQuery && a.trace_id == Some(trace))
            .count()
    };
    assert_eq!(n_plus_one(&t.run(sparse.clone())), 0);
    // … but a source that hands over every trace whole has each analysed.
    let (t, _) = make();
    assert_eq!(n_plus_one(&t.run_with(sparse, true)), 1);
}

/// Twenty normal minutes; minutes 20–22: 40 % of requests fail; 22–24: nothing at all; then traffic
/// comes back.
fn error_burst_then_silence() -> Traffic {
    let mut t = Traffic::new(6);
    t.normal(0, 20);
    for ms in (20 * 60_000..22 * 60_000).step_by(100) {
        let status = if t.rng.random::<f64>() < 0.4 {
            503
        } else {
            200
        };
        t.request(ms, "198.51.100.3", "/api/items/1", status, 1);
    }
    t.normal(24, 6);
    t
}

#[test]
fn error_burst_and_silence_are_window_anomalies() {
    let out = error_burst_then_silence().run(config());
    let errors: Vec<_> = out
        .iter()
        .filter(|a| a.subtype == Subtype::ErrorRateSpike)
        .collect();
    assert_eq!(errors.len(), 2, "{out:#?}");
    assert!(
        errors
            .iter()
            .all(|a| a.observed > 0.3 && a.examples.len() == 3)
    );
    let silent: Vec<_> = out
        .iter()
        .filter(|a| a.subtype == Subtype::ServiceSilent)
        .collect();
    assert_eq!(silent.len(), 2, "{out:#?}");
    assert_eq!(silent[0].service, "gateway");
    assert!(silent[0].operation.is_none());
}

#[test]
fn same_input_same_output_and_sampling_does_not_change_counts() {
    let make = || {
        let mut t = Traffic::new(7);
        t.normal(0, 20);
        for i in 0..40 {
            t.request(15 * 60_000 + i * 500, "203.0.113.66", "/api/login", 401, 0);
        }
        t
    };
    let a = make().run(config());
    let b = make().run(config());
    assert_eq!(a, b);
    let sampled = make().run(DetectionConfig {
        sampling_ratio: 0.01,
        ..DetectionConfig::default()
    });
    let window_level = |v: &[Anomaly]| -> Vec<Anomaly> {
        v.iter()
            .filter(|a| a.subtype.anomaly_type() != detect_core::AnomalyType::Resource)
            .cloned()
            .collect()
    };
    assert_eq!(window_level(&a), window_level(&sampled));
}

#[test]
fn late_spans_are_counted_apart_not_lost_silently() {
    let mut engine = Engine::new(config());
    let mut out = Vec::new();
    let mut t = Traffic::new(8);
    t.normal(0, 5);
    let mut spans = t.spans;
    spans.sort_by_key(|s| s.start);
    let mut early = spans[0].clone();
    for span in spans {
        engine.ingest(span, &mut out);
    }
    early.span_id = SpanId([9; 8]);
    engine.ingest(early, &mut out);
    assert_eq!(engine.stats().late_spans, 1);
    assert!(engine.stats().windows_closed >= 3);
}

#[test]
fn one_span_from_a_skewed_clock_does_not_make_the_rest_late() {
    let mut t = Traffic::new(9);
    t.normal(0, 10);
    let mut spans = t.spans;
    spans.sort_by_key(|s| s.start);
    let mut skewed = spans[100].clone();
    skewed.start = UnixNanos(skewed.start.0 + 365 * 86_400 * 1_000_000_000);
    spans.insert(101, skewed);
    let mut engine = Engine::new(config());
    let mut out = Vec::new();
    for span in spans {
        engine.ingest(span, &mut out);
    }
    engine.finish(&mut out);
    assert_eq!(engine.stats().late_spans, 0);
    assert_eq!(engine.stats().skewed_spans, 1);
    // The year-long gap to the skewed span's window is skipped, not closed window by window.
    assert!(
        engine.stats().windows_skipped > 500_000,
        "{:?}",
        engine.stats()
    );
    assert!(engine.stats().windows_closed < 100, "{:?}", engine.stats());
}

#[test]
fn input_that_really_moves_on_moves_the_clock() {
    let mut t = Traffic::new(10);
    t.normal(0, 5);
    t.normal(3 * 24 * 60, 5); // three days later
    let out = t.run(config());
    assert!(
        out.iter().all(|a| a.subtype != Subtype::ServiceSilent),
        "{out:#?}"
    );
}

#[test]
fn the_end_of_the_input_is_not_a_drop() {
    let mut t = Traffic::new(11);
    t.normal(0, 30);
    // The input stops 10 s into a minute: that last window is partial.
    let cut = UnixNanos((T0 + 29 * 60 + 10) * 1_000_000_000);
    t.spans.retain(|s| s.start < cut);
    let out = t.run(config());
    assert!(out.is_empty(), "{out:#?}");
}

#[test]
fn live_time_closes_windows_when_traffic_stops() {
    let mut t = Traffic::new(9);
    t.normal(0, 20);
    t.spans.sort_by_key(|s| s.start);
    let mut engine = Engine::new(config());
    let mut out = Vec::new();
    for span in std::mem::take(&mut t.spans) {
        engine.ingest(span, &mut out);
    }
    let closed = engine.stats().windows_closed;
    // No span says time has moved on: without a live clock the last windows would stay open.
    let now = UnixNanos((T0 + 25 * 60) * UnixNanos::NANOS_PER_SEC);
    engine.advance_to(now, &mut out);
    assert!(
        engine.stats().windows_closed >= closed + 4,
        "{:?}",
        engine.stats()
    );
    // Five quiet minutes after steady traffic: the gateway fell silent.
    assert!(
        out.iter().any(|a| a.subtype == Subtype::ServiceSilent),
        "{out:#?}"
    );
    // Going back in time changes nothing.
    let stats = engine.stats().clone();
    engine.advance_to(UnixNanos(now.0 - 1), &mut out);
    assert_eq!(engine.stats(), &stats);
}

/// The worker's sampled mode: Tempo counts every span (TraceQL metrics) and only sampled traces are
/// fed. Error-rate and throughput judgments must be those of the engine that saw every span; example
/// traces come from the sample; security, which needs every entry span, stays silent.
#[test]
fn counts_from_elsewhere_with_sampled_spans_judge_rates_as_full_counting_does() {
    let make = || {
        let mut t = error_burst_then_silence();
        t.spans.sort_by_key(|s| s.start);
        t.spans
    };
    let config = DetectionConfig {
        sampling_ratio: 0.1,
        ..DetectionConfig::default()
    };
    let full = Traffic {
        spans: make(),
        ..Traffic::new(0)
    }
    .run(config.clone());

    let spans = make();
    let window = config.window_nanos();
    let mut counts: std::collections::BTreeMap<(u64, String, String), (u64, u64)> =
        Default::default();
    for s in &spans {
        let c = counts
            .entry((
                s.start.0 / window * window,
                s.service.clone(),
                s.operation.clone(),
            ))
            .or_default();
        c.0 += 1;
        c.1 += u64::from(s.is_error());
    }
    let mut engine = Engine::new(config.clone());
    let mut out = Vec::new();
    let mut counted_windows = std::collections::BTreeSet::new();
    for span in spans {
        // As the worker does: a window's counts arrive before its sampled spans.
        let w = span.start.0 / window * window;
        if counted_windows.insert(w) {
            for ((start, service, op), (requests, errors)) in counts.range(
                (w, String::new(), String::new())..(w + window, String::new(), String::new()),
            ) {
                assert!(engine.record_counts(UnixNanos(*start), service, op, *requests, *errors));
            }
        }
        if detect_core::is_sampled(&span.trace_id, true, config.sampling_ratio) {
            engine.ingest_counted_elsewhere(span, &mut out);
        }
    }
    engine.finish(&mut out);

    let rates = |v: &[Anomaly]| -> Vec<(Subtype, u64, String, u64)> {
        v.iter()
            .filter(|a| {
                matches!(
                    a.subtype,
                    Subtype::ErrorRateSpike
                        | Subtype::ThroughputSpike
                        | Subtype::ThroughputDrop
                        | Subtype::ServiceSilent
                )
            })
            .map(|a| {
                (
                    a.subtype,
                    a.window.start.0,
                    a.service.clone(),
                    a.observed.to_bits(),
                )
            })
            .collect()
    };
    let expected = rates(&full);
    assert!(
        expected.iter().any(|r| r.0 == Subtype::ErrorRateSpike),
        "{full:#?}"
    );
    assert_eq!(rates(&out), expected);
    let sampled_examples = out
        .iter()
        .filter(|a| a.subtype == Subtype::ErrorRateSpike)
        .flat_map(|a| a.examples.iter())
        .all(|id| detect_core::is_sampled(id, true, config.sampling_ratio));
    assert!(sampled_examples, "examples are traces that were fetched");
    assert!(
        out.iter()
            .all(|a| a.subtype.anomaly_type() != detect_core::AnomalyType::Security)
    );
    // A window already closed takes no more counts.
    assert!(!engine.record_counts(UnixNanos(T0 * 1_000_000_000), "gateway", "x", 5, 0));
}
