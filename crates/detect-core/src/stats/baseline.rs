//! A robust, streaming Gaussian baseline of one transformed quantity (log-duration, a variance-
//! stabilised count, a log span count).
//!
//! - Warm-up: the first `warmup` values are kept; the baseline starts from their median and MAD
//!   (1.4826·MAD estimates σ), then the mean and variance of the values within 4 robust σ, so that
//!   outliers during warm-up do not set the baseline.
//! - After warm-up: an exponentially weighted mean and variance with weight `max(1/n, 1/memory)`, so
//!   early estimates are plain averages and later ones follow slow drift.
//! - No poisoning: values the caller judged anomalous are not learned. Because that truncates the
//!   distribution at the threshold, the variance is divided by the truncated-normal variance factor.
//! - Regime change: when more than half of the recent values are anomalous for `relearn_after`
//!   (event time), the level has moved for good and the baseline starts learning again.
//!
//! Memory: `warmup` values during warm-up, a few numbers afterwards.

use crate::stats::probability::confident_threshold;
use serde::{Deserialize, Serialize};

/// How a baseline learns. Chosen by each detector.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BaselineParams {
    /// Values before the baseline judges.
    pub warmup: u32,
    /// Effective number of values remembered once warm.
    pub memory: f64,
    /// Smallest spread (σ) the baseline reports, in the transformed unit.
    pub min_spread: f64,
    /// Variance factor of the truncation that not learning anomalies causes
    /// (see `probability::upper_truncated_variance`).
    pub truncation_variance: f64,
    /// Event-time nanoseconds a mostly-anomalous baseline waits before relearning.
    pub relearn_after_nanos: u64,
}

/// A baseline's opinion of one value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Judgement {
    /// (value − mean) / spread.
    pub z: f64,
    /// The caller's threshold raised for the number of values learned so far.
    pub threshold: f64,
    pub mean: f64,
    pub spread: f64,
    pub samples: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    warmup_values: Vec<f64>,
    warm: bool,
    n: u64,
    mean: f64,
    var: f64,
    /// Exponentially weighted share of recent values judged anomalous.
    anomalous_share: f64,
    /// Since when (event time) the share has stayed above one half.
    shifted_since: Option<u64>,
}

/// Weight of one value in the anomalous share (about the last 50 values).
const SHARE_WEIGHT: f64 = 0.02;

impl Baseline {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn is_warm(&self) -> bool {
        self.warm
    }

    pub fn samples(&self) -> u64 {
        if self.warm {
            self.n
        } else {
            self.warmup_values.len() as u64
        }
    }

    pub fn mean(&self) -> f64 {
        self.mean
    }

    pub fn spread(&self, params: &BaselineParams) -> f64 {
        (self.var / params.truncation_variance)
            .sqrt()
            .max(params.min_spread)
    }

    /// Judges `x` against the baseline with threshold `z_threshold`; `None` while warming up.
    pub fn judge(&self, x: f64, z_threshold: f64, params: &BaselineParams) -> Option<Judgement> {
        if !self.warm {
            return None;
        }
        let spread = self.spread(params);
        let effective_n = (self.n as f64).min(params.memory);
        Some(Judgement {
            z: (x - self.mean) / spread,
            threshold: confident_threshold(z_threshold, effective_n),
            mean: self.mean,
            spread,
            samples: self.n,
        })
    }

    /// Learns `x` unless `anomalous`; `now` is event time in nanoseconds.
    pub fn learn(&mut self, x: f64, anomalous: bool, now: u64, params: &BaselineParams) {
        if !x.is_finite() {
            return;
        }
        if !self.warm {
            self.warmup_values.push(x);
            if self.warmup_values.len() as u32 >= params.warmup {
                self.finish_warmup(params);
            }
            return;
        }
        if self.regime_changed(anomalous, now, params) {
            *self = Baseline::new();
            self.learn(x, false, now, params);
            return;
        }
        if anomalous {
            return;
        }
        self.n += 1;
        let weight = (1.0 / self.n as f64).max(1.0 / params.memory);
        let delta = x - self.mean;
        self.mean += weight * delta;
        self.var = (1.0 - weight) * (self.var + weight * delta * delta);
    }

    fn regime_changed(&mut self, anomalous: bool, now: u64, params: &BaselineParams) -> bool {
        let hit = if anomalous { 1.0 } else { 0.0 };
        self.anomalous_share += SHARE_WEIGHT * (hit - self.anomalous_share);
        if self.anomalous_share <= 0.5 {
            self.shifted_since = None;
            return false;
        }
        let since = *self.shifted_since.get_or_insert(now);
        now.saturating_sub(since) >= params.relearn_after_nanos
    }

