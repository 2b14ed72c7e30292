//! Retention: what the store deletes once it is no longer needed, so that no table grows without
//! bound. [`RetentionSettings`] says how long each kind of row is kept; one job,
//! [`crate::Repository::apply_retention`], deletes in bounded batches (each statement its own short
//! transaction); [`run_under_lease`] runs it in one process of a deployment at a time.

mod report;
mod settings;

pub use report::RetentionReport;
pub use settings::{RetentionSettings, RetentionSettingsError, Unit, VARIABLES};

use crate::error::Result;
use crate::repository::Repository;

/// The lease whose holder runs the job.
pub const LEASE: &str = "retention";

/// Runs the job if `holder` gets the [`LEASE`]; `None` when another process holds it. The lease is
/// kept for the settings' interval after the run starts (not given back), so that however many
/// processes call this every interval, the job runs about once per interval; a holder that stops
/// is replaced when its lease runs out. Time is the store's ([`crate::Clock`]).
pub async fn run_under_lease(
    store: &impl Repository,
    settings: &RetentionSettings,
    holder: &str,
) -> Result<Option<RetentionReport>> {
    if !store
        .try_acquire_lease(LEASE, holder, settings.interval)
        .await?
    {
        return Ok(None);
    }
    let now = store.clock().time();
    Ok(Some(store.apply_retention(settings, now).await?))
}
