//! The store's time: the database's clock (PostgreSQL's `NOW()`, one clock for every instance of a
//! deployment; the process's clock for the embedded file) plus how far a test has moved it ahead.
//! Leases, outbox claims, retries and every `*_at` the store writes read it, so that a test moves
//! time instead of sleeping until a lease runs out.

use crate::sql_types::{Now, now_plus};
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Shared by a store and its clones.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    /// Microseconds ahead of the database's clock; zero outside tests.
    ahead_micros: Arc<AtomicU64>,
}

impl Clock {
    /// Now, as the store writes it.
    pub(crate) fn now(&self) -> Now {
        self.now_plus(Duration::ZERO)
    }

    /// Now as a point in time: the process's clock plus how far a test moved it ahead. PostgreSQL's
    /// `NOW()` may differ from it by the machines' clock skew; what is judged by it (retention) is
    /// measured in days.
    pub fn time(&self) -> DateTime<Utc> {
        let ahead = Duration::from_micros(self.ahead_micros.load(Ordering::Acquire));
        let ahead = chrono::TimeDelta::from_std(ahead).unwrap_or(chrono::TimeDelta::MAX);
        Utc::now()
            .checked_add_signed(ahead)
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// `offset` after now (saturating).
    pub(crate) fn now_plus(&self, offset: Duration) -> Now {
        let ahead = Duration::from_micros(self.ahead_micros.load(Ordering::Acquire));
        now_plus(ahead.saturating_add(offset))
    }

    /// Moves the store's time ahead by `by`, for every clone of the store.
    #[cfg(feature = "test-support")]
    pub fn advance(&self, by: Duration) {
        let micros = u64::try_from(by.as_micros()).unwrap_or(u64::MAX);
        self.ahead_micros.fetch_add(micros, Ordering::AcqRel);
    }
}
