//! Error-rate detector (PERFORMANCE / `error_rate_spike`).
//!
//! When a window closes, for each (service, operation) with `n ≥ min_requests_per_window` requests of
//! which `e` failed (status ERROR, or 5xx on a server span), with the operation's own baseline error
//! ratio `p₀`, the window is anomalous when all of these hold:
//! - absolute: `e/n > error_rate_threshold`;
//! - relative: `e/n ≥ error_rate_min_ratio_to_baseline · p₀`;
//! - significant: `P(X ≥ e | X ~ Binomial(n, p₀)) ≤ error_rate_max_p_value`, so that 2 failures out of
//!   20 on an operation that fails 1 % of the time is not an incident.
//!
//! `p₀ = (E + 50·p_prior) / (N + 50)` over exponentially decayed (×0.98 a window) totals of the
//! operation's normal windows, with a weak prior `p_prior = error_rate_threshold / 10`. Anomalous
//! windows are not learned unless the operation has been anomalous for `relearn_after_seconds`.
//! The first `warmup_min_windows` windows with traffic are learned, not judged.
//! Score: the error ratio. Severity: `severity_cutoffs.error_rate`. Where at least half of the key's
//! failures seen in assembled traces started in one other service (followed down failing children,
//! [`crate::detect::error_blame`]), the finding points there (`cause` peer, `peer_service`).

use crate::anomaly::{Anomaly, Cause, Subtype, Window};
use crate::config::DetectionConfig;
use crate::detect::window_counts::KeyCounts;
use crate::stats::probability::binomial_upper_tail;

const DECAY: f64 = 0.98;
const PRIOR_REQUESTS: f64 = 50.0;

#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ErrorBaseline {
    requests: f64,
    errors: f64,
    windows: u32,
    anomalous_since: Option<u64>,
}

impl ErrorBaseline {
    fn ratio(&self, prior: f64) -> f64 {
        (self.errors + PRIOR_REQUESTS * prior) / (self.requests + PRIOR_REQUESTS)
    }

    fn learn(&mut self, counts: &KeyCounts) {
        self.requests = self.requests * DECAY + counts.requests as f64;
        self.errors = self.errors * DECAY + counts.errors as f64;
        self.windows += 1;
    }
}

