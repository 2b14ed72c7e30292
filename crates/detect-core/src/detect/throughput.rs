//! Throughput detector (PERFORMANCE / `throughput_spike`, `throughput_drop`, `service_silent`).
//!
//! Per (service, operation), the window's request count `c` is variance-stabilised with Anscombe's
//! transform `y = 2·√(c + 3/8)` (a Poisson count then has variance ≈ 1 whatever its mean) and judged
//! against a [`TrendBaseline`] of past windows, so slow daily drift is followed, not flagged, and
//! against the long-run level (an hour's exponentially weighted mean): a window must be far from both,
//! so traffic coming back after a dip is not a spike. Once a [`WeeklyProfile`] knows the hour from an
//! earlier week, the window must also be far from the same hour of past weeks, so a rhythm that comes
//! back every week (the Monday-morning ramp) is not an anomaly. `z` is the smallest of the distances.
//! A shift held over two windows is judged on their mean too: when this window and the one before are
//! both at least one spread out on the same side, `z₂ = (z₁ + z₂′)/√2` (`z₂′` against the prediction
//! made before the first window, which has since learned from it) may stand for `z`; a route whose
//! traffic halves for minutes can stay under the threshold in every single window.
//! With `ŷ` the prediction and `ĉ = (ŷ/2)² − 3/8` the expected count:
//! - spike: `z ≥ t(throughput_spike_threshold, n)`, `c ≥ throughput_min_change_ratio · ĉ` and
//!   `c − ĉ ≥ min_requests_per_window` (a rise from 1 to 3 requests is not a spike);
//! - drop: `z ≤ −t`, `c ≤ ĉ / throughput_min_change_ratio` and `ĉ ≥ min_requests_per_window`;
//! - silent service: every operation of a service that expected at least `min_requests_per_window`
//!   requests in all saw none; reported once for the service instead of one drop per operation.
//!
//! Windows past the threshold are not learned (reported or not), unless the key has been past it
//! for `relearn_after_seconds` (then the new level is the normal one). Score: |z|. Severity: `severity_cutoffs.throughput`.

use crate::anomaly::{Anomaly, Cause, Subtype, Window};
use crate::config::DetectionConfig;
use crate::span::TraceId;
use crate::stats::probability::two_sided_truncated_variance;
use crate::stats::{TrendBaseline, TrendParams, WeeklyProfile};

#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ThroughputBaseline {
    trend: TrendBaseline,
    /// The long-run level: an exponentially weighted mean of `y` over about an hour of windows.
    long_run: f64,
    long_run_windows: u32,
    anomalous_since: Option<u64>,
    #[serde(default)]
    weekly: WeeklyProfile,
    /// The last window judged, for the two-window test.
    #[serde(default)]
    previous: Option<Previous>,
}

/// One judged window, as the next window's two-window test needs it.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Previous {
    window_start: u64,
    /// Its distance (as judged alone).
    z: f64,
    /// What the trend predicted for it, before it was learned.
    trend_prediction: f64,
}

/// Both windows of the two-window test must be at least this far out on the same side.
const PAIR_MIN_Z: f64 = 1.0;

/// Windows the long-run level remembers.
const LONG_RUN_MEMORY: f64 = 60.0;

impl ThroughputBaseline {
    fn learn_long_run(&mut self, y: f64) {
        self.long_run_windows = self.long_run_windows.saturating_add(1);
        let weight = (1.0 / f64::from(self.long_run_windows)).max(1.0 / LONG_RUN_MEMORY);
        self.long_run += weight * (y - self.long_run);
    }

    /// The count the baseline expects next window; 0 while warming up.
    pub fn expected(&self, params: &TrendParams) -> f64 {
        if self.trend.is_warm(params) {
            expected_count(self.trend.predicted())
        } else {
            0.0
        }
    }
}

pub fn params(config: &DetectionConfig) -> TrendParams {
    TrendParams {
        warmup: config.warmup_min_windows,
        level_weight: 0.3,
        trend_weight: 0.1,
        memory: 30.0,
        // A Poisson count's spread on the Anscombe scale.
        min_spread: 1.0,
        truncation_variance: two_sided_truncated_variance(config.throughput_spike_threshold),
    }
}

fn anscombe(count: u64) -> f64 {
    2.0 * (count as f64 + 0.375).sqrt()
}

/// The distance of `y` from the trend's `prediction` and from every level, in spreads: the nearest of
/// them when all lie on one side of `y`, 0 otherwise; with the value it was measured from.
fn nearest_distance(y: f64, prediction: f64, spread: f64, levels: &[f64]) -> (f64, f64) {
    let (mut z, mut from) = ((y - prediction) / spread, prediction);
    for &level in levels {
        let z_level = (y - level) / spread;
        if z_level.signum() != z.signum() {
            z = 0.0;
        } else if z_level.abs() < z.abs() {
            (z, from) = (z_level, level);
        }
    }
    (z, from)
}

fn expected_count(y: f64) -> f64 {
    ((y / 2.0).powi(2) - 0.375).max(0.0)
}

