//! Whole traces from a search, without a lookup per trace. TraceQL `{ }` matches every span, and
//! [`WHOLE_TRACES_QUERY`] selects what detection reads, including each span's place in Tempo's nested
//! set (`nestedSetLeft`, `nestedSetParent`), from which the call tree is rebuilt: a span's parent is
//! the span whose `nestedSetLeft` is its `nestedSetParent`, and the root's is -1.
//!
//! Asked as protobuf (Tempo's `SearchResponse`): about half the size of the JSON answer, and about a
//! quarter of Tempo's time to write it. A trace is whole when Tempo sent every span it matched (a span
//! set carries at most `max_spans_per_span_set`, 100 by default) and every span's parent is among them;
//! any other trace is left for a lookup by id ([`WholeTrace::spans`] is `None`).
//!
//! Tempo refuses an answer larger than its gRPC limit (16 MiB by default) with a 500 saying `response
//! larger than the max`, and a full answer (`limit` traces) may have left traces out: either way the
//! time range is split in halves, down to one second.

use super::search::{TraceSummary, parse_trace_id};
use super::{TempoClient, TempoError, TempoResult};
use detect_core::{
    AttrValue, Span, SpanAttributes, SpanId, SpanKind, SpanStatus, TraceId, UnixNanos,
};
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};
use prost::Message;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;

/// Every span, with its service, kind, status, nested-set place and the attributes the detectors read
/// (HTTP status, route, path and method, client address, principal, database system and statement, in
/// the current and the older semantic conventions).
pub const WHOLE_TRACES_QUERY: &str = "{ } | select(name, resource.service.name, kind, status, \
    nestedSetLeft, nestedSetParent, span.http.response.status_code, span.http.status_code, \
    span.http.route, span.url.path, span.http.target, span.http.request.method, span.http.method, \
    span.client.address, span.http.client_ip, span.net.peer.ip, span.enduser.id, span.db.system, \
    span.db.system.name, span.db.query.text, span.db.statement)";

/// Tempo's default `max_spans_per_span_set`: the most spans one trace's span set may carry. A larger
/// `spss` is refused.
pub const SPANS_PER_SPAN_SET: u32 = 100;

/// Traces per answer (Tempo's `max_result_limit` defaults to 262,144).
const TRACES_PER_ANSWER: u32 = 5_000;

/// What Tempo says when an answer is over its gRPC message limit.
const TOO_LARGE: &[u8] = b"response larger than the max";

/// One trace a whole-trace search found.
#[derive(Clone, Debug, PartialEq)]
pub struct WholeTrace {
    /// Its id, root and start, as for any search.
    pub summary: TraceSummary,
    /// Every span, in the order Tempo sent them; `None` when the search could not give them all (more
    /// than a span set carries, or a span whose parent is missing): look the trace up by id.
    pub spans: Option<Vec<Span>>,
}

#[derive(Clone, PartialEq, Message)]
struct SearchResponsePb {
    #[prost(message, repeated, tag = "1")]
    traces: Vec<TracePb>,
}

/// Tempo's `TraceSearchMetadata`. Field 6, the older single `spanSet`, repeats the first of
/// `spanSets` and is skipped.
#[derive(Clone, PartialEq, Message)]
struct TracePb {
    #[prost(string, tag = "1")]
    trace_id: String,
    #[prost(string, tag = "2")]
    root_service_name: String,
    #[prost(string, tag = "3")]
    root_trace_name: String,
    #[prost(uint64, tag = "4")]
    start_time_unix_nano: u64,
    #[prost(uint32, tag = "5")]
    duration_ms: u32,
    #[prost(message, repeated, tag = "7")]
    span_sets: Vec<SpanSetPb>,
}

#[derive(Clone, PartialEq, Message)]
struct SpanSetPb {
    #[prost(message, repeated, tag = "1")]
    spans: Vec<SpanPb>,
    #[prost(uint32, tag = "2")]
    matched: u32,
}

#[derive(Clone, PartialEq, Message)]
struct SpanPb {
    /// Hex.
    #[prost(string, tag = "1")]
    span_id: String,
    #[prost(string, tag = "2")]
    name: String,
    #[prost(uint64, tag = "3")]
    start_time_unix_nano: u64,
    #[prost(uint64, tag = "4")]
    duration_nanos: u64,
    #[prost(message, repeated, tag = "5")]
    attributes: Vec<KeyValue>,
}

