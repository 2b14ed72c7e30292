//! The spans of one window, from Tempo: every trace whose root starts in `[start, end)` (so that a
//! trace crossing a window boundary is read once), found by search (split while answers come back
//! full) and fetched by id, a bounded number at a time. A window is read whole or not at all: any
//! fetch that fails after the client's retries fails the window, so it is tried again rather than
//! detected on part of its traffic. Read by sample, the search itself is for root spans with the
//! attributes security reads (`ENTRY_SPANS_QUERY`), so that every request still reaches security
//! analysis without its trace being fetched.

use crate::shard::Shard;
use detect_core::TraceId;
use detect_core::{Span, is_sampled};
use futures_util::{StreamExt, stream};
use std::collections::{BTreeMap, HashMap};
use tempo_client::{
    ENTRY_SPANS_QUERY, FetchedTrace, SearchRequest, TempoClient, TempoResult, TraceSummary,
};

/// Share of each root operation's traces, the slowest, fetched beside the sample.
const SLOWEST_SHARE: f64 = 0.01;
/// Most traces fetched a window for being slow.
const MAX_CHOSEN: usize = 200;

/// Traces per search answer (Tempo's `max_result_limit` defaults to 262,144).
const SEARCH_LIMIT: u32 = 5_000;

#[derive(Debug, Default)]
pub struct WindowSpans {
    /// In start order.
    pub spans: Vec<Span>,
    /// Every trace's entry span, from the search (with [`Reading::Sampled`]), in start order: what
    /// security analysis reads when traces are fetched by sample.
    pub entry_spans: Vec<Span>,
    /// With [`Reading::Sampled`]: the slowest traces of each root operation that the sample left out
    /// (see [`chosen_traces`]), with how many of their root's traces each stands for (one in N).
    pub chosen: Vec<(Vec<Span>, f64)>,
    pub traces: u64,
    /// Found by search but gone by the time they were fetched.
    pub missing_traces: u64,
    /// Traces Tempo could only give in part.
    pub partial_traces: u64,
    pub skipped_spans: u64,
}

impl WindowSpans {
    /// Counts one trace fetched by id (or gone by then), and gives its spans.
    fn count_fetched(&mut self, trace: Option<FetchedTrace>) -> Option<Vec<Span>> {
        let Some(t) = trace else {
            self.missing_traces += 1;
            return None;
        };
        self.traces += 1;
        self.partial_traces += u64::from(t.partial.is_some());
        self.skipped_spans += t.skipped_spans as u64;
        Some(t.spans)
    }
}

/// Which traces of a window are read.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Reading {
    /// Every trace, whole, from searches that return every span ([`tempo_client::WHOLE_TRACES_QUERY`]),
    /// the window cut in this many parts; a trace a search cannot give whole is fetched.
    Whole(u32),
    /// Every trace, fetched.
    All,
    /// The traces the sampling rule keeps at this ratio (every one without sampling), fetched; and
    /// every trace's entry span, from the search itself.
    Sampled(Option<f64>),
}

/// `start` and `end` in Unix nanoseconds; Tempo is searched by whole seconds around them. Only the
/// traces whose root service belongs to `shard` are read.
pub async fn fetch_window(
    tempo: &TempoClient,
    shard: Shard,
    (start, end): (u64, u64),
    reading: Reading,
) -> TempoResult<WindowSpans> {
    const NANOS: u64 = 1_000_000_000;
    if let Reading::Whole(pieces) = reading {
        return read_whole(tempo, shard, (start, end), pieces).await;
    }
    let (query, sample) = match reading {
        Reading::Whole(_) | Reading::All => ("{}", None),
        Reading::Sampled(ratio) => (ENTRY_SPANS_QUERY, ratio),
    };
    let summaries = tempo
        .search_all(&SearchRequest {
            query: query.into(),
            start: start / NANOS,
            end: end.div_ceil(NANOS),
            limit: SEARCH_LIMIT,
            spans_per_span_set: 1,
        })
        .await?;
    let mine: Vec<_> = summaries
        .into_iter()
        .filter(|t| (start..end).contains(&t.start_unix_nanos))
        .filter(|t| shard.owns(t.root_service.as_deref()))
        .collect();
    let mut entry_spans: Vec<Span> = match reading {
        Reading::Whole(_) | Reading::All => Vec::new(),
        Reading::Sampled(_) => mine.iter().filter_map(|t| t.entry_span()).collect(),
    };
    entry_spans.sort_by_key(|s| (s.start, s.trace_id.0, s.span_id.0));
    let in_sample =
        |t: &TraceSummary| sample.is_none_or(|ratio| is_sampled(&t.trace_id, true, ratio));
    let chosen: HashMap<TraceId, f64> = match reading {
        Reading::Whole(_) | Reading::All => HashMap::new(),
        Reading::Sampled(_) => chosen_traces(&mine, in_sample),
    };
    let ids: Vec<_> = mine
        .iter()
        .filter(|t| in_sample(t) || chosen.contains_key(&t.trace_id))
        .map(|t| t.trace_id)
        .collect();
    let mut window = WindowSpans {
        entry_spans,
        ..WindowSpans::default()
    };
    for trace in fetch_all(tempo, ids).await {
        let Some(spans) = window.count_fetched(trace?) else {
            continue;
        };
        let id = spans.first().map(|s| s.trace_id);
        match id.and_then(|id| chosen.get(&id)) {
            Some(&one_in) => window.chosen.push((spans, one_in)),
            None => window.spans.extend(spans),
        }
    }
    // Fetches finish in any order; the engine wants event time.
    window
        .spans
        .sort_by_key(|s| (s.start, s.trace_id.0, s.span_id.0));
    Ok(window)
}

