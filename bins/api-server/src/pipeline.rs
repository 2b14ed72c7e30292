//! In-process detection: spans accepted by the OTLP intake (or made by `--demo`) go through one
//! detect-core [`Engine`] on a thread of its own, and the anomalies it finds are stored and published
//! to the live stream by a task that retries while the store is away.
//!
//! Back-pressure, never silent loss: the intake asks [`Intake::try_submit`] before it answers. Past
//! `max_queued_spans` waiting for the detectors, or `max_unsaved_anomalies` waiting for the store, a
//! batch is refused (the OTLP handler answers 429 with Retry-After, so an SDK or Collector retries); a
//! batch that was accepted is detected, and its anomalies are stored once the store answers.
//!
//! Time: the engine runs in event time, and a tick moves it to the wall clock every second, so that
//! windows close and quiet services are noticed even when no span arrives.

use crate::events::EventHub;
use crate::telemetry::Metrics;
use backon::{BackoffBuilder, ExponentialBuilder};
use detect_core::{
    Anomaly, DetectionConfig, Engine, EngineStats, IncidentSettings, IncidentTracker, ServiceGraph,
    Severity, Span, UnixNanos,
};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant, SystemTime};
use store_pg::{
    IncidentRecord, IncidentRecorder, InsertOutcome, NewAnomaly, NewIncident, Repository,
    RunOutcome, Store, StoreError,
};
use tokio::sync::{mpsc as tokio_mpsc, oneshot};
use tracing::{error, info, warn};

const TICK: Duration = Duration::from_secs(1);
/// Where the in-process detection keeps its open incidents (`detector_baselines`).
const INCIDENTS: &str = "incidents:intake";

#[derive(Clone, Debug)]
pub struct PipelineSettings {
    /// Spans accepted and not yet through the detectors, past which intake is refused.
    pub max_queued_spans: usize,
    /// Anomalies found and not yet stored, past which intake is refused.
    pub max_unsaved_anomalies: usize,
    /// Incidents from this severity up page (go to the alert outbox).
    pub notify_min_severity: Severity,
    /// Who claims manual runs, as recorded in the run.
    pub worker_name: String,
}

impl Default for PipelineSettings {
    fn default() -> Self {
        PipelineSettings {
            max_queued_spans: 500_000,
            max_unsaved_anomalies: 100_000,
            notify_min_severity: Severity::High,
            worker_name: format!("api-server:{}", std::process::id()),
        }
    }
}

/// Why a batch was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The detectors (or the store behind them) are behind: try again after this many seconds.
    Busy {
        retry_after_secs: u64,
        reason: &'static str,
    },
    /// The pipeline is shutting down.
    Stopped,
}

/// What the detectors did since the previous flush.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FlushReport {
    pub spans: u64,
    pub anomalies: u64,
}

/// What the detector thread hands to the store task: anomalies found (with the calls between
/// services as learned so far, which incidents are linked by), or the time, which closes quiet
/// incidents.
enum Found {
    Anomalies(Vec<Anomaly>, Arc<ServiceGraph>, IncidentSettings),
    Clock(UnixNanos, IncidentSettings),
}

enum Command {
    Spans(Vec<Span>),
    Flush(oneshot::Sender<FlushReport>),
    Reconfigure(Box<DetectionConfig>),
    Stop,
}

struct Shared {
    tx: mpsc::Sender<Command>,
    queued_spans: AtomicUsize,
    unsaved_anomalies: AtomicUsize,
    accepting: AtomicBool,
    settings: PipelineSettings,
    metrics: Arc<Metrics>,
}

/// The handle the intake, the demo and the run claimer hold.
#[derive(Clone)]
pub struct Intake {
    shared: Arc<Shared>,
}

/// Owns the detector thread and the store task; [`Pipeline::shutdown`] drains both.
pub struct Pipeline {
    pub intake: Intake,
    detector: Option<std::thread::JoinHandle<()>>,
    persister: Option<tokio::task::JoinHandle<()>>,
}

