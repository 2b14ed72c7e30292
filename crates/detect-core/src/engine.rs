//! The engine: feeds every span to the detectors, keeps the event-time clock, closes windows and
//! hands assembled traces to per-trace analysis.
//!
//! Event time only. The clock is the latest span start seen. Window `i` covers
//! `[i·w, (i+1)·w)` by span start and closes once the clock passes its end by
//! `allowed_lateness_seconds`; a span for a closed window is counted as late and left out of window
//! counts (it is still judged for latency). The same input in the same order always gives the same
//! anomalies in the same order.
//!
//! What sees which spans: error rate, throughput and security count every span; latency judges every
//! span given to the engine; resource analysis looks only at traces chosen by the sampling rule.
//! Where the counts are made elsewhere (Tempo's TraceQL metrics, [`Engine::record_counts`]) and only
//! sampled traces are given ([`Engine::ingest_counted_elsewhere`]), those spans are judged for latency
//! and resources and serve as examples, and security analysis is off.

use crate::anomaly::{Anomaly, Window};
use crate::config::DetectionConfig;
use crate::detect::error_blame;
use crate::detect::latency::LatencyDetector;
use crate::detect::rates::RateDetector;
use crate::detect::resource::ResourceDetector;
use crate::detect::security::SecurityDetector;
use crate::keys::KeyInterner;
use crate::learned::{LEARNED_VERSION, LearnedError, LearnedState, config_entries};
use crate::sampling::is_sampled;
use crate::service_graph::ServiceGraph;
use crate::span::{Span, UnixNanos};
use crate::traces::{KeyedSpan, TraceAssembler};

/// Counters an operator reads to trust a run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EngineStats {
    pub spans: u64,
    /// Spans that arrived after their window had closed.
    pub late_spans: u64,
    /// Spans whose (service, operation) was past the `max_keys` cap.
    pub untracked_key_spans: u64,
    pub sampled_spans: u64,
    pub traces_analysed: u64,
    pub traces_evicted_early: u64,
    pub windows_closed: u64,
    /// Empty windows skipped inside a gap of more than a day in the input.
    pub windows_skipped: u64,
    /// Spans whose start lay more than an hour ahead of the clock (a skewed clock), which did not move it.
    pub skewed_spans: u64,
    pub anomalies: u64,
}

/// A span this far ahead of the clock does not move it on its own: one host with a wrong clock must
/// not make every other span late.
const MAX_CLOCK_JUMP_NANOS: u64 = 3_600 * UnixNanos::NANOS_PER_SEC;
/// …unless this many such spans arrive in a row: then the input really has moved on.
const CLOCK_JUMP_CONFIRMATIONS: u32 = 100;
/// Longest run of empty windows closed one by one; longer gaps are skipped (no silence is reported
/// for a gap of more than a day in the input).
const MAX_EMPTY_WINDOWS_CLOSED: u64 = 1_440;

/// Whether the engine counts a span for error rate and throughput, or the counts come from elsewhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Counting {
    Here,
    Elsewhere,
}

pub struct Engine {
    config: DetectionConfig,
    keys: KeyInterner,
    latency: LatencyDetector,
    rates: RateDetector,
    security: SecurityDetector,
    resource: ResourceDetector,
    traces: TraceAssembler,
    /// Which service calls which, from the assembled traces.
    graph: ServiceGraph,
    /// The latest span start seen (event time, nanoseconds).
    clock: u64,
    /// The oldest window still open; `None` before the first span.
    next_to_close: Option<u64>,
    /// Consecutive spans far ahead of the clock.
    jump_streak: u32,
    /// Per-trace analysis of every trace, whatever the sampling rule says (see
    /// [`Engine::analyse_every_trace`]).
    every_trace: bool,
    stats: EngineStats,
}

impl Engine {
    pub fn new(config: DetectionConfig) -> Self {
        let traces = TraceAssembler::new(
            config.resource.trace_idle_seconds * UnixNanos::NANOS_PER_SEC,
            config.resource.max_inflight_traces as usize,
        );
        Engine {
            keys: KeyInterner::new(config.max_keys as usize),
            latency: LatencyDetector::new(),
            rates: RateDetector::new(&config),
            security: SecurityDetector::new(),
            resource: ResourceDetector::new(&config),
            traces,
            graph: ServiceGraph::default(),
            clock: 0,
            next_to_close: None,
            jump_streak: 0,
            every_trace: false,
            stats: EngineStats::default(),
            config,
        }
    }