/// Every trace of the window from whole-trace searches; those a search could not give whole (over
/// Tempo's spans per span set, or with a span Tempo could not place) are fetched by id.
async fn read_whole(
    tempo: &TempoClient,
    shard: Shard,
    (start, end): (u64, u64),
    pieces: u32,
) -> TempoResult<WindowSpans> {
    const NANOS: u64 = 1_000_000_000;
    let found = tempo
        .whole_traces(start / NANOS, end.div_ceil(NANOS), pieces)
        .await?;
    let mut window = WindowSpans::default();
    let mut lookups = Vec::new();
    for trace in found {
        let t = &trace.summary;
        if !(start..end).contains(&t.start_unix_nanos) || !shard.owns(t.root_service.as_deref()) {
            continue;
        }
        match trace.spans {
            Some(spans) => {
                window.traces += 1;
                window.spans.extend(spans);
            }
            None => lookups.push(trace.summary.trace_id),
        }
    }
    for trace in fetch_all(tempo, lookups).await {
        if let Some(spans) = window.count_fetched(trace?) {
            window.spans.extend(spans);
        }
    }
    window
        .spans
        .sort_by_key(|s| (s.start, s.trace_id.0, s.span_id.0));
    Ok(window)
}

/// The traces by id, as many at once as the client allows, in the order they finish.
async fn fetch_all(
    tempo: &TempoClient,
    ids: Vec<TraceId>,
) -> Vec<TempoResult<Option<FetchedTrace>>> {
    let limit = tempo.config().max_concurrent_fetches;
    stream::iter(ids)
        .map(|id| async move { tempo.trace(&id).await })
        .buffer_unordered(limit)
        .collect()
        .await
}

/// The traces the sample leaves out that a trace's own latency test should still see: per root
/// operation, the slowest one in a hundred (at least one) by the duration the search gives, at most
/// [`MAX_CHOSEN`] a window. Each comes with the number of its root's traces it was chosen from
/// (one in N), which the test's limit is divided by.
fn chosen_traces(
    traces: &[TraceSummary],
    in_sample: impl Fn(&TraceSummary) -> bool,
) -> HashMap<TraceId, f64> {
    let mut by_root: BTreeMap<(Option<&str>, Option<&str>), Vec<&TraceSummary>> = BTreeMap::new();
    for t in traces {
        by_root
            .entry((t.root_service.as_deref(), t.root_name.as_deref()))
            .or_default()
            .push(t);
    }
    let mut chosen: Vec<(u64, TraceId, f64)> = Vec::new();
    for group in by_root.values_mut() {
        let n = group.len();
        let k = ((n as f64 * SLOWEST_SHARE).ceil() as usize).max(1);
        group.sort_by_key(|t| std::cmp::Reverse((t.duration_ms, t.trace_id.0)));
        let one_in = n as f64 / k as f64;
        chosen.extend(
            group
                .iter()
                .take(k)
                .filter(|t| !in_sample(t))
                .map(|t| (t.duration_ms, t.trace_id, one_in)),
        );
    }
    chosen.sort_by_key(|&(ms, id, _)| std::cmp::Reverse((ms, id.0)));
    chosen
        .into_iter()
        .take(MAX_CHOSEN)
        .map(|(_, id, one_in)| (id, one_in))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(n: u8, root: &str, ms: u64) -> TraceSummary {
        TraceSummary {
            trace_id: TraceId([n; 16]),
            root_service: Some("shop".into()),
            root_name: Some(root.into()),
            start_unix_nanos: 0,
            duration_ms: ms,
            matched_spans: Vec::new(),
        }
    }

    #[test]
    fn the_slowest_of_each_root_outside_the_sample_is_chosen() {
        let mut traces: Vec<TraceSummary> = (1..=150)
            .map(|n| summary(n, "GET /a", u64::from(n)))
            .collect();
        traces.push(summary(200, "GET /b", 5));
        traces.push(summary(201, "GET /b", 9));
        // Trace 150 is the slowest of GET /a, 149 the next: two of 150 (1 %, rounded up).
        let sampled = |t: &TraceSummary| t.trace_id.0[0] == 149;
        let chosen = chosen_traces(&traces, sampled);
        let mut ids: Vec<u8> = chosen.keys().map(|id| id.0[0]).collect();
        ids.sort_unstable();
        assert_eq!(ids, vec![150, 201], "149 is in the sample already");
        assert_eq!(chosen[&TraceId([150; 16])], 75.0);
        assert_eq!(chosen[&TraceId([201; 16])], 2.0);
    }
}
