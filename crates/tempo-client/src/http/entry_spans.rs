//! Every request's entry span of a window, without fetching its trace: a TraceQL search for root spans
//! that selects the attributes security analysis reads ([`ENTRY_SPANS_QUERY`]). Tempo answers each root
//! span with its selected attributes (a missing one as the string `"nil"`), `kind` and `status` as
//! words, but not its name: the trace's `rootTraceName` is it. One search a window (split while full)
//! instead of a lookup per trace.

use super::search::{MatchedSpan, SelectedValue, TraceSummary};
use super::whole_traces::{kind_of, status_of};
use detect_core::{AttrValue, Span, SpanAttributes, SpanKind, SpanStatus, UnixNanos};

/// Root spans with what the security rules read: status code, client address, path, route, method and
/// principal, in the current and the older semantic conventions.
pub const ENTRY_SPANS_QUERY: &str = "{ nestedSetParent = -1 } | select(kind, status, \
    span.http.response.status_code, span.http.status_code, span.client.address, span.http.client_ip, \
    span.net.peer.ip, span.url.path, span.http.target, span.http.route, span.http.request.method, \
    span.http.method, span.enduser.id)";

impl TraceSummary {
    /// The trace's root span as a search with [`ENTRY_SPANS_QUERY`] gave it, if it did.
    pub fn entry_span(&self) -> Option<Span> {
        let root = self.matched_spans.iter().find(|s| s.is_root())?;
        Some(Span {
            trace_id: self.trace_id,
            span_id: root.span_id.unwrap_or_default(),
            parent_span_id: None,
            service: self
                .root_service
                .clone()
                .unwrap_or_else(|| "unknown_service".into()),
            operation: self.root_name.clone().unwrap_or_default(),
            kind: root.kind(),
            start: UnixNanos(root.start_unix_nanos),
            duration_nanos: root.duration_nanos,
            status: root.status(),
            attributes: SpanAttributes::from_pairs(
                root.attributes
                    .iter()
                    .filter_map(|(key, value)| Some((key.as_str(), value.as_attr()?))),
            ),
        })
    }
}

impl MatchedSpan {
    fn is_root(&self) -> bool {
        self.attributes.iter().any(|(k, v)| {
            k == "nestedSetParent"
                && match v {
                    SelectedValue::Int(n) => *n == -1,
                    SelectedValue::Text(t) => t == "-1",
                    SelectedValue::Other => false,
                }
        })
    }

    fn word(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| v.text())
    }

    fn kind(&self) -> SpanKind {
        self.word("kind").map_or(SpanKind::Unspecified, kind_of)
    }

    fn status(&self) -> SpanStatus {
        self.word("status").map_or(SpanStatus::Unset, status_of)
    }
}

impl SelectedValue {
    /// As the span decoders give attributes; Tempo's `"nil"` (not set) is no value.
    fn as_attr(&self) -> Option<AttrValue<'_>> {
        match self {
            SelectedValue::Text(t) if t == "nil" => None,
            SelectedValue::Text(t) => Some(AttrValue::Str(t)),
            SelectedValue::Int(i) => Some(AttrValue::Int(*i)),
            SelectedValue::Other => Some(AttrValue::Other),
        }
    }

    fn text(&self) -> Option<&str> {
        match self {
            SelectedValue::Text(t) => Some(t),
            SelectedValue::Int(_) | SelectedValue::Other => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::http::search::parse_search;

    const ANSWER: &[u8] = include_bytes!("../../tests/fixtures/search_entry_spans.json");

    #[test]
    fn a_root_span_is_read_back_with_its_selected_attributes() {
        let (traces, bad) = parse_search(ANSWER).unwrap();
        assert_eq!((traces.len(), bad), (1, 0));
        let span = traces[0].entry_span().expect("a root span");
        assert_eq!(span.service, "gateway");
        assert_eq!(span.operation, "GET /api/users");
        assert_eq!(span.kind, detect_core::SpanKind::Server);
        assert!(span.is_error());
        assert_eq!(span.duration_nanos, 5_000_000);
        assert_eq!(
            span.span_id.0,
            [0xb7, 0xad, 0x6b, 0x71, 0x69, 0x20, 0x33, 0x31]
        );
        let a = &span.attributes;
        assert_eq!(a.http_status_code, Some(401));
        assert_eq!(a.client_address.as_deref(), Some("192.0.2.7"));
        assert_eq!(a.url_path.as_deref(), Some("/api/users/../../etc/passwd"));
        assert_eq!(a.http_route.as_deref(), Some("/api/users"));
        assert_eq!(a.http_method.as_deref(), Some("GET"));
        assert_eq!(a.enduser_id, None, "Tempo's \"nil\" is no value");
    }

    #[test]
    fn a_search_without_spans_gives_no_entry_span() {
        let (traces, _) =
            parse_search(br#"{"traces":[{"traceID":"1a","rootServiceName":"x"}]}"#).unwrap();
        assert_eq!(traces[0].entry_span(), None);
    }
}
