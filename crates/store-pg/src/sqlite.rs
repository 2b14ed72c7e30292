//! The embedded backend, used when no `DATABASE_URL` is set: one SQLite file (SQLite bundled through
//! diesel), migrations from `migrations/sqlite` embedded and applied at open. Same behaviour as the
//! PostgreSQL backend; the conformance suite runs on both.
//!
//! One connection, behind a `tokio::sync::Mutex`, serves every call. SQLite lets one writer at a time
//! into a file; a pool would only queue writers on the file lock (and turn waits into `SQLITE_BUSY`),
//! while the mutex queues them fairly in the process, lets a transaction read then write without
//! another writer in between (what PostgreSQL's row locks give) and keeps the file's settings on the one
//! connection. Writes run in `BEGIN IMMEDIATE` transactions, so that another process sharing the file
//! (an API and a worker on one data directory) waits for the write lock (`busy_timeout`) instead of
//! failing halfway through a transaction.
//!
//! Every call runs to completion in its own task: a caller that gives up (a dropped HTTP request)
//! cannot leave the shared connection inside an open transaction. If a call still ends without
//! finishing (a panic), the next one opens a fresh connection.

mod insert;
mod schema;
mod types;

use crate::error::{Result, StoreError};
use crate::model::{
    AnomalyFilter, AnomalyRecord, AnomalySummary, ConfigChange, Cursor, InsertOutcome, MAX_PAGE,
    NewAnomaly, OutboxItem, Page, RunOutcome, RunRecord, RunStatus, RunTrigger,
};
use crate::repository::{Repository, StoredConfigEntry};
use crate::shared::{
    ABANDONED, check_window, config_from_entries, escape_like, page, severities_at_least,
};
use chrono::{DateTime, TimeDelta, Utc};
use detect_core::DetectionConfig;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Nullable, Text};
use diesel::sqlite::Sqlite;
use diesel_async::RunQueryDsl;
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use schema::{
    alert_outbox, anomaly_detection_config, config_history, detection_runs, detector_baselines,
    trace_anomalies, work_cursors, work_leases,
};
use serde_json::Value;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::Mutex;
use types::{Id, JsonText, Ts};
use uuid::Uuid;

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");

/// Set on every connection. WAL lets readers in other processes read while one writes; NORMAL
/// synchronisation is durable across a crash of the process (WAL's fsync at checkpoints guards against
/// power loss, at the cost of the last transactions); foreign keys are off in SQLite unless asked for;
/// a writer waits up to five seconds for another process's write lock.
const PRAGMAS: &str = "PRAGMA busy_timeout = 5000;
                       PRAGMA journal_mode = WAL;
                       PRAGMA synchronous = NORMAL;
                       PRAGMA foreign_keys = ON;";

type Conn = SyncConnectionWrapper<diesel::SqliteConnection>;

#[diesel::declare_sql_function]
extern "SQL" {
    /// Unicode lower case, so that text search is case-insensitive beyond ASCII as PostgreSQL's ILIKE
    /// is (SQLite's LIKE and `lower` fold ASCII only). Registered on every connection.
    fn tracewatch_lower(text: Nullable<Text>) -> Nullable<Text>;
}

/// The embedded store. Clones share the one connection.
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Conn>>,
    path: Arc<Path>,
    /// A call ended without finishing: the connection's state is unknown, the next call replaces it.
    interrupted: Arc<AtomicBool>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// A function of the connection: an async closure whose future can move to another thread (the
/// shape diesel-async's own transactions take, spelled out here because its helper trait is private).
trait ConnTask<C, R>: AsyncFnOnce(C) -> R + FnOnce(C) -> <Self as ConnTask<C, R>>::Fut {
    type Fut: Future<Output = R>;
}

impl<F, C, Fut, R> ConnTask<C, R> for F
where
    F: AsyncFnOnce(C) -> R + FnOnce(C) -> Fut,
    Fut: Future<Output = R>,
{
    type Fut = Fut;
}

impl SqliteStore {
    /// Opens (creating it and its parent directories if needed) the file at `path`, sets it up and
    /// applies pending migrations. A path that cannot be created or opened is
    /// [`StoreError::Unavailable`].
    pub async fn open(path: &Path) -> Result<SqliteStore> {
        let conn = open_connection(path.to_path_buf()).await?;
        Ok(SqliteStore {
            conn: Arc::new(Mutex::new(conn)),
            path: path.into(),
            interrupted: Arc::new(AtomicBool::new(false)),
        })
    }

