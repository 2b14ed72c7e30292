//! A mergeable, bounded-memory quantile sketch of durations, in the manner of DDSketch: log-spaced
//! buckets (each 4 % wider than the one below, so any quantile is known within ±2 % of its value),
//! weighted counts so that a baseline can forget by scaling, and at most [`MAX_BUCKETS`] buckets (the
//! lowest are folded together when a wider range arrives: the tail that matters is the slow one).
//!
//! Real durations are heavy-tailed and multi-modal (a cache hit or miss, one row or a thousand): a
//! quantile baseline describes them as they are, where a mean and σ of log durations assumes one bell.
//! Beyond the learned p99 the tail is extrapolated from the p99–p99.9 stretch as a power law
//! ([`QuantileSketch::survival`]), so a trace far past anything seen gets a finite, small probability
//! rather than zero.

use serde::{Deserialize, Serialize};

/// ln of the ratio between bucket bounds: 1.04.
const LN_GAMMA: f64 = 0.039_220_713_153_281_3;
/// Durations below this (1 µs) share the lowest bucket.
const MIN_MS: f64 = 0.001;
/// 1.04^512 ≈ 5·10⁸: a microsecond to several days in full resolution.
pub const MAX_BUCKETS: usize = 512;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct QuantileSketch {
    /// The bucket index of `counts[0]`.
    offset: i32,
    counts: Vec<f64>,
    total: f64,
}

fn bucket_of(ms: f64) -> i32 {
    (ms.max(MIN_MS).ln() / LN_GAMMA).floor() as i32
}

fn lower_bound(index: i32) -> f64 {
    (f64::from(index) * LN_GAMMA).exp()
}

impl QuantileSketch {
    pub fn new() -> Self {
        Self::default()
    }

    /// The weight held (the number of values, after any scaling).
    pub fn total(&self) -> f64 {
        self.total
    }

    pub fn is_empty(&self) -> bool {
        self.total <= 0.0
    }

    pub fn add(&mut self, ms: f64) {
        self.add_weighted(bucket_of(ms), 1.0);
    }

    fn add_weighted(&mut self, index: i32, weight: f64) {
        if self.counts.is_empty() {
            self.offset = index;
            self.counts.push(0.0);
        }
        if index < self.offset {
            let grow = (self.offset - index) as usize;
            self.counts.splice(0..0, std::iter::repeat_n(0.0, grow));
            self.offset = index;
        } else if index >= self.offset + self.counts.len() as i32 {
            self.counts.resize((index - self.offset) as usize + 1, 0.0);
        }
        self.counts[(index - self.offset) as usize] += weight;
        self.total += weight;
        self.collapse_lowest();
    }

    /// Folds the lowest buckets into one so that at most [`MAX_BUCKETS`] remain.
    fn collapse_lowest(&mut self) {
        if self.counts.len() <= MAX_BUCKETS {
            return;
        }
        let extra = self.counts.len() - MAX_BUCKETS;
        let folded: f64 = self.counts[..=extra].iter().sum();
        self.counts.drain(..extra);
        self.counts[0] = folded;
        self.offset += extra as i32;
    }

    /// Adds every value of `other`.
    pub fn merge(&mut self, other: &QuantileSketch) {
        for (i, &w) in other.counts.iter().enumerate() {
            if w > 0.0 {
                self.add_weighted(other.offset + i as i32, w);
            }
        }
    }

    /// Multiplies every weight by `factor` (forgetting: older values count less).
    pub fn scale(&mut self, factor: f64) {
        for w in &mut self.counts {
            *w *= factor;
        }
        self.total *= factor;
    }

