//! How much a per-window statistic varies from one ordinary window to the next.
//!
//! Exact tests (binomial) assume the values of a window are independent draws from the baseline. Real
//! traffic is overdispersed: load, batch jobs and caches make whole windows run a little slower or call
//! a little differently, so a statistic such as "the share above the usual p99" swings from window to
//! window far more than the binomial says. A window is then only unusual when it is also beyond the
//! windows' own spread: `x ≥ mean + z · sd` of that statistic over past ordinary windows (exponentially
//! weighted, about the last [`MEMORY_WINDOWS`]), once [`MIN_WINDOWS`] have been seen.

use serde::{Deserialize, Serialize};

/// Windows remembered.
pub const MEMORY_WINDOWS: f64 = 30.0;
/// Windows needed before the spread is used.
pub const MIN_WINDOWS: u32 = 5;

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Dispersion {
    windows: u32,
    mean: f64,
    var: f64,
}

impl Dispersion {
    pub fn learn(&mut self, x: f64) {
        self.windows = self.windows.saturating_add(1);
        let weight = (1.0 / f64::from(self.windows)).max(1.0 / MEMORY_WINDOWS);
        let delta = x - self.mean;
        self.mean += weight * delta;
        self.var = (1.0 - weight) * (self.var + weight * delta * delta);
    }

    /// Whether `x` lies beyond the ordinary windows' spread by `z` (always, before [`MIN_WINDOWS`]).
    pub fn is_beyond(&self, x: f64, z: f64) -> bool {
        self.windows < MIN_WINDOWS || x >= self.mean + z * self.var.sqrt()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_statistic_that_swings_needs_a_bigger_swing() {
        let mut d = Dispersion::default();
        assert!(d.is_beyond(0.02, 3.0), "nothing learned yet");
        for i in 0..40 {
            // Ordinary windows: 1 % to 9 % above the usual p99.
            d.learn(0.01 + 0.02 * f64::from(i % 5));
        }
        assert!(!d.is_beyond(0.10, 3.0));
        assert!(d.is_beyond(0.20, 3.0));
    }
}