/// What one key's window looked like against its baseline.
pub struct Verdict {
    pub subtype: Subtype,
    pub observed: u64,
    pub expected: f64,
    pub z: f64,
    pub threshold: f64,
    pub spread: f64,
}

/// Judges `count` for one key and learns it unless anomalous.
pub fn judge(
    baseline: &mut ThroughputBaseline,
    count: u64,
    service: &str,
    window: Window,
    config: &DetectionConfig,
    params: &TrendParams,
) -> Option<Verdict> {
    let y = anscombe(count);
    let judgement = baseline
        .trend
        .judge(y, config.throughput_threshold_for(service), params);
    // The window must be far from both the recent trend and the long-run level: traffic coming back
    // after a dip is far above the dip's trend but not above the long-run level, and is no spike.
    let seasonal = baseline.weekly.expected(window.start.0);
    let levels: Vec<f64> = std::iter::once(baseline.long_run).chain(seasonal).collect();
    let previous = baseline
        .previous
        .filter(|p| p.window_start + (window.end.0 - window.start.0) == window.start.0);
    let mut single = None;
    let judgement = judgement.map(|mut j| {
        let trend_prediction = j.predicted;
        (j.z, j.predicted) = nearest_distance(y, j.predicted, j.spread, &levels);
        single = Some(Previous {
            window_start: window.start.0,
            z: j.z,
            trend_prediction,
        });
        // A shift held over two windows, judged on their mean: against the prediction made before
        // the first of them (which has since learned from it), each window beyond one spread on the
        // same side. A halving of a route's traffic can be under the threshold in every single window.
        if let Some(p) = previous
            && p.z.abs() >= PAIR_MIN_Z
            && j.z.abs() >= PAIR_MIN_Z
            && p.z.signum() == j.z.signum()
        {
            let (z_now, from) = nearest_distance(y, p.trend_prediction, j.spread, &levels);
            let z_pair = (p.z + z_now) / std::f64::consts::SQRT_2;
            if z_pair.signum() == j.z.signum() && z_pair.abs() > j.z.abs() {
                (j.z, j.predicted) = (z_pair, from);
            }
        }
        j
    });
    baseline.previous = single;
    // The weekly profile learns every window: a weekly pattern is flagged the first week only.
    baseline.weekly.learn(window.start.0, y);
    let verdict = judgement.and_then(|j| {
        let expected = expected_count(j.predicted);
        let c = count as f64;
        let ratio = config.throughput_min_change_ratio;
        let min = f64::from(config.min_requests_per_window);
        let subtype = if j.z >= j.threshold && c >= ratio * expected && c - expected >= min {
            Subtype::ThroughputSpike
        } else if j.z <= -j.threshold && c <= expected / ratio && expected >= min {
            Subtype::ThroughputDrop
        } else {
            return None;
        };
        Some(Verdict {
            subtype,
            observed: count,
            expected,
            z: j.z,
            threshold: j.threshold,
            spread: j.spread,
        })
    });
    // A window past the threshold is not learned even when it is too small to report (a low-traffic
    // operation during a drop upstream): otherwise the baseline sinks with the drop and the recovery
    // looks like a spike.
    let beyond = judgement.is_some_and(|j| j.z.abs() >= j.threshold);
    if beyond {
        let since = *baseline.anomalous_since.get_or_insert(window.start.0);
        let relearn = config.relearn_after_seconds * crate::UnixNanos::NANOS_PER_SEC;
        if window.end.0.saturating_sub(since) >= relearn {
            baseline.trend.learn(y, params);
            baseline.learn_long_run(y);
        }
    } else {
        baseline.anomalous_since = None;
        baseline.trend.learn(y, params);
        baseline.learn_long_run(y);
    }
    verdict
}

/// The anomaly for a key's verdict.
pub fn anomaly(
    verdict: &Verdict,
    service: &str,
    operation: &str,
    window: Window,
    examples: Vec<TraceId>,
    config: &DetectionConfig,
) -> Anomaly {
    let direction = if verdict.subtype == Subtype::ThroughputSpike {
        "rose to"
    } else {
        "fell to"
    };
    let score = verdict.z.abs();
    Anomaly {
        cause: Cause::Unknown,
        subtype: verdict.subtype,
        severity: config.severity_cutoffs.throughput.grade(score),
        service: service.to_owned(),
        operation: Some(operation.to_owned()),
        client: None,
        peer_service: None,
        trace_id: examples.first().copied(),
        span_id: None,
        observed: verdict.observed as f64,
        expected: verdict.expected,
        spread: verdict.spread,
        score,
        threshold: verdict.threshold,
        unit: "requests/window",
        window,
        detected_at: window.end,
        examples,
        description: format!(
            "{operation} on {service} {direction} {obs} requests in the window where {exp:.0} were \
             expected: z = {z:.1} on the square-root scale (threshold {t:.1})",
            obs = verdict.observed,
            exp = verdict.expected,
            z = verdict.z,
            t = verdict.threshold,
        ),
    }
}

