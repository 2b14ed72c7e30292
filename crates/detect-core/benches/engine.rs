//! Spans per second through every detector (`cargo bench -p detect-core --bench engine`).
//! Input: 20 minutes of synthetic traffic over 8 services, 40 operations, 300 clients, with database
//! children, already decoded; once with every trace analysed (the costliest setting) and once with the
//! default 10 % sample.

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use detect_core::{
    DetectionConfig, Engine, Span, SpanAttributes, SpanId, SpanKind, SpanStatus, TraceId, UnixNanos,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, LogNormal};

fn traffic(traces: usize) -> Vec<Span> {
    let mut rng = StdRng::seed_from_u64(42);
    let latency = LogNormal::new(3.0, 0.4).unwrap();
    let mut spans = Vec::new();
    let t0 = 1_767_571_200_000_000_000u64;
    for t in 0..traces {
        let trace_id = TraceId(rng.random());
        let start = UnixNanos(t0 + t as u64 * 12_000_000); // ~83 traces/s
        let root_id = SpanId(rng.random());
        let route = rng.random_range(0..10);
        spans.push(Span {
            trace_id,
            span_id: root_id,
            parent_span_id: None,
            service: "gateway".into(),
            operation: format!("GET /api/r{route}"),
            kind: SpanKind::Server,
            start,
            duration_nanos: (latency.sample(&mut rng) * 1e6) as u64,
            status: SpanStatus::Unset,
            attributes: SpanAttributes {
                http_status_code: Some(200),
                http_route: Some(format!("/api/r{route}")),
                url_path: Some(format!("/api/r{route}/{}", rng.random_range(0..1000))),
                http_method: Some("GET".into()),
                client_address: Some(format!("198.51.100.{}", rng.random_range(0..300))),
                ..SpanAttributes::default()
            },
        });
        for c in 0..rng.random_range(3..9) {
            let service = rng.random_range(1..8);
            spans.push(Span {
                trace_id,
                span_id: SpanId(rng.random()),
                parent_span_id: Some(root_id),
                service: format!("service-{service}"),
                operation: format!("op-{}", rng.random_range(0..5)),
                kind: if c % 2 == 0 {
                    SpanKind::Client
                } else {
                    SpanKind::Internal
                },
                start: start.saturating_add(1_000_000),
                duration_nanos: (latency.sample(&mut rng) * 2e5) as u64,
                attributes: SpanAttributes {
                    db_system: (c % 3 == 0).then(|| "postgresql".into()),
                    db_statement_shape: (c % 3 == 0).then(|| "SELECT * FROM t WHERE id = ?".into()),
                    ..SpanAttributes::default()
                },
                ..Span::default()
            });
        }
    }
    spans
}

fn engine(c: &mut Criterion) {
    let spans = traffic(100_000);
    let mut group = c.benchmark_group("detect-core");
    group.throughput(Throughput::Elements(spans.len() as u64));
    group.sample_size(10);
    for (name, sampling_enabled) in [
        ("all_detectors_all_traces", false),
        ("all_detectors_sampled_10pct", true),
    ] {
        group.bench_function(name, |b| {
            b.iter_batched(
                || spans.clone(),
                |spans| {
                    let config = DetectionConfig {
                        sampling_enabled,
                        ..DetectionConfig::default()
                    };
                    let mut engine = Engine::new(config);
                    let mut out = Vec::new();
                    for span in spans {
                        engine.ingest(span, &mut out);
                    }
                    engine.finish(&mut out);
                    out.len()
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, engine);
criterion_main!(benches);
