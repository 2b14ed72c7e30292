//! What reading Tempo costs: requests by kind (queries: search and TraceQL metrics; lookups: trace by
//! id), bytes of the answers, and the time spent waiting on Tempo (summed over requests, so
//! concurrent fetches count each). Counted for every attempt, retries included.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The counts at one moment; [`TempoUsage::since`] gives what happened between two.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TempoUsage {
    pub queries: u64,
    pub lookups: u64,
    pub bytes: u64,
    pub busy: Duration,
}

impl TempoUsage {
    pub fn since(&self, earlier: &TempoUsage) -> TempoUsage {
        TempoUsage {
            queries: self.queries.saturating_sub(earlier.queries),
            lookups: self.lookups.saturating_sub(earlier.lookups),
            bytes: self.bytes.saturating_sub(earlier.bytes),
            busy: self.busy.saturating_sub(earlier.busy),
        }
    }
}

/// Shared by a client and its clones.
#[derive(Debug, Default)]
pub(crate) struct UsageCounters {
    queries: AtomicU64,
    lookups: AtomicU64,
    bytes: AtomicU64,
    busy_micros: AtomicU64,
}

impl UsageCounters {
    /// One request to `path` that took `busy` and answered `bytes`.
    pub(crate) fn record(&self, path: &str, busy: Duration, bytes: usize) {
        let lookup = path.starts_with("/api/traces/") || path.starts_with("/api/v2/traces/");
        let kind = if lookup { &self.lookups } else { &self.queries };
        kind.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
        let micros = u64::try_from(busy.as_micros()).unwrap_or(u64::MAX);
        self.busy_micros.fetch_add(micros, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> TempoUsage {
        TempoUsage {
            queries: self.queries.load(Ordering::Relaxed),
            lookups: self.lookups.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            busy: Duration::from_micros(self.busy_micros.load(Ordering::Relaxed)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_and_queries_are_told_apart_and_differences_taken() {
        let counters = UsageCounters::default();
        counters.record("/api/search", Duration::from_millis(5), 100);
        let before = counters.snapshot();
        counters.record("/api/v2/traces/0af7", Duration::from_millis(2), 40);
        counters.record("/api/traces/0af7", Duration::from_millis(3), 60);
        counters.record("/api/metrics/query_range", Duration::from_millis(7), 10);
        let used = counters.snapshot().since(&before);
        assert_eq!(
            used,
            TempoUsage {
                queries: 1,
                lookups: 2,
                bytes: 110,
                busy: Duration::from_millis(12),
            }
        );
    }
}