/// Reads a protobuf whole-trace search answer; ids that cannot be trace ids are counted in the second
/// value.
pub fn parse_whole_traces(body: &[u8]) -> Result<(Vec<WholeTrace>, usize), prost::DecodeError> {
    let answer = SearchResponsePb::decode(body)?;
    let mut bad = 0;
    let traces = answer
        .traces
        .into_iter()
        .filter_map(|t| {
            let Some(trace_id) = parse_trace_id(&t.trace_id) else {
                bad += 1;
                return None;
            };
            let spans = t
                .span_sets
                .into_iter()
                .next()
                .and_then(|set| rebuild(trace_id, set));
            let text = |s: String| (!s.is_empty()).then_some(s);
            Some(WholeTrace {
                summary: TraceSummary {
                    trace_id,
                    root_service: text(t.root_service_name),
                    root_name: text(t.root_trace_name),
                    start_unix_nanos: t.start_time_unix_nano,
                    duration_ms: u64::from(t.duration_ms),
                    matched_spans: Vec::new(),
                },
                spans,
            })
        })
        .collect();
    Ok((traces, bad))
}

/// One span as the search gave it, before its parent is known.
struct Placed {
    span: Span,
    left: i64,
    parent: i64,
}

/// The trace's spans with their parents, or `None` when the span set is not the whole trace.
fn rebuild(trace_id: TraceId, set: SpanSetPb) -> Option<Vec<Span>> {
    if set.spans.is_empty() || set.matched as usize != set.spans.len() {
        return None;
    }
    let placed: Vec<Placed> = set
        .spans
        .into_iter()
        .map(|s| place(trace_id, s))
        .collect::<Option<_>>()?;
    let by_left: HashMap<i64, SpanId> = placed.iter().map(|p| (p.left, p.span.span_id)).collect();
    let roots = placed.iter().filter(|p| p.parent == -1).count();
    if roots != 1 || by_left.len() != placed.len() {
        return None;
    }
    placed
        .into_iter()
        .map(|mut p| {
            p.span.parent_span_id = match p.parent {
                -1 => None,
                parent => Some(*by_left.get(&parent)?),
            };
            Some(p.span)
        })
        .collect()
}

