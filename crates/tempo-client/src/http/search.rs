//! `GET /api/search` with TraceQL: always with `start` and `end` (without them Tempo looks only at
//! recent data), trace ids padded to 32 hex digits (Tempo drops leading zeros), `spanSets` or the older
//! `spanSet`, 64-bit numbers as strings, left-out empty fields; and a window holding more traces than
//! one answer may carry is split in halves until each half fits.

use super::{TempoClient, TempoError, TempoResult, success_json};
use detect_core::{SpanId, TraceId};
use serde::Deserialize;

/// One search.
#[derive(Clone, Debug)]
pub struct SearchRequest {
    /// TraceQL, for example `{}` or `{resource.service.name="cart"}`.
    pub query: String,
    /// Unix seconds, inclusive.
    pub start: u64,
    /// Unix seconds, exclusive.
    pub end: u64,
    /// Traces per answer.
    pub limit: u32,
    /// Spans per span set.
    pub spans_per_span_set: u32,
}

/// One trace of a search answer.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceSummary {
    pub trace_id: TraceId,
    pub root_service: Option<String>,
    pub root_name: Option<String>,
    pub start_unix_nanos: u64,
    pub duration_ms: u64,
    /// The spans the query matched (up to `spss` of them), with the attributes it selected.
    pub matched_spans: Vec<MatchedSpan>,
}

#[derive(Deserialize)]
struct SearchAnswer {
    #[serde(default)]
    traces: Vec<RawTrace>,
}

/// One span a search matched, as Tempo gives it: no name or parent, only what the query selected.
#[derive(Clone, Debug, PartialEq)]
pub struct MatchedSpan {
    pub span_id: Option<SpanId>,
    pub start_unix_nanos: u64,
    pub duration_nanos: u64,
    pub attributes: Vec<(String, SelectedValue)>,
}