fn now() -> UnixNanos {
    let d = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    UnixNanos(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

impl Pipeline {
    /// Starts the detector thread and the store task (on the current tokio runtime).
    pub fn start(
        config: DetectionConfig,
        settings: PipelineSettings,
        store: Store,
        hub: EventHub,
        metrics: Arc<Metrics>,
    ) -> Pipeline {
        let (tx, rx) = mpsc::channel();
        let (found_tx, found_rx) = tokio_mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            tx,
            queued_spans: AtomicUsize::new(0),
            unsaved_anomalies: AtomicUsize::new(0),
            accepting: AtomicBool::new(true),
            settings,
            metrics,
        });
        let detector = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("detector".into())
                .spawn(move || detect_loop(Engine::new(config), rx, found_tx, &shared))
                .expect("the detector thread starts")
        };
        let persister = tokio::spawn(persist_loop(store, found_rx, hub, shared.clone()));
        Pipeline {
            intake: Intake { shared },
            detector: Some(detector),
            persister: Some(persister),
        }
    }

    /// Stops accepting, lets the detectors finish what was accepted (closing open windows and
    /// analysing held traces), and waits until every anomaly found is stored or given up on.
    pub async fn shutdown(mut self) {
        self.intake.shared.accepting.store(false, Ordering::SeqCst);
        let _ = self.intake.shared.tx.send(Command::Stop);
        if let Some(detector) = self.detector.take() {
            let _ = tokio::task::spawn_blocking(move || detector.join()).await;
        }
        if let Some(persister) = self.persister.take() {
            let _ = persister.await;
        }
    }
}

impl Intake {
    /// Accepts a batch for detection, or refuses it whole (nothing of a refused batch is kept).
    pub fn try_submit(&self, spans: Vec<Span>) -> Result<(), Refusal> {
        let s = &self.shared;
        if !s.accepting.load(Ordering::SeqCst) {
            return Err(Refusal::Stopped);
        }
        let n = spans.len();
        if n == 0 {
            return Ok(());
        }
        if s.unsaved_anomalies.load(Ordering::SeqCst) >= s.settings.max_unsaved_anomalies {
            s.metrics.spans("throttled", n);
            return Err(Refusal::Busy {
                retry_after_secs: 5,
                reason: "anomalies are waiting for the store",
            });
        }
        let before = s.queued_spans.fetch_add(n, Ordering::SeqCst);
        // One batch larger than the whole queue is still taken when the queue is empty.
        if before > 0 && before + n > s.settings.max_queued_spans {
            s.queued_spans.fetch_sub(n, Ordering::SeqCst);
            s.metrics.spans("throttled", n);
            return Err(Refusal::Busy {
                retry_after_secs: 1,
                reason: "the detectors are behind",
            });
        }
        if s.tx.send(Command::Spans(spans)).is_err() {
            s.queued_spans.fetch_sub(n, Ordering::SeqCst);
            return Err(Refusal::Stopped);
        }
        s.metrics.spans("accepted", n);
        s.metrics.queued_spans(before + n);
        Ok(())
    }

    /// Moves the detectors to the wall clock (closing every window that has ended) and reports what
    /// they did since the previous flush. `None` when the pipeline has stopped.
    pub async fn flush(&self) -> Option<FlushReport> {
        let (tx, rx) = oneshot::channel();
        self.shared.tx.send(Command::Flush(tx)).ok()?;
        rx.await.ok()
    }

    /// Replaces the detection configuration. A changed configuration restarts learning (detect-core's
    /// baselines are built for one configuration).
    pub fn reconfigure(&self, config: DetectionConfig) {
        let _ = self.shared.tx.send(Command::Reconfigure(Box::new(config)));
    }

    pub fn queued_spans(&self) -> usize {
        self.shared.queued_spans.load(Ordering::SeqCst)
    }

    pub fn worker_name(&self) -> &str {
        &self.shared.settings.worker_name
    }
}

