//! Processing closed windows from Tempo, in order, exactly once: each window gets a run record; its
//! spans go through the worker's engine; its anomalies are stored idempotently (a window processed
//! again adds nothing) with HIGH and CRITICAL ones in the alert outbox; then the cursor moves past it
//! by compare-and-set, so a restart neither repeats nor skips a window. A window that fails (Tempo
//! unreachable after retries, the store away) is marked failed with the reason and the cursor stays:
//! it is tried again.
//!
//! How a window is read ([`TraceFetch`]): `all` fetches every trace, and the engine counts requests
//! and errors from them; `sampled` takes the counts from Tempo's TraceQL metrics and fetches only the
//! traces the sampling rule keeps (latency and resource analysis); security analysis gets every
//! request's entry span from the window's search, which asks Tempo for root spans and the attributes
//! security reads. Where TraceQL metrics cannot answer, that window is read whole, and its run record
//! says so (`count_source`).

use crate::metrics::WorkerMetrics;
use crate::shard::Shard;
use crate::tempo_window::{Reading, WindowSpans, fetch_window};
use chrono::{DateTime, TimeZone, Utc};
use detect_core::{
    Anomaly, DetectionConfig, Engine, IncidentTracker, LearnedState, Severity, UnixNanos,
};
use std::sync::Arc;
use store_pg::{IncidentRecorder, NewAnomaly, ReadCost, Repository, RunOutcome, Store};
use tempo_client::{TempoClient, TempoUsage};
use tracing::{info, warn};

/// The cursor of the Tempo window stream.
pub const CURSOR: &str = "tempo:windows";
/// Where the stream's engine keeps what it has learned (`detector_baselines`).
pub const LEARNED: &str = "engine:tempo:windows";
/// Where the stream keeps its open incidents (`detector_baselines`).
pub const INCIDENTS: &str = "incidents:tempo:windows";

/// Which traces of a window are fetched.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum TraceFetch {
    /// Every trace whole from a few searches a window (every span, with the attributes detection
    /// reads): exact counts, and every detector sees every span. Traces a search cannot give whole are
    /// fetched by id.
    Search,
    /// Every trace fetched by id: exact counts, and every detector sees every span and attribute.
    All,
    /// Counts from TraceQL metrics; traces by the sampling rule; entry spans for security from the search.
    Sampled,
}

/// Where a window's counts came from, as its run record says.
const COUNTED_FROM_TRACES: &str = "traces";
const COUNTED_BY_TEMPO: &str = "traceql-metrics";

pub struct Detection {
    pub shard: Shard,
    pub store: Store,
    pub tempo: TempoClient,
    pub engine: Engine,
    /// Groups the stored findings into incidents; those from `notify_min_severity` up page.
    pub incidents: IncidentRecorder,
    pub notify_min_severity: Severity,
    pub fetch: TraceFetch,
    /// Spans of the last window read, which sizes the next window's searches.
    pub last_window_spans: u64,
    /// Windows and what reading them cost, for `/metrics`.
    pub metrics: Arc<WorkerMetrics>,
    /// Where every detection is also written, one JSON line each as `replay` prints it (`once
    /// --detections`).
    pub detections_out: Option<std::io::BufWriter<std::fs::File>>,
    /// This worker's name in run records.
    pub holder: String,
    /// Set when the engine went on from a saved state: the last window done before is read again
    /// first (see [`Detection::catch_up`]).
    pub catch_up: bool,
    /// The stream's own detection: each window gets a run record, what was learned is saved and the
    /// cursor moves. False when a manual run processes a range again with a fresh engine: its writes
    /// are only its (idempotent) anomalies, recorded under the manual run.
    pub is_stream: bool,
}

/// What one window did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct WindowReport {
    pub spans: u64,
    pub traces: u64,
    pub anomalies: u64,
    pub stored: u64,
    /// Where the counts came from (for a range: of its last window).
    pub count_source: String,
}

impl WindowReport {
    pub fn add(&mut self, other: &WindowReport) {
        self.spans += other.spans;
        self.traces += other.traces;
        self.anomalies += other.anomalies;
        self.stored += other.stored;
        self.count_source.clone_from(&other.count_source);
    }
}

