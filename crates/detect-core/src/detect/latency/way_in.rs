//! The way into a service as a whole: the network and queues before it, from its callers in other
//! services, pooled over all its operations.
//!
//! A slow network into a service delays every call into it, but a service with little traffic gets
//! too few calls per operation in a window for the per-key test of the way in ([`super::shift`] needs
//! five values). Pooled over the service's operations, a few calls that all waited far beyond the
//! usual p99 are significant by themselves: the same binomial tests, from [`MIN_VALUES`] values (three
//! of three above a known p99 have a chance of about 10⁻⁶). A service whose own history of its way in
//! is too short (a new service, or the start of a recording) is judged against the way into all
//! services together (the fleet's: callers and callees share the wire), and its findings do not page.

use super::shift::{self, Spread};
use super::{
    Judge, MIN_AFFECTED_TO_PAGE, PAGE_AFTER_WINDOWS, WARMUP_WINDOWS, WindowSample, forget,
};
use crate::anomaly::{Anomaly, MAX_EXAMPLES, Severity};
use crate::keys::{KeyId, KeyInterner};
use crate::stats::QuantileSketch;
use crate::stats::probability::normal_cdf;
use hashbrown::HashMap;
use std::collections::{BTreeMap, BTreeSet};

/// Calls into one service needed in a window for its way in to be judged.
pub const MIN_VALUES: f64 = 3.0;
/// The share of those calls that must be affected.
pub const MIN_SHARE: f64 = 0.5;

/// What one service's way in usually takes.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct WayIn {
    usual: QuantileSketch,
    spread: Spread,
    windows: u32,
    anomalous_since: Option<u64>,
    /// The last ordinary window, learned once the service's next window is ordinary too.
    #[serde(default)]
    pending: Option<QuantileSketch>,
}

impl WayIn {
    fn is_warm(&self, warm: f64) -> bool {
        self.usual.total() >= warm && self.windows >= WARMUP_WINDOWS
    }

    fn learn(&mut self, window: &QuantileSketch) {
        self.spread.learn(&self.usual, window);
        self.usual.merge(window);
        forget(&mut self.usual);
        self.windows = self.windows.saturating_add(1);
    }
}

/// Every service's way in, and the fleet's (all services' together).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct WaysIn {
    services: BTreeMap<String, WayIn>,
    fleet: WayIn,
}

/// One window's calls into one service, over its operations.
pub(super) struct Pooled {
    values: QuantileSketch,
    /// The service's keys that were called from another service.
    keys: Vec<KeyId>,
}

/// The window's ways in, by service.
pub(super) fn pool<'k>(
    samples: &HashMap<KeyId, WindowSample>,
    keys: &'k KeyInterner,
) -> BTreeMap<&'k str, Pooled> {
    let mut pooled: BTreeMap<&str, Pooled> = BTreeMap::new();
    let mut order: Vec<KeyId> = samples.keys().copied().collect();
    order.sort_unstable();
    for key in order {
        let inbound = &samples[&key].inbound;
        if inbound.total() <= 0.0 {
            continue;
        }
        let p = pooled.entry(keys.service(key)).or_insert_with(|| Pooled {
            values: QuantileSketch::new(),
            keys: Vec::new(),
        });
        p.values.merge(inbound);
        p.keys.push(key);
    }
    pooled
}

impl WaysIn {
    /// The baseline that judges `service`: its own once warm, else the fleet's once that is.
    fn baseline_for(&self, service: &str, warm: f64) -> Option<(&WayIn, bool)> {
        match self.services.get(service).filter(|w| w.is_warm(warm)) {
            Some(own) => Some((own, true)),
            None => self.fleet.is_warm(warm).then_some((&self.fleet, false)),
        }
    }

    /// How many services this window can judge (for the family-wise level).
    pub(super) fn tests(&self, pooled: &BTreeMap<&str, Pooled>, warm: f64) -> usize {
        pooled
            .iter()
            .filter(|(s, p)| p.values.total() >= MIN_VALUES && self.baseline_for(s, warm).is_some())
            .count()
    }

