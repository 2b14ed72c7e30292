//! Latency and call-path detection (PERFORMANCE / `latency_degradation`, `latency_spike`,
//! `call_path_change`).
//!
//! Per (service, operation), quantile baselines ([`QuantileSketch`]) of its total durations, of its
//! own time, and of the time on the way to each service it calls ([`own_time`]), plus the calls it
//! usually makes ([`call_path`]). Each window is judged once it is closed *and* the traces that began in
//! it are complete (`allowed_lateness_seconds + resource.trace_idle_seconds` after its end):
//! - **window-level** ([`shift`]): per key, did its durations move (median ×[`shift::MEDIAN_RATIO`], or a
//!   significant share above the usual p99)? Said of its own time when that moved: then the key is
//!   where the time went, and the finding can page; when only the total moved while the own time is
//!   normal, the key is *affected* (waiting on a callee, named) and is at most MEDIUM. When exactly one
//!   of the ways to a called service moved, the finding names it as `peer_service`;
//! - **call paths**: usual calls that stop, calls never made before;
//! - **trace-level**: a trace whose most extreme span is extreme *given how many spans it has*
//!   (Šidák: `1 − (1 − s_min)^N ≤ Φ(−z)`, `s` the baseline's survival at the span's duration): LOW, or
//!   MEDIUM a hundred times past that; at most one per key and window; never pages.
//!
//! `latency_threshold_stddev` = z sets the family-wise false-alarm level `Φ(−z)` (z = 3: 0.00135): per
//! trace over its spans, and per window over the keys judged (each window test runs at `Φ(−z)/K`).
//! Baselines learn only from windows that were not anomalous (unless anomalous for
//! `relearn_after_seconds`) and forget by weight: each keeps about [`MEMORY`] values.
//! Severity of window findings: the share of the window's requests affected, in percent, by
//! `severity_cutoffs.latency`; fewer than [`MIN_AFFECTED_TO_PAGE`] requests never page, nor does a key
//! with fewer than [`PAGE_AFTER_WINDOWS`] learned windows (it hardly knows its window-to-window spread).

pub mod own_time;
pub mod shift;
mod way_in;

use crate::anomaly::{Anomaly, Cause, MAX_EXAMPLES, Severity, Subtype, Window};
use crate::config::DetectionConfig;
use crate::detect::call_path::{self, CallBaseline, CallChange};
use crate::keys::{KeyId, KeyInterner};
use crate::span::{Span, SpanId, SpanKind, TraceId, UnixNanos};
use crate::stats::QuantileSketch;
use crate::stats::probability::normal_cdf;
use crate::traces::KeyedSpan;
use hashbrown::HashMap;
use shift::{Shift, Spread};
use std::collections::{BTreeMap, BTreeSet};
pub(crate) use way_in::WaysIn;

/// How a finding about the way into a key or a service says what it measured (the TraceQL of such a
/// finding selects its callers' slow calls into it, [`crate::traceql`]).
pub const WAY_IN: &str = "time on the way into it";
/// Values a baseline remembers (older ones are scaled down past this weight).
pub const MEMORY: f64 = 5_000.0;
/// Windows a key must have learned before it is judged.
const WARMUP_WINDOWS: u32 = 2;
/// Windows a key must have learned before its findings page.
pub const PAGE_AFTER_WINDOWS: u32 = 3;
/// A window finding about fewer requests than this is at most MEDIUM.
pub const MIN_AFFECTED_TO_PAGE: u64 = 5;
/// Calls a way needs in a window to count as clearly slow for [`Judge::caller_slow_elsewhere`].
const CLEARLY_SLOW_VALUES: f64 = 3.0;
/// Called keys whose way is learned, per key.
const MAX_WAYS: usize = 32;

/// What a (service, operation) usually does.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct KeyBaseline {
    total: QuantileSketch,
    own: QuantileSketch,
    ways: Vec<(KeyId, QuantileSketch)>,
    /// How the window statistics of the total, the own time and each way vary between ordinary windows.
    total_spread: Spread,
    own_spread: Spread,
    way_spreads: Vec<(KeyId, Spread)>,
    calls: CallBaseline,
    /// The time on the way into this key from its callers in other services (the wire and the queues
    /// before it), and its window-to-window spread: a slow network into a service shows here even
    /// when each caller sends it only a few calls.
    #[serde(default)]
    inbound: QuantileSketch,
    #[serde(default)]
    inbound_spread: Spread,
    /// Traced spans (weighted, as `calls.traced`) that had children.
    with_children: f64,
    windows: u32,
    anomalous_since: Option<u64>,
    /// The total's p99 and tail exponent, kept from the last learning (see [`QuantileSketch::tail`]).
    #[serde(skip)]
    tail: Option<(f64, f64)>,
}

