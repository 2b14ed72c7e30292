//! Call-path changes (PERFORMANCE / `call_path_change`): faults that change *what a service calls*
//! (an exception thrown, a wrong value returned) without changing durations, found without status codes.
//!
//! Per parent (service, operation), from whole traces: the share `q` of its spans that call each child
//! (service, operation), learned with the latency baseline (the same decay, never from anomalous
//! windows). In a window with `n` traced spans of the parent, `m` of which call the child:
//! - a usual call (`q ≥` [`USUAL_CALL_SHARE`]) **stops**: `P(X ≤ m | n, q) ≤ α`, `q − m/n ≥`
//!   [`MIN_CHANGED_SHARE`] and `m/n ≤ q/2`;
//! - a call **never made** before (after [`MIN_LEARNED_SPANS`] learned spans) appears:
//!   `P(X ≥ m | n, 1/(N+1)) ≤ α` (N spans learned: the rule of three's spirit), `m ≥ 3` and
//!   `m/n ≥` [`MIN_NEW_SHARE`].
//!
//! A stopped call must also be beyond the window-to-window spread of its share over ordinary windows
//! (`z` standard deviations, [`Dispersion`]): an operation whose calls depend on the request mix
//! (one name, several routes) swings more than the binomial says.
//!
//! Score: the share of the window's spans whose calls changed.

use crate::keys::KeyId;
use crate::stats::Dispersion;
use crate::stats::probability::{binomial_lower_tail, binomial_upper_tail};

/// A call made by at least this share of a parent's spans is a usual one.
pub const USUAL_CALL_SHARE: f64 = 0.2;
/// A usual call must be missing from at least this share more of the window's spans.
pub const MIN_CHANGED_SHARE: f64 = 0.2;
/// A new call must be made by at least this share of the window's spans.
pub const MIN_NEW_SHARE: f64 = 0.05;
/// A call is "never made" only after this many traced spans of the parent were learned.
pub const MIN_LEARNED_SPANS: f64 = 100.0;
/// Fewer traced spans than this in a window are not judged.
pub const MIN_WINDOW_SPANS: u32 = 5;

/// One change of a parent's calls in a window.
#[derive(Clone, Debug, PartialEq)]
pub struct CallChange {
    pub child: KeyId,
    /// The usual share of spans making the call (0 for a new call).
    pub usual_share: f64,
    /// Spans of the window making it.
    pub calls: u32,
    pub p_value: f64,
}

impl CallChange {
    pub fn is_new(&self) -> bool {
        self.usual_share == 0.0
    }
}

/// A parent's learned calls: traced spans (weighted) and per child the weighted spans calling it.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CallBaseline {
    pub traced: f64,
    pub calls: Vec<(KeyId, f64)>,
    /// How the share of a window's spans making each usual call varies between ordinary windows (kept
    /// negated: a drop is what is tested).
    pub spreads: Vec<(KeyId, Dispersion)>,
}

impl CallBaseline {
    pub fn learn(&mut self, traced: u32, calls: &[(KeyId, u32)]) {
        if traced >= MIN_WINDOW_SPANS && self.traced >= MIN_LEARNED_SPANS {
            for &(child, weight) in &self.calls {
                if weight < USUAL_CALL_SHARE * self.traced {
                    continue;
                }
                let made = calls
                    .iter()
                    .find(|(k, _)| *k == child)
                    .map_or(0, |(_, m)| *m);
                let share = f64::from(made) / f64::from(traced);
                match self.spreads.iter_mut().find(|(k, _)| *k == child) {
                    Some((_, d)) => d.learn(-share),
                    None => {
                        let mut d = Dispersion::default();
                        d.learn(-share);
                        self.spreads.push((child, d));
                    }
                }
            }
        }
        self.traced += f64::from(traced);
        for &(child, n) in calls {
            match self.calls.iter_mut().find(|(k, _)| *k == child) {
                Some((_, w)) => *w += f64::from(n),
                None => self.calls.push((child, f64::from(n))),
            }
        }
    }

    pub fn scale(&mut self, factor: f64) {
        self.traced *= factor;
        for (_, w) in &mut self.calls {
            *w *= factor;
        }
    }

    pub fn share(&self, child: KeyId) -> f64 {
        self.calls
            .iter()
            .find(|(k, _)| *k == child)
            .map_or(0.0, |(_, w)| w / self.traced.max(1e-9))
    }
}

