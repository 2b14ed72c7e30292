//! Deterministic trace sampling by trace id, as OpenTelemetry's `TraceIdRatioBased` sampler does it
//! (opentelemetry-sdk `trace/sampler.rs`): the last 8 bytes of the id, read big-endian and shifted right
//! by one, are compared with `ratio · 2^63`. Every worker gives the same answer for the same trace.

use crate::span::TraceId;

/// Whether per-trace analysis looks at this trace.
pub fn is_sampled(trace_id: &TraceId, enabled: bool, ratio: f64) -> bool {
    if !enabled || ratio >= 1.0 {
        return true;
    }
    if ratio <= 0.0 {
        return false;
    }
    let upper_bound = (ratio * (1u64 << 63) as f64) as u64;
    let mut low = [0u8; 8];
    low.copy_from_slice(&trace_id.0[8..16]);
    (u64::from_be_bytes(low) >> 1) < upper_bound
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_answer_every_time_and_close_to_the_ratio() {
        let ids: Vec<TraceId> = (0u64..20_000)
            .map(|i| {
                let mut id = [0u8; 16];
                id[8..].copy_from_slice(&i.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_be_bytes());
                TraceId(id)
            })
            .collect();
        let sampled = ids.iter().filter(|id| is_sampled(id, true, 0.1)).count();
        assert!((1_800..2_200).contains(&sampled), "{sampled}");
        assert!(
            ids.iter()
                .all(|id| is_sampled(id, true, 0.1) == is_sampled(id, true, 0.1))
        );
        // A trace sampled at 10 % is also sampled at 50 %: ratios nest, as in the SDK.
        assert!(
            ids.iter()
                .filter(|id| is_sampled(id, true, 0.1))
                .all(|id| is_sampled(id, true, 0.5))
        );
    }

    #[test]
    fn disabled_or_full_ratio_keeps_everything_and_zero_keeps_nothing() {
        let id = TraceId([0xff; 16]);
        assert!(is_sampled(&id, false, 0.0));
        assert!(is_sampled(&id, true, 1.0));
        assert!(!is_sampled(&TraceId([0; 16]), true, 0.0));
        // Known value from the SDK's rule: the low half 0x00..01 → 0 after the shift → sampled at any ratio > 0.
        let mut low = [0u8; 16];
        low[15] = 1;
        assert!(is_sampled(&TraceId(low), true, 1e-9));
    }
}