    /// The value below which a share `q` of the weight lies, interpolated within its bucket on the
    /// log scale; `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.is_empty() {
            return None;
        }
        let rank = q.clamp(0.0, 1.0) * self.total;
        let mut below = 0.0;
        for (i, &w) in self.counts.iter().enumerate() {
            if w > 0.0 && below + w >= rank {
                let fraction = ((rank - below) / w).clamp(0.0, 1.0);
                let index = self.offset + i as i32;
                return Some((LN_GAMMA * (f64::from(index) + fraction)).exp());
            }
            below += w;
        }
        self.max()
    }

    /// The upper bound of the highest non-empty bucket.
    pub fn max(&self) -> Option<f64> {
        let last = self.counts.iter().rposition(|&w| w > 0.0)?;
        Some(lower_bound(self.offset + last as i32 + 1))
    }

    /// The weight of values above `ms` (its own bucket counted by the share above it, on the log scale).
    pub fn weight_above(&self, ms: f64) -> f64 {
        if self.is_empty() {
            return 0.0;
        }
        let x = ms.max(MIN_MS).ln() / LN_GAMMA;
        let index = x.floor() as i32;
        let mut above = 0.0;
        for (i, &w) in self.counts.iter().enumerate() {
            let b = self.offset + i as i32;
            if b > index {
                above += w;
            } else if b == index {
                above += w * (1.0 - (x - x.floor()));
            }
        }
        above
    }

    /// The share of the weight above `ms`.
    pub fn share_above(&self, ms: f64) -> f64 {
        if self.is_empty() {
            return 0.0;
        }
        self.weight_above(ms) / self.total
    }

    /// The probability that a value drawn from what was learned exceeds `ms`. Up to the p99 it is the
    /// learned share; beyond it the tail is a power law fitted between p99 and p99.9 (Pareto, as heavy
    /// latency tails are), `0.01 · (ms / p99)^(−a)` with `a = ln 10 / ln(p99.9 / p99)`, so values past
    /// everything seen get a small finite probability rather than zero.
    pub fn survival(&self, ms: f64) -> f64 {
        // At least two buckets between p99 and p99.9 (in `tail`): a p99.9 estimated from few values
        // must not make the tail look thinner than the sketch can tell.
        let Some((p99, exponent)) = self.tail() else {
            return 1.0;
        };
        if ms <= p99 {
            return self.share_above(ms).max(0.01);
        }
        Self::tail_survival(ms, p99, exponent)
    }

    /// The p99 and the exponent of the power-law tail beyond it, as [`QuantileSketch::survival`] uses
    /// them; computed once per learning so that judging a value is a few operations.
    pub fn tail(&self) -> Option<(f64, f64)> {
        let (p99, p999) = (self.quantile(0.99)?, self.quantile(0.999)?);
        let log_span = (p999 / p99).ln().max(2.0 * LN_GAMMA);
        Some((p99, std::f64::consts::LN_10 / log_span))
    }

    /// The survival beyond the p99 from [`QuantileSketch::tail`]'s parameters; at or below the p99, 1
    /// (not extreme: such a value is never the one that makes a trace extreme).
    pub fn tail_survival(ms: f64, p99: f64, exponent: f64) -> f64 {
        if ms <= p99 {
            1.0
        } else {
            0.01 * (ms / p99).powf(-exponent)
        }
    }

    /// Buckets in use (for memory figures).
    pub fn buckets(&self) -> usize {
        self.counts.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(values: impl IntoIterator<Item = f64>) -> QuantileSketch {
        let mut s = QuantileSketch::new();
        for v in values {
            s.add(v);
        }
        s
    }

    #[test]
    fn quantiles_are_within_two_percent() {
        let s = from((1..=10_000).map(f64::from));
        for q in [0.01, 0.5, 0.9, 0.99, 0.999] {
            let exact = q * 10_000.0;
            let got = s.quantile(q).unwrap();
            assert!((got / exact - 1.0).abs() < 0.021, "q {q}: {got} vs {exact}");
        }
        assert!((s.share_above(9_000.0) - 0.1).abs() < 0.005);
    }

    #[test]
    fn a_bimodal_distribution_keeps_both_modes() {
        // Cache hits at 2 ms, misses at 80 ms: the median and p99 are where the data is, not between.
        let s = from((0..1_000).map(|i| if i % 5 == 0 { 80.0 } else { 2.0 }));
        let median = s.quantile(0.5).unwrap();
        let p99 = s.quantile(0.99).unwrap();
        assert!((median / 2.0 - 1.0).abs() < 0.05, "{median}");
        assert!((p99 / 80.0 - 1.0).abs() < 0.05, "{p99}");
        assert!(s.share_above(40.0) > 0.19 && s.share_above(40.0) < 0.21);
    }

    #[test]
    fn merging_equals_adding_and_scaling_keeps_shape() {
        let mut a = from((1..=500).map(f64::from));
        let b = from((501..=1_000).map(f64::from));
        let whole = from((1..=1_000).map(f64::from));
        a.merge(&b);
        assert_eq!(a.total(), whole.total());
        assert_eq!(a.quantile(0.9), whole.quantile(0.9));
        a.scale(0.5);
        assert_eq!(a.total(), 500.0);
        assert!((a.quantile(0.9).unwrap() / whole.quantile(0.9).unwrap() - 1.0).abs() < 1e-9);
    }

    #[test]
    fn memory_is_bounded_whatever_the_range() {
        let s = from((0..2_000).map(|i| 1e-3 * 1.02f64.powi(i)));
        assert!(s.buckets() <= MAX_BUCKETS, "{}", s.buckets());
        // The slow end keeps its resolution.
        let top = 1e-3 * 1.02f64.powi(1_999);
        assert!((s.max().unwrap() / top - 1.0).abs() < 0.05);
    }

    #[test]
    fn survival_is_the_share_up_to_p99_then_a_decreasing_tail() {
        let s = from((1..=10_000).map(f64::from));
        assert!((s.survival(5_000.0) - 0.5).abs() < 0.01);
        let at_max = s.survival(10_000.0);
        let far = s.survival(100_000.0);
        assert!(at_max < 0.01 && at_max > 1e-4, "{at_max}");
        assert!(far < at_max && far > 0.0, "{far}");
    }
}