/// One key's values in one window.
#[derive(Default)]
struct WindowSample {
    total: QuantileSketch,
    own: QuantileSketch,
    ways: Vec<(KeyId, QuantileSketch)>,
    /// The ways into this key, from every caller in another service.
    inbound: QuantileSketch,
    /// Spans seen in whole traces, and how many had children.
    traced: u32,
    with_children: u32,
    /// Of the traced spans, the outgoing calls (client or producer spans).
    outgoing: u32,
    calls: Vec<(KeyId, u32)>,
    /// Per child, the spans whose last call it was.
    last_calls: Vec<(KeyId, u32)>,
    /// The slowest spans (nanoseconds, trace, span), slowest first.
    slowest: Vec<(u64, TraceId, SpanId)>,
    trace_flagged: bool,
}

impl WindowSample {
    fn keep_if_slow(&mut self, span: &Span) {
        let entry = (span.duration_nanos, span.trace_id, span.span_id);
        if self.slowest.len() == MAX_EXAMPLES && self.slowest.last().is_some_and(|s| s.0 >= entry.0)
        {
            return;
        }
        if self.slowest.iter().any(|s| s.1 == entry.1) {
            return;
        }
        let at = self.slowest.partition_point(|s| s.0 >= entry.0);
        self.slowest.insert(at, entry);
        self.slowest.truncate(MAX_EXAMPLES);
    }
}

/// One more span for `key`.
fn count(per_key: &mut Vec<(KeyId, u32)>, key: KeyId) {
    match per_key.iter_mut().find(|(k, _)| *k == key) {
        Some((_, n)) => *n += 1,
        None => per_key.push((key, 1)),
    }
}

fn way_mut(ways: &mut Vec<(KeyId, QuantileSketch)>, key: KeyId) -> Option<&mut QuantileSketch> {
    if let Some(i) = ways.iter().position(|(k, _)| *k == key) {
        return Some(&mut ways[i].1);
    }
    if ways.len() >= MAX_WAYS {
        return None;
    }
    ways.push((key, QuantileSketch::new()));
    ways.last_mut().map(|(_, s)| s)
}

fn way(ways: &[(KeyId, QuantileSketch)], key: KeyId) -> Option<&QuantileSketch> {
    ways.iter().find(|(k, _)| *k == key).map(|(_, s)| s)
}

fn forget(sketch: &mut QuantileSketch) {
    if sketch.total() > MEMORY {
        sketch.scale(MEMORY / sketch.total());
    }
}

pub struct LatencyDetector {
    baselines: Vec<KeyBaseline>,
    ways_in: WaysIn,
    windows: BTreeMap<u64, HashMap<KeyId, WindowSample>>,
    /// Windows below this index are judged; values for them are no longer taken.
    judged_before: u64,
}

/// What one key's window showed, before it is turned into findings and learned.
struct Verdict {
    key: KeyId,
    latency: Option<Anomaly>,
    calls: Option<Anomaly>,
    /// The called key whose way the latency finding is about.
    way_to: Option<KeyId>,
    /// The latency finding is about the way into this key, and the callers' side is not to blame.
    slow_inbound: bool,
    /// The latency finding is about the way into this key (whoever is to blame).
    about_inbound: bool,
}

impl LatencyDetector {
    pub fn new() -> Self {
        LatencyDetector {
            baselines: Vec::new(),
            ways_in: WaysIn::default(),
            windows: BTreeMap::new(),
            judged_before: 0,
        }
    }

    /// The learned baselines, by key index (for [`crate::learned`]).
    pub(crate) fn baselines(&self) -> &[KeyBaseline] {
        &self.baselines
    }

    pub(crate) fn set_baselines(&mut self, mut baselines: Vec<KeyBaseline>) {
        for b in &mut baselines {
            b.tail = b.total.tail();
        }
        self.baselines = baselines;
    }

    /// The learned ways into each service (for [`crate::learned`]).
    pub(crate) fn ways_in(&self) -> &WaysIn {
        &self.ways_in
    }

    pub(crate) fn set_ways_in(&mut self, ways_in: WaysIn) {
        self.ways_in = ways_in;
    }

    /// The usual duration quantile `q` of a key, once learned.
    pub fn usual_quantile(&self, key: KeyId, q: f64) -> Option<f64> {
        self.baselines.get(key.index())?.total.quantile(q)
    }

    fn sample(&mut self, window_index: u64, key: KeyId) -> Option<&mut WindowSample> {
        if window_index < self.judged_before {
            return None;
        }
        Some(
            self.windows
                .entry(window_index)
                .or_default()
                .entry(key)
                .or_default(),
        )
    }

    /// Every span given to the engine: its total duration, in its start's window.
    pub fn observe_span(&mut self, window_index: u64, key: KeyId, span: &Span) {
        if let Some(sample) = self.sample(window_index, key) {
            sample.total.add(span.duration_ms());
            sample.keep_if_slow(span);
        }
    }

