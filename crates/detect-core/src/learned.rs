//! What an engine has learned, as plain data: per (service, operation) its latency, error-rate,
//! throughput and resource baselines, the principals of sensitive routes, and where its clock is. A
//! worker saves it after each window and a worker that takes over (or restarts) loads it, so that
//! detection goes on with its history instead of learning from zero.
//!
//! Keys are stored by name, in the engine's interning order; the state is only valid for the
//! configuration it was learned under (baselines are built for their thresholds), so it carries that
//! configuration's entries and [`crate::Engine::with_learned`] refuses another one. Not kept: windows still
//! open and traces still being assembled (a worker saves right after closing its window).

use crate::config::DetectionConfig;
use crate::detect::latency::{KeyBaseline, WaysIn};
use crate::detect::rates::KeyState;
use crate::detect::resource::{ChildCount, ShapeState};
use serde::{Deserialize, Serialize};

/// The format version; a state of another version is not loaded.
pub const LEARNED_VERSION: u32 = 2;

#[derive(Clone, Serialize, Deserialize)]
pub struct LearnedState {
    pub version: u32,
    /// The configuration's key → value entries it was learned under.
    pub config: serde_json::Value,
    pub keys: Vec<(String, String)>,
    pub(crate) latency: Vec<KeyBaseline>,
    /// The ways into each service as a whole (absent from states saved before they were learned).
    #[serde(default)]
    pub(crate) ways_in: WaysIn,
    pub(crate) rates: Vec<KeyState>,
    pub(crate) children: Vec<ChildCount>,
    pub(crate) shapes: Vec<ShapeState>,
    pub(crate) principals: Vec<(String, Vec<String>)>,
    pub(crate) security_first_window: Option<u64>,
    pub(crate) clock: u64,
    pub(crate) next_to_close: Option<u64>,
}

/// Why a learned state was not loaded.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum LearnedError {
    #[error("the learned state has format version {found}, this engine reads {LEARNED_VERSION}")]
    Version { found: u32 },
    #[error("the learned state was learned under another configuration")]
    OtherConfig,
    #[error("the learned state holds more keys than max_keys allows")]
    TooManyKeys,
}

pub(crate) fn config_entries(config: &DetectionConfig) -> serde_json::Value {
    serde_json::Value::Object(
        config
            .to_entries()
            .into_iter()
            .map(|e| (e.key.to_owned(), e.value))
            .collect(),
    )
}

