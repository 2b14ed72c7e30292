//! A callee that refuses calls and sends no spans: its callers' client spans still go out, fail, and
//! name it (`server.address`). Their failures and their missing answers point at it, not at the
//! caller.

use detect_core::{
    Anomaly, Cause, DetectionConfig, Engine, Span, SpanAttributes, SpanId, SpanKind, SpanStatus,
    Subtype, TraceId, UnixNanos,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const T0: u64 = 1_767_571_200; // 2026-01-05T00:00:00Z

/// gateway `GET /api/items` → its client span `GET /items` (to `catalog.shop.svc:8080`) → catalog
/// `GET /items`, ten requests a second; from minute 20 to 23, catalog refuses every call.
fn traffic() -> Vec<Span> {
    let mut rng = StdRng::seed_from_u64(11);
    let mut spans = Vec::new();
    for (n, ms) in (0..26 * 60_000u64).step_by(100).enumerate() {
        let refused = (20 * 60_000..23 * 60_000).contains(&ms);
        let jitter = 1.0 + 0.2 * (rng.random::<f64>() - 0.5);
        let trace_id = TraceId(
            (n as u128 + 1)
                .wrapping_mul(0x9e37_79b9_7f4a_7c15)
                .to_be_bytes(),
        );
        let id = |k: u64| {
            SpanId(
                ((n as u64) << 2 | k)
                    .wrapping_mul(0x1f3d_5b79)
                    .to_be_bytes(),
            )
        };
        let start = UnixNanos(T0 * 1_000_000_000 + ms * 1_000_000);
        let status = |failed| {
            if failed {
                SpanStatus::Error
            } else {
                SpanStatus::Unset
            }
        };
        spans.push(Span {
            trace_id,
            span_id: id(1),
            service: "gateway".into(),
            operation: "GET /api/items".into(),
            kind: SpanKind::Server,
            start,
            duration_nanos: (20e6 * jitter) as u64,
            status: status(refused),
            ..Span::default()
        });
        spans.push(Span {
            trace_id,
            span_id: id(2),
            parent_span_id: Some(id(1)),
            service: "gateway".into(),
            operation: "GET /items".into(),
            kind: SpanKind::Client,
            start: start.saturating_add(1_000_000),
            duration_nanos: if refused {
                1_000_000
            } else {
                (15e6 * jitter) as u64
            },
            status: status(refused),
            attributes: SpanAttributes {
                peer_name: Some("catalog.shop.svc:8080".into()),
                ..SpanAttributes::default()
            },
        });
        if !refused {
            spans.push(Span {
                trace_id,
                span_id: id(3),
                parent_span_id: Some(id(2)),
                service: "catalog".into(),
                operation: "GET /items".into(),
                kind: SpanKind::Server,
                start: start.saturating_add(2_000_000),
                duration_nanos: (12e6 * jitter) as u64,
                ..Span::default()
            });
        }
    }
    spans
}

fn run() -> Vec<Anomaly> {
    let mut engine = Engine::new(DetectionConfig {
        sampling_enabled: false,
        ..DetectionConfig::default()
    });
    engine.analyse_every_trace(true);
    let mut out = Vec::new();
    for span in traffic() {
        engine.ingest(span, &mut out);
    }
    engine.finish(&mut out);
    out
}

#[test]
fn a_refused_call_points_at_the_service_it_names() {
    let out = run();
    let gateway_failures: Vec<&Anomaly> = out
        .iter()
        .filter(|a| a.subtype == Subtype::ErrorRateSpike && a.service == "gateway")
        .collect();
    assert!(!gateway_failures.is_empty(), "{out:#?}");
    for a in &gateway_failures {
        assert_eq!(
            (a.cause, a.peer_service.as_deref()),
            (Cause::Peer, Some("catalog")),
            "{a:#?}"
        );
    }
    let unanswered: Vec<&Anomaly> = out
        .iter()
        .filter(|a| a.subtype == Subtype::CallPathChange)
        .collect();
    assert!(!unanswered.is_empty(), "{out:#?}");
    for a in unanswered {
        assert_eq!(a.operation.as_deref(), Some("GET /items"), "{a:#?}");
        assert_eq!(
            (a.cause, a.peer_service.as_deref()),
            (Cause::Peer, Some("catalog")),
            "{a:#?}"
        );
        assert!(a.description.contains("catalog did not answer"), "{a:#?}");
    }
}