    /// A whole (sampled) trace: own times, ways and calls of its spans, and the trace-level test.
    pub fn observe_trace(
        &mut self,
        trace: &[KeyedSpan],
        config: &DetectionConfig,
        out: &mut Vec<Anomaly>,
    ) {
        let window_nanos = config.window_nanos();
        let times = own_time::split(trace);
        for ((key, span), time) in trace.iter().zip(&times) {
            let Some(sample) = self.sample(span.start.0 / window_nanos, *key) else {
                continue;
            };
            sample.traced += 1;
            sample.with_children += u32::from(time.has_children);
            sample.outgoing +=
                u32::from(matches!(span.kind, SpanKind::Client | SpanKind::Producer));
            sample.own.add(time.own_ms);
            for &child in &time.child_keys {
                count(&mut sample.calls, child);
            }
            if let Some(child) = time.last_child {
                count(&mut sample.last_calls, child);
            }
            for &(child, ms) in &time.ways {
                if let Some(w) = way_mut(&mut sample.ways, child) {
                    w.add(ms);
                }
            }
        }
        for ((_, span), time) in trace.iter().zip(&times) {
            let window_index = span.start.0 / window_nanos;
            for &(child, ms) in &time.ways {
                if let Some(sample) = self.sample(window_index, child) {
                    sample.inbound.add(ms);
                }
            }
        }
        self.judge_trace(trace, &times, config, 1.0, out);
    }

    /// A whole trace chosen for being among the slowest of its root operation (one in `one_in` of
    /// them), outside the random sample: judged, not learned from (a chosen trace would bias the
    /// baselines), and against a limit `one_in` times stricter, since the slowest of many is extreme
    /// by selection.
    pub fn judge_chosen_trace(
        &mut self,
        trace: &[KeyedSpan],
        config: &DetectionConfig,
        one_in: f64,
        out: &mut Vec<Anomaly>,
    ) {
        let times = own_time::split(trace);
        self.judge_trace(trace, &times, config, one_in.max(1.0), out);
    }

    /// Flags the trace when its most extreme span is extreme given how many spans were judged (and,
    /// for a trace chosen as one of the slowest `one_in`, how many it was chosen from).
    fn judge_trace(
        &mut self,
        trace: &[KeyedSpan],
        times: &[own_time::SpanTime],
        config: &DetectionConfig,
        one_in: f64,
        out: &mut Vec<Anomaly>,
    ) {
        let warm = f64::from(config.warmup_min_samples);
        let mut judged = 0u32;
        let mut worst: Option<(f64, usize)> = None;
        for (i, (key, span)) in trace.iter().enumerate() {
            let Some(b) = self.baselines.get(key.index()) else {
                continue;
            };
            if b.total.total() < warm || b.windows < WARMUP_WINDOWS {
                continue;
            }
            let Some((p99, exponent)) = b.tail else {
                continue;
            };
            judged += 1;
            let s = QuantileSketch::tail_survival(span.duration_ms(), p99, exponent);
            if worst.is_none_or(|(w, _)| s < w) {
                worst = Some((s, i));
            }
        }
        let Some((s, i)) = worst else {
            return;
        };
        let (key, span) = &trace[i];
        let alpha = normal_cdf(-config.latency_threshold_for(&span.service)) / one_in;
        // 1 − (1 − s)^N, computed without losing small s.
        let p = -(f64::from(judged) * (-s).ln_1p()).exp_m1();
        let baseline = &self.baselines[key.index()].total;
        let (median, p99) = (
            baseline.quantile(0.5).unwrap_or(0.0),
            baseline.quantile(0.99).unwrap_or(0.0),
        );
        let observed = span.duration_ms();
        if p > alpha || observed - median < config.latency_min_excess_ms {
            return;
        }
        let window_nanos = config.window_nanos();
        let Some(sample) = self.sample(span.start.0 / window_nanos, *key) else {
            return;
        };
        if std::mem::replace(&mut sample.trace_flagged, true) {
            return;
        }
        // Where the span's time went: when most of it was on the way to one other service, that
        // service is the peer ("one trace: … 240 ms, 200 ms of it on the way to X").
        let way = times[i]
            .ways
            .iter()
            .filter(|(child, _)| {
                trace
                    .iter()
                    .any(|(k, s)| k == child && s.service != span.service)
            })
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .filter(|(_, ms)| *ms >= 0.5 * observed);
        let peer = way.and_then(|(child, _)| {
            trace
                .iter()
                .find(|(k, _)| k == child)
                .map(|(_, s)| s.service.clone())
        });
        let where_ = match (&peer, way) {
            (Some(peer), Some((_, ms))) => format!(", {ms:.1} ms of it on the way to {peer},"),
            _ => String::new(),
        };
        let severity = if p <= alpha / 100.0 {
            Severity::Medium
        } else {
            Severity::Low
        };
        out.push(Anomaly {
            cause: if peer.is_some() {
                Cause::Peer
            } else {
                Cause::Unknown
            },
            subtype: Subtype::LatencySpike,
            severity,
            service: span.service.clone(),
            operation: Some(span.operation.clone()),
            client: None,
            peer_service: peer,
            trace_id: Some(span.trace_id),
            span_id: Some(span.span_id),
            observed,
            expected: median,
            spread: (p99 / median.max(1e-9)).ln(),
            score: -p.max(1e-300).log10(),
            threshold: -alpha.log10(),
            unit: "ms",
            window: Window {
                start: span.start,
                end: span.end(),
            },
            detected_at: span.end(),
            examples: vec![span.trace_id],
            description: format!(
                "one trace: {op} on {svc} took {observed:.1} ms{where_} where {median:.1} ms is typical and \
                 {p99:.1} ms the usual p99; that extreme in a trace of {judged} judged spans has \
                 probability {p:.1e} (limit {alpha:.1e})",
                op = span.operation,
                svc = span.service,
            ),
        });
    }