    /// The file this store keeps its data in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `task` on the connection, alone, to completion (see the module's documentation).
    async fn run<T, F>(&self, task: F) -> Result<T>
    where
        T: Send + 'static,
        for<'c> F: AsyncFnOnce(&'c mut Conn) -> Result<T>
            + ConnTask<&'c mut Conn, Result<T>, Fut: Send>
            + Send
            + 'static,
    {
        let conn = Arc::clone(&self.conn);
        let path = Arc::clone(&self.path);
        let interrupted = Arc::clone(&self.interrupted);
        let job = tokio::spawn(async move {
            let mut conn = conn.lock_owned().await;
            if AtomicBool::load(&interrupted, Ordering::Acquire) {
                *conn = open_connection(path.to_path_buf()).await?;
                interrupted.store(false, Ordering::Release);
            }
            // Dropped before the lock is released, so that the next call sees the flag.
            let watch = Unfinished {
                flag: &interrupted,
                finished: false,
            };
            let result = task(&mut conn).await;
            watch.finish();
            result
        });
        match job.await {
            Ok(result) => result.map_err(busy_is_unavailable),
            Err(e) => Err(StoreError::Database(format!(
                "a store operation did not finish: {e}"
            ))),
        }
    }

    /// Runs `task` in a write transaction: SQLite's write lock is taken at its start.
    async fn write<T, F>(&self, task: F) -> Result<T>
    where
        T: Send + 'static,
        for<'c> F: AsyncFnOnce(&'c mut Conn) -> Result<T>
            + ConnTask<&'c mut Conn, Result<T>, Fut: Send>
            + Send
            + 'static,
    {
        self.run(async move |conn: &mut Conn| conn.immediate_transaction(task).await)
            .await
    }
}

/// Raises the interrupted flag unless the call finished.
struct Unfinished<'a> {
    flag: &'a AtomicBool,
    finished: bool,
}

impl Unfinished<'_> {
    fn finish(mut self) {
        self.finished = true;
    }
}

impl Drop for Unfinished<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.flag.store(true, Ordering::Release);
        }
    }
}

async fn open_connection(path: PathBuf) -> Result<Conn> {
    tokio::task::spawn_blocking(move || connect(&path))
        .await
        .map_err(|e| StoreError::Database(format!("opening the store did not finish: {e}")))?
        .map(Conn::new)
}

/// Opens and sets up the file, then applies pending migrations in one write transaction, so that
/// processes opening the file together apply them once. Blocking: diesel's migration harness is
/// synchronous.
fn connect(path: &Path) -> Result<diesel::SqliteConnection> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| {
            StoreError::Unavailable(format!(
                "cannot create the data directory {}: {e}",
                dir.display()
            ))
        })?;
    }
    let url = path.to_str().ok_or_else(|| {
        StoreError::Invalid(format!("the store's path {} is not UTF-8", path.display()))
    })?;
    let mut conn = diesel::SqliteConnection::establish(url)
        .map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", path.display())))?;
    conn.batch_execute(PRAGMAS)
        .map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", path.display())))?;
    tracewatch_lower_utils::register_impl(&mut conn, |text: Option<String>| {
        text.map(|t| t.to_lowercase())
    })
    .map_err(StoreError::from)?;
    conn.immediate_transaction(|conn| conn.run_pending_migrations(MIGRATIONS).map(|_| ()))
        .map_err(|e| StoreError::Database(format!("migrations failed: {e}")))?;
    Ok(conn)
}

/// SQLite reports another process's lock, held past `busy_timeout`, as an error without a kind.
fn busy_is_unavailable(error: StoreError) -> StoreError {
    match error {
        StoreError::Database(message)
            if message.contains("database is locked")
                || message.contains("database table is locked") =>
        {
            StoreError::Unavailable(message)
        }
        other => other,
    }
}

fn db_error(e: diesel::result::Error) -> StoreError {
    StoreError::from(e)
}

/// Now plus `by`, saturating.
fn later(now: DateTime<Utc>, by: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(by)
        .ok()
        .and_then(|d| now.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = trace_anomalies, check_for_backend(Sqlite))]
struct AnomalyRow {
    id: Id,
    trace_id: String,
    span_id: Option<String>,
    anomaly_type: String,
    anomaly_subtype: Option<String>,
    severity: String,
    description: Option<String>,
    detected_at: Option<DateTime<Utc>>,
    resolved: Option<bool>,
    resolution_notes: Option<String>,
    service_name: Option<String>,
    operation: Option<String>,
    client: Option<String>,
    observed_value: Option<f64>,
    expected_value: Option<f64>,
    score: Option<f64>,
    fingerprint: Option<String>,
    window_start: Option<DateTime<Utc>>,
    window_end: Option<DateTime<Utc>>,
    occurrences: i64,
    last_seen_at: Option<DateTime<Utc>>,
    resolved_at: Option<DateTime<Utc>>,
    resolved_by: Option<String>,
    details: Option<JsonText>,
    peer_service: Option<String>,
}