    /// Per-trace analysis (own time, call paths, trace shape, resource) of every trace, not only those
    /// the sampling rule keeps: for a source that hands over every trace whole anyway (the worker's
    /// whole-trace search), where sampling would save nothing and only miss the one slow trace.
    pub fn analyse_every_trace(&mut self, on: bool) {
        self.every_trace = on;
    }

    /// What the engine has learned, to save (see [`crate::learned`]).
    pub fn learned(&self) -> LearnedState {
        let (principals, security_first_window) = self.security.principals();
        LearnedState {
            version: LEARNED_VERSION,
            config: config_entries(&self.config),
            keys: (0..self.keys.len())
                .map(|i| {
                    let key = crate::keys::KeyId(i as u32);
                    (
                        self.keys.service(key).to_owned(),
                        self.keys.operation(key).to_owned(),
                    )
                })
                .collect(),
            latency: self.latency.baselines().to_vec(),
            ways_in: self.latency.ways_in().clone(),
            rates: self.rates.key_states().to_vec(),
            children: self.resource.children().to_vec(),
            shapes: self.resource.shape_states(),
            principals,
            security_first_window,
            clock: self.clock,
            next_to_close: self.next_to_close,
        }
    }

    /// An engine that goes on from a saved state, which must have been learned under `config`.
    pub fn with_learned(
        config: DetectionConfig,
        state: LearnedState,
    ) -> Result<Self, LearnedError> {
        state.check(&config)?;
        let mut engine = Engine::new(config);
        for (service, operation) in &state.keys {
            engine
                .keys
                .intern(service, operation)
                .ok_or(LearnedError::TooManyKeys)?;
        }
        engine.latency.set_baselines(state.latency);
        engine.latency.set_ways_in(state.ways_in);
        engine.rates.set_key_states(state.rates);
        engine.resource.restore(state.children, state.shapes);
        engine
            .security
            .restore(state.principals, state.security_first_window);
        engine.clock = state.clock;
        engine.next_to_close = state.next_to_close;
        Ok(engine)
    }

    pub fn config(&self) -> &DetectionConfig {
        &self.config
    }

    /// Which service calls which, as learned from the traces analysed so far.
    pub fn service_graph(&self) -> &ServiceGraph {
        &self.graph
    }

    pub fn stats(&self) -> &EngineStats {
        &self.stats
    }

    /// Feeds one span; anomalies it completes are appended to `out`.
    pub fn ingest(&mut self, span: Span, out: &mut Vec<Anomaly>) {
        self.ingest_span(span, Counting::Here, out);
    }

    /// Feeds a span of a trace chosen by the sampling rule while the window's request and error
    /// counts come from elsewhere ([`Engine::record_counts`], from Tempo's TraceQL metrics): it is
    /// judged for latency and per-trace resource analysis, and gives rate anomalies an example trace,
    /// but is not counted, and security analysis (which needs every entry span) does not see it: give
    /// it every entry span through [`Engine::ingest_entry_span`].
    pub fn ingest_counted_elsewhere(&mut self, span: Span, out: &mut Vec<Anomaly>) {
        self.ingest_span(span, Counting::Elsewhere, out);
    }

    /// A request's entry span seen without its trace (a search for root spans), for security
    /// analysis only: with counts from elsewhere and traces by sample, this is how security still
    /// sees every request. Not counted, not judged for latency; a late one is left out.
    pub fn ingest_entry_span(&mut self, span: &Span, out: &mut Vec<Anomaly>) {
        let before = out.len();
        let (window_index, late) = self.place(span.start.0);
        if !late {
            self.security.observe(window_index, span, &self.config, out);
        }
        self.advance(out);
        self.stats.anomalies += (out.len() - before) as u64;
    }

    /// A whole trace fetched for being among the slowest one in `one_in` of its root operation in its
    /// window, beside the random sample: judged for its extreme span only, not counted and not learned
    /// from (see [`crate::detect::latency::LatencyDetector::judge_chosen_trace`]).
    pub fn ingest_chosen_trace(&mut self, spans: Vec<Span>, one_in: f64, out: &mut Vec<Anomaly>) {
        let before = out.len();
        let trace: Vec<KeyedSpan> = spans
            .into_iter()
            .filter_map(|span| Some((self.keys.intern(&span.service, &span.operation)?, span)))
            .collect();
        self.latency
            .judge_chosen_trace(&trace, &self.config, one_in, out);
        self.stats.anomalies += (out.len() - before) as u64;
    }