    /// Judges every window below `end` (their traces are complete).
    pub fn close_before(
        &mut self,
        end: u64,
        keys: &KeyInterner,
        config: &DetectionConfig,
        out: &mut Vec<Anomaly>,
    ) {
        while let Some(entry) = self.windows.first_entry() {
            if *entry.key() >= end {
                break;
            }
            let (index, samples) = entry.remove_entry();
            self.judged_before = index + 1;
            self.close(index, samples, keys, config, out);
        }
        self.judged_before = self.judged_before.max(end);
    }

    fn close(
        &mut self,
        index: u64,
        samples: HashMap<KeyId, WindowSample>,
        keys: &KeyInterner,
        config: &DetectionConfig,
        out: &mut Vec<Anomaly>,
    ) {
        let window_nanos = config.window_nanos();
        let window = Window {
            start: UnixNanos(index * window_nanos),
            end: UnixNanos((index + 1) * window_nanos),
        };
        let mut order: Vec<KeyId> = samples.keys().copied().collect();
        order.sort_unstable();
        if let Some(max) = order.last()
            && self.baselines.len() <= max.index()
        {
            self.baselines
                .resize_with(max.index() + 1, KeyBaseline::default);
        }
        let warm = f64::from(config.warmup_min_samples);
        let is_warm = |b: &KeyBaseline| b.total.total() >= warm && b.windows >= WARMUP_WINDOWS;
        // Family-wise: each key is tested on its total and its own time, and on the way into it when
        // it has enough of those.
        // Each service is tested on the way into it as a whole too.
        let pooled = way_in::pool(&samples, keys);
        let tests = order
            .iter()
            .filter(|k| is_warm(&self.baselines[k.index()]))
            .map(|k| {
                let sample = &samples[k];
                2 * usize::from(sample.total.total() >= shift::MIN_WINDOW_VALUES)
                    + usize::from(sample.inbound.total() >= shift::MIN_WINDOW_VALUES)
            })
            .sum::<usize>()
            .saturating_add(self.ways_in.tests(&pooled, warm))
            .max(2);
        let judge = Judge {
            baselines: &self.baselines,
            samples: &samples,
            keys,
            config,
            window,
            tests: tests as f64,
        };
        let verdicts: Vec<Verdict> = order
            .iter()
            .filter(|k| is_warm(&self.baselines[k.index()]))
            .map(|&key| judge.key(key))
            .collect();
        // The way into a service as a whole, where no operation's own way in was found slow.
        let mut slow_ways_in: BTreeSet<&str> = verdicts
            .iter()
            .filter(|v| v.about_inbound)
            .map(|v| keys.service(v.key))
            .collect();
        for (service, p) in &pooled {
            if slow_ways_in.contains(service) {
                continue;
            }
            if let Some(a) = judge.way_in(&self.ways_in, service, p) {
                slow_ways_in.insert(service);
                out.push(a);
            }
        }
        let mut flagged: HashMap<KeyId, bool> = HashMap::new();
        // A caller's slower way to a key whose way in is slow (for every caller) is that key's
        // problem, found there: the caller's finding stays, below paging.
        let slow_inbound: Vec<KeyId> = verdicts
            .iter()
            .filter(|v| v.slow_inbound)
            .map(|v| v.key)
            .collect();
        for mut v in verdicts {
            if let (Some(a), Some(child)) = (v.latency.as_mut(), v.way_to)
                && slow_inbound.contains(&child)
            {
                a.severity = a.severity.min(Severity::Medium);
                a.description.push_str(&format!(
                    "; the way into {} `{}` is slow as a whole: found there",
                    keys.service(child),
                    keys.operation(child)
                ));
            }
            flagged.insert(v.key, v.latency.is_some() || v.calls.is_some());
            out.extend(v.latency);
            out.extend(v.calls);
        }
        let relearn = config.relearn_after_seconds * UnixNanos::NANOS_PER_SEC;
        self.ways_in
            .learn(&pooled, &slow_ways_in, window, (warm, relearn));
        for key in order {
            let sample = &samples[&key];
            let baseline = &mut self.baselines[key.index()];
            let anomalous = flagged.get(&key).copied().unwrap_or(false);
            if anomalous {
                let since = *baseline.anomalous_since.get_or_insert(window.start.0);
                if window.end.0.saturating_sub(since) < relearn {
                    continue;
                }
            } else {
                baseline.anomalous_since = None;
            }
            baseline.learn(sample);
        }
    }

