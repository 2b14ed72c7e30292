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
//!
//! Where the requests stopped ([`stopped_after`]): each span's last call (the child that ended last) is
//! learned too. When usual calls stop and, in the same window, many more spans than usual end right
//! after one of the calls still made, the requests stopped after that call's answer: an exception
//! thrown, or a wrong value returned, by the service that answered it (the caller only reacted).

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
    /// Per child, the weighted spans whose last call it was, out of `last_traced` (learned since
    /// this was added; older state starts at zero).
    #[serde(default)]
    pub last: Vec<(KeyId, f64)>,
    #[serde(default)]
    pub last_traced: f64,
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

    /// Learns which call each of a window's `traced` spans made last (`last`: spans per child).
    pub fn learn_last(&mut self, traced: u32, last: &[(KeyId, u32)]) {
        self.last_traced += f64::from(traced);
        for &(child, n) in last {
            match self.last.iter_mut().find(|(k, _)| *k == child) {
                Some((_, w)) => *w += f64::from(n),
                None => self.last.push((child, f64::from(n))),
            }
        }
    }

    pub fn scale(&mut self, factor: f64) {
        self.traced *= factor;
        self.last_traced *= factor;
        for (_, w) in self.calls.iter_mut().chain(self.last.iter_mut()) {
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

/// The call after whose answer the window's requests stopped making their usual calls: the child that
/// ended a span last in a share of the window's `traced` spans grown over its usual share by at least
/// half the share of spans that stopped a usual call, in three spans or more, and not itself a
/// stopped call. `None` without a stopped call or enough learned last calls.
pub fn stopped_after(
    baseline: &CallBaseline,
    traced: u32,
    last: &[(KeyId, u32)],
    changes: &[CallChange],
) -> Option<KeyId> {
    let stopped: Vec<CallChange> = changes.iter().filter(|c| !c.is_new()).cloned().collect();
    if stopped.is_empty() || baseline.last_traced < MIN_LEARNED_SPANS {
        return None;
    }
    let n = f64::from(traced.max(1));
    let needed = 0.5 * changed_share(&stopped, traced);
    let usual = |child: KeyId| {
        baseline
            .last
            .iter()
            .find(|(k, _)| *k == child)
            .map_or(0.0, |(_, w)| w / baseline.last_traced)
    };
    last.iter()
        .filter(|(child, m)| *m >= 3 && stopped.iter().all(|c| c.child != *child))
        .map(|&(child, m)| (child, f64::from(m) / n - usual(child)))
        .filter(|&(_, grown)| grown >= needed)
        .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))
        .map(|(child, _)| child)
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
    fn requests_that_stop_after_one_answer_name_that_call() {
        let mut b = learned();
        // Usually a third of the spans end with the call to KeyId(2), the rest with KeyId(1).
        b.learn_last(1_000, &[(KeyId(1), 670), (KeyId(2), 330)]);
        let changes = judge(&b, 60, &[(KeyId(1), 60)], 3.0, 1e-5);
        // KeyId(1) answered and nothing followed: every span now ends with it.
        assert_eq!(
            stopped_after(&b, 60, &[(KeyId(1), 60)], &changes),
            Some(KeyId(1))
        );
        // Spans that end as usual name nothing, nor does a call never made before.
        assert_eq!(
            stopped_after(&b, 60, &[(KeyId(1), 40), (KeyId(2), 20)], &changes),
            None
        );
        let new_call = judge(
            &b,
            60,
            &[(KeyId(1), 60), (KeyId(2), 20), (KeyId(9), 12)],
            3.0,
            1e-5,
        );
        assert_eq!(stopped_after(&b, 60, &[(KeyId(9), 60)], &new_call), None);
        // Without learned last calls (state from before they were kept), nothing is named.
        let mut old = learned();
        old.last_traced = 0.0;
        assert_eq!(stopped_after(&old, 60, &[(KeyId(1), 60)], &changes), None);
    }

    #[test]
    fn state_saved_before_last_calls_were_kept_still_loads() {
        let old: CallBaseline =
            serde_json::from_str(r#"{"traced":500.0,"calls":[],"spreads":[]}"#).unwrap();
        assert_eq!((old.traced, old.last_traced), (500.0, 0.0));
        assert!(old.last.is_empty());
    }

    #[test]
    fn too_little_history_or_traffic_is_not_judged() {
        let mut young = CallBaseline::default();
        young.learn(50, &[(KeyId(1), 50)]);
        assert!(judge(&young, 60, &[], 3.0, 1e-5).is_empty());
        assert!(judge(&learned(), 4, &[], 3.0, 1e-5).is_empty());
    }
}
