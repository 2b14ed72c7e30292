//! Which service calls which, and how often, learned from the traces the engine assembles: a span whose
//! parent is in another service is one call from the parent's service to the span's. Incidents are
//! grouped along these calls, and probable origins ranked by them.

use crate::span::{Span, SpanId};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

/// Most callers, and most callees of one caller, the graph learns.
pub const MAX_SERVICES: usize = 4_096;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceGraph {
    /// caller → callee → calls seen (nested, so that counting a known call allocates nothing).
    calls: BTreeMap<String, BTreeMap<String, u64>>,
}

impl ServiceGraph {
    /// Records the calls between services in one assembled trace.
    pub fn record_trace<'a>(&mut self, spans: impl IntoIterator<Item = &'a Span> + Clone) {
        let spans: Vec<&Span> = spans.into_iter().collect();
        // Most traces are small: finding a parent by scanning beats building a map.
        let by_id: Option<HashMap<SpanId, &str>> = (spans.len() > 32).then(|| {
            spans
                .iter()
                .map(|s| (s.span_id, s.service.as_str()))
                .collect()
        });
        let service_of = |id: SpanId| match &by_id {
            Some(map) => map.get(&id).copied(),
            None => spans
                .iter()
                .find(|s| s.span_id == id)
                .map(|s| s.service.as_str()),
        };
        for span in &spans {
            let Some(parent) = span.parent_span_id.and_then(service_of) else {
                continue;
            };
            if parent != span.service {
                self.record_call(parent, &span.service, 1);
            }
        }
    }

    pub fn record_call(&mut self, caller: &str, callee: &str, n: u64) {
        if let Some(count) = self
            .calls
            .get_mut(caller)
            .and_then(|callees| callees.get_mut(callee))
        {
            *count += n;
            return;
        }
        // Bounded whatever the input: past this many services, new names are not learned.
        if self.calls.len() >= MAX_SERVICES && !self.calls.contains_key(caller) {
            return;
        }
        let callees = self.calls.entry(caller.to_owned()).or_default();
        if callees.len() < MAX_SERVICES {
            *callees.entry(callee.to_owned()).or_default() += n;
        }
    }

    /// Calls seen from `caller` to `callee`.
    pub fn calls(&self, caller: &str, callee: &str) -> u64 {
        self.calls
            .get(caller)
            .and_then(|callees| callees.get(callee))
            .copied()
            .unwrap_or(0)
    }

    /// Every (caller, callee, calls), in name order.
    pub fn edges(&self) -> impl Iterator<Item = (&str, &str, u64)> {
        self.calls.iter().flat_map(|(a, callees)| {
            callees
                .iter()
                .map(move |(b, n)| (a.as_str(), b.as_str(), *n))
        })
    }

    /// The services `service` calls.
    pub fn callees<'a>(&'a self, service: &'a str) -> impl Iterator<Item = &'a str> {
        self.calls
            .get(service)
            .into_iter()
            .flat_map(|callees| callees.keys().map(String::as_str))
    }

    /// The services that call `service`.
    pub fn callers<'a>(&'a self, service: &'a str) -> impl Iterator<Item = &'a str> {
        self.edges()
            .filter(move |(_, b, _)| *b == service)
            .map(|(a, _, _)| a)
    }

    /// The fewest calls, followed in either direction, from `from` to any of `to`, if within `max`.
    pub fn distance(&self, from: &str, to: &BTreeSet<&str>, max: usize) -> Option<usize> {
        if to.contains(from) {
            return Some(0);
        }
        let mut seen: BTreeSet<&str> = BTreeSet::from([from]);
        let mut queue: VecDeque<(&str, usize)> = VecDeque::from([(from, 0)]);
        while let Some((service, hops)) = queue.pop_front() {
            if hops == max {
                continue;
            }
            let next = self.callees(service).chain(self.callers(service));
            for neighbour in next.collect::<Vec<_>>() {
                if to.contains(neighbour) {
                    return Some(hops + 1);
                }
                if seen.insert(neighbour) {
                    queue.push_back((neighbour, hops + 1));
                }
            }
        }
        None
    }

    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph() -> ServiceGraph {
        let mut g = ServiceGraph::default();
        g.record_call("frontend", "checkout", 10);
        g.record_call("checkout", "payment", 5);
        g.record_call("payment", "db", 5);
        g.record_call("frontend", "ads", 3);
        g
    }

    #[test]
    fn distance_follows_calls_both_ways_up_to_a_limit() {
        let g = graph();
        let set = |s: &[&'static str]| s.iter().copied().collect::<BTreeSet<&str>>();
        assert_eq!(g.distance("payment", &set(&["payment"]), 0), Some(0));
        assert_eq!(g.distance("db", &set(&["checkout"]), 2), Some(2));
        assert_eq!(g.distance("db", &set(&["frontend"]), 2), None);
        assert_eq!(g.distance("ads", &set(&["checkout"]), 2), Some(2));
        assert_eq!(g.distance("db", &set(&["nowhere"]), 9), None);
        assert_eq!(g.callers("payment").collect::<Vec<_>>(), ["checkout"]);
    }

    #[test]
    fn it_stays_bounded_whatever_the_names() {
        let mut g = ServiceGraph::default();
        for i in 0..MAX_SERVICES + 10 {
            g.record_call(&format!("caller-{i}"), "db", 1);
            g.record_call("gateway", &format!("callee-{i}"), 1);
        }
        g.record_call("caller-0", "db", 1);
        assert_eq!(g.calls("caller-0", "db"), 2, "known calls still count");
        assert_eq!(g.calls(&format!("caller-{MAX_SERVICES}"), "db"), 0);
        assert_eq!(g.callees("gateway").count(), MAX_SERVICES);
    }
}