impl From<AnomalyRow> for AnomalyRecord {
    fn from(r: AnomalyRow) -> Self {
        AnomalyRecord {
            id: r.id.0,
            trace_id: r.trace_id,
            span_id: r.span_id,
            anomaly_type: r.anomaly_type,
            anomaly_subtype: r.anomaly_subtype,
            severity: r.severity,
            description: r.description,
            detected_at: r.detected_at,
            resolved: r.resolved.unwrap_or(false),
            resolution_notes: r.resolution_notes,
            service_name: r.service_name,
            operation: r.operation,
            client: r.client,
            observed_value: r.observed_value,
            expected_value: r.expected_value,
            score: r.score,
            fingerprint: r.fingerprint,
            window_start: r.window_start,
            window_end: r.window_end,
            occurrences: r.occurrences,
            last_seen_at: r.last_seen_at,
            resolved_at: r.resolved_at,
            resolved_by: r.resolved_by,
            details: r.details.map(|d| d.0),
            peer_service: r.peer_service,
        }
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = detection_runs, check_for_backend(Sqlite))]
struct RunRow {
    id: Id,
    trigger: String,
    window_start: Option<DateTime<Utc>>,
    window_end: Option<DateTime<Utc>>,
    status: String,
    spans: i64,
    anomalies: i64,
    error: Option<String>,
    worker: Option<String>,
    requested_at: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
    stream: Option<String>,
    count_source: Option<String>,
}

impl TryFrom<RunRow> for RunRecord {
    type Error = StoreError;
    fn try_from(r: RunRow) -> Result<Self> {
        Ok(RunRecord {
            id: r.id.0,
            trigger: RunTrigger::parse(&r.trigger).ok_or_else(|| {
                StoreError::Database(format!("unknown run trigger {}", r.trigger))
            })?,
            window_start: r.window_start,
            window_end: r.window_end,
            status: RunStatus::parse(&r.status)
                .ok_or_else(|| StoreError::Database(format!("unknown run status {}", r.status)))?,
            spans: r.spans,
            anomalies: r.anomalies,
            error: r.error,
            worker: r.worker,
            requested_at: r.requested_at,
            started_at: r.started_at,
            finished_at: r.finished_at,
            stream: r.stream,
            count_source: r.count_source,
        })
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = alert_outbox, check_for_backend(Sqlite))]
struct OutboxRow {
    id: i64,
    anomaly_id: Id,
    event: String,
    attempts: i32,
    created_at: DateTime<Utc>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = anomaly_detection_config, check_for_backend(Sqlite))]
struct ConfigRow {
    config_key: String,
    config_value: Option<JsonText>,
    description: Option<String>,
}

impl From<ConfigRow> for StoredConfigEntry {
    fn from(r: ConfigRow) -> Self {
        StoredConfigEntry {
            key: r.config_key,
            value: r.config_value.map(|v| v.0),
            description: r.description,
        }
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = config_history, check_for_backend(Sqlite))]
struct HistoryRow {
    config_key: String,
    old_value: Option<JsonText>,
    new_value: Option<JsonText>,
    changed_by: String,
    changed_at: DateTime<Utc>,
}

async fn config_rows(conn: &mut Conn) -> Result<Vec<StoredConfigEntry>> {
    let rows: Vec<ConfigRow> = anomaly_detection_config::table
        .select(ConfigRow::as_select())
        .order(anomaly_detection_config::config_key)
        .load(conn)
        .await
        .map_err(db_error)?;
    Ok(rows.into_iter().map(StoredConfigEntry::from).collect())
}

/// The anomaly list's query: filters, the cursor, newest first, at most `limit` rows.
fn list_query(
    filter: &AnomalyFilter,
    cursor: Option<Cursor>,
    limit: i64,
) -> trace_anomalies::BoxedQuery<
    'static,
    Sqlite,
    diesel::dsl::SqlTypeOf<diesel::dsl::AsSelect<AnomalyRow, Sqlite>>,
