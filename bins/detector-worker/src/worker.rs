//! `detector-worker run` and `once`: continuous detection from Tempo.
//!
//! `run`: every `interval` the worker takes the stream lease (one worker processes windows at a time;
//! the others stand by and take over when its lease expires, from the cursor), serves manual runs, and
//! processes every window that has closed, allowing `lag` for spans to reach Tempo. On SIGTERM or
//! SIGINT it finishes the window it is in, gives the lease back and exits.
//!
//! `once --from --to`: every window in the range, in order, with the same engine, idempotent writes
//! and cursor as `run`, then exits (cron, backfills, tests).

use crate::windows::{Detection, WindowReport, to_nanos, to_time};
use chrono::{DateTime, Utc};
use detect_core::{Engine, IncidentTracker};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use store_pg::{IncidentRecorder, Repository, RunOutcome};
use tracing::{info, warn};

/// The lease of the window stream.
pub const LEASE: &str = "tempo:stream";

pub struct RunSettings {
    pub interval: Duration,
    /// How long spans may take to reach Tempo: a window is processed once its end is this far past.
    pub lag: Duration,
    pub lease_ttl: Duration,
}

fn now_nanos() -> u64 {
    to_nanos(Utc::now())
}

/// Processes every whole window in `[from, to)`, in order. Stops at the first failure.
pub async fn once(
    detection: &mut Detection,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> anyhow::Result<WindowReport> {
    let w = detection.window_nanos();
    let mut start = detection.align(to_nanos(from));
    let to = to_nanos(to);
    detection.catch_up(start).await?;
    let mut total = WindowReport::default();
    while start + w <= to {
        total.add(&detection.process(start).await?);
        start += w;
    }
    Ok(total)
}

/// Serves until `stop` is set.
pub async fn run(
    mut detection: Detection,
    settings: RunSettings,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<()> {
    info!(holder = %detection.holder, shard = %detection.shard, lag_s = settings.lag.as_secs(), "detector-worker running");
    let mut holding = false;
    while !stop.load(Ordering::SeqCst) {
        match detection
            .store
            .try_acquire_lease(
                &detection.shard.key(LEASE),
                &detection.holder,
                settings.lease_ttl,
            )
            .await
        {
            Ok(true) => {
                if !holding {
                    info!("took the window stream");
                }
                holding = true;
                if let Err(error) = detection.refresh_config().await {
                    warn!(error = %format!("{error:#}"), "configuration not reloaded");
                }
                if let Err(error) = serve_manual_runs(&mut detection, &settings).await {
                    warn!(error = %format!("{error:#}"), "manual run failed");
                }
                if let Err(error) = process_due(&mut detection, &settings, &stop).await {
                    warn!(error = %format!("{error:#}"), "windows left for the next round");
                }
            }
            Ok(false) => {
                if holding {
                    warn!("lost the window stream to another worker; standing by");
                }
                holding = false;
            }
            Err(error) => warn!(%error, "cannot reach the store for the lease"),
        }
        sleep_unless_stopped(settings.interval, &stop).await;
    }
    if holding {
        let _ = detection
            .store
            .release_lease(&detection.shard.key(LEASE), &detection.holder)
            .await;
        info!("gave the window stream back");
    }
    Ok(())
}

async fn sleep_unless_stopped(total: Duration, stop: &AtomicBool) {
    let step = Duration::from_millis(100);
    let mut slept = Duration::ZERO;
    while slept < total && !stop.load(Ordering::SeqCst) {
        tokio::time::sleep(step).await;
        slept += step;
    }
}

/// Every window that has closed (its end `lag` in the past), from the cursor on; the first run starts
/// at the last closed window.
async fn process_due(
    detection: &mut Detection,
    settings: &RunSettings,
    stop: &AtomicBool,
) -> anyhow::Result<WindowReport> {
    let w = detection.window_nanos();
    let due_end = now_nanos().saturating_sub(settings.lag.as_nanos() as u64);
    let mut next = match detection.store.get_cursor(&detection.cursor_key()).await? {
        Some(c) => to_nanos(c),
        None => detection.align(due_end).saturating_sub(w),
    };
    detection.catch_up(next).await?;
    let mut total = WindowReport::default();
    while next + w <= due_end && !stop.load(Ordering::SeqCst) {
        // Renew before each window: a worker that cannot is no longer the one processing.
        if !detection
            .store
            .try_acquire_lease(
                &detection.shard.key(LEASE),
                &detection.holder,
                settings.lease_ttl,
            )
            .await?
        {
            anyhow::bail!("the lease was taken over");
        }
        total.add(&detection.process(next).await?);
        next += w;
    }
    Ok(total)
}

/// Manual runs (`POST /api/anomaly-detection/run`): without a window, the due windows are processed
/// now; with one, its windows are processed again by a fresh engine (writes are idempotent, so only
/// what was missed is added; the live engine's history is not disturbed).
async fn serve_manual_runs(
    detection: &mut Detection,
    settings: &RunSettings,
) -> anyhow::Result<()> {
    while let Some(run) = detection.store.claim_pending_run(&detection.holder).await? {
        let result = match (run.window_start, run.window_end) {
            (Some(from), Some(to)) => {
                let mut fresh = Detection {
                    shard: detection.shard,
                    store: detection.store.clone(),
                    tempo: detection.tempo.clone(),
                    engine: Engine::new(detection.engine.config().clone()),
                    incidents: IncidentRecorder::new(
                        IncidentTracker::default(),
                        detection.notify_min_severity,
                    ),
                    notify_min_severity: detection.notify_min_severity,
                    fetch: detection.fetch,
                    last_window_spans: detection.last_window_spans,
                    metrics: detection.metrics.clone(),
                    detections_out: None,
                    holder: detection.holder.clone(),
                    is_stream: false,
                    catch_up: false,
                };
                once(&mut fresh, from, to).await
            }
            _ => {
                let never = AtomicBool::new(false);
                process_due(detection, settings, &never).await
            }
        };
        let outcome = match &result {
            Ok(r) => RunOutcome::succeeded(r.spans as i64, r.anomalies as i64)
                .with_count_source(r.count_source.clone()),
            Err(e) => RunOutcome::failed(format!("{e:#}")),
        };
        detection.store.finish_run(run.id, &outcome).await?;
        info!(run = %run.id, status = ?outcome.status, window = ?run.window_start.map(|t| to_time(to_nanos(t))), "manual run done");
    }
    Ok(())
}