/// The engine for the stream: what the store holds, when it was learned under `config`; a fresh one
/// otherwise (saying why). True when it went on from the store.
pub async fn load_engine(
    store: &Store,
    shard: Shard,
    config: DetectionConfig,
) -> anyhow::Result<(Engine, bool)> {
    let Some(saved) = store.load_baseline(&shard.key(LEARNED)).await? else {
        info!("no learned state yet: the detectors start learning");
        return Ok((Engine::new(config), false));
    };
    let restored = serde_json::from_value::<LearnedState>(saved)
        .map_err(|e| e.to_string())
        .and_then(|state| Engine::with_learned(config.clone(), state).map_err(|e| e.to_string()));
    match restored {
        Ok(engine) => {
            info!("went on from the learned state in the store");
            Ok((engine, true))
        }
        Err(reason) => {
            warn!(%reason, "the learned state in the store is not used; the detectors start learning");
            Ok((Engine::new(config), false))
        }
    }
}

/// The stream's incident tracker as the store holds it (a restart goes on with the open incidents), or
/// a new one.
pub async fn load_incidents(store: &Store, shard: Shard) -> anyhow::Result<IncidentTracker> {
    let Some(saved) = store.load_baseline(&shard.key(INCIDENTS)).await? else {
        return Ok(IncidentTracker::default());
    };
    Ok(serde_json::from_value(saved).unwrap_or_else(|error| {
        warn!(%error, "the open incidents in the store are not readable; incidents start afresh");
        IncidentTracker::default()
    }))
}

/// What a window's reading of Tempo cost, as its run records it.
fn read_cost(used: &TempoUsage) -> ReadCost {
    let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    ReadCost {
        queries: count(used.queries),
        lookups: count(used.lookups),
        bytes: count(used.bytes),
        seconds: used.busy.as_secs_f64(),
    }
}

/// Spans one whole-trace search should carry at most: about 10 MB of Tempo's protobuf answer, well
/// under its 16 MiB message limit (a part over it is split again anyway).
const SPANS_PER_SEARCH: u64 = 10_000;

/// The parts a window's whole-trace search is cut into, from the spans of the window before.
fn search_pieces(last_window_spans: u64) -> u32 {
    u32::try_from(last_window_spans.div_ceil(SPANS_PER_SEARCH))
        .unwrap_or(u32::MAX)
        .max(1)
}

pub fn to_time(nanos: u64) -> DateTime<Utc> {
    Utc.timestamp_nanos(i64::try_from(nanos).unwrap_or(i64::MAX))
}

pub fn to_nanos(t: DateTime<Utc>) -> u64 {
    t.timestamp_nanos_opt().map_or(0, |n| n.max(0) as u64)
}

impl Detection {
    /// Picks up a configuration changed through the API. Baselines are learned for one configuration,
    /// so a changed one starts learning anew (and says so).
    pub async fn refresh_config(&mut self) -> anyhow::Result<()> {
        let config = self.store.load_config().await?;
        if config != *self.engine.config() {
            info!("the detection configuration changed: the detectors start learning under it");
            self.engine = Engine::new(config);
        }
        Ok(())
    }

    /// The cursor of this worker's shard.
    pub fn cursor_key(&self) -> String {
        self.shard.key(CURSOR)
    }

    pub fn window_nanos(&self) -> u64 {
        self.engine.config().window_nanos()
    }

    /// The start of the window holding `t`.
    pub fn align(&self, t: u64) -> u64 {
        t - t % self.window_nanos()
    }

    /// Reads again, once after a restart, the windows before `next` whose traces were not complete when
    /// the previous process stopped (those ending within `resource.trace_idle_seconds` of `next`): their
    /// latency, call paths and trace-level findings are judged only once their traces are complete, and
    /// what the engine held for them is not part of the saved state. Their spans count as late for the
    /// window counts (those windows are closed in the saved state, so nothing is learned twice), and
    /// findings stored before are not stored again.
    pub async fn catch_up(&mut self, next: u64) -> anyhow::Result<()> {
        if !std::mem::take(&mut self.catch_up) {
            return Ok(());
        }
        let w = self.window_nanos();
        let idle = self.engine.config().resource.trace_idle_seconds * UnixNanos::NANOS_PER_SEC;
        let from = next.saturating_sub(idle.div_ceil(w) * w);
        let stream = std::mem::replace(&mut self.is_stream, false);
        let mut result = Ok(());
        let mut start = from;
        while start < next && result.is_ok() {
            info!(window = %to_time(start), "reading again a window whose traces were not complete at the last stop");
            result = self.detect(start, start + w).await.map(|_| ());
            start += w;
        }
        self.is_stream = stream;
        result
    }