> {
    use schema::trace_anomalies::dsl as t;
    let mut query = t::trace_anomalies
        .select(AnomalyRow::as_select())
        .into_boxed();
    if let Some(v) = filter.anomaly_type {
        query = query.filter(t::anomaly_type.eq(v.as_str()));
    }
    if let Some(v) = &filter.anomaly_subtype {
        query = query.filter(t::anomaly_subtype.eq(v.clone()));
    }
    if let Some(v) = filter.severity {
        query = query.filter(t::severity.eq(v.as_str()));
    }
    if let Some(v) = filter.min_severity {
        query = query.filter(t::severity.eq_any(severities_at_least(v)));
    }
    match filter.resolved {
        Some(true) => query = query.filter(t::resolved.eq(true)),
        // Written as in the partial indexes' predicates, so that SQLite can use them.
        Some(false) => query = query.filter(diesel::dsl::sql::<Bool>("resolved IS NOT 1")),
        None => {}
    }
    if let Some(v) = &filter.service {
        query = query.filter(t::service_name.eq(v.clone()));
    }
    if let Some(v) = &filter.operation {
        query = query.filter(t::operation.eq(v.clone()));
    }
    if let Some(v) = &filter.peer_service {
        query = query.filter(t::peer_service.eq(v.clone()));
    }
    if let Some(v) = filter.since {
        query = query.filter(t::detected_at.ge(Ts(v)));
    }
    if let Some(v) = filter.until {
        query = query.filter(t::detected_at.lt(Ts(v)));
    }
    if let Some(text) = &filter.text {
        let pattern = format!("%{}%", escape_like(&text.to_lowercase()));
        query = query.filter(tracewatch_lower(t::description).like(pattern).escape('\\'));
    }
    if let Some(c) = cursor {
        query = query.filter(
            t::detected_at
                .lt(Ts(c.detected_at))
                .or(t::detected_at.eq(Ts(c.detected_at)).and(t::id.lt(Id(c.id)))),
        );
    }
    query
        .filter(t::detected_at.is_not_null())
        .order((t::detected_at.desc(), t::id.desc()))
        .limit(limit)
}