fn detect_loop(
    mut engine: Engine,
    rx: mpsc::Receiver<Command>,
    found_tx: tokio_mpsc::UnboundedSender<Found>,
    shared: &Shared,
) {
    let mut found = Vec::new();
    let mut last_tick = Instant::now();
    let mut reported = EngineStats::default();
    loop {
        match rx.recv_timeout(TICK) {
            Ok(Command::Spans(spans)) => {
                let n = spans.len();
                let started = Instant::now();
                for span in spans {
                    engine.ingest(span, &mut found);
                }
                shared.metrics.detection_batch(started.elapsed());
                let left = shared.queued_spans.fetch_sub(n, Ordering::SeqCst) - n;
                shared.metrics.queued_spans(left);
            }
            Ok(Command::Flush(reply)) => {
                engine.advance_to(now(), &mut found);
                let stats = engine.stats().clone();
                let _ = reply.send(FlushReport {
                    spans: stats.spans - reported.spans,
                    anomalies: stats.anomalies - reported.anomalies,
                });
                reported = stats;
            }
            Ok(Command::Reconfigure(config)) => {
                if *config != *engine.config() {
                    info!(
                        "detection configuration changed: the in-process detectors start learning anew"
                    );
                    engine.finish(&mut found);
                    engine = Engine::new(*config);
                    reported = EngineStats::default();
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Ok(Command::Stop) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                // A batch accepted just before the stop is still detected.
                while let Ok(command) = rx.try_recv() {
                    if let Command::Spans(spans) = command {
                        shared.queued_spans.fetch_sub(spans.len(), Ordering::SeqCst);
                        for span in spans {
                            engine.ingest(span, &mut found);
                        }
                    }
                }
                engine.finish(&mut found);
                hand_over(&mut found, &engine, &found_tx, shared);
                return;
            }
        }
        if last_tick.elapsed() >= TICK {
            last_tick = Instant::now();
            engine.advance_to(now(), &mut found);
            hand_over(&mut found, &engine, &found_tx, shared);
            let settings = engine.config().incident_settings();
            let _ = found_tx.send(Found::Clock(now(), settings));
        }
        hand_over(&mut found, &engine, &found_tx, shared);
    }
}

fn hand_over(
    found: &mut Vec<Anomaly>,
    engine: &Engine,
    found_tx: &tokio_mpsc::UnboundedSender<Found>,
    shared: &Shared,
) {
    if found.is_empty() {
        return;
    }
    for a in found.iter() {
        shared.metrics.anomaly(a);
    }
    shared
        .unsaved_anomalies
        .fetch_add(found.len(), Ordering::SeqCst);
    let graph = Arc::new(engine.service_graph().clone());
    let settings = engine.config().incident_settings();
    let _ = found_tx.send(Found::Anomalies(std::mem::take(found), graph, settings));
}

/// Unknown database errors are tried this many times before the batch is given up (and logged);
/// an unavailable store is waited for without limit.
const MAX_DATABASE_ATTEMPTS: u32 = 5;

async fn persist_loop(
    store: Store,
    mut rx: tokio_mpsc::UnboundedReceiver<Found>,
    hub: EventHub,
    shared: Arc<Shared>,
) {
    let tracker = load_incidents(&store).await;
    let mut incidents = IncidentRecorder::new(tracker, shared.settings.notify_min_severity);
    let mut graph = Arc::new(ServiceGraph::default());
    while let Some(found) = rx.recv().await {
        match found {
            Found::Anomalies(batch, learned, settings) => {
                graph = learned;
                incidents.set_settings(settings);
                // Findings page through their incident, not one by one.
                let rows: Vec<NewAnomaly> = batch
                    .iter()
                    .map(|a| NewAnomaly::from_anomaly(a, false))
                    .collect();
                let outcomes = store_with_retries(&store, &rows, &shared.metrics).await;
                shared
                    .unsaved_anomalies
                    .fetch_sub(rows.len(), Ordering::SeqCst);
                incidents.observe(batch.iter().zip(outcomes.iter().copied()), &graph);
                if outcomes
                    .iter()
                    .any(|o| !matches!(o, InsertOutcome::Duplicate))
                {
                    hub.wake();
                }
            }
            Found::Clock(now, settings) => {
                incidents.set_settings(settings);
                incidents.advance_to(now);
            }
        }
        let writes = incidents.writes(&graph);
        if writes.is_empty() {
            continue;
        }
        match record_incidents(&store, &writes, incidents.tracker()).await {
            Ok(_) => {
                incidents.written();
                hub.wake();
            }
            // Kept: tried again with the next batch or tick.
            Err(error) => warn!(%error, incidents = writes.len(), "incidents not stored yet"),
        }
    }
}

async fn load_incidents(store: &Store) -> IncidentTracker {
    match store.load_baseline(INCIDENTS).await {
        Ok(Some(saved)) => serde_json::from_value(saved).unwrap_or_else(|error| {
            warn!(%error, "the open incidents in the store are not readable; incidents start afresh");
            IncidentTracker::default()
        }),
        Ok(None) => IncidentTracker::default(),
        Err(error) => {
            warn!(%error, "cannot load the open incidents; incidents start afresh");
            IncidentTracker::default()
        }
    }
}

/// Writes the incidents and the tracker's state (so that a restart goes on with the open ones).
async fn record_incidents(
    store: &Store,
    writes: &[NewIncident],
    tracker: &IncidentTracker,
) -> Result<Vec<IncidentRecord>, StoreError> {
    let written = store.record_incidents(writes).await?;
    let state = serde_json::to_value(tracker).map_err(|e| StoreError::Invalid(e.to_string()))?;
    store
        .save_baselines(&[(INCIDENTS.to_owned(), state)])
        .await?;
    Ok(written)
}

#[tracing::instrument(name = "store.insert_anomalies", skip_all, fields(anomalies = rows.len()))]
async fn store_with_retries(
    store: &Store,
    rows: &[NewAnomaly],
    metrics: &Metrics,
) -> Vec<InsertOutcome> {
    let mut delays = ExponentialBuilder::new()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(Duration::from_secs(30))
        .with_jitter()
        .without_max_times()
        .build();
    let mut attempts = 0;
    loop {
        attempts += 1;
        let started = Instant::now();
        let result = store.insert_anomalies(rows).await;
        metrics.db_query("insert_anomalies", started.elapsed());
        let delay = delays.next().unwrap_or(Duration::from_secs(30));
        match result {
            Ok(outcomes) => return outcomes,
            Err(StoreError::Unavailable(_)) => {
                warn!(anomalies = rows.len(), retry_in = ?delay, "store unavailable; anomalies kept and retried");
            }
            Err(error) if attempts < MAX_DATABASE_ATTEMPTS => {
                warn!(%error, anomalies = rows.len(), attempts, "storing anomalies failed; retrying");
            }
            Err(error) => {
                error!(%error, anomalies = rows.len(), "storing anomalies failed for good; batch dropped");
                return Vec::new();
            }
        }
        tokio::time::sleep(delay).await;
    }
}

/// Claims manual runs (`POST /api/anomaly-detection/run`) for the in-process detectors: a run flushes
/// them to the wall clock and records what they did since the previous run. Also picks up
/// configuration changed by other instances. Runs until the process stops.
pub async fn serve_runs(store: Store, intake: Intake) {
    let mut config_checked = Instant::now();
    loop {
        tokio::time::sleep(TICK).await;
        match store.claim_pending_run(intake.worker_name()).await {
            Ok(None) => {}
            Ok(Some(run)) => {
                let outcome = match intake.flush().await {
                    Some(report) => {
                        RunOutcome::succeeded(report.spans as i64, report.anomalies as i64)
                            .with_count_source("traces")
                    }
                    None => RunOutcome::failed("the in-process detectors have stopped"),
                };
                if let Err(error) = store.finish_run(run.id, &outcome).await {
                    warn!(%error, run = %run.id, "run not finished");
                }
            }
            Err(error) => warn!(%error, "claiming runs failed"),
        }
        if config_checked.elapsed() >= Duration::from_secs(10) {
            config_checked = Instant::now();
            match store.load_config().await {
                Ok(config) => intake.reconfigure(config),
                Err(error) => warn!(%error, "configuration not reloaded"),
            }
        }
    }
}
