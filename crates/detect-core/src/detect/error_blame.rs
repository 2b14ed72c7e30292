//! Where a failing request failed: a span that fails because something it called failed shows the
//! failure of its callee, not its own. Following a failing span down through its failing children to
//! the deepest one names the service the failure started in. Where the deepest is an outgoing call with
//! no span below it (a refused connection, a callee that sends no spans), the service the call names
//! (`peer.service`, `server.address`; [`Span::called_service`]) is where it started, if the caller is
//! known to call it. The error-rate detector uses the share of
//! a key's traced failures that started in another service to say that its failures point there
//! ([`crate::anomaly::Cause::Peer`]), as the latency detector does for time spent waiting on a callee.

use crate::span::{Span, SpanId};
use crate::traces::KeyedSpan;
use hashbrown::{HashMap, HashSet};

/// For each failing span of an assembled trace whose failure started in another service: the span's
/// index and the service it started in (the deepest failing descendant's, following failing children,
/// or the service a failing call with nothing below it names, when `known_call(caller, callee)`).
pub fn failures_from_callees<'a>(
    trace: &'a [KeyedSpan],
    known_call: impl Fn(&str, &str) -> bool,
) -> Vec<(usize, &'a str)> {
    if !trace.iter().any(|(_, s)| s.is_error()) {
        return Vec::new();
    }
    let index: HashMap<SpanId, usize> = trace
        .iter()
        .enumerate()
        .map(|(i, (_, s))| (s.span_id, i))
        .collect();
    // The first failing child of each span, in the trace's order (deterministic).
    let mut failing_child: HashMap<usize, usize> = HashMap::new();
    let mut has_child: HashSet<usize> = HashSet::new();
    for (i, (_, s)) in trace.iter().enumerate() {
        let Some(&parent) = s.parent_span_id.and_then(|p| index.get(&p)) else {
            continue;
        };
        has_child.insert(parent);
        if s.is_error() {
            failing_child.entry(parent).or_insert(i);
        }
    }
    let unanswered_call = |at: usize| -> Option<&'a str> {
        let s = &trace[at].1;
        let peer = s.called_service()?;
        (!has_child.contains(&at) && known_call(&s.service, peer)).then_some(peer)
    };
    let span = |i: usize| -> &Span { &trace[i].1 };
    trace
        .iter()
        .enumerate()
        .filter(|(_, (_, s))| s.is_error())
        .filter_map(|(i, (_, s))| {
            let mut at = i;
            // Bounded by the trace's size, whatever cycles a malformed trace holds.
            for _ in 0..trace.len() {
                match failing_child.get(&at) {
                    Some(&child) => at = child,
                    None => break,
                }
            }
            let origin = unanswered_call(at).unwrap_or(span(at).service.as_str());
            (origin != s.service).then_some((i, origin))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::KeyId;
    use crate::span::{SpanStatus, TraceId};

    fn span(id: u8, parent: Option<u8>, service: &str, error: bool) -> KeyedSpan {
        let s = Span {
            trace_id: TraceId([1; 16]),
            span_id: SpanId([id; 8]),
            parent_span_id: parent.map(|p| SpanId([p; 8])),
            service: service.to_owned(),
            operation: "op".to_owned(),
            status: if error {
                SpanStatus::Error
            } else {
                SpanStatus::Unset
            },
            ..Span::default()
        };
        (KeyId(u32::from(id)), s)
    }

    #[test]
    fn a_failure_is_traced_down_to_the_service_it_started_in() {
        let trace = vec![
            span(1, None, "gateway", true),
            span(2, Some(1), "gateway", true), // its client span to cart
            span(3, Some(2), "cart", true),
            span(4, Some(3), "cart", true), // cart's database call
            span(5, Some(1), "users", false),
        ];
        let found = failures_from_callees(&trace, |_, _| true);
        assert_eq!(found, vec![(0, "cart"), (1, "cart")]);
    }

    #[test]
    fn a_failure_of_its_own_points_nowhere() {
        let trace = vec![
            span(1, None, "gateway", true),
            span(2, Some(1), "users", false),
        ];
        assert!(failures_from_callees(&trace, |_, _| true).is_empty());
    }

    #[test]
    fn a_cycle_in_a_malformed_trace_ends() {
        let trace = vec![span(1, Some(2), "a", true), span(2, Some(1), "b", true)];
        // Each walk stops after as many steps as the trace has spans.
        let found = failures_from_callees(&trace, |_, _| true);
        assert!(found.len() <= trace.len());
    }

    #[test]
    fn a_refused_call_points_at_the_service_it_names_if_known_to_be_called() {
        let mut call = span(2, Some(1), "gateway", true);
        call.1.kind = crate::span::SpanKind::Client;
        call.1.attributes.peer_name = Some("catalog.shop.svc:8080".to_owned());
        let trace = vec![span(1, None, "gateway", true), call];
        let found = failures_from_callees(&trace, |a, b| (a, b) == ("gateway", "catalog"));
        assert_eq!(found, vec![(0, "catalog"), (1, "catalog")]);
        // A name the caller is not known to call may be anything (a database, an outside API).
        assert!(failures_from_callees(&trace, |_, _| false).is_empty());
    }
}