    /// Exact request and error counts of (service, operation) for the window starting at
    /// `window_start`, counted elsewhere (for use with [`Engine::ingest_counted_elsewhere`]). Counts
    /// for a window already closed are left out (false), like late spans.
    pub fn record_counts(
        &mut self,
        window_start: UnixNanos,
        service: &str,
        operation: &str,
        requests: u64,
        errors: u64,
    ) -> bool {
        let window_nanos = self.config.window_nanos();
        let lateness = self.config.allowed_lateness_seconds * UnixNanos::NANOS_PER_SEC;
        let window_index = window_start.0 / window_nanos;
        let next_to_close = *self
            .next_to_close
            .get_or_insert((window_index * window_nanos).saturating_sub(lateness) / window_nanos);
        if window_index < next_to_close {
            self.stats.late_spans += requests;
            return false;
        }
        match self.keys.intern(service, operation) {
            None => {
                self.stats.untracked_key_spans += requests;
                false
            }
            Some(key) => {
                self.rates
                    .record_counts(window_index, key, requests, errors.min(requests));
                true
            }
        }
    }

    fn ingest_span(&mut self, span: Span, counting: Counting, out: &mut Vec<Anomaly>) {
        let before = out.len();
        self.stats.spans += 1;
        let (window_index, late) = self.place(span.start.0);
        if !late && counting == Counting::Here {
            self.security
                .observe(window_index, &span, &self.config, out);
        }
        match self.keys.intern(&span.service, &span.operation) {
            None => self.stats.untracked_key_spans += 1,
            Some(key) => {
                match (late, counting) {
                    (true, _) => {}
                    (false, Counting::Here) => self.rates.record(window_index, key, &span),
                    (false, Counting::Elsewhere) => {
                        self.rates.record_example(window_index, key, &span)
                    }
                }
                self.latency.observe_span(window_index, key, &span);
                if self.every_trace
                    || is_sampled(
                        &span.trace_id,
                        self.config.sampling_enabled,
                        self.config.sampling_ratio,
                    )
                {
                    self.stats.sampled_spans += 1;
                    if let Some(evicted) = self.traces.add(key, span, self.clock) {
                        self.stats.traces_evicted_early += 1;
                        self.analyse(&evicted, out);
                    }
                }
            }
        }
        self.advance(out);
        self.stats.anomalies += (out.len() - before) as u64;
    }

    /// The input has ended: closes every window and analyses every held trace.
    pub fn finish(&mut self, out: &mut Vec<Anomaly>) {
        let before = out.len();
        if self.next_to_close.is_some() {
            let last_with_data = self.rates.last_open_window().unwrap_or(0);
            let last = (self.clock / self.config.window_nanos()).max(last_with_data);
            self.close_windows_before(last + 1, out);
        }
        for trace in self.traces.drain_all() {
            self.analyse(&trace, out);
        }
        self.latency.finish(&self.keys, &self.config, out);
        self.stats.anomalies += (out.len() - before) as u64;
    }

    /// Live input: time has reached `now` (the caller's clock) even if no span says so. Closes the
    /// windows and completes the traces that `now` ends, so that quiet traffic (or none) is still
    /// judged. A `now` behind the clock changes nothing; a `now` far ahead of the last span only
    /// moves the clock when some span has been seen (before that there is nothing to close).
    pub fn advance_to(&mut self, now: UnixNanos, out: &mut Vec<Anomaly>) {
        if self.next_to_close.is_none() || now.0 <= self.clock {
            return;
        }
        let before = out.len();
        self.clock = now.0;
        self.jump_streak = 0;
        self.advance(out);
        self.stats.anomalies += (out.len() - before) as u64;
    }

