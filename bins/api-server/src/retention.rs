//! Retention: every interval, the api-server that holds the store's `retention` lease deletes what the
//! settings no longer keep (`store_pg::retention`), logs what it deleted and counts it in the metrics.
//! Every instance runs this loop; the lease lets one of them do the work per interval, and another
//! takes over when that one stops.

use crate::telemetry::Metrics;
use std::sync::Arc;
use store_pg::retention::run_under_lease;
use store_pg::{RetentionSettings, Store};
use tokio::time::MissedTickBehavior;
use tracing::{debug, info, warn};

/// Starts the loop; its first run is now. It runs until the task is aborted.
pub fn spawn(
    store: Store,
    settings: RetentionSettings,
    metrics: Arc<Metrics>,
) -> tokio::task::JoinHandle<()> {
    let holder = format!("api-server:{}:{}", std::process::id(), uuid::Uuid::new_v4());
    tokio::spawn(run(store, settings, metrics, holder))
}

async fn run(store: Store, settings: RetentionSettings, metrics: Arc<Metrics>, holder: String) {
    let mut ticks = tokio::time::interval(settings.interval);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match run_under_lease(&store, &settings, &holder).await {
            Ok(Some(report)) => {
                metrics.retention(&report);
                info!(
                    deleted = report.total(),
                    anomalies = report.anomalies,
                    detection_keys = report.detection_keys,
                    incidents = report.incidents,
                    runs = report.runs,
                    outbox = report.outbox,
                    config_history = report.config_history,
                    took_ms = report.took.as_millis() as u64,
                    "retention done"
                );
            }
            Ok(None) => debug!("retention: another instance holds the lease"),
            Err(error) => warn!(%error, "retention failed; tried again next interval"),
        }
    }
}
