//! Window-level rate detection: counts every span per (service, operation) and window, and when a
//! window closes runs the error-rate and throughput judgements for every known key, including keys
//! that saw nothing (that is how drops and silent services are found).

use crate::anomaly::{Anomaly, Window};
use crate::config::DetectionConfig;
use crate::detect::error_rate::{self, ErrorBaseline};
use crate::detect::throughput::{self, ThroughputBaseline};
use crate::detect::window_counts::{KeyCounts, WindowCounts};
use crate::keys::{KeyId, KeyInterner};
use crate::span::{Span, TraceId};
use crate::stats::TrendParams;
use std::collections::BTreeMap;

pub struct RateDetector {
    windows: BTreeMap<u64, WindowCounts>,
    keys: Vec<KeyState>,
    params: TrendParams,
}

#[derive(Clone, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct KeyState {
    /// The first window the key had a span in: earlier windows are not zeros for it.
    first_window: u64,
    errors: ErrorBaseline,
    throughput: ThroughputBaseline,
    #[serde(skip)]
    last_trace: Option<TraceId>,
}

/// What a service's operations did in one window, for the silent-service rule.
#[derive(Default)]
struct ServiceWindow {
    requests: u64,
    expected: f64,
    operations: usize,
    last_trace: Option<TraceId>,
    anomalies: Vec<Anomaly>,
}

impl RateDetector {
    /// The learned per-key state, by key index (for [`crate::learned`]).
    pub(crate) fn key_states(&self) -> &[KeyState] {
        &self.keys
    }

    pub(crate) fn set_key_states(&mut self, keys: Vec<KeyState>) {
        self.keys = keys;
    }

    pub fn new(config: &DetectionConfig) -> Self {
        RateDetector {
            windows: BTreeMap::new(),
            keys: Vec::new(),
            params: throughput::params(config),
        }
    }

    pub fn record(&mut self, window_index: u64, key: KeyId, span: &Span) {
        self.key_state(window_index, key).last_trace = Some(span.trace_id);
        self.windows
            .entry(window_index)
            .or_default()
            .record(key, span);
    }

    /// Counts made elsewhere (TraceQL metrics) for `key` in the window.
    pub fn record_counts(&mut self, window_index: u64, key: KeyId, requests: u64, errors: u64) {
        self.key_state(window_index, key);
        self.windows
            .entry(window_index)
            .or_default()
            .add(key, requests, errors);
    }

    /// A span counted elsewhere: only its trace id is kept, as an example.
    pub fn record_example(&mut self, window_index: u64, key: KeyId, span: &Span) {
        self.key_state(window_index, key).last_trace = Some(span.trace_id);
        self.windows
            .entry(window_index)
            .or_default()
            .example(key, span);
    }

    /// A failure of `key` seen in an assembled trace, with the other service it started in; ignored
    /// once the window has closed (its error rate is judged).
    pub fn record_traced_failure(
        &mut self,
        window_index: u64,
        key: KeyId,
        started_in: Option<&str>,
    ) {
        if let Some(counts) = self.windows.get_mut(&window_index) {
            counts.traced_failure(key, started_in);
        }
    }

    fn key_state(&mut self, window_index: u64, key: KeyId) -> &mut KeyState {
        if self.keys.len() <= key.index() {
            self.keys.resize_with(key.index() + 1, || KeyState {
                first_window: window_index,
                ..KeyState::default()
            });
        }
        let state = &mut self.keys[key.index()];
        state.first_window = state.first_window.min(window_index);
        state
    }

