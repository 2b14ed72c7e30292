//! Request and error counts per (service, operation) in one event-time window, with a few example
//! trace ids. Error-rate and throughput detection read them when the window closes. Every span is
//! counted, sampled or not, so that sampling cannot bias rates.

use crate::anomaly::MAX_EXAMPLES;
use crate::keys::KeyId;
use crate::span::{Span, TraceId};
use hashbrown::HashMap;

#[derive(Clone, Debug, Default)]
pub struct KeyCounts {
    pub requests: u64,
    pub errors: u64,
    pub examples: Vec<TraceId>,
    pub error_examples: Vec<TraceId>,
}

#[derive(Debug, Default)]
pub struct WindowCounts {
    per_key: HashMap<KeyId, KeyCounts>,
}

impl WindowCounts {
    pub fn record(&mut self, key: KeyId, span: &Span) {
        let counts = self.per_key.entry(key).or_default();
        counts.requests += 1;
        push_example(&mut counts.examples, span.trace_id);
        if span.is_error() {
            counts.errors += 1;
            push_example(&mut counts.error_examples, span.trace_id);
        }
    }

    /// Counts made elsewhere (TraceQL metrics): added without spans.
    pub fn add(&mut self, key: KeyId, requests: u64, errors: u64) {
        let counts = self.per_key.entry(key).or_default();
        counts.requests += requests;
        counts.errors += errors;
    }

    /// A span whose counting was done elsewhere still gives its trace as an example.
    pub fn example(&mut self, key: KeyId, span: &Span) {
        let counts = self.per_key.entry(key).or_default();
        push_example(&mut counts.examples, span.trace_id);
        if span.is_error() {
            push_example(&mut counts.error_examples, span.trace_id);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.per_key.is_empty()
    }

    pub fn get(&self, key: KeyId) -> Option<&KeyCounts> {
        self.per_key.get(&key)
    }
}

/// Keeps the first [`MAX_EXAMPLES`] distinct trace ids.
pub fn push_example(examples: &mut Vec<TraceId>, id: TraceId) {
    if examples.len() < MAX_EXAMPLES && !examples.contains(&id) {
        examples.push(id);
    }
}