/// A span and its nested-set place; `None` without one (Tempo gives spans it could not connect to
/// their trace's tree no place).
fn place(trace_id: TraceId, s: SpanPb) -> Option<Placed> {
    let span_id = hex::decode(format!("{:0>16}", s.span_id))
        .ok()
        .and_then(|bytes| SpanId::from_slice(&bytes))?;
    let (mut left, mut parent) = (None, None);
    let (mut service, mut kind, mut status) = (None, SpanKind::Unspecified, SpanStatus::Unset);
    let mut pairs: Vec<(&str, AttrValue<'_>)> = Vec::with_capacity(s.attributes.len());
    for attribute in &s.attributes {
        let value = match attribute.value.as_ref().and_then(|v| v.value.as_ref()) {
            Some(any_value::Value::StringValue(text)) if text == "nil" => continue,
            Some(any_value::Value::StringValue(text)) => AttrValue::Str(text),
            Some(any_value::Value::IntValue(n)) => AttrValue::Int(*n),
            Some(_) => AttrValue::Other,
            None => continue,
        };
        match (attribute.key.as_str(), value) {
            ("nestedSetLeft", AttrValue::Int(n)) => left = Some(n),
            ("nestedSetParent", AttrValue::Int(n)) => parent = Some(n),
            ("service.name", AttrValue::Str(name)) => service = Some(name.to_owned()),
            ("kind", AttrValue::Str(word)) => kind = kind_of(word),
            ("status", AttrValue::Str(word)) => status = status_of(word),
            (key, value) => pairs.push((key, value)),
        }
    }
    let left = left.filter(|&n| n > 0)?;
    let parent = parent.filter(|&n| n == -1 || n > 0)?;
    Some(Placed {
        span: Span {
            trace_id,
            span_id,
            parent_span_id: None,
            service: service.unwrap_or_else(|| "unknown_service".into()),
            operation: s.name,
            kind,
            start: UnixNanos(s.start_time_unix_nano),
            duration_nanos: s.duration_nanos,
            status,
            attributes: SpanAttributes::from_pairs(pairs),
        },
        left,
        parent,
    })
}

/// A span kind as TraceQL writes it.
pub(super) fn kind_of(word: &str) -> SpanKind {
    match word {
        "server" => SpanKind::Server,
        "client" => SpanKind::Client,
        "producer" => SpanKind::Producer,
        "consumer" => SpanKind::Consumer,
        "internal" => SpanKind::Internal,
        _ => SpanKind::Unspecified,
    }
}

/// A span status as TraceQL writes it.
pub(super) fn status_of(word: &str) -> SpanStatus {
    match word {
        "error" => SpanStatus::Error,
        "ok" => SpanStatus::Ok,
        _ => SpanStatus::Unset,
    }
}

impl TempoClient {
    /// Every trace Tempo finds in `[start, end)` (Unix seconds), with its spans where one search can
    /// give them all. The range is first cut into `pieces` equal parts (a caller that knows its traffic
    /// asks for parts of about 10,000 spans), and any part Tempo answers too large or full is split in
    /// halves, down to one second. Traces are deduplicated by id.
    pub async fn whole_traces(
        &self,
        start: u64,
        end: u64,
        pieces: u32,
    ) -> TempoResult<Vec<WholeTrace>> {
        if end <= start {
            return Err(TempoError::Config(format!(
                "a search window must end after it starts ({start}..{end})"
            )));
        }
        let step = (end - start).div_ceil(u64::from(pieces.max(1))).max(1);
        let mut pending: Vec<(u64, u64)> = (start..end)
            .step_by(step as usize)
            .map(|from| (from, (from + step).min(end)))
            .collect();
        // Taken from the end: the earliest part first.
        pending.reverse();
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        while let Some((from, to)) = pending.pop() {
            let answer = self.whole_traces_page(from, to).await?;
            let full = answer
                .as_ref()
                .is_none_or(|(_, sent)| *sent >= TRACES_PER_ANSWER as usize);
            if full && to - from > 1 {
                let middle = from + (to - from) / 2;
                pending.push((middle, to));
                pending.push((from, middle));
                continue;
            }
            let Some((traces, sent)) = answer else {
                return Err(TempoError::Malformed {
                    request: format!("GET /api/search [{from}, {to})"),
                    message: "one second of traces is larger than Tempo may answer".into(),
                });
            };
            if sent >= TRACES_PER_ANSWER as usize {
                tracing::warn!(
                    from,
                    to,
                    limit = TRACES_PER_ANSWER,
                    "one second holds more traces than a search answers; some are left out"
                );
            }
            out.extend(
                traces
                    .into_iter()
                    .filter(|t| seen.insert(t.summary.trace_id)),
            );
        }
        Ok(out)
    }

    /// One search; `None` when Tempo says the answer would be too large. A Tempo whose spans per span
    /// set are limited below the default says so, and is asked again within its limit (from then on).
    async fn whole_traces_page(
        &self,
        from: u64,
        to: u64,
    ) -> TempoResult<Option<(Vec<WholeTrace>, usize)>> {
        let what = format!("GET /api/search [{from}, {to}) (whole traces)");
        let answer = loop {
            let spss = self.spans_per_span_set.load(Ordering::Relaxed);
            let answer = self
                .get(
                    &what,
                    "/api/search",
                    &[
                        ("q", WHOLE_TRACES_QUERY.to_owned()),
                        ("start", from.to_string()),
                        ("end", to.to_string()),
                        ("limit", TRACES_PER_ANSWER.to_string()),
                        ("spss", spss.to_string()),
                    ],
                    "application/protobuf",
                )
                .await?;
            match spans_per_span_set_limit(&answer.body) {
                Some(limit) if answer.status.is_client_error() && (1..spss).contains(&limit) => {
                    tracing::warn!(
                        limit,
                        "Tempo limits spans per span set; traces over it are looked up"
                    );
                    self.spans_per_span_set.store(limit, Ordering::Relaxed);
                }
                _ => break answer,
            }
        };
        if !answer.status.is_success() && is_too_large(&answer.body) {
            return Ok(None);
        }
        if !answer.status.is_success() {
            return Err(super::status_error(&what, answer.status, &answer.body));
        }
        if !answer.content_type.starts_with("application/protobuf") {
            return Err(TempoError::Malformed {
                request: what,
                message: format!(
                    "asked for protobuf, Tempo answered {:?}",
                    answer.content_type
                ),
            });
        }
        let (traces, bad) =
            parse_whole_traces(&answer.body).map_err(|e| TempoError::Malformed {
                request: what.clone(),
                message: e.to_string(),
            })?;
        if bad > 0 {
            tracing::warn!(request = %what, bad, "search answer held trace ids that are not hex");
        }
        let sent = traces.len() + bad;
        Ok(Some((traces, sent)))
    }
}

/// The limit in Tempo's refusal of a larger `spss`: `spans per span set exceeds 100. received 1000`.
fn spans_per_span_set_limit(body: &[u8]) -> Option<u32> {
    let text = std::str::from_utf8(body).ok()?;
    let rest = text.split("spans per span set exceeds ").nth(1)?;
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// Tempo's answer to a search whose result is over its message limit.
pub(super) fn is_too_large(body: &[u8]) -> bool {
    body.windows(TOO_LARGE.len()).any(|w| w == TOO_LARGE)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ANSWER: &[u8] = include_bytes!("../../tests/fixtures/search_whole_traces.pb");

    #[test]
    fn a_recorded_answer_gives_whole_trees() {
        let (traces, bad) = parse_whole_traces(ANSWER).unwrap();
        assert_eq!((traces.len(), bad), (3, 0));
        for t in &traces {
            let spans = t
                .spans
                .as_ref()
                .expect("every span set of the recording is whole");
            let ids: HashSet<SpanId> = spans.iter().map(|s| s.span_id).collect();
            let roots: Vec<&Span> = spans.iter().filter(|s| s.is_root()).collect();
            assert_eq!(roots.len(), 1, "{spans:#?}");
            assert_eq!(
                Some(roots[0].operation.as_str()),
                t.summary.root_name.as_deref()
            );
            assert_eq!(
                Some(roots[0].service.as_str()),
                t.summary.root_service.as_deref()
            );
            assert_eq!(roots[0].start.0, t.summary.start_unix_nanos);
            for s in spans.iter().filter(|s| !s.is_root()) {
                assert!(ids.contains(&s.parent_span_id.unwrap()), "{s:#?}");
                assert_eq!(s.trace_id, t.summary.trace_id);
            }
        }
        // The first checkout: 27 spans, its root a server span with an answer, and database calls.
        let checkout = traces
            .iter()
            .find(|t| t.summary.root_name.as_deref() == Some("POST /api/checkout"))
            .unwrap();
        let spans = checkout.spans.as_ref().unwrap();
        assert_eq!(spans.len(), 27);
        let root = spans.iter().find(|s| s.is_root()).unwrap();
        assert_eq!(root.kind, SpanKind::Server);
        assert!(root.attributes.http_status_code.is_some(), "{root:#?}");
        assert!(root.attributes.http_method.is_some(), "{root:#?}");
        assert!(spans.iter().any(|s| s.is_database_call()));
        assert!(
            spans
                .iter()
                .filter(|s| s.is_database_call())
                .all(|s| s.attributes.db_statement_shape.is_some())
        );
    }

    fn span(id: u8, left: i64, parent: i64) -> SpanPb {
        let int = |key: &str, n: i64| KeyValue {
            key: key.into(),
            value: Some(opentelemetry_proto::tonic::common::v1::AnyValue {
                value: Some(any_value::Value::IntValue(n)),
            }),
            ..KeyValue::default()
        };
        SpanPb {
            span_id: format!("{id:x}"),
            name: format!("op{id}"),
            start_time_unix_nano: 1,
            duration_nanos: 1,
            attributes: vec![int("nestedSetLeft", left), int("nestedSetParent", parent)],
        }
    }

    #[test]
    fn a_span_set_that_is_not_the_whole_tree_asks_for_a_lookup() {
        let id = TraceId([7; 16]);
        let whole = SpanSetPb {
            spans: vec![span(1, 1, -1), span(2, 2, 1), span(3, 4, 2)],
            matched: 3,
        };
        let spans = rebuild(id, whole.clone()).expect("whole");
        assert_eq!(spans[2].parent_span_id, Some(spans[1].span_id));
        assert_eq!(spans[1].parent_span_id, Some(spans[0].span_id));
        // Tempo matched more spans than it sent.
        assert_eq!(
            rebuild(
                id,
                SpanSetPb {
                    matched: 4,
                    ..whole.clone()
                }
            ),
            None
        );
        // A parent that is not in the set.
        let orphan = SpanSetPb {
            spans: vec![span(1, 1, -1), span(2, 2, 9)],
            matched: 2,
        };
        assert_eq!(rebuild(id, orphan), None);
        // A span without a place (Tempo could not connect it), and two roots.
        let unplaced = SpanSetPb {
            spans: vec![span(1, 1, -1), span(2, 0, 0)],
            matched: 2,
        };
        assert_eq!(rebuild(id, unplaced), None);
        let two_roots = SpanSetPb {
            spans: vec![span(1, 1, -1), span(2, 3, -1)],
            matched: 2,
        };
        assert_eq!(rebuild(id, two_roots), None);
    }

    #[test]
    fn tempos_spans_per_span_set_limit_is_read() {
        let body = b"spans per span set exceeds 100. received 1000";
        assert_eq!(spans_per_span_set_limit(body), Some(100));
        assert_eq!(spans_per_span_set_limit(b"bad query"), None);
    }

    #[test]
    fn tempos_too_large_answer_is_recognised() {
        assert!(is_too_large(
            b"response larger than the max (24551165 vs 16777216)"
        ));
        assert!(!is_too_large(b"internal error"));
    }
}
