//! The backend a binary uses: PostgreSQL when a database URL is given, otherwise the embedded SQLite
//! file in the data directory. Either way the same [`Repository`].

use crate::error::Result;
use crate::model::{
    AnomalyFilter, AnomalyRecord, AnomalySummary, ConfigChange, Cursor, InsertOutcome, NewAnomaly,
    OutboxItem, Page, RunOutcome, RunRecord, RunTrigger,
};
use crate::pg::PgStore;
use crate::repository::{Repository, StoredConfigEntry};
use crate::sqlite::SqliteStore;
use chrono::{DateTime, Utc};
use detect_core::DetectionConfig;
use serde_json::Value;
use std::path::Path;
use std::time::Duration;
use uuid::Uuid;

/// Where the embedded store keeps its file when no data directory is given: relative to the working
/// directory. The binaries take `--data-dir` / `TRACEWATCH_DATA_DIR`.
pub const DEFAULT_DATA_DIR: &str = "tracewatch-data";

/// The embedded store's file name inside the data directory.
pub const EMBEDDED_FILE: &str = "tracewatch.sqlite3";

#[derive(Clone)]
pub enum Store {
    Postgres(PgStore),
    Embedded(SqliteStore),
}

impl Store {
    /// PostgreSQL at `database_url` when one is given (an empty one counts as none), else the embedded
    /// file `data_dir/tracewatch.sqlite3` (the directory is created). Migrations are applied either way.
    pub async fn open(database_url: Option<&str>, data_dir: &Path) -> Result<Store> {
        match database_url.filter(|url| !url.trim().is_empty()) {
            Some(url) => Ok(Store::Postgres(PgStore::connect(url).await?)),
            None => Ok(Store::Embedded(
                SqliteStore::open(&data_dir.join(EMBEDDED_FILE)).await?,
            )),
        }
    }

    /// `"postgres"` or `"sqlite"`, for logs and health output.
    pub fn backend_name(&self) -> &'static str {
        match self {
            Store::Postgres(_) => "postgres",
            Store::Embedded(_) => "sqlite",
        }
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Store::Postgres(_) => f.write_str("Store::Postgres"),
            Store::Embedded(s) => f.debug_tuple("Store::Embedded").field(s).finish(),
        }
    }
}

/// Calls the same method on whichever backend this is.
macro_rules! delegate {
    ($self:ident, $store:ident => $call:expr) => {
        match $self {
            Store::Postgres($store) => $call,
            Store::Embedded($store) => $call,
        }
    };
}

impl Repository for Store {
    async fn insert_anomalies(&self, batch: &[NewAnomaly]) -> Result<Vec<InsertOutcome>> {
        delegate!(self, s => s.insert_anomalies(batch).await)
    }

    async fn list_anomalies(
        &self,
        filter: &AnomalyFilter,
        limit: u32,
        cursor: Option<Cursor>,
    ) -> Result<Page<AnomalyRecord>> {
        delegate!(self, s => s.list_anomalies(filter, limit, cursor).await)
    }

    async fn get_anomaly(&self, id: Uuid) -> Result<AnomalyRecord> {
        delegate!(self, s => s.get_anomaly(id).await)
    }

    async fn resolve_anomaly(
        &self,
        id: Uuid,
        notes: Option<&str>,
        by: &str,
    ) -> Result<AnomalyRecord> {
        delegate!(self, s => s.resolve_anomaly(id, notes, by).await)
    }

    async fn config_entries(&self) -> Result<Vec<StoredConfigEntry>> {
        delegate!(self, s => s.config_entries().await)
    }

    async fn load_config(&self) -> Result<DetectionConfig> {
        delegate!(self, s => s.load_config().await)
    }

    async fn update_config(&self, update: &Value, by: &str) -> Result<DetectionConfig> {
        delegate!(self, s => s.update_config(update, by).await)
    }

    async fn config_history(&self, limit: u32) -> Result<Vec<ConfigChange>> {
        delegate!(self, s => s.config_history(limit).await)
    }

    async fn save_baselines(&self, states: &[(String, Value)]) -> Result<()> {
        delegate!(self, s => s.save_baselines(states).await)
    }

    async fn load_baseline(&self, key: &str) -> Result<Option<Value>> {
        delegate!(self, s => s.load_baseline(key).await)
    }

    async fn create_run(
        &self,
        trigger: RunTrigger,
        window: Option<(DateTime<Utc>, DateTime<Utc>)>,
    ) -> Result<RunRecord> {
        delegate!(self, s => s.create_run(trigger, window).await)
    }

    async fn claim_pending_run(&self, worker: &str) -> Result<Option<RunRecord>> {
        delegate!(self, s => s.claim_pending_run(worker).await)
    }

    async fn start_stream_run(
        &self,
        stream: &str,
        worker: &str,
        window: (DateTime<Utc>, DateTime<Utc>),
    ) -> Result<RunRecord> {
        delegate!(self, s => s.start_stream_run(stream, worker, window).await)
    }

    async fn finish_run(&self, id: Uuid, outcome: &RunOutcome) -> Result<RunRecord> {
        delegate!(self, s => s.finish_run(id, outcome).await)
    }

    async fn get_run(&self, id: Uuid) -> Result<RunRecord> {
        delegate!(self, s => s.get_run(id).await)
    }

    async fn recent_runs(&self, limit: u32) -> Result<Vec<RunRecord>> {
        delegate!(self, s => s.recent_runs(limit).await)
    }

    async fn try_acquire_lease(&self, key: &str, holder: &str, ttl: Duration) -> Result<bool> {
        delegate!(self, s => s.try_acquire_lease(key, holder, ttl).await)
    }

    async fn release_lease(&self, key: &str, holder: &str) -> Result<()> {
        delegate!(self, s => s.release_lease(key, holder).await)
    }

    async fn get_cursor(&self, key: &str) -> Result<Option<DateTime<Utc>>> {
        delegate!(self, s => s.get_cursor(key).await)
    }

    async fn advance_cursor(
        &self,
        key: &str,
        expected: Option<DateTime<Utc>>,
        to: DateTime<Utc>,
    ) -> Result<bool> {
        delegate!(self, s => s.advance_cursor(key, expected, to).await)
    }

    async fn claim_outbox(
        &self,
        worker: &str,
        limit: u32,
        claim_for: Duration,
    ) -> Result<Vec<OutboxItem>> {
        delegate!(self, s => s.claim_outbox(worker, limit, claim_for).await)
    }

    async fn ack_outbox(&self, id: i64, worker: &str) -> Result<bool> {
        delegate!(self, s => s.ack_outbox(id, worker).await)
    }

    async fn fail_outbox(
        &self,
        id: i64,
        worker: &str,
        error: &str,
        retry_after: Duration,
    ) -> Result<()> {
        delegate!(self, s => s.fail_outbox(id, worker, error, retry_after).await)
    }

    async fn anomaly_summary(&self, since: DateTime<Utc>) -> Result<AnomalySummary> {
        delegate!(self, s => s.anomaly_summary(since).await)
    }

    async fn quiet_unresolved(&self, quiet_since: DateTime<Utc>, limit: u32) -> Result<Vec<Uuid>> {
        delegate!(self, s => s.quiet_unresolved(quiet_since, limit).await)
    }
}