    /// Learns a service's way in one window late: a window is learned once the service's next one
    /// is ordinary too. Not ordinary: found slow, or a median beyond the usual p99 (too few calls to
    /// be significant). Learned, a slow network's first calls, in the window before it is found,
    /// would hide the next ones (with a few hundred values, one slow call is the p99). After
    /// `relearn` of unusual windows, they are learned as they come. The fleet learns the ordinary
    /// windows at once, and a service without its own history yet learns every window.
    pub(super) fn learn(
        &mut self,
        pooled: &BTreeMap<&str, Pooled>,
        slow: &BTreeSet<&str>,
        window: crate::anomaly::Window,
        (warm, relearn): (f64, u64),
    ) {
        let mut fleet_window = QuantileSketch::new();
        for (service, p) in pooled {
            let way = self.services.entry((*service).to_owned()).or_default();
            // A service judged against the fleet still learns its own way in: the fleet only
            // stands in for it (a service slower on the wire than most would stay judged by it).
            let own_history = way.is_warm(warm);
            let unusual = own_history
                && way
                    .usual
                    .quantile(0.99)
                    .zip(p.values.quantile(0.5))
                    .is_some_and(|(p99, median)| median > p99);
            if (own_history && slow.contains(service)) || unusual {
                // The window before may hold the problem's first calls, too few to be significant.
                way.pending = None;
                let since = *way.anomalous_since.get_or_insert(window.start.0);
                if window.end.0.saturating_sub(since) >= relearn {
                    way.learn(&p.values);
                }
            } else {
                way.anomalous_since = None;
                fleet_window.merge(&p.values);
                if let Some(before) = way.pending.replace(p.values.clone()) {
                    way.learn(&before);
                }
            }
        }
        if fleet_window.total() > 0.0 {
            self.fleet.learn(&fleet_window);
        }
    }
}

impl Judge<'_> {
    /// The calls into `service` in this window waited longer than its way in (or, while its own
    /// history is short, the fleet's) allows, and its callers are not slow elsewhere too.
    pub(super) fn way_in(
        &self,
        ways_in: &WaysIn,
        service: &str,
        pooled: &Pooled,
    ) -> Option<Anomaly> {
        let warm = f64::from(self.config.warmup_min_samples);
        let (baseline, own_history) = ways_in.baseline_for(service, warm)?;
        // The fleet's window-to-window spread is of all services together: not this service's.
        let spread = if own_history {
            baseline.spread
        } else {
            Spread::default()
        };
        let z = self.config.latency_threshold_for(service);
        let s = shift::judge_from(
            &baseline.usual,
            &pooled.values,
            &spread,
            z,
            normal_cdf(-z) / self.tests,
            self.config.latency_min_excess_ms,
            MIN_VALUES,
        )?;
        // A slow way in as a whole delays most calls into the service; a tail among many calls is
        // for each operation's own test.
        if s.share() < MIN_SHARE {
            return None;
        }
        // Services differ in their way in (0.3 ms here, 2 ms there): against the fleet's, only a
        // window whose calls mostly waited beyond the fleet's p99 counts.
        if !own_history && pooled.values.quantile(0.5)? <= s.usual_p99_ms {
            return None;
        }
        // A caller slow on the way to other services too: its side (its CPU, its network).
        if pooled
            .keys
            .iter()
            .any(|k| self.caller_slow_elsewhere(*k).is_some())
        {
            return None;
        }
        let mut severity = self.graded(&s);
        if s.affected < MIN_AFFECTED_TO_PAGE
            || !own_history
            || baseline.windows < PAGE_AFTER_WINDOWS
        {
            severity = severity.min(Severity::Medium);
        }
        let against = if own_history {
            ""
        } else {
            " (against the way into all services: its own history is short)"
        };
        let mut slowest: Vec<_> = pooled
            .keys
            .iter()
            .flat_map(|k| self.samples[k].slowest.iter().copied())
            .collect();
        slowest.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let mut seen = BTreeSet::new();
        slowest.retain(|s| seen.insert(s.1));
        slowest.truncate(MAX_EXAMPLES);
        let description = format!(
            "{service}: {way_in} (the network and queues from its callers, over all its \
             operations) {how}{against}; {affected} of {n} calls affected",
            way_in = super::WAY_IN,
            how = super::describe_shift(&s),
            affected = s.affected,
            n = s.n,
        );
        Some(self.shift_finding((service, None), &s, severity, description, &slowest))
    }
}
