//! The backend a binary uses: PostgreSQL when a database URL is given, otherwise the embedded SQLite
//! file in the data directory. Either way the same [`Repository`].

use crate::error::Result;
use crate::incidents::{IncidentCursor, IncidentFilter, IncidentRecord, NewIncident};
use crate::live::{LiveEvent, LiveEventBounds};
use crate::model::{
    AnomalyFilter, AnomalyRecord, AnomalySummary, ConfigChange, Cursor, InsertOutcome, NewAnomaly,
    OutboxItem, Page, RunOutcome, RunRecord, RunTrigger,
};
use crate::pg::PgStore;
use crate::repository::{Repository, StoredConfigEntry};
use crate::retention::{RetentionReport, RetentionSettings};
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

    /// A listener for the live events other processes write: on PostgreSQL only (the embedded store
    /// has one writing process, which wakes its own readers).
    pub async fn live_listener(&self) -> Result<Option<crate::pg::LiveListener>> {
        match self {
            Store::Postgres(s) => s.listen().await.map(Some),
            Store::Embedded(_) => Ok(None),
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

/// Implements [`Repository`] by calling the same method on whichever backend this is.
macro_rules! delegate {
    ($(fn $name:ident($($arg:ident: $ty:ty),*) -> $out:ty;)*) => {
        impl Repository for Store {
            fn clock(&self) -> &crate::Clock {
                match self {
                    Store::Postgres(s) => s.clock(),
                    Store::Embedded(s) => s.clock(),
                }
            }
            $(async fn $name(&self, $($arg: $ty),*) -> Result<$out> {
                match self {
                    Store::Postgres(s) => s.$name($($arg),*).await,
                    Store::Embedded(s) => s.$name($($arg),*).await,
                }
            })*
        }
    };
}

type Window = (DateTime<Utc>, DateTime<Utc>);

delegate! {
    fn insert_anomalies(batch: &[NewAnomaly]) -> Vec<InsertOutcome>;
    fn list_anomalies(filter: &AnomalyFilter, limit: u32, cursor: Option<Cursor>) -> Page<AnomalyRecord>;
    fn get_anomaly(id: Uuid) -> AnomalyRecord;
    fn resolve_anomaly(id: Uuid, notes: Option<&str>, by: &str) -> AnomalyRecord;
    fn config_entries() -> Vec<StoredConfigEntry>;
    fn load_config() -> DetectionConfig;
    fn update_config(update: &Value, by: &str) -> DetectionConfig;
    fn config_history(limit: u32) -> Vec<ConfigChange>;
    fn save_baselines(states: &[(String, Value)]) -> ();
    fn load_baseline(key: &str) -> Option<Value>;
    fn create_run(trigger: RunTrigger, window: Option<Window>) -> RunRecord;
    fn claim_pending_run(worker: &str) -> Option<RunRecord>;
    fn start_stream_run(stream: &str, worker: &str, window: Window) -> RunRecord;
    fn finish_run(id: Uuid, outcome: &RunOutcome) -> RunRecord;
    fn get_run(id: Uuid) -> RunRecord;
    fn recent_runs(limit: u32) -> Vec<RunRecord>;
    fn try_acquire_lease(key: &str, holder: &str, ttl: Duration) -> bool;
    fn release_lease(key: &str, holder: &str) -> ();
    fn get_cursor(key: &str) -> Option<DateTime<Utc>>;
    fn advance_cursor(key: &str, expected: Option<DateTime<Utc>>, to: DateTime<Utc>) -> bool;
    fn claim_outbox(worker: &str, limit: u32, claim_for: Duration) -> Vec<OutboxItem>;
    fn ack_outbox(id: i64, worker: &str) -> bool;
    fn fail_outbox(id: i64, worker: &str, error: &str, retry_after: Duration) -> ();
    fn anomaly_summary(since: DateTime<Utc>) -> AnomalySummary;
    fn resolve_quiet(quiet_since: DateTime<Utc>, by: &str, notes: &str) -> Vec<AnomalyRecord>;
    fn record_incidents(batch: &[NewIncident]) -> Vec<IncidentRecord>;
    fn resolve_quiet_incidents(quiet_since: DateTime<Utc>, by: &str, notes: &str) -> Vec<IncidentRecord>;
    fn list_incidents(filter: &IncidentFilter, limit: u32, cursor: Option<IncidentCursor>) -> Page<IncidentRecord, IncidentCursor>;
    fn get_incident(id: Uuid) -> IncidentRecord;
    fn resolve_incident(id: Uuid, notes: Option<&str>, by: &str) -> IncidentRecord;
    fn apply_retention(settings: &RetentionSettings, now: DateTime<Utc>) -> RetentionReport;
    fn live_event_bounds() -> LiveEventBounds;
    fn live_events_after(after: i64, limit: u32) -> Vec<LiveEvent>;
}