    fn finish_warmup(&mut self, params: &BaselineParams) {
        let mut values = std::mem::take(&mut self.warmup_values);
        let median = median_in_place(&mut values);
        let mut deviations: Vec<f64> = values.iter().map(|v| (v - median).abs()).collect();
        let robust_sigma = (1.4826 * median_in_place(&mut deviations)).max(params.min_spread);
        let kept: Vec<f64> = values
            .into_iter()
            .filter(|v| (v - median).abs() <= 4.0 * robust_sigma)
            .collect();
        let n = kept.len().max(1) as f64;
        let mean = kept.iter().sum::<f64>() / n;
        let var = kept.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n - 1.0).max(1.0);
        self.mean = mean;
        self.var = var;
        self.n = kept.len() as u64;
        self.warm = true;
    }
}

/// The median of `values` (reordered); 0 for an empty slice.
fn median_in_place(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mid = values.len() / 2;
    let (_, m, _) = values.select_nth_unstable_by(mid, f64::total_cmp);
    *m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::probability::upper_truncated_variance;
    use proptest::prelude::*;

    fn params() -> BaselineParams {
        BaselineParams {
            warmup: 20,
            memory: 500.0,
            min_spread: 0.01,
            truncation_variance: upper_truncated_variance(3.0),
            relearn_after_nanos: 1_000,
        }
    }

    /// A seeded normal sequence: the same on every run.
    fn normals(n: usize, mean: f64, sd: f64) -> Vec<f64> {
        use rand::SeedableRng;
        use rand_distr::Distribution;
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x9e37_79b9_7f4a_7c15);
        let normal = rand_distr::Normal::new(mean, sd).expect("a finite spread");
        (0..n).map(|_| normal.sample(&mut rng)).collect()
    }

    #[test]
    fn warms_up_then_judges_and_learns_the_distribution() {
        let p = params();
        let mut b = Baseline::new();
        for (i, x) in normals(2_000, 5.0, 0.5).into_iter().enumerate() {
            let anomalous = b.judge(x, 3.0, &p).is_some_and(|j| j.z >= j.threshold);
            b.learn(x, anomalous, i as u64, &p);
        }
        assert!(b.is_warm());
        assert!((b.mean() - 5.0).abs() < 0.05, "{}", b.mean());
        assert!((b.spread(&p) - 0.5).abs() < 0.05, "{}", b.spread(&p));
    }

    #[test]
    fn outliers_in_warmup_and_after_do_not_poison_the_baseline() {
        let p = params();
        let mut b = Baseline::new();
        let mut values = normals(400, 1.0, 0.1);
        for i in (0..400).step_by(10) {
            values[i] = 50.0; // 10 % wild outliers, from the very start
        }
        for (i, x) in values.into_iter().enumerate() {
            let anomalous = b.judge(x, 3.0, &p).is_some_and(|j| j.z >= j.threshold);
            b.learn(x, anomalous, i as u64, &p);
        }
        assert!((b.mean() - 1.0).abs() < 0.05, "{}", b.mean());
        assert!(b.spread(&p) < 0.2, "{}", b.spread(&p));
    }

    #[test]
    fn a_lasting_level_shift_is_relearned() {
        let p = params();
        let mut b = Baseline::new();
        let before = normals(300, 1.0, 0.1);
        let after = normals(300, 3.0, 0.1);
        for (i, x) in before.into_iter().chain(after).enumerate() {
            let anomalous = b.judge(x, 3.0, &p).is_some_and(|j| j.z >= j.threshold);
            b.learn(x, anomalous, i as u64 * 10, &p);
        }
        assert!((b.mean() - 3.0).abs() < 0.1, "{}", b.mean());
    }

    proptest! {
        #[test]
        fn never_nan_whatever_the_input(values in proptest::collection::vec(-1e12f64..1e12, 0..200)) {
            let p = params();
            let mut b = Baseline::new();
            for (i, x) in values.iter().enumerate() {
                let anomalous = b.judge(*x, 3.0, &p).is_some_and(|j| j.z >= j.threshold);
                b.learn(*x, anomalous, i as u64, &p);
                if let Some(j) = b.judge(*x, 3.0, &p) {
                    prop_assert!(j.z.is_finite() && j.spread > 0.0 && j.threshold >= 3.0);
                }
            }
            prop_assert!(!b.mean().is_nan());
        }

        #[test]
        fn z_is_invariant_under_shift_and_scale(shift in -100.0f64..100.0, scale in 0.5f64..50.0) {
            let base = params();
            let scaled_params = BaselineParams { min_spread: base.min_spread * scale, ..base };
            let values = normals(200, 0.0, 1.0);
            let (mut a, mut b) = (Baseline::new(), Baseline::new());
            for (i, x) in values.iter().enumerate() {
                a.learn(*x, false, i as u64, &base);
                b.learn(x * scale + shift, false, i as u64, &scaled_params);
            }
            let ja = a.judge(2.5, 3.0, &base).unwrap();
            let jb = b.judge(2.5 * scale + shift, 3.0, &scaled_params).unwrap();
            prop_assert!((ja.z - jb.z).abs() < 1e-6 * ja.z.abs().max(1.0));
        }
    }
}
