//! Request and error counts per (service, operation) in one event-time window, with a few example
//! trace ids. Error-rate and throughput detection read them when the window closes. Every span is
//! counted, sampled or not, so that sampling cannot bias rates.

use crate::anomaly::MAX_EXAMPLES;
use crate::keys::KeyId;
use crate::span::{Span, TraceId};
use hashbrown::HashMap;
use std::collections::BTreeMap;

/// Services one key's failures are traced to, at most, per window.
const MAX_FAILED_IN: usize = 16;

#[derive(Clone, Debug, Default)]
pub struct KeyCounts {
    pub requests: u64,
    pub errors: u64,
    pub examples: Vec<TraceId>,
    pub error_examples: Vec<TraceId>,
    /// Failures of this key seen in assembled traces (analysed before the window closed).
    pub errors_traced: u64,
    /// Of those, how many started in each other service (see [`crate::detect::error_blame`]).
    pub failed_in: BTreeMap<String, u64>,
}

impl KeyCounts {
    /// The service most of the traced failures started in, with how many, if that is at least half.
    pub fn failures_mostly_in(&self) -> Option<(&str, u64)> {
        let (service, n) = self
            .failed_in
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))?;
        (2 * n >= self.errors_traced).then_some((service.as_str(), *n))
    }
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

    /// A failure of `key` in an assembled trace, and the other service it started in, if any.
    pub fn traced_failure(&mut self, key: KeyId, started_in: Option<&str>) {
        let counts = self.per_key.entry(key).or_default();
        counts.errors_traced += 1;
        if let Some(service) = started_in {
            // Bounded: a key's failures name at most this many services.
            if counts.failed_in.len() < MAX_FAILED_IN || counts.failed_in.contains_key(service) {
                *counts.failed_in.entry(service.to_owned()).or_default() += 1;
            }
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
