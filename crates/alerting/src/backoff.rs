//! Retry delays: exponential with full jitter (AWS architecture blog, "Exponential Backoff And
//! Jitter"), so that many senders retrying after one outage do not hit the API in step.

use rand::Rng;
use std::time::Duration;

/// The delay before attempt `attempt + 1` (`attempt` failures so far): uniform in
/// `[base/2, min(cap, base · 2^attempt)]`.
pub fn retry_delay(attempt: u32, base: Duration, cap: Duration) -> Duration {
    let ceiling = base
        .saturating_mul(2u32.saturating_pow(attempt.min(30)))
        .min(cap)
        .max(base / 2);
    let floor = base / 2;
    let span = ceiling.saturating_sub(floor);
    floor + span.mul_f64(rand::rng().random::<f64>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_then_stay_under_the_cap_and_vary() {
        let (base, cap) = (Duration::from_secs(1), Duration::from_secs(60));
        for attempt in 0..40 {
            let d = retry_delay(attempt, base, cap);
            assert!(d >= base / 2 && d <= cap, "{attempt}: {d:?}");
        }
        let late: Vec<Duration> = (0..50).map(|_| retry_delay(10, base, cap)).collect();
        assert!(late.iter().any(|d| *d > Duration::from_secs(20)));
        assert!(late.iter().any(|d| *d != late[0]), "jittered");
        assert!(retry_delay(0, base, cap) <= base);
    }
}