    /// Moves the clock to a span starting at `start`: its window, and whether that window has closed
    /// (a late span, counted as such).
    fn place(&mut self, start: u64) -> (u64, bool) {
        let window_nanos = self.config.window_nanos();
        let lateness = self.config.allowed_lateness_seconds * UnixNanos::NANOS_PER_SEC;
        self.advance_clock(start);
        let next_to_close = *self
            .next_to_close
            .get_or_insert(start.saturating_sub(lateness) / window_nanos);
        let window_index = start / window_nanos;
        let late = window_index < next_to_close;
        self.stats.late_spans += u64::from(late);
        (window_index, late)
    }

    fn advance_clock(&mut self, start: u64) {
        let far_ahead =
            self.next_to_close.is_some() && start > self.clock.saturating_add(MAX_CLOCK_JUMP_NANOS);
        if !far_ahead {
            self.jump_streak = 0;
            self.clock = self.clock.max(start);
            return;
        }
        self.jump_streak += 1;
        if self.jump_streak >= CLOCK_JUMP_CONFIRMATIONS {
            self.jump_streak = 0;
            self.clock = start;
        } else {
            self.stats.skewed_spans += 1;
        }
    }

    fn advance(&mut self, out: &mut Vec<Anomaly>) {
        let window_nanos = self.config.window_nanos();
        let lateness = self.config.allowed_lateness_seconds * UnixNanos::NANOS_PER_SEC;
        // Window i closes once the clock reaches (i + 1)·w + lateness.
        let end = self
            .clock
            .checked_sub(lateness)
            .map_or(0, |t| t / window_nanos);
        self.close_windows_before(end, out);
        for trace in self.traces.drain_idle(self.clock) {
            self.analyse(&trace, out);
        }
        // Latency waits for the traces that began in a window to be complete as well.
        let idle = self.config.resource.trace_idle_seconds * UnixNanos::NANOS_PER_SEC;
        let latency_end = self
            .clock
            .checked_sub(lateness + idle)
            .map_or(0, |t| t / window_nanos);
        self.latency
            .close_before(latency_end, &self.keys, &self.config, out);
    }

    /// Closes every open window with an index below `end`, skipping long runs of empty windows.
    fn close_windows_before(&mut self, end: u64, out: &mut Vec<Anomaly>) {
        let Some(mut next) = self.next_to_close else {
            return;
        };
        while next < end {
            if end - next > MAX_EMPTY_WINDOWS_CLOSED {
                let next_with_data = self.rates.first_open_window().unwrap_or(end).min(end);
                if next_with_data > next {
                    self.stats.windows_skipped += next_with_data - next;
                    next = next_with_data;
                    continue;
                }
            }
            self.close_window(next, out);
            next += 1;
        }
        self.next_to_close = Some(next);
    }

    fn close_window(&mut self, index: u64, out: &mut Vec<Anomaly>) {
        let window_nanos = self.config.window_nanos();
        let window = Window {
            start: UnixNanos(index * window_nanos),
            end: UnixNanos((index + 1) * window_nanos),
        };
        // Only at the end of the input can a window close before the clock has passed it: the input
        // stopped inside it, so its counts are partial and say nothing about traffic volume.
        let complete = window.end.0 <= self.clock;
        let mut found = Vec::new();
        self.rates.close(
            index,
            window,
            complete,
            &self.keys,
            &self.config,
            &mut found,
        );
        self.security.close(index, window, &self.config, &mut found);
        found.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
        out.extend(found);
        self.stats.windows_closed += 1;
    }

    fn analyse(&mut self, trace: &[KeyedSpan], out: &mut Vec<Anomaly>) {
        self.stats.traces_analysed += 1;
        self.graph.record_trace(trace.iter().map(|(_, span)| span));
        self.resource.analyse(trace, &self.keys, &self.config, out);
        self.latency.observe_trace(trace, &self.config, out);
        self.trace_failures(trace);
    }

    /// Tells the error-rate detector where the trace's failures started.
    fn trace_failures(&mut self, trace: &[KeyedSpan]) {
        let window_nanos = self.config.window_nanos();
        let from_callees: hashbrown::HashMap<usize, &str> =
            error_blame::failures_from_callees(trace, |a, b| self.graph.calls(a, b) > 0)
                .into_iter()
                .collect();
        for (i, (key, span)) in trace.iter().enumerate() {
            if !span.is_error() {
                continue;
            }
            let started_in = from_callees.get(&i).copied();
            self.rates
                .record_traced_failure(span.start.0 / window_nanos, *key, started_in);
        }
    }
}
