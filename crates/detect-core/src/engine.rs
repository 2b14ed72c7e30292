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

use crate::anomaly::{Anomaly, Window};
use crate::config::DetectionConfig;
use crate::detect::latency::LatencyDetector;
use crate::detect::rates::RateDetector;
use crate::detect::resource::ResourceDetector;
use crate::detect::security::SecurityDetector;
use crate::keys::KeyInterner;
use crate::sampling::is_sampled;
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
    pub anomalies: u64,
}

pub struct Engine {
    config: DetectionConfig,
    keys: KeyInterner,
    latency: LatencyDetector,
    rates: RateDetector,
    security: SecurityDetector,
    resource: ResourceDetector,
    traces: TraceAssembler,
    /// The latest span start seen (event time, nanoseconds).
    clock: u64,
    /// The oldest window still open; `None` before the first span.
    next_to_close: Option<u64>,
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
            latency: LatencyDetector::new(&config),
            rates: RateDetector::new(&config),
            security: SecurityDetector::new(),
            resource: ResourceDetector::new(&config),
            traces,
            clock: 0,
            next_to_close: None,
            stats: EngineStats::default(),
            config,
        }
    }

    pub fn config(&self) -> &DetectionConfig {
        &self.config
    }

    pub fn stats(&self) -> &EngineStats {
        &self.stats
    }

    /// Feeds one span; anomalies it completes are appended to `out`.
    pub fn ingest(&mut self, span: Span, out: &mut Vec<Anomaly>) {
        let before = out.len();
        self.stats.spans += 1;
        let window_nanos = self.config.window_nanos();
        let lateness = self.config.allowed_lateness_seconds * UnixNanos::NANOS_PER_SEC;
        let start = span.start.0;
        self.clock = self.clock.max(start);
        let next_to_close = *self
            .next_to_close
            .get_or_insert(start.saturating_sub(lateness) / window_nanos);
        let window_index = start / window_nanos;
        let late = window_index < next_to_close;
        if late {
            self.stats.late_spans += 1;
        } else {
            self.security
                .observe(window_index, &span, &self.config, out);
        }
        match self.keys.intern(&span.service, &span.operation) {
            None => self.stats.untracked_key_spans += 1,
            Some(key) => {
                if !late {
                    self.rates.record(window_index, key, &span);
                }
                self.latency.observe(key, &span, &self.config, out);
                if is_sampled(
                    &span.trace_id,
                    self.config.sampling_enabled,
                    self.config.sampling_ratio,
                ) {
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
        if let Some(next) = self.next_to_close {
            let last = self.clock / self.config.window_nanos();
            for index in next..=last {
                self.close_window(index, out);
            }
            self.next_to_close = Some(last + 1);
        }
        for trace in self.traces.drain_all() {
            self.analyse(&trace, out);
        }
        self.stats.anomalies += (out.len() - before) as u64;
    }

    fn advance(&mut self, out: &mut Vec<Anomaly>) {
        let window_nanos = self.config.window_nanos();
        let lateness = self.config.allowed_lateness_seconds * UnixNanos::NANOS_PER_SEC;
        while let Some(next) = self.next_to_close {
            let closes_at = (next + 1) * window_nanos + lateness;
            if closes_at > self.clock {
                break;
            }
            self.close_window(next, out);
            self.next_to_close = Some(next + 1);
        }
        for trace in self.traces.drain_idle(self.clock) {
            self.analyse(&trace, out);
        }
    }

    fn close_window(&mut self, index: u64, out: &mut Vec<Anomaly>) {
        let window_nanos = self.config.window_nanos();
        let window = Window {
            start: UnixNanos(index * window_nanos),
            end: UnixNanos((index + 1) * window_nanos),
        };
        let mut found = Vec::new();
        self.rates
            .close(index, window, &self.keys, &self.config, &mut found);
        self.security.close(index, window, &self.config, &mut found);
        found.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
        out.extend(found);
        self.stats.windows_closed += 1;
    }

    fn analyse(&mut self, trace: &[KeyedSpan], out: &mut Vec<Anomaly>) {
        self.stats.traces_analysed += 1;
        self.resource.analyse(trace, &self.keys, &self.config, out);
    }
}
