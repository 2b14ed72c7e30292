//! A level-and-trend baseline (Holt's double exponential smoothing) for one series of window values.
//!
//! Traffic drifts through the day; a plain moving average lags behind a ramp and calls the ramp a
//! spike. Holt's method predicts `level + trend` and updates both from the prediction error
//! `ε = y − ŷ`: `level ← ŷ + α·ε`, `trend ← trend + α·β·ε`. The spread is an exponentially weighted
//! RMS of ε (weight `max(1/n, 1/memory)`), divided by the two-sided truncation factor because
//! anomalous windows are not learned, and never below `min_spread`. After warm-up each error is clipped
//! to ±3 spreads before it is learned (Huber), so a single odd window moves the baseline only a little.

use crate::stats::probability::confident_threshold;
use serde::{Deserialize, Serialize};

/// Errors are clipped to this many spreads before they are learned (after warm-up).
const CLIP_SPREADS: f64 = 3.0;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrendParams {
    pub warmup: u32,
    pub level_weight: f64,
    pub trend_weight: f64,
    pub memory: f64,
    pub min_spread: f64,
    pub truncation_variance: f64,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrendJudgement {
    pub z: f64,
    pub threshold: f64,
    pub predicted: f64,
    pub spread: f64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TrendBaseline {
    n: u64,
    level: f64,
    trend: f64,
    var: f64,
}

impl TrendBaseline {
    pub fn is_warm(&self, params: &TrendParams) -> bool {
        self.n >= u64::from(params.warmup)
    }

    pub fn spread(&self, params: &TrendParams) -> f64 {
        (self.var / params.truncation_variance)
            .sqrt()
            .max(params.min_spread)
    }

    pub fn predicted(&self) -> f64 {
        self.level + self.trend
    }

    pub fn judge(&self, y: f64, z_threshold: f64, params: &TrendParams) -> Option<TrendJudgement> {
        if !self.is_warm(params) {
            return None;
        }
        let spread = self.spread(params);
        let predicted = self.predicted();
        Some(TrendJudgement {
            z: (y - predicted) / spread,
            threshold: confident_threshold(z_threshold, (self.n as f64).min(params.memory)),
            predicted,
            spread,
        })
    }

    pub fn learn(&mut self, y: f64, params: &TrendParams) {
        if !y.is_finite() {
            return;
        }
        if self.n == 0 {
            self.level = y;
            self.n = 1;
            return;
        }
        let predicted = self.predicted();
        let mut error = y - predicted;
        if self.is_warm(params) {
            // Huber: one odd window that was not past the threshold still moves the baseline only
            // as far as a 3-spread error would, so it cannot drag level, trend and spread along.
            let limit = CLIP_SPREADS * self.spread(params);
            error = error.clamp(-limit, limit);
        }
        self.n += 1;
        let weight = (1.0 / (self.n - 1) as f64).max(1.0 / params.memory);
        self.var = (1.0 - weight) * self.var + weight * error * error;
        self.level = predicted + params.level_weight * error;
        self.trend += params.level_weight * params.trend_weight * error;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> TrendParams {
        TrendParams {
            warmup: 10,
            level_weight: 0.3,
            trend_weight: 0.1,
            memory: 20.0,
            min_spread: 1.0,
            truncation_variance: 1.0,
        }
    }

    #[test]
    fn follows_a_ramp_without_calling_it_anomalous() {
        let p = params();
        let mut b = TrendBaseline::default();
        for i in 0..100 {
            let y = 50.0 + 0.5 * i as f64;
            if let Some(j) = b.judge(y, 3.0, &p) {
                assert!(j.z.abs() < j.threshold, "window {i}: {j:?}");
            }
            b.learn(y, &p);
        }
        assert!((b.predicted() - 100.0).abs() < 1.0, "{}", b.predicted());
    }

    #[test]
    fn a_jump_is_far_outside() {
        let p = params();
        let mut b = TrendBaseline::default();
        for i in 0..30 {
            b.learn(50.0 + (i % 3) as f64, &p);
        }
        let j = b.judge(80.0, 3.0, &p).unwrap();
        assert!(j.z > 10.0, "{j:?}");
    }
}
