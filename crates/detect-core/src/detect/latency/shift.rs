//! The window-level latency tests: did one (service, operation)'s durations in a window move away from
//! its quantile baseline? Two exact tests, each with a minimum count and absolute and relative
//! conditions, as the error-rate rule has:
//! - **tail**: `k` of the window's `n` values lie above the baseline's p99. By chance that is
//!   Binomial(n, 1 %); the window is slow when `P(X ≥ k) ≤ α`, `k ≥ 3`, `k/n ≥` [`MIN_TAIL_SHARE`] (five
//!   times the usual 1 %) and the window's p99 is at least `latency_min_excess_ms` above the usual;
//! - **median**: the window's median is at least [`MEDIAN_RATIO`] × the baseline's. Half the window (or
//!   more) then lies above `MEDIAN_RATIO × median`, where the baseline puts a share `s₀`; the move is
//!   significant when `P(X ≥ k | n, s₀) ≤ α`, and it must be `latency_min_excess_ms` or more.
//!
//! Each test must also be beyond the window-to-window spread of its statistic over ordinary windows
//! (`z` standard deviations, [`Dispersion`]): real traffic is overdispersed.
//!
//! `α` is set by the caller (the window's family-wise level over the keys judged). A baseline learned
//! from `W` values knows a share `s` only roughly (about `√(sW)` values either way), so the chance
//! share a test assumes is its upper bound `(sW + 2√(sW) + 1) / W`: a young baseline's p99 is not taken
//! at its word (at W = 100 the "1 %" above p99 is tested as 4 %, at W = 5,000 as 1.3 %).

use crate::stats::probability::binomial_upper_tail;
use crate::stats::{Dispersion, QuantileSketch};

/// The smallest share of a window above the usual p99 that counts as slow: five times the 1 % expected.
pub const MIN_TAIL_SHARE: f64 = 0.05;
/// How far the median must move to count as a shift of the whole operation.
pub const MEDIAN_RATIO: f64 = 1.5;
/// Fewer values than this in a window are not judged.
pub const MIN_WINDOW_VALUES: f64 = 5.0;

/// A window's durations against a baseline, when they moved.
#[derive(Clone, Debug, PartialEq)]
pub struct Shift {
    /// Values in the window.
    pub n: u64,
    /// Values affected: above the usual p99, or above `MEDIAN_RATIO ×` the usual median when the median moved.
    pub affected: u64,
    /// What moved: the window's median against the usual one, or its p99 against the usual p99.
    pub observed_ms: f64,
    pub expected_ms: f64,
    pub median_moved: bool,
    pub p_value: f64,
    pub usual_p99_ms: f64,
    pub window_p99_ms: f64,
}

impl Shift {
    /// The share of the window's requests affected.
    pub fn share(&self) -> f64 {
        self.affected as f64 / self.n.max(1) as f64
    }

    pub fn ratio(&self) -> f64 {
        self.observed_ms / self.expected_ms.max(1e-9)
    }
}

/// The upper bound of a share `s` estimated from `w` values: two standard deviations of a Poisson
/// count above it, plus one value.
fn upper_share(s: f64, w: f64) -> f64 {
    let w = w.max(1.0);
    let count = s * w;
    ((count + 2.0 * count.sqrt() + 1.0) / w).min(1.0)
}

/// The two statistics of a window that the tests move on, for learning their window-to-window spread:
/// the share above the usual p99, and the log of the median's ratio to the usual median.
pub fn window_stats(baseline: &QuantileSketch, window: &QuantileSketch) -> Option<(f64, f64)> {
    if window.total() < MIN_WINDOW_VALUES {
        return None;
    }
    let share = window.share_above(baseline.quantile(0.99)?);
    let ratio = window.quantile(0.5)? / baseline.quantile(0.5)?.max(1e-9);
    Some((share, ratio.max(1e-9).ln()))
}

/// The window-to-window spread of a key's two statistics (see [`Dispersion`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Spread {
    pub tail_share: Dispersion,
    pub log_median_ratio: Dispersion,
}

impl Spread {
    pub fn learn(&mut self, baseline: &QuantileSketch, window: &QuantileSketch) {
        if let Some((share, log_ratio)) = window_stats(baseline, window) {
            self.tail_share.learn(share);
            self.log_median_ratio.learn(log_ratio);
        }
    }
}

/// Judges `window` against `baseline`; `None` when too few values, or when nothing moved. Each test
/// must also be beyond the ordinary windows' own `spread` by `z`.
pub fn judge(
    baseline: &QuantileSketch,
    window: &QuantileSketch,
    spread: &Spread,
    z: f64,
    alpha: f64,
    min_excess_ms: f64,
) -> Option<Shift> {
    judge_from(
        baseline,
        window,
        spread,
        z,
        alpha,
        min_excess_ms,
        MIN_WINDOW_VALUES,
    )
}