    /// Processes `[start, start + window)`, recording a run; moves the cursor past it when it is the
    /// furthest window done.
    pub async fn process(&mut self, start: u64) -> anyhow::Result<WindowReport> {
        let end = start + self.window_nanos();
        let run = if self.is_stream {
            let window = (to_time(start), to_time(end));
            let stream = self.cursor_key();
            Some(
                self.store
                    .start_stream_run(&stream, &self.holder, window)
                    .await?,
            )
        } else {
            None
        };
        let before = self.tempo.usage();
        let result = self.detect(start, end).await;
        let cost = read_cost(&self.tempo.usage().since(&before));
        let spans = result.as_ref().map_or(0, |report| report.spans);
        self.metrics.window(result.is_ok(), spans, &cost);
        match result {
            Ok(report) => {
                if let Some(run) = &run {
                    let outcome =
                        RunOutcome::succeeded(report.spans as i64, report.anomalies as i64)
                            .with_count_source(report.count_source.clone())
                            .with_cost(cost);
                    self.store.finish_run(run.id, &outcome).await?;
                    self.move_cursor(end).await?;
                }
                info!(window = %to_time(start), spans = report.spans, traces = report.traces,
                      anomalies = report.anomalies, stored = report.stored,
                      counts = %report.count_source, tempo_queries = cost.queries,
                      tempo_lookups = cost.lookups, tempo_bytes = cost.bytes,
                      tempo_seconds = cost.seconds, "window done");
                Ok(report)
            }
            Err(error) => {
                let reason = format!("{error:#}");
                warn!(window = %to_time(start), %reason, "window failed; it will be tried again");
                if let Some(run) = &run {
                    // Best effort: the store may be what failed.
                    let outcome = RunOutcome::failed(reason).with_cost(cost);
                    let _ = self.store.finish_run(run.id, &outcome).await;
                }
                Err(error)
            }
        }
    }

    /// The window's spans, and where its counts come from. In `sampled`, Tempo's counts go to the
    /// engine first (for the services of this shard).
    async fn read_window(&mut self, start: u64, end: u64) -> anyhow::Result<(WindowSpans, String)> {
        const NANOS: u64 = 1_000_000_000;
        if self.fetch == TraceFetch::Sampled {
            match self
                .tempo
                .span_counts(start / NANOS, end.div_ceil(NANOS))
                .await
            {
                Ok(counts) => {
                    for c in counts.iter().filter(|c| self.shard.owns(Some(&c.service))) {
                        self.engine.record_counts(
                            UnixNanos(start),
                            &c.service,
                            &c.operation,
                            c.spans,
                            c.errors,
                        );
                    }
                    let config = self.engine.config();
                    let ratio = config.sampling_enabled.then_some(config.sampling_ratio);
                    let reading = Reading::Sampled(ratio);
                    let spans =
                        fetch_window(&self.tempo, self.shard, (start, end), reading).await?;
                    return Ok((spans, COUNTED_BY_TEMPO.into()));
                }
                Err(error) => {
                    warn!(window = %to_time(start), %error, "TraceQL metrics cannot count this window; reading every trace");
                    let spans =
                        fetch_window(&self.tempo, self.shard, (start, end), Reading::All).await?;
                    let source =
                        format!("{COUNTED_FROM_TRACES} (TraceQL metrics unavailable: {error})");
                    return Ok((spans, source));
                }
            }
        }
        if self.fetch == TraceFetch::Search {
            let pieces = search_pieces(self.last_window_spans);
            match fetch_window(
                &self.tempo,
                self.shard,
                (start, end),
                Reading::Whole(pieces),
            )
            .await
            {
                Ok(spans) => return Ok((spans, COUNTED_FROM_TRACES.into())),
                // A Tempo that does not take the query (an old version, a narrower TraceQL): every
                // trace by id instead, for this window.
                Err(error) if error.is_refused() => {
                    warn!(window = %to_time(start), %error, "Tempo refused the whole-trace search; reading every trace by id");
                }
                Err(error) => return Err(error.into()),
            }
        }
        let spans = fetch_window(&self.tempo, self.shard, (start, end), Reading::All).await?;
        Ok((spans, COUNTED_FROM_TRACES.into()))
    }