/// Judges one key's window; learns it into `baseline` unless anomalous.
pub fn judge(
    baseline: &mut ErrorBaseline,
    counts: &KeyCounts,
    service: &str,
    operation: &str,
    window: Window,
    config: &DetectionConfig,
) -> Option<Anomaly> {
    if counts.requests < u64::from(config.min_requests_per_window) {
        return None;
    }
    if baseline.windows < config.warmup_min_windows {
        baseline.learn(counts);
        return None;
    }
    let threshold = config.error_rate_threshold_for(service);
    let expected = baseline.ratio(threshold / 10.0);
    let (n, e) = (counts.requests, counts.errors);
    let observed = e as f64 / n as f64;
    let p_value = binomial_upper_tail(e, n, expected);
    let anomalous = observed > threshold
        && observed >= config.error_rate_min_ratio_to_baseline * expected
        && p_value <= config.error_rate_max_p_value;
    if !anomalous {
        baseline.anomalous_since = None;
        baseline.learn(counts);
        return None;
    }
    let since = *baseline.anomalous_since.get_or_insert(window.start.0);
    if window.end.0.saturating_sub(since)
        >= config.relearn_after_seconds * crate::UnixNanos::NANOS_PER_SEC
    {
        baseline.learn(counts);
    }
    let spread = (expected * (1.0 - expected) / n as f64).sqrt();
    // Failures that mostly started in a callee are that callee's, seen from here.
    let started_in = counts.failures_mostly_in();
    let (cause, peer_service, where_) = match started_in {
        Some((peer, traced)) => (
            Cause::Peer,
            Some(peer.to_owned()),
            format!(
                "; {traced} of the {} failures traced started in {peer}",
                counts.errors_traced
            ),
        ),
        None => (Cause::Itself, None, String::new()),
    };
    Some(Anomaly {
        cause,
        subtype: Subtype::ErrorRateSpike,
        severity: config.severity_cutoffs.error_rate.grade(observed),
        service: service.to_owned(),
        operation: Some(operation.to_owned()),
        client: None,
        peer_service,
        trace_id: counts.error_examples.first().copied(),
        span_id: None,
        observed,
        expected,
        spread,
        score: observed,
        threshold,
        unit: "ratio",
        window,
        detected_at: window.end,
        examples: counts.error_examples.clone(),
        description: format!(
            "{operation} on {service} failed {e} of {n} requests ({pct:.1} %) in the window, where \
             {base:.2} % is usual (threshold {thr:.1} %); that many failures by chance has probability {p_value:.1e}{where_}",
            pct = observed * 100.0,
            base = expected * 100.0,
            thr = threshold * 100.0,
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::span::{TraceId, UnixNanos};

    fn counts(requests: u64, errors: u64) -> KeyCounts {
        KeyCounts {
            requests,
            errors,
            examples: vec![TraceId([1; 16])],
            error_examples: if errors > 0 {
                vec![TraceId([2; 16])]
            } else {
                vec![]
            },
            ..KeyCounts::default()
        }
    }

    fn window(i: u64) -> Window {
        Window {
            start: UnixNanos::from_secs(i * 60),
            end: UnixNanos::from_secs(i * 60 + 60),
        }
    }

    fn warmed(config: &DetectionConfig) -> ErrorBaseline {
        let mut b = ErrorBaseline::default();
        for i in 0..20 {
            assert!(judge(&mut b, &counts(200, 2), "s", "op", window(i), config).is_none());
        }
        b
    }

    #[test]
    fn one_failure_of_one_request_is_not_an_incident() {
        let config = DetectionConfig::default();
        let mut b = warmed(&config);
        assert!(judge(&mut b, &counts(1, 1), "s", "op", window(30), &config).is_none());
    }

    #[test]
    fn a_chance_cluster_is_not_significant_but_a_real_rise_is() {
        let config = DetectionConfig::default();
        let mut b = warmed(&config);
        // 2 of 20 = 10 % > 5 %, but for an operation failing 1 % of the time that happens (p ≈ 0.017).
        assert!(judge(&mut b, &counts(20, 2), "s", "op", window(30), &config).is_none());
        let a = judge(&mut b, &counts(200, 60), "s", "op", window(31), &config).unwrap();
        assert_eq!(a.subtype, Subtype::ErrorRateSpike);
        assert!((a.observed - 0.3).abs() < 1e-9);
        assert!(a.expected < 0.02, "{}", a.expected);
        assert_eq!(a.examples, vec![TraceId([2; 16])]);
        assert!(a.description.contains("60 of 200"), "{}", a.description);
    }

    #[test]
    fn a_chronically_failing_operation_is_judged_against_itself() {
        let config = DetectionConfig::default();
        let mut b = ErrorBaseline::default();
        for i in 0..20 {
            judge(&mut b, &counts(200, 20), "s", "op", window(i), &config);
        }
        // 11 % on an operation that always fails 10 % of the time: above 5 %, but not ≥ 2× its own.
        assert!(judge(&mut b, &counts(200, 22), "s", "op", window(30), &config).is_none());
    }

    #[test]
    fn failures_that_started_in_a_callee_point_at_it() {
        let config = DetectionConfig::default();
        let mut b = warmed(&config);
        let mut c = counts(200, 60);
        c.errors_traced = 50;
        c.failed_in.insert("cart".into(), 40);
        c.failed_in.insert("users".into(), 5);
        let a = judge(&mut b, &c, "gateway", "GET /v1/cart", window(30), &config).unwrap();
        assert_eq!(a.cause, Cause::Peer);
        assert_eq!(a.peer_service.as_deref(), Some("cart"));
        assert!(
            a.description
                .contains("40 of the 50 failures traced started in cart"),
            "{}",
            a.description
        );

        // Fewer than half traced to one callee: its own.
        let mut c = counts(200, 60);
        c.errors_traced = 50;
        c.failed_in.insert("cart".into(), 20);
        let a = judge(&mut b, &c, "gateway", "GET /v1/cart", window(31), &config).unwrap();
        assert_eq!((a.cause, a.peer_service), (Cause::Itself, None));
    }
}