/// [`judge`], for windows of at least `min_values` values (the tail test still needs three above the
/// usual p99, and both tests their binomial chance at most `alpha`).
pub fn judge_from(
    baseline: &QuantileSketch,
    window: &QuantileSketch,
    spread: &Spread,
    z: f64,
    alpha: f64,
    min_excess_ms: f64,
    min_values: f64,
) -> Option<Shift> {
    let n_f = window.total();
    if n_f < min_values {
        return None;
    }
    let n = n_f.round() as u64;
    let usual_p99 = baseline.quantile(0.99)?;
    let usual_median = baseline.quantile(0.5)?;
    let window_p99 = window.quantile(0.99)?;
    let window_median = window.quantile(0.5)?;

    let limit = MEDIAN_RATIO * usual_median;
    let above_limit = window.weight_above(limit).round() as u64;
    let s0 = upper_share(baseline.share_above(limit), baseline.total());
    let median_p = binomial_upper_tail(above_limit, n, s0);
    let log_ratio = (window_median / usual_median.max(1e-9)).max(1e-9).ln();
    let median_moved = above_limit * 2 >= n
        && median_p <= alpha
        && spread.log_median_ratio.is_beyond(log_ratio, z)
        && window_median - usual_median >= min_excess_ms;

    let above_p99 = window.weight_above(usual_p99).round() as u64;
    let tail_p = binomial_upper_tail(above_p99, n, upper_share(0.01, baseline.total()));
    let tail_moved = above_p99 >= 3
        && above_p99 as f64 >= MIN_TAIL_SHARE * n_f
        && tail_p <= alpha
        && spread.tail_share.is_beyond(above_p99 as f64 / n_f, z)
        && window_p99 - usual_p99 >= min_excess_ms;

    if median_moved {
        Some(Shift {
            n,
            affected: above_limit.max(if tail_moved { above_p99 } else { 0 }),
            observed_ms: window_median,
            expected_ms: usual_median,
            median_moved: true,
            p_value: median_p,
            usual_p99_ms: usual_p99,
            window_p99_ms: window_p99,
        })
    } else if tail_moved {
        Some(Shift {
            n,
            affected: above_p99,
            observed_ms: window_p99,
            expected_ms: usual_p99,
            median_moved: false,
            p_value: tail_p,
            usual_p99_ms: usual_p99,
            window_p99_ms: window_p99,
        })
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A heavy-tailed, bimodal operation: mostly 5–15 ms, one in ten 60–120 ms, one in a hundred 300 ms+.
    fn usual(i: u64) -> f64 {
        let u = (i * 7_919 % 1_000) as f64 / 1_000.0;
        match i % 100 {
            0 => 300.0 + 700.0 * u,
            1..=10 => 60.0 + 60.0 * u,
            _ => 5.0 + 10.0 * u,
        }
    }

    fn sketch(values: impl IntoIterator<Item = f64>) -> QuantileSketch {
        let mut s = QuantileSketch::new();
        for v in values {
            s.add(v);
        }
        s
    }

    #[test]
    fn ordinary_windows_of_a_heavy_tailed_operation_are_quiet() {
        let baseline = sketch((0..5_000).map(usual));
        for w in 0..50u64 {
            let window = sketch((0..200).map(|i| usual(w * 7_001 + i * 13)));
            assert_eq!(
                judge(&baseline, &window, &Spread::default(), 3.0, 1e-5, 1.0),
                None,
                "window {w}"
            );
        }
    }

    #[test]
    fn a_doubled_median_and_a_fat_tail_are_found() {
        let baseline = sketch((0..5_000).map(usual));
        let doubled = sketch((0..200).map(|i| 2.0 * usual(i)));
        let shift =
            judge(&baseline, &doubled, &Spread::default(), 3.0, 1e-5, 1.0).expect("median ×2");
        assert!(shift.median_moved);
        assert!((1.7..2.3).contains(&shift.ratio()), "{shift:?}");

        // The median stays, but one request in five takes over a second.
        let tail = sketch((0..200).map(|i| if i % 5 == 0 { 1_500.0 } else { usual(i) }));
        let shift = judge(&baseline, &tail, &Spread::default(), 3.0, 1e-5, 1.0).expect("tail");
        assert!(!shift.median_moved);
        assert!((0.19..0.23).contains(&shift.share()), "{shift:?}");
    }

    #[test]
    fn a_few_values_need_strong_evidence() {
        let baseline = sketch((0..5_000).map(usual));
        // Two of four above p99: too few values to judge at all.
        assert_eq!(
            judge(
                &baseline,
                &sketch([2_000.0, 2_000.0, 8.0, 9.0]),
                &Spread::default(),
                3.0,
                1e-5,
                1.0
            ),
            None
        );
        // All of six far above: significant.
        assert!(
            judge(
                &baseline,
                &sketch([3_000.0; 6]),
                &Spread::default(),
                3.0,
                1e-5,
                1.0
            )
            .is_some()
        );
    }
}