    /// Judges the window. An incomplete window (the input ended inside it) is judged for error rate
    /// only: its volume is partial.
    pub fn close(
        &mut self,
        window_index: u64,
        window: Window,
        complete: bool,
        keys: &KeyInterner,
        config: &DetectionConfig,
        out: &mut Vec<Anomaly>,
    ) {
        let counts = self.windows.remove(&window_index).unwrap_or_default();
        if counts.is_empty() {
            if complete {
                out.extend(self.all_silent(window, keys, config));
            }
            return;
        }
        let empty = KeyCounts::default();
        let mut services: BTreeMap<&str, ServiceWindow> = BTreeMap::new();
        for (index, state) in self.keys.iter_mut().enumerate() {
            if state.first_window > window_index {
                continue;
            }
            let key = KeyId(index as u32);
            let (service, operation) = (keys.service(key), keys.operation(key));
            let key_counts = counts.get(key).unwrap_or(&empty);
            let summary = services.entry(service).or_default();
            summary.requests += key_counts.requests;
            summary.operations += 1;
            if summary.last_trace.is_none() {
                summary.last_trace = state.last_trace;
            }
            if let Some(a) = error_rate::judge(
                &mut state.errors,
                key_counts,
                service,
                operation,
                window,
                config,
            ) {
                summary.anomalies.push(a);
            }
            if !complete {
                continue;
            }
            summary.expected += state.throughput.expected(&self.params);
            if let Some(v) = throughput::judge(
                &mut state.throughput,
                key_counts.requests,
                service,
                window,
                config,
                &self.params,
            ) {
                let examples = key_counts.examples.clone();
                summary.anomalies.push(throughput::anomaly(
                    &v, service, operation, window, examples, config,
                ));
            }
        }
        let min = f64::from(config.min_requests_per_window);
        let is_silent = |s: &ServiceWindow| complete && s.requests == 0 && s.expected >= min;
        let expected_services = services.values().filter(|s| s.expected >= min).count();
        let silent_services = services.values().filter(|s| is_silent(s)).count();
        if silent_services >= 2 && silent_services * 2 >= expected_services {
            // Most services fell silent at once: one problem (the telemetry pipeline, or a shared
            // dependency), one finding, as when none sent anything.
            out.extend(self.all_silent(window, keys, config));
            return;
        }
        for (service, summary) in services {
            if is_silent(&summary) {
                out.push(throughput::silent_service(
                    service,
                    summary.expected,
                    summary.operations,
                    window,
                    summary.last_trace,
                    config,
                ));
            } else {
                out.extend(summary.anomalies);
            }
        }
    }

    /// Not one span of any service in the window (or most services silent at once): one problem (the
    /// telemetry pipeline, or everything down), so one finding about the service that was expected to
    /// be busiest, naming how many were expected, rather than one per service.
    fn all_silent(
        &self,
        window: Window,
        keys: &KeyInterner,
        config: &DetectionConfig,
    ) -> Option<Anomaly> {
        let mut services: BTreeMap<&str, ServiceWindow> = BTreeMap::new();
        for (index, state) in self.keys.iter().enumerate() {
            let summary = services
                .entry(keys.service(KeyId(index as u32)))
                .or_default();
            summary.expected += state.throughput.expected(&self.params);
            summary.operations += 1;
            summary.last_trace = summary.last_trace.or(state.last_trace);
        }
        let min = f64::from(config.min_requests_per_window);
        let silent = services.values().filter(|s| s.expected >= min).count();
        let (service, busiest) = services
            .into_iter()
            .filter(|(_, s)| s.expected >= min)
            .max_by(|a, b| a.1.expected.total_cmp(&b.1.expected))?;
        let mut a = throughput::silent_service(
            service,
            busiest.expected,
            busiest.operations,
            window,
            busiest.last_trace,
            config,
        );
        if silent > 1 {
            // Most of the system at once is far more often the telemetry pipeline (a collector down,
            // a recording paused) than every service failing together, which the entry points' own
            // health checks would catch: shown once, without paging.
            a.severity = a.severity.min(crate::Severity::Medium);
            a.cause = crate::anomaly::Cause::Shared;
            a.description = format!(
                "most services sent no span at all in the window ({silent} were expected to send \
                 some): the telemetry pipeline, or a dependency they all share, is down; {service}, \
                 the busiest, expected {expected:.0} requests",
                expected = busiest.expected,
            );
        }
        Some(a)
    }

    /// The oldest window holding counts that has not closed yet.
    pub fn first_open_window(&self) -> Option<u64> {
        self.windows.keys().next().copied()
    }

    /// The newest window holding counts that has not closed yet.
    pub fn last_open_window(&self) -> Option<u64> {
        self.windows.keys().next_back().copied()
    }
}
