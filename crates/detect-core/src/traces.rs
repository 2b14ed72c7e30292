//! Trace assembly for per-trace analysis: spans of sampled traces are held by trace id until no new
//! span has arrived for `trace_idle_seconds` of event time (as the Collector's tail sampler waits),
//! then the trace is handed on whole. At most `max_inflight_traces` are held; past that the trace idle
//! the longest is handed on early, so memory stays bounded whatever the input.

use crate::keys::KeyId;
use crate::span::{Span, TraceId};
use hashbrown::HashMap;
use std::collections::VecDeque;

/// A span with its interned (service, operation) key.
pub type KeyedSpan = (KeyId, Span);

struct PendingTrace {
    spans: Vec<KeyedSpan>,
    deadline: u64,
}

pub struct TraceAssembler {
    pending: HashMap<TraceId, PendingTrace>,
    /// (deadline, trace) in deadline order; stale entries (the trace got a later deadline) are skipped.
    queue: VecDeque<(u64, TraceId)>,
    idle_nanos: u64,
    max_inflight: usize,
    /// Traces handed on before they were idle, because too many were held.
    pub evicted_early: u64,
}

impl TraceAssembler {
    pub fn new(idle_nanos: u64, max_inflight: usize) -> Self {
        TraceAssembler {
            pending: HashMap::new(),
            queue: VecDeque::new(),
            idle_nanos,
            max_inflight: max_inflight.max(1),
            evicted_early: 0,
        }
    }

    /// Holds `span`; `now` is the engine's event-time clock. May hand on one trace evicted early.
    pub fn add(&mut self, key: KeyId, span: Span, now: u64) -> Option<Vec<KeyedSpan>> {
        let deadline = now.saturating_add(self.idle_nanos);
        let trace_id = span.trace_id;
        let trace = self
            .pending
            .entry(trace_id)
            .or_insert_with(|| PendingTrace {
                spans: Vec::new(),
                deadline,
            });
        trace.spans.push((key, span));
        if trace.deadline != deadline || trace.spans.len() == 1 {
            trace.deadline = deadline;
            self.queue.push_back((deadline, trace_id));
        }
        if self.pending.len() > self.max_inflight {
            self.evicted_early += 1;
            return self.pop_front();
        }
        None
    }

    /// Every trace idle at `now`, oldest first.
    pub fn drain_idle(&mut self, now: u64) -> Vec<Vec<KeyedSpan>> {
        let mut done = Vec::new();
        while let Some(&(deadline, id)) = self.queue.front() {
            if deadline > now {
                break;
            }
            self.queue.pop_front();
            if let Some(trace) = self.take_if_current(id, deadline) {
                done.push(trace);
            }
        }
        done
    }

    /// Every trace still held, oldest first (the input has ended).
    pub fn drain_all(&mut self) -> Vec<Vec<KeyedSpan>> {
        let mut done = Vec::new();
        while !self.queue.is_empty() {
            if let Some(trace) = self.pop_front() {
                done.push(trace);
            }
        }
        done
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// The oldest live trace, whatever its deadline.
    fn pop_front(&mut self) -> Option<Vec<KeyedSpan>> {
        while let Some((deadline, id)) = self.queue.pop_front() {
            if let Some(trace) = self.take_if_current(id, deadline) {
                return Some(trace);
            }
        }
        None
    }

    /// Removes the trace if `deadline` is still its own (not a stale queue entry).
    fn take_if_current(&mut self, id: TraceId, deadline: u64) -> Option<Vec<KeyedSpan>> {
        if self
            .pending
            .get(&id)
            .is_some_and(|t| t.deadline == deadline)
        {
            self.pending.remove(&id).map(|t| t.spans)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::span::SpanId;

    fn span(trace: u8, id: u8) -> Span {
        Span {
            trace_id: TraceId([trace; 16]),
            span_id: SpanId([id; 8]),
            ..Span::default()
        }
    }

    #[test]
    fn a_trace_is_handed_on_after_it_has_been_idle() {
        let mut t = TraceAssembler::new(10, 100);
        assert!(t.add(KeyId(0), span(1, 1), 0).is_none());
        t.add(KeyId(0), span(2, 1), 5);
        t.add(KeyId(0), span(1, 2), 8);
        assert!(
            t.drain_idle(12).is_empty(),
            "trace 1 got a span at 8: idle until 18"
        );
        let done = t.drain_idle(18);
        assert_eq!(done.len(), 2);
        assert_eq!(done[0][0].1.trace_id, TraceId([2; 16]));
        assert_eq!(done[1].len(), 2);
        assert!(t.is_empty());
    }

    #[test]
    fn memory_is_bounded_by_early_eviction() {
        let mut t = TraceAssembler::new(1_000, 3);
        let evicted: Vec<_> = (0..10)
            .filter_map(|i| t.add(KeyId(0), span(i, 1), u64::from(i)))
            .collect();
        assert_eq!(evicted.len(), 7);
        assert_eq!(t.len(), 3);
        assert_eq!(t.evicted_early, 7);
        assert_eq!(t.drain_all().len(), 3);
    }
}