    /// Judges and learns every window still open (the input has ended).
    pub fn finish(&mut self, keys: &KeyInterner, config: &DetectionConfig, out: &mut Vec<Anomaly>) {
        self.close_before(u64::MAX, keys, config, out);
    }
}

impl Default for LatencyDetector {
    fn default() -> Self {
        Self::new()
    }
}

impl KeyBaseline {
    fn learn(&mut self, sample: &WindowSample) {
        self.total_spread.learn(&self.total, &sample.total);
        self.own_spread.learn(&self.own, &sample.own);
        self.inbound_spread.learn(&self.inbound, &sample.inbound);
        for (child, w) in &sample.ways {
            if let Some(usual) = way(&self.ways, *child) {
                match self.way_spreads.iter_mut().find(|(k, _)| k == child) {
                    Some((_, spread)) => spread.learn(usual, w),
                    None => {
                        let mut spread = Spread::default();
                        spread.learn(usual, w);
                        self.way_spreads.push((*child, spread));
                    }
                }
            }
        }
        self.total.merge(&sample.total);
        forget(&mut self.total);
        self.own.merge(&sample.own);
        forget(&mut self.own);
        self.inbound.merge(&sample.inbound);
        forget(&mut self.inbound);
        for (child, w) in &sample.ways {
            if let Some(mine) = way_mut(&mut self.ways, *child) {
                mine.merge(w);
                forget(mine);
            }
        }
        self.calls.learn(sample.traced, &sample.calls);
        self.calls.learn_last(sample.traced, &sample.last_calls);
        self.with_children += f64::from(sample.with_children);
        if self.calls.traced > MEMORY {
            let factor = MEMORY / self.calls.traced;
            self.calls.scale(factor);
            self.with_children *= factor;
        }
        self.windows = self.windows.saturating_add(1);
        self.tail = self.total.tail();
    }

    /// A key whose traced spans (almost) never have children: its own time is its total.
    fn is_leaf(&self, sample: &WindowSample) -> bool {
        sample.with_children == 0 && self.with_children <= 0.05 * self.calls.traced
    }
}

/// One window's judgement, over every key's sample.
struct Judge<'a> {
    baselines: &'a [KeyBaseline],
    samples: &'a HashMap<KeyId, WindowSample>,
    keys: &'a KeyInterner,
    config: &'a DetectionConfig,
    window: Window,
    tests: f64,
}

impl<'a> Judge<'a> {
    fn key(&self, key: KeyId) -> Verdict {
        let baseline = &self.baselines[key.index()];
        let sample = &self.samples[&key];
        let service = self.keys.service(key);
        let z = self.config.latency_threshold_for(service);
        let alpha = normal_cdf(-z) / self.tests;
        let min_excess = self.config.latency_min_excess_ms;
        let warm = f64::from(self.config.warmup_min_samples);
        let total = shift::judge(
            &baseline.total,
            &sample.total,
            &baseline.total_spread,
            z,
            alpha,
            min_excess,
        );
        let (own, own_known) = if baseline.is_leaf(sample) {
            (total.clone(), true)
        } else if baseline.own.total() >= warm {
            let own = shift::judge(
                &baseline.own,
                &sample.own,
                &baseline.own_spread,
                z,
                alpha,
                min_excess,
            );
            (own, sample.own.total() >= shift::MIN_WINDOW_VALUES)
        } else {
            (None, false)
        };
        let inbound = if baseline.inbound.total() >= warm {
            shift::judge(
                &baseline.inbound,
                &sample.inbound,
                &baseline.inbound_spread,
                z,
                alpha,
                min_excess,
            )
        } else {
            None
        };
        // A usual callee with no span at all in the window while the caller's own time grew: the calls
        // still happen (the caller waits as long) but the callee's spans are gone, a silent service
        // reported as such. The caller changed nothing. (A caller that stops calling gets faster.)
        let absent_callee = baseline.calls.calls.iter().any(|(child, w)| {
            *w >= call_path::USUAL_CALL_SHARE * baseline.calls.traced
                && !self.samples.contains_key(child)
        });
        let callee_silent = absent_callee && own.is_some();
        let (mut way_to, mut slow_inbound) = (None, false);
        let about_inbound = own.is_none() && inbound.is_some();
        let latency = match (own, total) {
            (Some(own), _) if callee_silent => Some(self.affected(key, &own)),
            (Some(own), _) => {
                let (a, way) = self.moved_here(key, &own, z, alpha);
                way_to = way;
                Some(a)
            }
            (None, _) if inbound.is_some() => inbound.as_ref().map(|s| {
                let (a, callee_side) = self.moved_inbound(key, s);
                slow_inbound = callee_side;
                a
            }),
            (None, Some(total)) if own_known => Some(self.affected(key, &total)),
            (None, Some(total)) => {
                Some(self.moved(key, &total, "duration (own time unknown: no whole traces)"))
            }
            (None, None) => None,
        };
        let mut changes = call_path::judge(&baseline.calls, sample.traced, &sample.calls, z, alpha);
        if callee_silent {
            changes.retain(|c| c.is_new() || self.samples.contains_key(&c.child));
        }
        let calls = (!changes.is_empty()).then(|| self.call_change(key, &changes));
        Verdict {
            key,
            latency,
            calls,
            way_to,
            slow_inbound,
            about_inbound,
        }
    }

