//! Processing closed windows from Tempo, in order, exactly once: each window gets a run record; its
//! spans go through the worker's engine; its anomalies are stored idempotently (a window processed
//! again adds nothing) with HIGH and CRITICAL ones in the alert outbox; then the cursor moves past it
//! by compare-and-set, so a restart neither repeats nor skips a window. A window that fails (Tempo
//! unreachable after retries, the store away) is marked failed with the reason and the cursor stays:
//! it is tried again.

use crate::shard::Shard;
use crate::tempo_window::fetch_window;
use chrono::{DateTime, TimeZone, Utc};
use detect_core::{Anomaly, DetectionConfig, Engine, LearnedState, Severity, UnixNanos};
use store_pg::{NewAnomaly, Repository, RunStatus, RunTrigger, Store};
use tempo_client::TempoClient;
use tracing::{info, warn};

/// The cursor of the Tempo window stream.
pub const CURSOR: &str = "tempo:windows";
/// Where the stream's engine keeps what it has learned (`detector_baselines`).
pub const LEARNED: &str = "engine:tempo:windows";

pub struct Detection {
    pub shard: Shard,
    pub store: Store,
    pub tempo: TempoClient,
    pub engine: Engine,
    pub notify_min_severity: Severity,
}

/// What one window did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct WindowReport {
    pub spans: u64,
    pub traces: u64,
    pub anomalies: u64,
    pub stored: u64,
}

impl WindowReport {
    pub fn add(&mut self, other: &WindowReport) {
        self.spans += other.spans;
        self.traces += other.traces;
        self.anomalies += other.anomalies;
        self.stored += other.stored;
    }
}

/// The engine for the stream: what the store holds, when it was learned under `config`; a fresh one
/// otherwise (saying why).
pub async fn load_engine(
    store: &Store,
    shard: Shard,
    config: DetectionConfig,
) -> anyhow::Result<Engine> {
    let Some(saved) = store.load_baseline(&shard.key(LEARNED)).await? else {
        info!("no learned state yet: the detectors start learning");
        return Ok(Engine::new(config));
    };
    let restored = serde_json::from_value::<LearnedState>(saved)
        .map_err(|e| e.to_string())
        .and_then(|state| Engine::with_learned(config.clone(), state).map_err(|e| e.to_string()));
    match restored {
        Ok(engine) => {
            info!("went on from the learned state in the store");
            Ok(engine)
        }
        Err(reason) => {
            warn!(%reason, "the learned state in the store is not used; the detectors start learning");
            Ok(Engine::new(config))
        }
    }
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

    /// Processes `[start, start + window)`, recording a run; moves the cursor past it when it is the
    /// furthest window done.
    pub async fn process(&mut self, start: u64) -> anyhow::Result<WindowReport> {
        let end = start + self.window_nanos();
        let run = self
            .store
            .create_run(RunTrigger::Scheduled, Some((to_time(start), to_time(end))))
            .await?;
        match self.detect(start, end).await {
            Ok(report) => {
                self.store
                    .finish_run(
                        run.id,
                        RunStatus::Succeeded,
                        report.spans as i64,
                        report.anomalies as i64,
                        None,
                    )
                    .await?;
                self.move_cursor(end).await?;
                info!(window = %to_time(start), spans = report.spans, traces = report.traces,
                      anomalies = report.anomalies, stored = report.stored, "window done");
                Ok(report)
            }
            Err(error) => {
                let reason = format!("{error:#}");
                warn!(window = %to_time(start), %reason, "window failed; it will be tried again");
                // Best effort: the store may be what failed.
                let _ = self
                    .store
                    .finish_run(run.id, RunStatus::Failed, 0, 0, Some(&reason))
                    .await;
                Err(error)
            }
        }
    }

    async fn detect(&mut self, start: u64, end: u64) -> anyhow::Result<WindowReport> {
        let window = fetch_window(&self.tempo, self.shard, start, end).await?;
        let mut found: Vec<Anomaly> = Vec::new();
        let spans = window.spans.len() as u64;
        for span in window.spans {
            self.engine.ingest(span, &mut found);
        }
        // Close this window: the engine's clock moves to its end plus the allowed lateness (spans of
        // the next window are not late then, as the window closes only its own index).
        let lateness = self.engine.config().allowed_lateness_seconds * UnixNanos::NANOS_PER_SEC;
        self.engine
            .advance_to(UnixNanos(end + lateness), &mut found);
        let rows: Vec<NewAnomaly> = found
            .iter()
            .map(|a| NewAnomaly::from_anomaly(a, a.severity >= self.notify_min_severity))
            .collect();
        let outcomes = self.store.insert_anomalies(&rows).await?;
        let stored = outcomes
            .iter()
            .filter(|o| !matches!(o, store_pg::InsertOutcome::Duplicate))
            .count() as u64;
        // Saved before the cursor moves: a worker that takes over goes on from here. (A crash between
        // the two makes the next worker learn this window twice; its anomalies are not stored twice.)
        let learned = serde_json::to_value(self.engine.learned())?;
        self.store
            .save_baselines(&[(self.shard.key(LEARNED), learned)])
            .await?;
        Ok(WindowReport {
            spans,
            traces: window.traces,
            anomalies: found.len() as u64,
            stored,
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