impl Repository for SqliteStore {
    async fn insert_anomalies(&self, batch: &[NewAnomaly]) -> Result<Vec<InsertOutcome>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let batch = batch.to_vec();
        self.write(async move |conn: &mut Conn| insert::insert_batch(conn, &batch).await)
            .await
    }

    async fn list_anomalies(
        &self,
        filter: &AnomalyFilter,
        limit: u32,
        cursor: Option<Cursor>,
    ) -> Result<Page<AnomalyRecord>> {
        let limit = limit.clamp(1, MAX_PAGE);
        let query = list_query(filter, cursor, i64::from(limit) + 1);
        let rows: Vec<AnomalyRow> = self
            .run(async move |conn: &mut Conn| query.load(conn).await.map_err(db_error))
            .await?;
        Ok(page(
            rows.into_iter().map(AnomalyRecord::from).collect(),
            limit,
        ))
    }

    async fn get_anomaly(&self, id: Uuid) -> Result<AnomalyRecord> {
        self.run(async move |conn: &mut Conn| {
            trace_anomalies::table
                .find(Id(id))
                .select(AnomalyRow::as_select())
                .first(conn)
                .await
                .optional()
                .map_err(db_error)
        })
        .await?
        .map(AnomalyRecord::from)
        .ok_or_else(|| StoreError::not_found(format!("anomaly {id}")))
    }

    async fn resolve_anomaly(
        &self,
        id: Uuid,
        notes: Option<&str>,
        by: &str,
    ) -> Result<AnomalyRecord> {
        let notes = notes.map(str::to_owned);
        let by = by.to_owned();
        self.write(async move |conn: &mut Conn| {
            let current: AnomalyRow = trace_anomalies::table
                .find(Id(id))
                .select(AnomalyRow::as_select())
                .first(conn)
                .await
                .optional()
                .map_err(db_error)?
                .ok_or_else(|| StoreError::not_found(format!("anomaly {id}")))?;
            if current.resolved == Some(true) {
                return Err(StoreError::Conflict(format!(
                    "anomaly {id} is already resolved{}",
                    current
                        .resolved_by
                        .map(|b| format!(" by {b}"))
                        .unwrap_or_default()
                )));
            }
            let now = Ts::now();
            let row: AnomalyRow = diesel::update(trace_anomalies::table.find(Id(id)))
                .set((
                    trace_anomalies::resolved.eq(true),
                    trace_anomalies::resolution_notes.eq(notes),
                    trace_anomalies::resolved_by.eq(by),
                    trace_anomalies::resolved_at.eq(now),
                ))
                .returning(AnomalyRow::as_returning())
                .get_result(conn)
                .await
                .map_err(db_error)?;
            let alerted: i64 = alert_outbox::table
                .filter(alert_outbox::anomaly_id.eq(Id(id)))
                .count()
                .get_result(conn)
                .await
                .map_err(db_error)?;
            if alerted > 0 {
                diesel::insert_into(alert_outbox::table)
                    .values((
                        alert_outbox::anomaly_id.eq(Id(id)),
                        alert_outbox::event.eq("resolved"),
                        alert_outbox::created_at.eq(now),
                    ))
                    .execute(conn)
                    .await
                    .map_err(db_error)?;
            }
            Ok(AnomalyRecord::from(row))
        })
        .await
    }

    async fn config_entries(&self) -> Result<Vec<StoredConfigEntry>> {
        self.run(async move |conn: &mut Conn| config_rows(conn).await)
            .await
    }

    async fn load_config(&self) -> Result<DetectionConfig> {
        let entries = self.config_entries().await?;
        config_from_entries(&entries)
    }

    async fn update_config(&self, update: &Value, by: &str) -> Result<DetectionConfig> {
        let update = update
            .as_object()
            .ok_or(detect_core::ConfigError::NotAnObject)?
            .clone();
        let by = by.to_owned();
        self.write(async move |conn: &mut Conn| {
            let entries = config_rows(conn).await?;
            let current = config_from_entries(&entries)?;
            let next = current.merged(&Value::Object(update.clone()))?;
            let now = Ts::now();
            for entry in next.to_entries() {
                let Some(new_value) = update.get(entry.key).map(|_| entry.value.clone()) else {
                    continue;
                };
                let old_value = entries
                    .iter()
                    .find(|e| e.key == entry.key)
                    .and_then(|e| e.value.clone());
                if old_value.as_ref() == Some(&new_value) {
                    continue;
                }
                diesel::insert_into(anomaly_detection_config::table)
                    .values((
                        anomaly_detection_config::id.eq(Id(Uuid::new_v4())),
                        anomaly_detection_config::config_key.eq(entry.key),
                        anomaly_detection_config::config_value.eq(JsonText(new_value.clone())),
                        anomaly_detection_config::description.eq(entry.description),
                    ))
                    .on_conflict(anomaly_detection_config::config_key)
                    .do_update()
                    .set(anomaly_detection_config::config_value.eq(JsonText(new_value.clone())))
                    .execute(conn)
                    .await
                    .map_err(db_error)?;
                diesel::insert_into(config_history::table)
                    .values((
                        config_history::config_key.eq(entry.key),
                        config_history::old_value.eq(old_value.map(JsonText)),
                        config_history::new_value.eq(JsonText(new_value)),
                        config_history::changed_by.eq(&by),
                        config_history::changed_at.eq(now),
                    ))
                    .execute(conn)
                    .await
                    .map_err(db_error)?;
            }
            Ok(next)
        })
        .await
    }

    async fn config_history(&self, limit: u32) -> Result<Vec<ConfigChange>> {
        let limit = i64::from(limit.clamp(1, MAX_PAGE));
        let rows: Vec<HistoryRow> = self
            .run(async move |conn: &mut Conn| {
                config_history::table
                    .select(HistoryRow::as_select())
                    .order((config_history::changed_at.desc(), config_history::id.desc()))
                    .limit(limit)
                    .load(conn)
                    .await
                    .map_err(db_error)
            })
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| ConfigChange {
                config_key: r.config_key,
                old_value: r.old_value.map(|v| v.0),
                new_value: r.new_value.map(|v| v.0),
                changed_by: r.changed_by,
                changed_at: r.changed_at,
            })
            .collect())
    }

    async fn save_baselines(&self, states: &[(String, Value)]) -> Result<()> {
        let states = states.to_vec();
        self.write(async move |conn: &mut Conn| {
            let now = Ts::now();
            for (key, state) in states {
                let state = JsonText(state);
                diesel::insert_into(detector_baselines::table)
                    .values((
                        detector_baselines::baseline_key.eq(&key),
                        detector_baselines::state.eq(&state),
                        detector_baselines::updated_at.eq(now),
                    ))
                    .on_conflict(detector_baselines::baseline_key)
                    .do_update()
                    .set((
                        detector_baselines::state.eq(&state),
                        detector_baselines::updated_at.eq(now),
                    ))
                    .execute(conn)
                    .await
                    .map_err(db_error)?;
            }
            Ok(())
        })
        .await
    }

    async fn load_baseline(&self, key: &str) -> Result<Option<Value>> {
        let key = key.to_owned();
        let state: Option<JsonText> = self
            .run(async move |conn: &mut Conn| {
                detector_baselines::table
                    .find(key)
                    .select(detector_baselines::state)
                    .first(conn)
                    .await
                    .optional()
                    .map_err(db_error)
            })
            .await?;
        Ok(state.map(|s| s.0))
    }

    async fn create_run(
        &self,
        trigger: RunTrigger,
        window: Option<(DateTime<Utc>, DateTime<Utc>)>,
    ) -> Result<RunRecord> {
        check_window(window)?;
        let row: RunRow = self
            .run(async move |conn: &mut Conn| {
                diesel::insert_into(detection_runs::table)
                    .values((
                        detection_runs::id.eq(Id(Uuid::new_v4())),
                        detection_runs::trigger.eq(trigger.as_str()),
                        detection_runs::window_start.eq(window.map(|w| Ts(w.0))),
                        detection_runs::window_end.eq(window.map(|w| Ts(w.1))),
                        detection_runs::requested_at.eq(Ts::now()),
                    ))
                    .returning(RunRow::as_returning())
                    .get_result(conn)
                    .await
                    .map_err(db_error)
            })
            .await?;
        row.try_into()
    }

    async fn start_stream_run(
        &self,
        stream: &str,
        worker: &str,
        (start, end): (DateTime<Utc>, DateTime<Utc>),
    ) -> Result<RunRecord> {
        check_window(Some((start, end)))?;
        let (stream, worker) = (stream.to_owned(), worker.to_owned());
        let row: RunRow = self
            .write(async move |conn: &mut Conn| {
                diesel::update(
                    detection_runs::table
                        .filter(detection_runs::stream.eq(&stream))
                        .filter(detection_runs::status.eq(RunStatus::Running.as_str())),
                )
                .set((
                    detection_runs::status.eq(RunStatus::Failed.as_str()),
                    detection_runs::error.eq(ABANDONED),
                    detection_runs::finished_at.eq(Ts::now()),
                ))
                .execute(conn)
                .await
                .map_err(db_error)?;
                diesel::insert_into(detection_runs::table)
                    .values((
                        detection_runs::id.eq(Id(Uuid::new_v4())),
                        detection_runs::trigger.eq(RunTrigger::Scheduled.as_str()),
                        detection_runs::window_start.eq(Some(Ts(start))),
                        detection_runs::window_end.eq(Some(Ts(end))),
                        detection_runs::status.eq(RunStatus::Running.as_str()),
                        detection_runs::worker.eq(&worker),
                        detection_runs::stream.eq(&stream),
                        detection_runs::requested_at.eq(Ts::now()),
                        detection_runs::started_at.eq(Some(Ts::now())),
                    ))
                    .returning(RunRow::as_returning())
                    .get_result(conn)
                    .await
                    .map_err(db_error)
            })
            .await?;
        row.try_into()
    }

    async fn claim_pending_run(&self, worker: &str) -> Result<Option<RunRecord>> {
        let worker = worker.to_owned();
        let row: Option<RunRow> = self
            .write(async move |conn: &mut Conn| {
                let oldest: Option<Id> = detection_runs::table
                    .filter(detection_runs::status.eq(RunStatus::Pending.as_str()))
                    .filter(detection_runs::trigger.eq(RunTrigger::Manual.as_str()))
                    .order((detection_runs::requested_at, detection_runs::id))
                    .select(detection_runs::id)
                    .first(conn)
                    .await
                    .optional()
                    .map_err(db_error)?;
                let Some(id) = oldest else {
                    return Ok(None);
                };
                diesel::update(detection_runs::table.find(id))
                    .set((
                        detection_runs::status.eq(RunStatus::Running.as_str()),
                        detection_runs::worker.eq(worker),
                        detection_runs::started_at.eq(Ts::now()),
                    ))
                    .returning(RunRow::as_returning())
                    .get_result(conn)
                    .await
                    .map(Some)
                    .map_err(db_error)
            })
            .await?;
        row.map(RunRecord::try_from).transpose()
    }

    async fn finish_run(&self, id: Uuid, outcome: &RunOutcome) -> Result<RunRecord> {
        let outcome = outcome.clone();
        let row: Option<RunRow> = self
            .run(async move |conn: &mut Conn| {
                diesel::update(detection_runs::table.find(Id(id)))
                    .set((
                        detection_runs::status.eq(outcome.status.as_str()),
                        detection_runs::spans.eq(outcome.spans),
                        detection_runs::anomalies.eq(outcome.anomalies),
                        detection_runs::error.eq(outcome.error),
                        detection_runs::count_source.eq(outcome.count_source),
                        detection_runs::finished_at.eq(Ts::now()),
                    ))
                    .returning(RunRow::as_returning())
                    .get_result(conn)
                    .await
                    .optional()
                    .map_err(db_error)
            })
            .await?;
        row.ok_or_else(|| StoreError::not_found(format!("run {id}")))?
            .try_into()
    }

    async fn get_run(&self, id: Uuid) -> Result<RunRecord> {
        let row: Option<RunRow> = self
            .run(async move |conn: &mut Conn| {
                detection_runs::table
                    .find(Id(id))
                    .select(RunRow::as_select())
                    .first(conn)
                    .await
                    .optional()
                    .map_err(db_error)
            })
            .await?;
        row.ok_or_else(|| StoreError::not_found(format!("run {id}")))?
            .try_into()
    }

    async fn recent_runs(&self, limit: u32) -> Result<Vec<RunRecord>> {
        let rows: Vec<RunRow> = self
            .run(async move |conn: &mut Conn| {
                detection_runs::table
                    .order((
                        detection_runs::requested_at.desc(),
                        detection_runs::id.desc(),
                    ))
                    .limit(i64::from(limit.min(MAX_PAGE)))
                    .select(RunRow::as_select())
                    .load(conn)
                    .await
                    .map_err(db_error)
            })
            .await?;
        rows.into_iter().map(RunRecord::try_from).collect()
    }

    async fn try_acquire_lease(&self, key: &str, holder: &str, ttl: Duration) -> Result<bool> {
        let key = key.to_owned();
        let holder = holder.to_owned();
        self.write(async move |conn: &mut Conn| {
            let now = Utc::now();
            let expires_at = Ts(later(now, ttl));
            let current: Option<(String, DateTime<Utc>)> = work_leases::table
                .find(&key)
                .select((work_leases::holder, work_leases::expires_at))
                .first(conn)
                .await
                .optional()
                .map_err(db_error)?;
            match current {
                None => {
                    diesel::insert_into(work_leases::table)
                        .values((
                            work_leases::lease_key.eq(&key),
                            work_leases::holder.eq(&holder),
                            work_leases::expires_at.eq(expires_at),
                            work_leases::acquired_at.eq(Ts(now)),
                        ))
                        .execute(conn)
                        .await
                        .map_err(db_error)?;
                }
                // The holder renews: the lease keeps the time it was first taken.
                Some((current, _)) if current == holder => {
                    diesel::update(work_leases::table.find(&key))
                        .set(work_leases::expires_at.eq(expires_at))
                        .execute(conn)
                        .await
                        .map_err(db_error)?;
                }
                Some((_, expired)) if expired <= now => {
                    diesel::update(work_leases::table.find(&key))
                        .set((
                            work_leases::holder.eq(&holder),
                            work_leases::expires_at.eq(expires_at),
                            work_leases::acquired_at.eq(Ts(now)),
                        ))
                        .execute(conn)
                        .await
                        .map_err(db_error)?;
                }
                Some(_) => return Ok(false),
            }
            Ok(true)
        })
        .await
    }

    async fn release_lease(&self, key: &str, holder: &str) -> Result<()> {
        let key = key.to_owned();
        let holder = holder.to_owned();
        self.run(async move |conn: &mut Conn| {
            diesel::delete(
                work_leases::table
                    .filter(work_leases::lease_key.eq(key))
                    .filter(work_leases::holder.eq(holder)),
            )
            .execute(conn)
            .await
            .map_err(db_error)?;
            Ok(())
        })
        .await
    }

    async fn get_cursor(&self, key: &str) -> Result<Option<DateTime<Utc>>> {
        let key = key.to_owned();
        self.run(async move |conn: &mut Conn| {
            work_cursors::table
                .find(key)
                .select(work_cursors::position)
                .first(conn)
                .await
                .optional()
                .map_err(db_error)
        })
        .await
    }

    async fn advance_cursor(
        &self,
        key: &str,
        expected: Option<DateTime<Utc>>,
        to: DateTime<Utc>,
    ) -> Result<bool> {
        let key = key.to_owned();
        let moved = self
            .run(async move |conn: &mut Conn| {
                let now = Ts::now();
                match expected {
                    None => diesel::insert_into(work_cursors::table)
                        .values((
                            work_cursors::cursor_key.eq(&key),
                            work_cursors::position.eq(Ts(to)),
                            work_cursors::updated_at.eq(now),
                        ))
                        .on_conflict_do_nothing()
                        .execute(conn)
                        .await
                        .map_err(db_error),
                    Some(from) => diesel::update(
                        work_cursors::table
                            .filter(work_cursors::cursor_key.eq(&key))
                            .filter(work_cursors::position.eq(Ts(from))),
                    )
                    .set((
                        work_cursors::position.eq(Ts(to)),
                        work_cursors::updated_at.eq(now),
                    ))
                    .execute(conn)
                    .await
                    .map_err(db_error),
                }
            })
            .await?;
        Ok(moved == 1)
    }

    async fn claim_outbox(
        &self,
        worker: &str,
        limit: u32,
        claim_for: Duration,
    ) -> Result<Vec<OutboxItem>> {
        let worker = worker.to_owned();
        let limit = i64::from(limit.clamp(1, MAX_PAGE));
        let rows: Vec<OutboxRow> = self
            .write(async move |conn: &mut Conn| {
                let now = Utc::now();
                let free: Vec<i64> = alert_outbox::table
                    .filter(alert_outbox::sent_at.is_null())
                    .filter(
                        alert_outbox::claimed_until
                            .is_null()
                            .or(alert_outbox::claimed_until.le(Ts(now))),
                    )
                    .order(alert_outbox::id)
                    .limit(limit)
                    .select(alert_outbox::id)
                    .load(conn)
                    .await
                    .map_err(db_error)?;
                if free.is_empty() {
                    return Ok(Vec::new());
                }
                diesel::update(alert_outbox::table.filter(alert_outbox::id.eq_any(free)))
                    .set((
                        alert_outbox::claimed_by.eq(worker),
                        alert_outbox::claimed_until.eq(Ts(later(now, claim_for))),
                    ))
                    .returning(OutboxRow::as_returning())
                    .get_results(conn)
                    .await
                    .map_err(db_error)
            })
            .await?;
        let mut items: Vec<OutboxItem> = rows
            .into_iter()
            .map(|r| OutboxItem {
                id: r.id,
                anomaly_id: r.anomaly_id.0,
                event: r.event,
                attempts: r.attempts,
                created_at: r.created_at,
            })
            .collect();
        items.sort_by_key(|i| i.id);
        Ok(items)
    }

    async fn ack_outbox(&self, id: i64, worker: &str) -> Result<bool> {
        let worker = worker.to_owned();
        let n = self
            .run(async move |conn: &mut Conn| {
                diesel::update(
                    alert_outbox::table
                        .find(id)
                        .filter(alert_outbox::claimed_by.eq(worker))
                        .filter(alert_outbox::sent_at.is_null()),
                )
                .set((
                    alert_outbox::sent_at.eq(Ts::now()),
                    alert_outbox::claimed_until.eq(None::<Ts>),
                ))
                .execute(conn)
                .await
                .map_err(db_error)
            })
            .await?;
        Ok(n == 1)
    }

    async fn fail_outbox(
        &self,
        id: i64,
        worker: &str,
        error: &str,
        retry_after: Duration,
    ) -> Result<()> {
        let (worker, error) = (worker.to_owned(), error.to_owned());
        self.run(async move |conn: &mut Conn| {
            diesel::update(
                alert_outbox::table
                    .find(id)
                    .filter(alert_outbox::claimed_by.eq(worker))
                    .filter(alert_outbox::sent_at.is_null()),
            )
            .set((
                alert_outbox::attempts.eq(alert_outbox::attempts + 1),
                alert_outbox::last_error.eq(error),
                alert_outbox::claimed_until.eq(Some(Ts(later(Utc::now(), retry_after)))),
                alert_outbox::claimed_by.eq(None::<String>),
            ))
            .execute(conn)
            .await
            .map_err(db_error)
        })
        .await?;
        Ok(())
    }

    async fn anomaly_summary(&self, since: DateTime<Utc>) -> Result<AnomalySummary> {
        #[derive(QueryableByName)]
        struct BySeverity {
            #[diesel(sql_type = diesel::sql_types::Text)]
            severity: String,
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        #[derive(QueryableByName)]
        struct ByHour {
            /// `YYYY-MM-DD HH` of the fixed-width UTC text timestamps.
            #[diesel(sql_type = diesel::sql_types::Text)]
            hour: String,
            #[diesel(sql_type = diesel::sql_types::Text)]
            anomaly_type: String,
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let (open, hourly) = self
            .run(async move |conn: &mut Conn| {
                let open: Vec<BySeverity> = diesel::sql_query(
                    "SELECT severity, COUNT(*) AS n FROM trace_anomalies
                     WHERE resolved IS NOT 1 GROUP BY severity",
                )
                .load(conn)
                .await
                .map_err(db_error)?;
                let hourly: Vec<ByHour> = diesel::sql_query(
                    "SELECT substr(detected_at, 1, 13) AS hour, anomaly_type, COUNT(*) AS n
                     FROM trace_anomalies WHERE detected_at >= ? GROUP BY 1, 2 ORDER BY 1, 2",
                )
                .bind::<diesel::sql_types::Text, _>(Ts(since).text())
                .load(conn)
                .await
                .map_err(db_error)?;
                Ok((open, hourly))
            })
            .await?;
        let hourly = hourly
            .into_iter()
            .filter_map(|r| {
                let hour = chrono::NaiveDateTime::parse_from_str(
                    &format!("{}:00:00", r.hour),
                    "%Y-%m-%d %H:%M:%S",
                )
                .ok()?
                .and_utc();
                Some((hour, r.anomaly_type, r.n))
            })
            .collect();
        Ok(AnomalySummary {
            open_by_severity: open.into_iter().map(|r| (r.severity, r.n)).collect(),
            hourly,
        })
    }

    async fn quiet_unresolved(&self, quiet_since: DateTime<Utc>, limit: u32) -> Result<Vec<Uuid>> {
        let rows: Vec<Id> = self
            .run(async move |conn: &mut Conn| {
                trace_anomalies::table
                    .filter(
                        trace_anomalies::resolved
                            .is_null()
                            .or(trace_anomalies::resolved.eq(false)),
                    )
                    .filter(
                        trace_anomalies::last_seen_at.lt(Ts(quiet_since)).or(
                            trace_anomalies::last_seen_at
                                .is_null()
                                .and(trace_anomalies::detected_at.lt(Ts(quiet_since))),
                        ),
                    )
                    .order(trace_anomalies::last_seen_at.asc())
                    .limit(i64::from(limit.clamp(1, MAX_PAGE)))
                    .select(trace_anomalies::id)
                    .load(conn)
                    .await
                    .map_err(db_error)
            })
            .await?;
        Ok(rows.into_iter().map(|id| id.0).collect())
    }
}