/// A selected attribute's value.
#[derive(Clone, Debug, PartialEq)]
pub enum SelectedValue {
    Text(String),
    Int(i64),
    Other,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawSpanSet {
    #[serde(default)]
    spans: Vec<RawSpan>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawSpan {
    #[serde(rename = "spanID", default)]
    span_id: Option<String>,
    #[serde(default)]
    start_time_unix_nano: Option<NumberOrString>,
    #[serde(default)]
    duration_nanos: Option<NumberOrString>,
    #[serde(default)]
    attributes: Vec<RawAttribute>,
}

#[derive(Deserialize)]
struct RawAttribute {
    key: String,
    #[serde(default)]
    value: RawValue,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RawValue {
    string_value: Option<String>,
    int_value: Option<NumberOrString>,
}

impl RawSpan {
    fn matched(self) -> MatchedSpan {
        MatchedSpan {
            span_id: self
                .span_id
                .and_then(|id| hex::decode(format!("{id:0>16}")).ok())
                .and_then(|bytes| SpanId::from_slice(&bytes)),
            start_unix_nanos: self
                .start_time_unix_nano
                .and_then(|v| v.value())
                .unwrap_or(0),
            duration_nanos: self.duration_nanos.and_then(|v| v.value()).unwrap_or(0),
            attributes: self
                .attributes
                .into_iter()
                .map(|a| {
                    let value = match (a.value.string_value, a.value.int_value) {
                        (Some(text), _) => SelectedValue::Text(text),
                        (None, Some(n)) => {
                            n.signed().map_or(SelectedValue::Other, SelectedValue::Int)
                        }
                        (None, None) => SelectedValue::Other,
                    };
                    (a.key, value)
                })
                .collect(),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawTrace {
    #[serde(rename = "traceID")]
    trace_id: String,
    root_service_name: Option<String>,
    root_trace_name: Option<String>,
    #[serde(default)]
    start_time_unix_nano: Option<NumberOrString>,
    #[serde(default)]
    duration_ms: Option<NumberOrString>,
    /// Current Tempo; `spanSet` is the older form of the first.
    #[serde(default)]
    span_sets: Vec<RawSpanSet>,
    #[serde(default)]
    span_set: Option<RawSpanSet>,
}

/// Tempo writes 64-bit numbers as strings, smaller ones as numbers.
#[derive(Deserialize)]
#[serde(untagged)]
enum NumberOrString {
    Number(u64),
    Signed(i64),
    Text(String),
}

impl NumberOrString {
    fn signed(&self) -> Option<i64> {
        match self {
            NumberOrString::Number(n) => i64::try_from(*n).ok(),
            NumberOrString::Signed(n) => Some(*n),
            NumberOrString::Text(s) => s.parse().ok(),
        }
    }

    fn value(&self) -> Option<u64> {
        match self {
            NumberOrString::Number(n) => Some(*n),
            NumberOrString::Signed(_) => None,
            NumberOrString::Text(s) => s.parse().ok(),
        }
    }
}

/// A search answer's trace id: hex with its leading zeros dropped, padded back to 32 digits.
pub fn parse_trace_id(text: &str) -> Option<TraceId> {
    let text = text.trim();
    if text.is_empty() || text.len() > 32 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let padded = format!("{text:0>32}");
    let bytes = hex::decode(padded).ok()?;
    TraceId::from_slice(&bytes).filter(|id| id.0 != [0; 16])
}

/// Reads a search answer; ids that cannot be trace ids are counted in the second value.
pub fn parse_search(body: &[u8]) -> Result<(Vec<TraceSummary>, usize), serde_json::Error> {
    let answer: SearchAnswer = serde_json::from_slice(body)?;
    let mut bad = 0;
    let traces = answer
        .traces
        .into_iter()
        .filter_map(|t| {
            let Some(trace_id) = parse_trace_id(&t.trace_id) else {
                bad += 1;
                return None;
            };
            Some(TraceSummary {
                trace_id,
                root_service: t.root_service_name,
                root_name: t.root_trace_name,
                start_unix_nanos: t.start_time_unix_nano.and_then(|v| v.value()).unwrap_or(0),
                duration_ms: t.duration_ms.and_then(|v| v.value()).unwrap_or(0),
                matched_spans: t
                    .span_sets
                    .into_iter()
                    .next()
                    .or(t.span_set)
                    .map(|set| set.spans.into_iter().map(RawSpan::matched).collect())
                    .unwrap_or_default(),
            })
        })
        .collect();
    Ok((traces, bad))
}

impl TempoClient {
    /// One search, as asked.
    pub async fn search(&self, request: &SearchRequest) -> TempoResult<Vec<TraceSummary>> {
        Ok(self.search_page(request).await?.0)
    }

    /// One search: the traces, and how many Tempo sent (unusable ids included), which says whether
    /// the answer was full.
    async fn search_page(
        &self,
        request: &SearchRequest,
    ) -> TempoResult<(Vec<TraceSummary>, usize)> {
        if request.end <= request.start {
            return Err(TempoError::Config(format!(
                "a search window must end after it starts ({}..{})",
                request.start, request.end
            )));
        }
        let what = format!("GET /api/search [{}, {})", request.start, request.end);
        let answer = self
            .get(
                &what,
                "/api/search",
                &[
                    ("q", request.query.clone()),
                    ("start", request.start.to_string()),
                    ("end", request.end.to_string()),
                    ("limit", request.limit.to_string()),
                    ("spss", request.spans_per_span_set.to_string()),
                ],
                "application/json",
            )
            .await?;
        let body = success_json(&what, &answer)?;
        let (traces, bad) = parse_search(&body).map_err(|e| TempoError::Malformed {
            request: what.clone(),
            message: e.to_string(),
        })?;
        if bad > 0 {
            tracing::warn!(request = %what, bad, "search answer held trace ids that are not hex");
        }
        let sent = traces.len() + bad;
        Ok((traces, sent))
    }

    /// Every trace of the window: a search that comes back full (`limit` traces) may have left some
    /// out, so its window is split in halves, down to one second. Traces are deduplicated by id.
    pub async fn search_all(&self, request: &SearchRequest) -> TempoResult<Vec<TraceSummary>> {
        let mut pending = vec![(request.start, request.end)];
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        while let Some((start, end)) = pending.pop() {
            let part = SearchRequest {
                start,
                end,
                ..request.clone()
            };
            let (traces, sent) = self.search_page(&part).await?;
            let full = sent >= request.limit as usize;
            if full && end - start > 1 {
                let middle = start + (end - start) / 2;
                pending.push((middle, end));
                pending.push((start, middle));
                continue;
            }
            if full {
                tracing::warn!(
                    start,
                    end,
                    limit = request.limit,
                    "one second holds more traces than the search limit; some are left out"
                );
            }
            for t in traces {
                if seen.insert(t.trace_id) {
                    out.push(t);
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_without_leading_zeros_are_padded() {
        let id = parse_trace_id("140f1cdb7388cfa06a4e738bcd523dc").unwrap();
        assert_eq!(id.to_string(), "0140f1cdb7388cfa06a4e738bcd523dc");
        assert_eq!(parse_trace_id(""), None);
        assert_eq!(parse_trace_id("xyz"), None);
        assert_eq!(parse_trace_id(&"f".repeat(33)), None);
        assert_eq!(parse_trace_id("0"), None, "the all-zero id is invalid");
    }

    #[test]
    fn the_recorded_tempo_answers_are_read() {
        for (name, at_least) in [
            ("search_traceql_window.json", 1),
            ("search_nezha_gateway.json", 1),
            ("search_default.json", 0),
            ("search_traceql_error.json", 0),
        ] {
            let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
            let body = std::fs::read(&path).unwrap();
            let (traces, bad) = parse_search(&body).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(bad, 0, "{name}");
            assert!(traces.len() >= at_least, "{name}: {traces:?}");
            for t in &traces {
                assert_eq!(t.trace_id.to_string().len(), 32);
            }
        }
        let body = std::fs::read(format!(
            "{}/tests/fixtures/search_traceql_window.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let (traces, _) = parse_search(&body).unwrap();
        assert_eq!(traces[0].root_service.as_deref(), Some("checkout-api"));
        assert_eq!(traces[0].start_unix_nanos, 1_795_546_727_104_884_056);
        assert_eq!(traces[0].duration_ms, 20);
    }
}