    /// A key with fewer than [`PAGE_AFTER_WINDOWS`] learned windows hardly knows its ordinary
    /// window-to-window swings yet: its findings are shown, but do not page.
    fn is_young(&self, key: KeyId) -> bool {
        self.baselines[key.index()].windows < PAGE_AFTER_WINDOWS
    }

    /// The key's own time moved: it is where the time went. When exactly one way to a called service
    /// moved, that service is named as the peer.
    fn moved_here(&self, key: KeyId, own: &Shift, z: f64, alpha: f64) -> (Anomaly, Option<KeyId>) {
        let baseline = &self.baselines[key.index()];
        let sample = &self.samples[&key];
        let moved_ways: Vec<(KeyId, Shift)> = sample
            .ways
            .iter()
            .filter_map(|(child, w)| {
                let usual = way(&baseline.ways, *child)?;
                if usual.total() < f64::from(self.config.warmup_min_samples) {
                    return None;
                }
                let spread = baseline
                    .way_spreads
                    .iter()
                    .find(|(k, _)| k == child)
                    .map(|(_, s)| *s)
                    .unwrap_or_default();
                shift::judge(
                    usual,
                    w,
                    &spread,
                    z,
                    alpha,
                    self.config.latency_min_excess_ms,
                )
                .map(|s| (*child, s))
            })
            .collect();
        match moved_ways.as_slice() {
            [(child, way_shift)] => {
                let what = format!(
                    "time on the way to {} `{}`",
                    self.keys.service(*child),
                    self.keys.operation(*child)
                );
                let mut a = self.moved(key, way_shift, &what);
                a.peer_service = Some(self.keys.service(*child).to_owned());
                a.cause = Cause::Peer;
                (a, Some(*child))
            }
            _ => (self.moved(key, own, "own time"), None),
        }
    }

    /// The time on the way into the key moved. When the callers' ways to other services are slow too,
    /// the caller's side is slow (its CPU, its network), not the way into this key: then the finding
    /// names that caller as the peer and is at most MEDIUM.
    /// Also says whether the callee's side is to blame (no caller is slow elsewhere).
    fn moved_inbound(&self, key: KeyId, s: &Shift) -> (Anomaly, bool) {
        let what = format!("{WAY_IN} (the network and queues from its callers)");
        let what = what.as_str();
        let Some(caller) = self.caller_slow_elsewhere(key) else {
            return (self.moved(key, s, what), true);
        };
        let caller_service = self.keys.service(caller);
        let description = format!(
            "{op} on {svc}: {what} {how}, but {caller_service} `{caller_op}` is slow on the way to \
             other services too: its side, not this one; affected, not the origin",
            op = self.keys.operation(key),
            svc = self.keys.service(key),
            how = describe_shift(s),
            caller_op = self.keys.operation(caller),
        );
        let severity = self.graded(s).min(Severity::Medium);
        let mut a = self.window_anomaly(key, s, severity, description);
        a.peer_service = Some(caller_service.to_owned());
        a.cause = Cause::Peer;
        (a, false)
    }

    /// A caller of `key` in another service whose service's ways to a third service are clearly slow
    /// in this window too (their median above that way's usual p99, over at least
    /// [`CLEARLY_SLOW_VALUES`] calls): that caller's side is slow, not the way into `key`. A caller's
    /// client spans are keys of their own, one per callee, so the whole calling service is looked at.
    fn caller_slow_elsewhere(&self, key: KeyId) -> Option<KeyId> {
        let service = self.keys.service(key);
        let mut callers: Vec<KeyId> = self
            .samples
            .iter()
            .filter(|(caller, sample)| {
                self.keys.service(**caller) != service
                    && sample.ways.iter().any(|(child, _)| *child == key)
            })
            .map(|(caller, _)| *caller)
            .collect();
        callers.sort_unstable();
        callers.dedup_by_key(|c| self.keys.service(*c));
        callers.into_iter().find(|caller| {
            let caller_service = self.keys.service(*caller);
            self.samples.iter().any(|(other, sample)| {
                self.keys.service(*other) == caller_service
                    && self.is_slow_to_a_third_service(*other, sample, service)
            })
        })
    }

