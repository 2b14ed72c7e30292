//! The spans of one window, from Tempo: every trace whose root starts in `[start, end)` (so that a
//! trace crossing a window boundary is read once), found by search (split while answers come back
//! full) and fetched by id, a bounded number at a time. A window is read whole or not at all: any
//! fetch that fails after the client's retries fails the window, so it is tried again rather than
//! detected on part of its traffic. Read by sample, the search itself is for root spans with the
//! attributes security reads (`ENTRY_SPANS_QUERY`), so that every request still reaches security
//! analysis without its trace being fetched.

use crate::shard::Shard;
use detect_core::{Span, is_sampled};
use futures_util::{StreamExt, stream};
use tempo_client::{ENTRY_SPANS_QUERY, SearchRequest, TempoClient, TempoResult};

/// Traces per search answer (Tempo's `max_result_limit` defaults to 262,144).
const SEARCH_LIMIT: u32 = 5_000;

#[derive(Debug, Default)]
pub struct WindowSpans {
    /// In start order.
    pub spans: Vec<Span>,
    /// Every trace's entry span, from the search (with [`Reading::Sampled`]), in start order: what
    /// security analysis reads when traces are fetched by sample.
    pub entry_spans: Vec<Span>,
    pub traces: u64,
    /// Found by search but gone by the time they were fetched.
    pub missing_traces: u64,
    /// Traces Tempo could only give in part.
    pub partial_traces: u64,
    pub skipped_spans: u64,
}

/// Which traces of a window are read.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Reading {
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
    let (query, sample) = match reading {
        Reading::All => ("{}", None),
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
        Reading::All => Vec::new(),
        Reading::Sampled(_) => mine.iter().filter_map(|t| t.entry_span()).collect(),
    };
    entry_spans.sort_by_key(|s| (s.start, s.trace_id.0, s.span_id.0));
    let ids: Vec<_> = mine
        .into_iter()
        .filter(|t| sample.is_none_or(|ratio| is_sampled(&t.trace_id, true, ratio)))
        .map(|t| t.trace_id)
        .collect();
    let limit = tempo.config().max_concurrent_fetches;
    let fetched: Vec<_> = stream::iter(ids)
        .map(|id| async move { tempo.trace(&id).await })
        .buffer_unordered(limit)
        .collect()
        .await;
    let mut window = WindowSpans {
        entry_spans,
        ..WindowSpans::default()
    };
    for trace in fetched {
        match trace? {
            None => window.missing_traces += 1,
            Some(t) => {
                window.traces += 1;
                window.partial_traces += u64::from(t.partial.is_some());
                window.skipped_spans += t.skipped_spans as u64;
                window.spans.extend(t.spans);
            }
        }
    }
    // Fetches finish in any order; the engine wants event time.
    window
        .spans
        .sort_by_key(|s| (s.start, s.trace_id.0, s.span_id.0));
    Ok(window)
}