/// The anomaly for a service whose every operation fell silent.
pub fn silent_service(
    service: &str,
    expected: f64,
    operations: usize,
    window: Window,
    last_trace: Option<TraceId>,
    config: &DetectionConfig,
) -> Anomaly {
    // A silence is as far below its expectation as a count can be: z of 0 on the Anscombe scale.
    let score = (anscombe(expected.round() as u64) - anscombe(0)).max(0.0);
    Anomaly {
        cause: Cause::Itself,
        subtype: Subtype::ServiceSilent,
        severity: config.severity_cutoffs.throughput.grade(score),
        service: service.to_owned(),
        operation: None,
        client: None,
        peer_service: None,
        trace_id: last_trace,
        span_id: None,
        observed: 0.0,
        expected,
        spread: 1.0,
        score,
        threshold: config.throughput_threshold_for(service),
        unit: "requests/window",
        window,
        detected_at: window.end,
        examples: last_trace.into_iter().collect(),
        description: format!(
            "{service} sent no spans at all in the window where {expected:.0} requests over \
             {operations} operations were expected; the example is its last trace before the silence"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::span::UnixNanos;

    fn window(i: u64) -> Window {
        Window {
            start: UnixNanos::from_secs(i * 60),
            end: UnixNanos::from_secs(i * 60 + 60),
        }
    }

    fn run(counts: &[u64]) -> Vec<Option<Subtype>> {
        let config = DetectionConfig::default();
        let p = params(&config);
        let mut b = ThroughputBaseline::default();
        counts
            .iter()
            .enumerate()
            .map(|(i, c)| judge(&mut b, *c, "s", window(i as u64), &config, &p).map(|v| v.subtype))
            .collect()
    }

    #[test]
    fn a_weekly_ramp_is_flagged_the_first_week_only() {
        let config = DetectionConfig::default();
        let p = params(&config);
        let mut b = ThroughputBaseline::default();
        let week = 7 * 24 * 60;
        let wobble = steady(100, 10);
        // Three weeks of minutes at ~100 requests; every week, hour 9 of day 4 triples.
        let mut spikes_by_week = [0usize; 3];
        let mut other = 0;
        for i in 0..(3 * week) {
            let minute_of_week = i % week;
            let ramp = (4 * 24 * 60 + 9 * 60..4 * 24 * 60 + 10 * 60).contains(&minute_of_week);
            let mut count = wobble[(i % 10) as usize];
            if ramp {
                count *= 3;
            }
            // One real incident in week 3 at another hour.
            let incident = i == 2 * week + 2 * 24 * 60 + 15 * 60;
            if incident {
                count *= 4;
            }
            if let Some(v) = judge(&mut b, count, "s", window(i), &config, &p) {
                if v.subtype == Subtype::ThroughputSpike && ramp {
                    spikes_by_week[(i / week) as usize] += 1;
                } else if incident {
                    other += 1;
                }
            }
        }
        assert!(
            spikes_by_week[0] > 0,
            "the first week's ramp is new: {spikes_by_week:?}"
        );
        assert_eq!(spikes_by_week[1..], [0, 0], "later weeks expect it");
        assert_eq!(other, 1, "an incident at another hour is still found");
    }

    /// Poisson-like wobble around `mean`, deterministic.
    fn steady(mean: u64, n: usize) -> Vec<u64> {
        let wobble = [0i64, 7, -5, 3, -9, 4, -2, 8, -6, 1];
        (0..n)
            .map(|i| (mean as i64 + wobble[i % 10] * (mean as i64).isqrt() / 3) as u64)
            .collect()
    }

    #[test]
    fn a_drop_held_for_two_windows_is_seen_though_each_window_alone_is_not() {
        let level = 250;
        let mut once = steady(400, 40);
        once.push(level);
        once.extend(steady(400, 5));
        assert!(
            run(&once).iter().all(Option::is_none),
            "one window at {level} is under the threshold"
        );
        let mut held = steady(400, 40);
        held.extend([level; 3]);
        let verdicts = run(&held);
        assert_eq!(verdicts[40], None, "the first window alone is not enough");
        assert!(
            verdicts[41..].contains(&Some(Subtype::ThroughputDrop)),
            "{verdicts:?}"
        );
    }

    #[test]
    fn steady_traffic_is_quiet_and_a_spike_and_a_drop_are_seen() {
        let mut counts = steady(300, 40);
        counts.push(1_500);
        counts.extend(steady(300, 5));
        counts.push(20);
        let verdicts = run(&counts);
        assert!(
            verdicts[..40].iter().all(Option::is_none),
            "{:?}",
            &verdicts[..40]
        );
        assert_eq!(verdicts[40], Some(Subtype::ThroughputSpike));
        assert!(verdicts[41..46].iter().all(Option::is_none));
        assert_eq!(verdicts[46], Some(Subtype::ThroughputDrop));
    }

    #[test]
    fn a_rise_from_one_to_three_is_not_a_spike() {
        let mut counts = vec![1, 0, 1, 1, 2, 1, 0, 1, 1, 1, 1, 2, 1];
        counts.push(6);
        assert!(run(&counts).iter().all(Option::is_none));
    }
}