    async fn detect(&mut self, start: u64, end: u64) -> anyhow::Result<WindowReport> {
        // Whole traces from the search cost nothing more to analyse each: sampling would only miss the
        // one slow trace. Read one by one (`all`, `sampled`), traces are analysed by the sampling rule.
        self.engine
            .analyse_every_trace(self.fetch == TraceFetch::Search);
        let (window, count_source) = self.read_window(start, end).await?;
        let counted_by_tempo = count_source == COUNTED_BY_TEMPO;
        let mut found: Vec<Anomaly> = Vec::new();
        let spans = window.spans.len() as u64;
        self.last_window_spans = spans;
        // Entry spans (security only) and fetched traces' spans, merged in event time.
        let mut entries = window.entry_spans.into_iter().peekable();
        for span in window.spans {
            while let Some(entry) = entries.next_if(|e| e.start <= span.start) {
                self.engine.ingest_entry_span(&entry, &mut found);
            }
            if counted_by_tempo {
                self.engine.ingest_counted_elsewhere(span, &mut found);
            } else {
                self.engine.ingest(span, &mut found);
            }
        }
        for entry in entries {
            self.engine.ingest_entry_span(&entry, &mut found);
        }
        // The slowest traces the sample left out: judged against what was learned, not learned from.
        for (trace, one_in) in window.chosen {
            self.engine.ingest_chosen_trace(trace, one_in, &mut found);
        }
        // Close this window: the engine's clock moves to its end plus the allowed lateness (spans of
        // the next window are not late then, as the window closes only its own index).
        let lateness = self.engine.config().allowed_lateness_seconds * UnixNanos::NANOS_PER_SEC;
        self.engine
            .advance_to(UnixNanos(end + lateness), &mut found);
        if let Some(out) = &mut self.detections_out {
            use std::io::Write;
            for anomaly in &found {
                serde_json::to_writer(&mut *out, &store_pg::wire::replay_json(anomaly))?;
                out.write_all(b"\n")?;
            }
            out.flush()?;
        }
        // Findings page through their incident, not one by one.
        let rows: Vec<NewAnomaly> = found
            .iter()
            .map(|a| NewAnomaly::from_anomaly(a, false))
            .collect();
        let outcomes = self.store.insert_anomalies(&rows).await?;
        let stored = outcomes
            .iter()
            .filter(|o| !matches!(o, store_pg::InsertOutcome::Duplicate))
            .count() as u64;
        self.incidents
            .set_settings(self.engine.config().incident_settings());
        let graph = self.engine.service_graph();
        self.incidents
            .observe(found.iter().zip(outcomes.iter().copied()), graph);
        self.incidents.advance_to(UnixNanos(end));
        self.store
            .record_incidents(&self.incidents.writes(graph))
            .await?;
        self.incidents.written();
        if self.is_stream {
            // Saved before the cursor moves: a worker that takes over goes on from here. (A crash
            // between the two makes the next worker learn this window twice; its anomalies are not
            // stored twice, and its incidents do not see them twice.)
            let learned = serde_json::to_value(self.engine.learned())?;
            let incidents = serde_json::to_value(self.incidents.tracker())?;
            self.store
                .save_baselines(&[
                    (self.shard.key(LEARNED), learned),
                    (self.shard.key(INCIDENTS), incidents),
                ])
                .await?;
        }
        Ok(WindowReport {
            spans,
            traces: window.traces,
            anomalies: found.len() as u64,
            stored,
            count_source,
        })
    }

    /// Moves the cursor to `end` unless it is there or further already (compare-and-set; a lost race
    /// means another worker moved it, which is fine: the window's writes are idempotent).
    async fn move_cursor(&self, end: u64) -> anyhow::Result<()> {
        let cursor = self.shard.key(CURSOR);
        let current = self.store.get_cursor(&cursor).await?;
        if current.is_some_and(|c| to_nanos(c) >= end) {
            return Ok(());
        }
        if !self
            .store
            .advance_cursor(&cursor, current, to_time(end))
            .await?
        {
            warn!(window_end = %to_time(end), "the cursor was moved by someone else meanwhile");
        }
        Ok(())
    }
}