/// The changes of one window's calls (`traced` spans, `calls` per child) against `baseline`.
pub fn judge(
    baseline: &CallBaseline,
    traced: u32,
    calls: &[(KeyId, u32)],
    z: f64,
    alpha: f64,
) -> Vec<CallChange> {
    if traced < MIN_WINDOW_SPANS || baseline.traced < MIN_LEARNED_SPANS {
        return Vec::new();
    }
    let n = u64::from(traced);
    let made = |child: KeyId| {
        calls
            .iter()
            .find(|(k, _)| *k == child)
            .map_or(0, |(_, m)| *m)
    };
    let mut changes = Vec::new();
    for &(child, weight) in &baseline.calls {
        let q = (weight / baseline.traced).min(1.0);
        if q < USUAL_CALL_SHARE {
            continue;
        }
        let m = made(child);
        let share = f64::from(m) / f64::from(traced);
        let p_value = binomial_lower_tail(u64::from(m), n, q);
        let beyond_spread = baseline
            .spreads
            .iter()
            .find(|(k, _)| *k == child)
            .is_none_or(|(_, d)| d.is_beyond(-share, z));
        if p_value <= alpha && q - share >= MIN_CHANGED_SHARE && share <= q / 2.0 && beyond_spread {
            changes.push(CallChange {
                child,
                usual_share: q,
                calls: m,
                p_value,
            });
        }
    }
    for &(child, m) in calls {
        if baseline.share(child) > 0.0 {
            continue;
        }
        let p_value = binomial_upper_tail(u64::from(m), n, 1.0 / (baseline.traced + 1.0));
        if p_value <= alpha && m >= 3 && f64::from(m) >= MIN_NEW_SHARE * f64::from(traced) {
            changes.push(CallChange {
                child,
                usual_share: 0.0,
                calls: m,
                p_value,
            });
        }
    }
    changes.sort_by(|a, b| a.p_value.total_cmp(&b.p_value).then(a.child.cmp(&b.child)));
    changes
}

/// The share of the window's spans whose calls changed, by the largest change.
pub fn changed_share(changes: &[CallChange], traced: u32) -> f64 {
    let n = f64::from(traced.max(1));
    changes
        .iter()
        .map(|c| {
            let share = f64::from(c.calls) / n;
            if c.is_new() {
                share
            } else {
                c.usual_share - share
            }
        })
        .fold(0.0, f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn learned() -> CallBaseline {
        let mut b = CallBaseline::default();
        // 1,000 spans: all call KeyId(1), a third call KeyId(2), a few call KeyId(3).
        b.learn(1_000, &[(KeyId(1), 1_000), (KeyId(2), 330), (KeyId(3), 8)]);
        b
    }

    #[test]
    fn usual_windows_including_rare_calls_are_quiet() {
        let b = learned();
        assert!(
            judge(
                &b,
                60,
                &[(KeyId(1), 60), (KeyId(2), 17), (KeyId(3), 2)],
                3.0,
                1e-5
            )
            .is_empty()
        );
        assert!(judge(&b, 60, &[(KeyId(1), 60), (KeyId(2), 27)], 3.0, 1e-5).is_empty());
    }

    #[test]
    fn a_stopped_call_and_a_new_call_are_found() {
        let b = learned();
        // An exception after the first call: the second stops.
        let changes = judge(&b, 60, &[(KeyId(1), 60)], 3.0, 1e-5);
        assert_eq!(changes.len(), 1, "{changes:?}");
        assert_eq!(changes[0].child, KeyId(2));
        assert!((changed_share(&changes, 60) - 0.33).abs() < 0.01);
        // A wrong value sends requests somewhere new.
        let changes = judge(
            &b,
            60,
            &[(KeyId(1), 60), (KeyId(2), 20), (KeyId(9), 12)],
            3.0,
            1e-5,
        );
        assert_eq!(changes.len(), 1, "{changes:?}");
        assert!(changes[0].is_new());
    }

    #[test]
    fn too_little_history_or_traffic_is_not_judged() {
        let mut young = CallBaseline::default();
        young.learn(50, &[(KeyId(1), 50)]);
        assert!(judge(&young, 60, &[], 3.0, 1e-5).is_empty());
        assert!(judge(&learned(), 4, &[], 3.0, 1e-5).is_empty());
    }
}