    /// Whether one of `key`'s ways to a service other than its own and `excluded` is clearly slow.
    fn is_slow_to_a_third_service(
        &self,
        key: KeyId,
        sample: &WindowSample,
        excluded: &str,
    ) -> bool {
        let Some(baseline) = self.baselines.get(key.index()) else {
            return false;
        };
        let own_service = self.keys.service(key);
        sample.ways.iter().any(|(child, w)| {
            let callee = self.keys.service(*child);
            callee != excluded
                && callee != own_service
                && w.total() >= CLEARLY_SLOW_VALUES
                && way(&baseline.ways, *child)
                    .and_then(|usual| Some((usual.quantile(0.99)?, w.quantile(0.5)?)))
                    .is_some_and(|(usual_p99, median)| median > usual_p99)
        })
    }

    /// A finding that can page: `what` (own time, or the way to a peer) moved.
    fn moved(&self, key: KeyId, s: &Shift, what: &str) -> Anomaly {
        let mut severity = self.graded(s);
        if s.affected < MIN_AFFECTED_TO_PAGE || self.is_young(key) {
            severity = severity.min(Severity::Medium);
        }
        let description = format!(
            "{op} on {svc}: {what} {how}; {affected} of {n} requests affected",
            op = self.keys.operation(key),
            svc = self.keys.service(key),
            how = describe_shift(s),
            affected = s.affected,
            n = s.n,
        );
        self.window_anomaly(key, s, severity, description)
    }

    /// The severity of a window finding by the share of the window's requests it affected.
    fn graded(&self, s: &Shift) -> Severity {
        self.config
            .severity_cutoffs
            .latency
            .grade(s.share() * 100.0)
    }

    /// Only the total moved while the own time is normal: the key waits on something it calls.
    fn affected(&self, key: KeyId, s: &Shift) -> Anomaly {
        let severity = self.graded(s).min(Severity::Medium);
        let waiting = self
            .slowest_callee(key)
            .map(|(child, extra)| {
                format!(
                    "waiting on {} `{}` (+{extra:.1} ms at the median)",
                    self.keys.service(child),
                    self.keys.operation(child)
                )
            })
            .unwrap_or_else(|| "waiting on what it calls".to_owned());
        let description = format!(
            "{op} on {svc} is slower ({how}) while its own time is normal: {waiting}; affected, not the origin",
            op = self.keys.operation(key),
            svc = self.keys.service(key),
            how = describe_shift(s),
        );
        let mut a = self.window_anomaly(key, s, severity, description);
        a.cause = Cause::Unknown;
        if let Some((child, _)) = self.slowest_callee(key) {
            let peer = self.keys.service(child);
            if peer != self.keys.service(key) {
                a.peer_service = Some(peer.to_owned());
                a.cause = Cause::Peer;
            }
        }
        a
    }