impl LearnedState {
    pub fn check(&self, config: &DetectionConfig) -> Result<(), LearnedError> {
        if self.version != LEARNED_VERSION {
            return Err(LearnedError::Version {
                found: self.version,
            });
        }
        if self.config != config_entries(config) {
            return Err(LearnedError::OtherConfig);
        }
        if self.keys.len() > config.max_keys as usize {
            return Err(LearnedError::TooManyKeys);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Engine;
    use crate::{Span, SpanAttributes, SpanId, SpanKind, TraceId, UnixNanos};

    const T0: u64 = 1_767_571_200 * UnixNanos::NANOS_PER_SEC;

    /// Ten requests a second of `GET /x` on two services, 20 ms with jitter; minute `slow` has some
    /// spans of 2 s, and minute `busy` three times the traffic.
    fn traffic(from_min: u64, minutes: u64, slow: Option<u64>, busy: Option<u64>) -> Vec<Span> {
        let mut spans = Vec::new();
        let busy_slots = busy.map_or(0..0, |m| (m * 600 * 3)..((m + 1) * 600 * 3));
        let slots = ((from_min * 600)..((from_min + minutes) * 600))
            .chain(busy_slots.clone().map(|k| 1_000_000 + k));
        for n in slots {
            // The extra requests of the busy minute fall between the usual ones.
            let i = if n >= 1_000_000 {
                (n - 1_000_000) / 3
            } else {
                n
            };
            let id_n = n;
            let start = T0 + i * 100_000_000;
            let minute = i / 600;
            let ms = if Some(minute) == slow && i % 50 == 0 {
                2_000.0
            } else {
                20.0 * (1.0 + 0.2 * ((i * 7_919 % 100) as f64 / 100.0 - 0.5))
            };
            let mut id = [0u8; 16];
            id[8..].copy_from_slice(&(id_n + 1).to_be_bytes());
            spans.push(Span {
                trace_id: TraceId(id),
                span_id: SpanId((id_n + 1).to_be_bytes()),
                parent_span_id: None,
                service: if i % 2 == 0 { "a" } else { "b" }.into(),
                operation: "GET /x".into(),
                kind: SpanKind::Server,
                start: UnixNanos(start),
                duration_nanos: (ms * 1e6) as u64,
                attributes: SpanAttributes {
                    http_status_code: Some(200),
                    client_address: Some(format!("198.51.100.{}", i % 40)),
                    ..SpanAttributes::default()
                },
                ..Span::default()
            });
        }
        spans
    }

    fn feed(engine: &mut Engine, spans: Vec<Span>, until: u64) -> Vec<crate::Anomaly> {
        let mut out = Vec::new();
        let mut spans = spans;
        spans.sort_by_key(|s| s.start);
        for s in spans {
            engine.ingest(s, &mut out);
        }
        engine.advance_to(UnixNanos(until), &mut out);
        out
    }

    #[test]
    fn an_engine_restored_from_its_learned_state_goes_on_as_the_original_would() {
        let config = DetectionConfig {
            sampling_enabled: false,
            ..DetectionConfig::default()
        };
        let minute = 60 * UnixNanos::NANOS_PER_SEC;
        let mut original = Engine::new(config.clone());
        feed(
            &mut original,
            traffic(0, 20, None, None),
            T0 + 20 * minute + minute / 2,
        );
        let state = original.learned();
        let text = serde_json::to_string(&state).unwrap();
        let restored_state: LearnedState = serde_json::from_str(&text).unwrap();
        let mut restored = Engine::with_learned(config.clone(), restored_state).unwrap();

        // The next ten minutes, with a slow minute and a busy one: both find the same anomalies.
        let until = T0 + 30 * minute + minute / 2;
        let next = || traffic(20, 10, Some(25), Some(22));
        let a = feed(&mut original, next(), until);
        let b = feed(&mut restored, next(), until);
        assert!(
            a.iter().any(|x| x.subtype == crate::Subtype::LatencySpike),
            "{a:#?}"
        );
        assert!(
            a.iter()
                .any(|x| x.subtype == crate::Subtype::ThroughputSpike),
            "{a:#?}"
        );
        let key = |x: &crate::Anomaly| (x.subtype, x.service.clone(), x.detected_at, x.severity);
        assert_eq!(
            a.iter().map(key).collect::<Vec<_>>(),
            b.iter().map(key).collect::<Vec<_>>()
        );

        // A fresh engine has no history: two minutes in, it cannot tell a busy minute yet.
        let mut fresh = Engine::new(config.clone());
        let c = feed(&mut fresh, next(), until);
        assert!(
            !c.iter()
                .any(|x| x.subtype == crate::Subtype::ThroughputSpike),
            "{c:#?}"
        );
    }

    #[test]
    fn a_state_for_another_configuration_or_version_is_refused() {
        let config = DetectionConfig::default();
        let mut engine = Engine::new(config.clone());
        feed(
            &mut engine,
            traffic(0, 2, None, None),
            T0 + 3 * 60 * UnixNanos::NANOS_PER_SEC,
        );
        let state = engine.learned();
        let other = DetectionConfig {
            latency_threshold_stddev: 4.0,
            ..config.clone()
        };
        assert_eq!(
            Engine::with_learned(other, state.clone()).err(),
            Some(LearnedError::OtherConfig)
        );
        let mut old = state;
        old.version = 0;
        assert_eq!(
            Engine::with_learned(config, old).err(),
            Some(LearnedError::Version { found: 0 })
        );
    }
}
