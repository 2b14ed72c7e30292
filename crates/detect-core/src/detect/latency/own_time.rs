//! A span's time split by where it went, from its whole trace: its **own time** (its duration minus
//! the time covered by its children) and, within that, the **time on the way** to each service it
//! calls (the gaps next to a call to another service: the wire and the queues between two services).
//!
//! Each stretch of a span not covered by any child is one gap. A gap that starts where a call to
//! another service ended is that call's way back (its answer travelling, queued or parsed); otherwise a
//! gap that ends where such a call starts is that call's way out. Other gaps (next to calls inside the
//! same service, or with no call at all) are the span's own work only. A client span with its server
//! child is the usual case: its own time is then the time on the wire between the two services.

use crate::keys::KeyId;
use crate::traces::KeyedSpan;

/// Calls past this many children of one span are not split into ways (the own time still is).
const MAX_CHILDREN_SPLIT: usize = 64;

/// Where one span's time went.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SpanTime {
    pub own_ms: f64,
    /// Whether any child of the span is in the trace.
    pub has_children: bool,
    /// The distinct (service, operation) keys of its children, for call paths.
    pub child_keys: Vec<KeyId>,
    /// Time on the way to each called key in another service.
    pub ways: Vec<(KeyId, f64)>,
    /// The key of the child that ended last: the answer after which the span finished.
    pub last_child: Option<KeyId>,
}

/// The split of every span of `trace`, in the trace's order.
pub fn split(trace: &[KeyedSpan]) -> Vec<SpanTime> {
    // (parent id, child index), sorted: each span's children are one run, found by binary search.
    let mut children: Vec<([u8; 8], usize)> = trace
        .iter()
        .enumerate()
        .filter_map(|(i, (_, span))| span.parent_span_id.map(|p| (p.0, i)))
        .collect();
    children.sort_unstable();
    trace
        .iter()
        .map(|(_, span)| {
            let id = span.span_id.0;
            let from = children.partition_point(|(p, _)| *p < id);
            let to = from + children[from..].partition_point(|(p, _)| *p == id);
            split_one(trace, span, &children[from..to])
        })
        .collect()
}

fn split_one(trace: &[KeyedSpan], parent: &crate::Span, kids: &[([u8; 8], usize)]) -> SpanTime {
    let (start, end) = (parent.start.0, parent.end().0);
    if kids.is_empty() {
        return SpanTime {
            own_ms: parent.duration_ms(),
            ..SpanTime::default()
        };
    }
    // Children clipped to the parent, in start order.
    let mut calls: Vec<(u64, u64, KeyId, bool)> = kids
        .iter()
        .map(|&(_, i)| {
            let (key, child) = &trace[i];
            let s = child.start.0.clamp(start, end);
            let e = child.end().0.clamp(s, end);
            (s, e, *key, child.service != parent.service)
        })
        .collect();
    calls.sort_unstable_by_key(|c| (c.0, c.1));
    let last_child = calls.iter().max_by_key(|c| (c.1, c.0)).map(|c| c.2);
    let mut child_keys: Vec<KeyId> = calls.iter().map(|c| c.2).collect();
    child_keys.sort_unstable();
    child_keys.dedup();

    let mut ways: Vec<(KeyId, f64)> = Vec::new();
    let mut add_way = |key: KeyId, nanos: u64| {
        let ms = nanos as f64 / 1e6;
        match ways.iter_mut().find(|(k, _)| *k == key) {
            Some((_, total)) => *total += ms,
            None => ways.push((key, ms)),
        }
    };
    let split_ways = calls.len() <= MAX_CHILDREN_SPLIT;
    let mut own = 0u64;
    // Sweep: `covered_to` is the end of the covered stretch so far, `last` the call that reaches it.
    let mut covered_to = start;
    let mut last: Option<(KeyId, bool)> = None;
    for &(s, e, key, remote) in &calls {
        if s > covered_to {
            let gap = s - covered_to;
            own += gap;
            if split_ways {
                match last {
                    Some((k, true)) => add_way(k, gap),
                    _ if remote => add_way(key, gap),
                    _ => {}
                }
            }
        }
        if e > covered_to || last.is_none() {
            covered_to = covered_to.max(e);
            last = Some((key, remote));
        }
    }
    if end > covered_to {
        let gap = end - covered_to;
        own += gap;
        if let (true, Some((k, true))) = (split_ways, last) {
            add_way(k, gap);
        }
    }
    SpanTime {
        own_ms: own as f64 / 1e6,
        has_children: true,
        child_keys,
        ways,
        last_child,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::span::{Span, SpanId, TraceId, UnixNanos};

    fn span(id: u8, parent: Option<u8>, service: &str, start_ms: u64, end_ms: u64) -> Span {
        Span {
            trace_id: TraceId([1; 16]),
            span_id: SpanId([id; 8]),
            parent_span_id: parent.map(|p| SpanId([p; 8])),
            service: service.into(),
            operation: format!("op{id}"),
            start: UnixNanos(start_ms * 1_000_000),
            duration_nanos: (end_ms - start_ms) * 1_000_000,
            ..Span::default()
        }
    }

    #[test]
    fn own_time_is_what_children_do_not_cover_and_gaps_next_to_remote_calls_are_ways() {
        // checkout 0–100: calls payment 10–40 (answer back at 50), then a local child 50–60, then
        // calls shipping 70–90, and returns at 100.
        let trace = vec![
            (KeyId(0), span(1, None, "checkout", 0, 100)),
            (KeyId(1), span(2, Some(1), "payment", 10, 40)),
            (KeyId(2), span(3, Some(1), "checkout", 50, 60)),
            (KeyId(3), span(4, Some(1), "shipping", 70, 90)),
        ];
        let times = split(&trace);
        let root = &times[0];
        assert!(root.has_children);
        assert!((root.own_ms - 40.0).abs() < 1e-9, "{root:?}");
        // 0–10 is the way out to payment, 40–50 its way back; 60–70 the way out to shipping (the
        // local child before it is no call to another service), 90–100 shipping's way back.
        assert_eq!(root.ways, vec![(KeyId(1), 20.0), (KeyId(3), 20.0)]);
        assert_eq!(root.child_keys, vec![KeyId(1), KeyId(2), KeyId(3)]);
        assert_eq!(root.last_child, Some(KeyId(3)), "shipping answered last");
        assert_eq!(times[1].own_ms, 30.0);
        assert_eq!(times[1].last_child, None);
        assert!(!times[1].has_children);
    }

    #[test]
    fn parallel_children_are_covered_once_and_children_outside_the_parent_are_clipped() {
        let trace = vec![
            (KeyId(0), span(1, None, "a", 0, 100)),
            (KeyId(1), span(2, Some(1), "b", 10, 60)),
            (KeyId(1), span(3, Some(1), "b", 20, 80)),
            (KeyId(2), span(4, Some(1), "c", 90, 130)),
        ];
        let root = &split(&trace)[0];
        assert!((root.own_ms - 20.0).abs() < 1e-9, "{root:?}");
        assert_eq!(root.child_keys, vec![KeyId(1), KeyId(2)]);
        // c ends past the parent: clipped, it still ends last.
        assert_eq!(root.last_child, Some(KeyId(2)));
    }
}
