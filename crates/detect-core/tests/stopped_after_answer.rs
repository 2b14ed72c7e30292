//! A code fault that changes what callers do without changing durations or status codes: catalog
//! answers with a wrong value, and its caller stops right after that answer (it skips the calls that
//! usually follow). The caller's changed calls point at catalog, and the incident names catalog first.
//! When the caller itself returns early, before calling anything, the change stays the caller's own.
//!
//! The calls are INTERNAL spans of the caller with the callee's server span below them, as in the
//! Online Boutique recordings of `../shared/datasets`.

use detect_core::{
    Anomaly, Cause, DetectionConfig, Engine, IncidentTracker, Span, SpanId, SpanKind, Subtype,
    TraceId, UnixNanos,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const T0: u64 = 1_767_571_200; // 2026-01-05T00:00:00Z
const FAULT_MINUTES: std::ops::Range<u64> = 20..23;

#[derive(Clone, Copy, PartialEq)]
enum Fault {
    /// catalog's answer makes frontend stop after it.
    CatalogAnswer,
    /// frontend returns before calling anything.
    FrontendReturnsEarly,
}

/// frontend `GET /product` calls, one after another, catalog `GetProduct`, currency `Convert` and
/// cart `GetCart`, each through an INTERNAL span of frontend's; ten requests a second for 26 minutes.
fn traffic(fault: Fault) -> Vec<Span> {
    let mut rng = StdRng::seed_from_u64(7);
    let mut spans = Vec::new();
    for (n, ms) in (0..26 * 60_000u64).step_by(100).enumerate() {
        let faulty = FAULT_MINUTES.contains(&(ms / 60_000));
        let trace_id = TraceId(
            (n as u128 + 1)
                .wrapping_mul(0x9e37_79b9_7f4a_7c15)
                .to_be_bytes(),
        );
        let id = |k: u64| {
            SpanId(
                ((n as u64) << 4 | k)
                    .wrapping_mul(0x1f3d_5b79)
                    .to_be_bytes(),
            )
        };
        let start = UnixNanos(T0 * 1_000_000_000 + ms * 1_000_000);
        let calls: &[(&str, &str)] = match (fault, faulty) {
            (Fault::CatalogAnswer, true) => &[("catalog", "GetProduct")],
            (Fault::FrontendReturnsEarly, true) => &[],
            _ => &[
                ("catalog", "GetProduct"),
                ("currency", "Convert"),
                ("cart", "GetCart"),
            ],
        };
        let mut at_ms = 1.0;
        let mut children = Vec::new();
        for (k, (service, operation)) in calls.iter().enumerate() {
            let ms = 4.0 * (1.0 + 0.3 * (rng.random::<f64>() - 0.5));
            let (client, server) = (id(2 + 2 * k as u64), id(3 + 2 * k as u64));
            let at = start.saturating_add((at_ms * 1e6) as u64);
            children.push(Span {
                trace_id,
                span_id: client,
                parent_span_id: Some(id(1)),
                service: "frontend".into(),
                operation: format!("{service}/{operation}"),
                kind: SpanKind::Internal,
                start: at,
                duration_nanos: (ms * 1e6) as u64,
                ..Span::default()
            });
            children.push(Span {
                trace_id,
                span_id: server,
                parent_span_id: Some(client),
                service: (*service).into(),
                operation: (*operation).into(),
                kind: SpanKind::Server,
                start: at.saturating_add(500_000),
                duration_nanos: ((ms - 1.0) * 1e6) as u64,
                ..Span::default()
            });
            at_ms += ms + 0.5;
        }
        spans.push(Span {
            trace_id,
            span_id: id(1),
            service: "frontend".into(),
            operation: "GET /product".into(),
            kind: SpanKind::Server,
            start,
            duration_nanos: ((at_ms + 1.0) * 1e6) as u64,
            ..Span::default()
        });
        spans.extend(children);
    }
    spans
}

fn run(fault: Fault) -> (Vec<Anomaly>, Engine) {
    let mut engine = Engine::new(DetectionConfig {
        sampling_enabled: false,
        ..DetectionConfig::default()
    });
    engine.analyse_every_trace(true);
    let mut out = Vec::new();
    for span in traffic(fault) {
        engine.ingest(span, &mut out);
    }
    engine.finish(&mut out);
    (out, engine)
}

fn changed_calls(out: &[Anomaly]) -> Vec<&Anomaly> {
    out.iter()
        .filter(|a| {
            a.subtype == Subtype::CallPathChange && a.operation.as_deref() == Some("GET /product")
        })
        .collect()
}

/// The first origin of the incident holding the most findings.
fn first_origin(out: &[Anomaly], engine: &Engine) -> String {
    let mut tracker = IncidentTracker::new(Default::default());
    for a in out {
        tracker.observe(a, engine.service_graph());
    }
    let incidents: Vec<_> = tracker
        .finish()
        .into_iter()
        .map(|e| e.incident().clone())
        .collect();
    let largest = incidents
        .iter()
        .max_by_key(|i| i.findings.len())
        .expect("an incident");
    largest.origins[0].service.clone()
}

#[test]
fn requests_that_stop_after_an_answer_point_at_the_service_that_gave_it() {
    let (out, engine) = run(Fault::CatalogAnswer);
    let changed = changed_calls(&out);
    assert!(!changed.is_empty(), "{out:#?}");
    for a in &changed {
        assert_eq!(
            (a.cause, a.peer_service.as_deref()),
            (Cause::Peer, Some("catalog")),
            "{a:#?}"
        );
        assert!(
            a.description.contains("right after catalog answered"),
            "{a:#?}"
        );
    }
    assert_eq!(first_origin(&out, &engine), "catalog");
}

#[test]
fn a_caller_that_returns_before_calling_anything_is_its_own_origin() {
    let (out, engine) = run(Fault::FrontendReturnsEarly);
    let changed = changed_calls(&out);
    assert!(!changed.is_empty(), "{out:#?}");
    for a in &changed {
        assert_eq!(a.cause, Cause::Itself, "{a:#?}");
    }
    assert_eq!(first_origin(&out, &engine), "frontend");
}