    /// The called key whose median grew the most in this window, and by how much.
    fn slowest_callee(&self, key: KeyId) -> Option<(KeyId, f64)> {
        let sample = &self.samples[&key];
        sample
            .calls
            .iter()
            .filter_map(|&(child, _)| {
                let now = self.samples.get(&child)?.total.quantile(0.5)?;
                let usual = self.baselines.get(child.index())?.total.quantile(0.5)?;
                Some((child, now - usual))
            })
            .filter(|(_, extra)| *extra > 0.0)
            .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))
    }

    fn window_anomaly(
        &self,
        key: KeyId,
        s: &Shift,
        severity: Severity,
        description: String,
    ) -> Anomaly {
        self.shift_finding(
            (self.keys.service(key), Some(self.keys.operation(key))),
            s,
            severity,
            description,
            &self.samples[&key].slowest,
        )
    }

    /// A window finding about `(service, operation)` from its shift, with its slowest spans as examples.
    fn shift_finding(
        &self,
        (service, operation): (&str, Option<&str>),
        s: &Shift,
        severity: Severity,
        description: String,
        slowest: &[(u64, TraceId, SpanId)],
    ) -> Anomaly {
        let first = slowest.first();
        Anomaly {
            cause: Cause::Itself,
            subtype: Subtype::LatencyDegradation,
            severity,
            service: service.to_owned(),
            operation: operation.map(str::to_owned),
            client: None,
            peer_service: None,
            trace_id: first.map(|s| s.1),
            span_id: first.map(|s| s.2),
            observed: s.observed_ms,
            expected: s.expected_ms,
            spread: (s.usual_p99_ms / s.expected_ms.max(1e-9)).ln().max(0.0),
            score: s.share() * 100.0,
            threshold: shift::MIN_TAIL_SHARE * 100.0,
            unit: "ms",
            window: self.window,
            detected_at: self.window.end,
            examples: slowest.iter().map(|s| s.1).collect(),
            description,
        }
    }

    /// The other service that answered a call of `service`'s: the called key's own service, or, for a
    /// call made inside `service` (a client span of its own), the other service that span called most.
    fn answered_by(&self, service: &'a str, call: KeyId) -> Option<&'a str> {
        let called = self.keys.service(call);
        if called != service {
            return Some(called);
        }
        self.samples
            .get(&call)?
            .calls
            .iter()
            .filter(|(k, _)| self.keys.service(*k) != service)
            .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
            .map(|(k, _)| self.keys.service(*k))
    }

    fn call_change(&self, key: KeyId, changes: &[CallChange]) -> Anomaly {
        let sample = &self.samples[&key];
        let (service, operation) = (self.keys.service(key), self.keys.operation(key));
        let share = call_path::changed_share(changes, sample.traced);
        let changed = (share * f64::from(sample.traced)).round() as u64;
        let mut severity = self.config.severity_cutoffs.latency.grade(share * 100.0);
        if changed < MIN_AFFECTED_TO_PAGE || self.is_young(key) {
            severity = severity.min(Severity::Medium);
        }
        let parts: Vec<String> = changes
            .iter()
            .take(3)
            .map(|c| {
                let callee = format!(
                    "{} `{}`",
                    self.keys.service(c.child),
                    self.keys.operation(c.child)
                );
                if c.is_new() {
                    format!(
                        "{} of {} requests called {callee}, a call it never made",
                        c.calls, sample.traced
                    )
                } else {
                    format!(
                        "only {} of {} requests called {callee}, where {:.0} % usually do",
                        c.calls,
                        sample.traced,
                        c.usual_share * 100.0
                    )
                }
            })
            .collect();
        let first = &changes[0];
        let mut peer = self.keys.service(first.child);
        // An outgoing call (a client span) that stops reaching its server still went out: the callee
        // did not answer, or no longer sends spans. The caller changed nothing.
        let unanswered = !first.is_new() && peer != service && 2 * sample.outgoing > sample.traced;
        // Requests that stop right after one service's answer: that answer (an error, a wrong value)
        // made the caller stop.
        let after = (!unanswered)
            .then(|| {
                let baseline = &self.baselines[key.index()].calls;
                call_path::stopped_after(baseline, sample.traced, &sample.last_calls, changes)
            })
            .flatten()
            .and_then(|last| Some((last, self.answered_by(service, last)?)));
        let why = if unanswered {
            format!(" (the calls went out; {peer} did not answer them)")
        } else if let Some((last, answering)) = after {
            let ended = sample
                .last_calls
                .iter()
                .find(|(k, _)| *k == last)
                .map_or(0, |(_, n)| *n);
            peer = answering;
            format!(
                " ({ended} of {} requests ended right after {answering} answered `{}`: they stopped \
                 after its answer)",
                sample.traced,
                self.keys.operation(last)
            )
        } else {
            String::new()
        };
        Anomaly {
            cause: if unanswered || after.is_some() {
                Cause::Peer
            } else {
                Cause::Itself
            },
            subtype: Subtype::CallPathChange,
            severity,
            service: service.to_owned(),
            operation: Some(operation.to_owned()),
            client: None,
            peer_service: (peer != service).then(|| peer.to_owned()),
            trace_id: sample.slowest.first().map(|s| s.1),
            span_id: None,
            observed: f64::from(first.calls) / f64::from(sample.traced.max(1)),
            expected: first.usual_share,
            spread: 0.0,
            score: share * 100.0,
            threshold: call_path::MIN_CHANGED_SHARE * 100.0,
            unit: "ratio",
            window: self.window,
            detected_at: self.window.end,
            examples: sample.slowest.iter().map(|s| s.1).collect(),
            description: format!(
                "{operation} on {service} changed what it calls: {}{why}",
                parts.join("; ")
            ),
        }
    }
}

fn describe_shift(s: &Shift) -> String {
    if s.median_moved {
        format!(
            "×{:.1} (median {:.1} → {:.1} ms; p99 {:.1} → {:.1} ms)",
            s.ratio(),
            s.expected_ms,
            s.observed_ms,
            s.usual_p99_ms,
            s.window_p99_ms
        )
    } else {
        format!(
            "{:.0} % above the usual p99 of {:.1} ms where 1 % is usual (p99 now {:.1} ms)",
            s.share() * 100.0,
            s.usual_p99_ms,
            s.window_p99_ms
        )
    }
}
