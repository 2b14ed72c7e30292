//! Retry delays: exponential with jitter (`backon`), so that many senders retrying after one outage do
//! not hit the API in step. The outbox keeps the attempt count, so a delay is computed from it.

use backon::{BackoffBuilder, ExponentialBuilder};
use std::time::Duration;

/// The delay before attempt `attempt + 1` (`attempt` failures so far): `base · 2^attempt` capped at
/// `cap`, plus a random part up to as much again, never past `cap`.
pub fn retry_delay(attempt: u32, base: Duration, cap: Duration) -> Duration {
    ExponentialBuilder::new()
        .with_min_delay(base)
        .with_max_delay(cap)
        .with_jitter()
        .without_max_times()
        .build()
        .nth(attempt.min(64) as usize)
        .unwrap_or(cap)
        .min(cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_then_stay_under_the_cap_and_vary() {
        let (base, cap) = (Duration::from_secs(1), Duration::from_secs(60));
        for attempt in 0..40 {
            let d = retry_delay(attempt, base, cap);
            assert!(d >= base && d <= cap, "{attempt}: {d:?}");
        }
        let late: Vec<Duration> = (0..50).map(|_| retry_delay(4, base, cap)).collect();
        assert!(late.iter().all(|d| *d >= Duration::from_secs(16)));
        assert!(late.iter().any(|d| *d != late[0]), "jittered");
        assert!(retry_delay(0, base, cap) < 2 * base);
    }
}
