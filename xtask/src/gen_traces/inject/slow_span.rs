//! Single slow spans: now and then one span of a healthy trace takes far longer by itself.

use super::Plan;
use super::label_draft::LabelDraft;
use super::uniform;
use crate::gen_traces::trace::{Builder, Role, SpanRec, Trace, insert_delay};
use detect_core::Subtype;
use rand::Rng;

/// Probability that a normal trace gets one slow span.
pub(super) const SLOW_SPAN_PROB: f64 = 1.0 / 3000.0;
/// Injected latencies reach at least this z in the key's own distribution.
const MIN_INJECTED_Z: f64 = 4.0;

impl Plan {
    /// One random non-root span's own time ×(8–40), at least up to z = 4 of its key.
    pub(super) fn slow_span(&mut self, b: &mut Builder, trace: &mut Trace) {
        let topo = b.topo;
        if trace.spans.len() < 2 {
            return;
        }
        let idx = b.rng.random_range(1..trace.spans.len());
        let span = &trace.spans[idx];
        if span.modified || span.injected {
            return;
        }
        let (median_ms, sigma) = topo.ln_params(span.op, span.role == Role::Client);
        let own = own_time(&trace.spans, idx);
        let factor = uniform(b.rng, 8.0, 40.0);
        let needed = median_ms * 1e6 * (MIN_INJECTED_Z * sigma).exp() - span.dur as f64;
        let delta = ((factor - 1.0) * own as f64).max(needed).max(1e6) as u64;
        let key = topo.key(span.service, span.op);
        let at = span.end();
        let description = format!(
            "one {} {} span's own time {factor:.0}× longer (+{:.1} ms)",
            key.0,
            key.1,
            delta as f64 / 1e6
        );
        insert_delay(trace, idx, at, delta);
        let root = &trace.spans[0];
        let label = self.labels.len();
        let mut draft = LabelDraft::new(Subtype::LatencySpike, root.start, root.end(), description);
        draft.origin_at(&key);
        self.labels.push(draft);
        self.slowed(topo, trace, idx, label);
    }
}

/// The part of a span's duration not covered by its direct children.
fn own_time(spans: &[SpanRec], idx: usize) -> u64 {
    let mut intervals: Vec<(u64, u64)> = spans
        .iter()
        .filter(|s| s.parent == Some(idx))
        .map(|s| (s.start, s.end()))
        .collect();
    intervals.sort_unstable();
    let mut covered = 0;
    let mut cursor = 0;
    for (a, b) in intervals {
        let a = a.max(cursor);
        if b > a {
            covered += b - a;
            cursor = b;
        }
    }
    spans[idx].dur.saturating_sub(covered)
}
