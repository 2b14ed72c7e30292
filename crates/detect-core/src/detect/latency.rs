//! Latency detector (PERFORMANCE / `latency_spike`).
//!
//! Per (service, operation), a [`Baseline`] of `x = ln(duration in ms)`: latency is skewed and
//! heavy-tailed, its logarithm close to normal. A span is anomalous when
//! `z = (x − μ) / σ ≥ t(latency_threshold_stddev, n)` (the threshold raised for the samples learned,
//! see `small_sample_threshold`) and it is also at least `latency_min_excess_ms` above the typical
//! duration `e^μ`. Anomalous spans are not learned, so an incident cannot teach the baseline that it
//! is normal. Score: z. Severity: `severity_cutoffs.latency`.

use crate::anomaly::{Anomaly, Subtype, Window};
use crate::config::DetectionConfig;
use crate::keys::KeyId;
use crate::span::Span;
use crate::stats::probability::upper_truncated_variance;
use crate::stats::{Baseline, BaselineParams};

/// Durations below this (1 µs) are treated as this, so that the logarithm stays finite.
const MIN_DURATION_MS: f64 = 0.001;
/// Spans remembered by a latency baseline once warm.
const MEMORY: f64 = 2_000.0;
/// The smallest log-duration spread: below it, timer resolution and not the service speaks.
const MIN_LOG_SPREAD: f64 = 0.02;

pub struct LatencyDetector {
    baselines: Vec<Baseline>,
    params: BaselineParams,
}

impl LatencyDetector {
    pub fn new(config: &DetectionConfig) -> Self {
        LatencyDetector {
            baselines: Vec::new(),
            params: BaselineParams {
                warmup: config.warmup_min_samples,
                memory: MEMORY,
                min_spread: MIN_LOG_SPREAD,
                truncation_variance: upper_truncated_variance(config.latency_threshold_stddev),
                relearn_after_nanos: config.relearn_after_seconds * crate::UnixNanos::NANOS_PER_SEC,
            },
        }
    }

    /// The learned baselines, by key index (for [`crate::learned`]).
    pub(crate) fn baselines(&self) -> &[Baseline] {
        &self.baselines
    }

    pub(crate) fn set_baselines(&mut self, baselines: Vec<Baseline>) {
        self.baselines = baselines;
    }

    pub fn baseline(&self, key: KeyId) -> Option<&Baseline> {
        self.baselines.get(key.index())
    }

    pub fn observe(
        &mut self,
        key: KeyId,
        span: &Span,
        config: &DetectionConfig,
        out: &mut Vec<Anomaly>,
    ) {
        if self.baselines.len() <= key.index() {
            self.baselines.resize_with(key.index() + 1, Baseline::new);
        }
        let baseline = &mut self.baselines[key.index()];
        let observed_ms = span.duration_ms().max(MIN_DURATION_MS);
        let x = observed_ms.ln();
        let threshold = config.latency_threshold_for(&span.service);
        let judgement = baseline.judge(x, threshold, &self.params);
        let anomalous = judgement.is_some_and(|j| j.z >= j.threshold);
        baseline.learn(x, anomalous, span.end().0, &self.params);

        let Some(j) = judgement.filter(|_| anomalous) else {
            return;
        };
        let expected_ms = j.mean.exp();
        if observed_ms - expected_ms < config.latency_min_excess_ms {
            return;
        }
        let limit_ms = (j.mean + j.threshold * j.spread).exp();
        out.push(Anomaly {
            subtype: Subtype::LatencySpike,
            severity: config.severity_cutoffs.latency.grade(j.z),
            service: span.service.clone(),
            operation: Some(span.operation.clone()),
            client: None,
            peer_service: None,
            trace_id: Some(span.trace_id),
            span_id: Some(span.span_id),
            observed: observed_ms,
            expected: expected_ms,
            spread: j.spread,
            score: j.z,
            threshold: j.threshold,
            unit: "ms",
            window: Window {
                start: span.start,
                end: span.end(),
            },
            detected_at: span.end(),
            examples: vec![span.trace_id],
            description: format!(
                "{op} on {svc} took {observed_ms:.1} ms where {expected_ms:.1} ms is typical: \
                 z = {z:.1} on log-duration (σ = {s:.2}, {n} spans learned); \
                 anything over {limit_ms:.1} ms ({t:.1}σ) is anomalous",
                op = span.operation,
                svc = span.service,
                z = j.z,
                s = j.spread,
                n = j.samples,
                t = j.threshold,
            ),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Severity;
    use crate::span::{SpanId, TraceId, UnixNanos};

    fn span(i: u64, ms: f64) -> Span {
        Span {
            trace_id: TraceId::from_slice(&i.to_be_bytes()).unwrap(),
            span_id: SpanId((i + 1).to_be_bytes()),
            service: "cart".into(),
            operation: "GET /cart".into(),
            start: UnixNanos::from_secs(1_000 + i),
            duration_nanos: (ms * 1e6) as u64,
            ..Span::default()
        }
    }

    /// Durations 40–60 ms with a fixed pattern, so the test needs no random numbers.
    fn normal_ms(i: u64) -> f64 {
        50.0 * (1.0 + 0.1 * ((i * 7919 % 200) as f64 / 100.0 - 1.0))
    }

    #[test]
    fn quiet_on_normal_traffic_and_fires_on_a_slow_span_with_an_explanation() {
        let config = DetectionConfig::default();
        let mut detector = LatencyDetector::new(&config);
        let mut out = Vec::new();
        for i in 0..1_000 {
            detector.observe(KeyId(0), &span(i, normal_ms(i)), &config, &mut out);
        }
        assert!(out.is_empty(), "{out:?}");
        detector.observe(KeyId(0), &span(5_000, 900.0), &config, &mut out);
        let [a] = out.as_slice() else {
            panic!("{out:?}")
        };
        assert_eq!(a.subtype, Subtype::LatencySpike);
        assert_eq!(a.severity, Severity::Critical);
        assert!((a.observed - 900.0).abs() < 0.01);
        assert!((a.expected - 50.0).abs() < 3.0, "{}", a.expected);
        assert!(a.description.contains("900.0 ms"), "{}", a.description);
    }

    #[test]
    fn nothing_is_judged_during_warm_up() {
        let config = DetectionConfig::default();
        let mut detector = LatencyDetector::new(&config);
        let mut out = Vec::new();
        for i in 0..u64::from(config.warmup_min_samples) - 1 {
            detector.observe(KeyId(0), &span(i, normal_ms(i)), &config, &mut out);
        }
        detector.observe(KeyId(0), &span(99, 10_000.0), &config, &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn an_incident_does_not_teach_the_baseline() {
        let config = DetectionConfig::default();
        let mut detector = LatencyDetector::new(&config);
        let mut out = Vec::new();
        for i in 0..500 {
            detector.observe(KeyId(0), &span(i, normal_ms(i)), &config, &mut out);
        }
        for i in 500..700 {
            detector.observe(KeyId(0), &span(i, 10.0 * normal_ms(i)), &config, &mut out);
        }
        assert_eq!(
            out.len(),
            200,
            "every slow span of a 200-span incident is reported"
        );
        let mean_ms = detector.baseline(KeyId(0)).unwrap().mean().exp();
        assert!((mean_ms - 50.0).abs() < 3.0, "{mean_ms}");
    }
}
