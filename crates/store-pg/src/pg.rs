//! The PostgreSQL backend: diesel-async over a bb8 pool; migrations embedded and applied at connect.

mod insert;
mod schema;

use crate::error::{Result, StoreError};
use crate::model::{
    AnomalyFilter, AnomalyRecord, AnomalySummary, ConfigChange, Cursor, InsertOutcome, MAX_PAGE,
    NewAnomaly, OutboxItem, Page, RunOutcome, RunRecord, RunStatus, RunTrigger,
};
use crate::repository::{Repository, StoredConfigEntry};
use crate::shared::{
    ABANDONED, check_window, config_from_entries, escape_like, page, severities_at_least,
};
use chrono::{DateTime, Utc};
use detect_core::DetectionConfig;
use diesel::prelude::*;
use diesel::sql_types::Text;
use diesel_async::pooled_connection::AsyncDieselConnectionManager;
use diesel_async::pooled_connection::bb8::{Pool, PooledConnection};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use schema::{
    alert_outbox, anomaly_detection_config, config_history, detection_runs, detector_baselines,
    trace_anomalies, work_cursors, work_leases,
};
use serde_json::Value;
use std::time::Duration;
use uuid::Uuid;

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");

/// Connections kept by the pool.
const POOL_SIZE: u32 = 10;
/// How long a caller waits for a connection before the store is reported unavailable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct PgStore {
    pool: Pool<AsyncPgConnection>,
}

impl PgStore {
    /// Connects, applies pending migrations and builds the pool. The URL is never part of an error.
    pub async fn connect(database_url: &str) -> Result<Self> {
        let conn = AsyncPgConnection::establish(database_url)
            .await
            .map_err(connection_error)?;
        run_migrations(conn).await?;
        let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new(database_url);
        let pool = Pool::builder()
            .max_size(POOL_SIZE)
            .connection_timeout(CONNECT_TIMEOUT)
            .build(manager)
            .await
            .map_err(|e| {
                StoreError::Unavailable(format!("cannot build the connection pool: {e}"))
            })?;
        Ok(PgStore { pool })
    }

    async fn conn(&self) -> Result<PooledConnection<'_, AsyncPgConnection>> {
        self.pool
            .get()
            .await
            .map_err(|e| StoreError::Unavailable(format!("no database connection: {e}")))
    }
}

/// Applies pending migrations under an advisory lock, so that instances starting together do not
/// race. diesel's migration harness is synchronous: it runs on a blocking thread through
/// diesel-async's connection wrapper.
async fn run_migrations(conn: AsyncPgConnection) -> Result<()> {
    use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
    let mut wrapper: AsyncConnectionWrapper<AsyncPgConnection> = AsyncConnectionWrapper::from(conn);
    tokio::task::spawn_blocking(move || {
        diesel::RunQueryDsl::execute(
            diesel::sql_query("SELECT pg_advisory_lock(727377)"),
            &mut wrapper,
        )?;
        let applied = wrapper
            .run_pending_migrations(MIGRATIONS)
            .map(|_| ())
            .map_err(|e| StoreError::Database(format!("migrations failed: {e}")));
        diesel::RunQueryDsl::execute(
            diesel::sql_query("SELECT pg_advisory_unlock(727377)"),
            &mut wrapper,
        )?;
        applied
    })
    .await
    .map_err(|e| StoreError::Database(format!("migrations did not finish: {e}")))?
}

fn connection_error(e: diesel::ConnectionError) -> StoreError {
    // ConnectionError's text comes from the server or the socket, never from the URL.
    StoreError::Unavailable(format!("cannot connect to PostgreSQL: {e}"))
}

fn db_error(e: diesel::result::Error) -> StoreError {
    StoreError::from(e)
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = trace_anomalies, check_for_backend(diesel::pg::Pg))]
struct AnomalyRow {
    id: Uuid,
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
    details: Option<Value>,
    peer_service: Option<String>,
}

impl From<AnomalyRow> for AnomalyRecord {
    fn from(r: AnomalyRow) -> Self {
        AnomalyRecord {
            id: r.id,
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
            details: r.details,
            peer_service: r.peer_service,
        }
    }
}

#[derive(Queryable, QueryableByName, Selectable)]
#[diesel(table_name = detection_runs, check_for_backend(diesel::pg::Pg))]
struct RunRow {
    id: Uuid,
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
            id: r.id,
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

impl Repository for PgStore {
    async fn insert_anomalies(&self, batch: &[NewAnomaly]) -> Result<Vec<InsertOutcome>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.conn().await?;
        conn.transaction::<_, StoreError, _>(async move |conn| {
            insert::insert_batch(conn, batch).await
        })
        .await
    }

    async fn list_anomalies(
        &self,
        filter: &AnomalyFilter,
        limit: u32,
        cursor: Option<Cursor>,
    ) -> Result<Page<AnomalyRecord>> {
        use schema::trace_anomalies::dsl as t;
        let limit = limit.clamp(1, MAX_PAGE);
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
            // Written as in the partial indexes' predicates, so that the planner can use them.
            Some(false) => {
                query = query.filter(diesel::dsl::sql::<diesel::sql_types::Bool>(
                    "resolved IS NOT TRUE",
                ))
            }
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
            query = query.filter(t::detected_at.ge(v));
        }
        if let Some(v) = filter.until {
            query = query.filter(t::detected_at.lt(v));
        }
        if let Some(text) = &filter.text {
            query = query.filter(t::description.ilike(format!("%{}%", escape_like(text))));
        }
        if let Some(c) = cursor {
            query = query.filter(
                t::detected_at
                    .lt(c.detected_at)
                    .or(t::detected_at.eq(c.detected_at).and(t::id.lt(c.id))),
            );
        }
        let mut conn = self.conn().await?;
        let rows: Vec<AnomalyRow> = query
            .filter(t::detected_at.is_not_null())
            .order((t::detected_at.desc(), t::id.desc()))
            .limit(i64::from(limit) + 1)
            .load(&mut conn)
            .await
            .map_err(db_error)?;
        Ok(page(
            rows.into_iter().map(AnomalyRecord::from).collect(),
            limit,
        ))
    }

    async fn get_anomaly(&self, id: Uuid) -> Result<AnomalyRecord> {
        let mut conn = self.conn().await?;
        trace_anomalies::table
            .find(id)
            .select(AnomalyRow::as_select())
            .first(&mut conn)
            .await
            .optional()
            .map_err(db_error)?
            .map(AnomalyRecord::from)
            .ok_or_else(|| StoreError::not_found(format!("anomaly {id}")))
    }

    async fn resolve_anomaly(
        &self,
        id: Uuid,
        notes: Option<&str>,
        by: &str,
    ) -> Result<AnomalyRecord> {
        let mut conn = self.conn().await?;
        conn.transaction::<_, StoreError, _>(async move |conn| {
            let current: AnomalyRow = trace_anomalies::table
                .find(id)
                .select(AnomalyRow::as_select())
                .for_update()
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
            let row: AnomalyRow = diesel::update(trace_anomalies::table.find(id))
                .set((
                    trace_anomalies::resolved.eq(true),
                    trace_anomalies::resolution_notes.eq(notes),
                    trace_anomalies::resolved_by.eq(by),
                    trace_anomalies::resolved_at.eq(diesel::dsl::now),
                ))
                .returning(AnomalyRow::as_returning())
                .get_result(conn)
                .await
                .map_err(db_error)?;
            let alerted: i64 = alert_outbox::table
                .filter(alert_outbox::anomaly_id.eq(id))
                .count()
                .get_result(conn)
                .await
                .map_err(db_error)?;
            if alerted > 0 {
                diesel::insert_into(alert_outbox::table)
                    .values((
                        alert_outbox::anomaly_id.eq(id),
                        alert_outbox::event.eq("resolved"),
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
        let mut conn = self.conn().await?;
        let rows: Vec<(String, Option<Value>, Option<String>)> = anomaly_detection_config::table
            .select((
                anomaly_detection_config::config_key,
                anomaly_detection_config::config_value,
                anomaly_detection_config::description,
            ))
            .order(anomaly_detection_config::config_key)
            .load(&mut conn)
            .await
            .map_err(db_error)?;
        Ok(rows
            .into_iter()
            .map(|(key, value, description)| StoredConfigEntry {
                key,
                value,
                description,
            })
            .collect())
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
        let mut conn = self.conn().await?;
        conn.transaction::<_, StoreError, _>(async move |conn| {
            {
                // Lock the table's rows so that two updates are applied one after the other.
                let rows: Vec<(String, Option<Value>, Option<String>)> =
                    anomaly_detection_config::table
                        .select((
                            anomaly_detection_config::config_key,
                            anomaly_detection_config::config_value,
                            anomaly_detection_config::description,
                        ))
                        .for_update()
                        .load(conn)
                        .await
                        .map_err(db_error)?;
                let entries: Vec<StoredConfigEntry> = rows
                    .into_iter()
                    .map(|(key, value, description)| StoredConfigEntry {
                        key,
                        value,
                        description,
                    })
                    .collect();
                let current = config_from_entries(&entries)?;
                let next = current.merged(&Value::Object(update.clone()))?;
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
                            anomaly_detection_config::config_key.eq(entry.key),
                            anomaly_detection_config::config_value.eq(&new_value),
                            anomaly_detection_config::description.eq(entry.description),
                        ))
                        .on_conflict(anomaly_detection_config::config_key)
                        .do_update()
                        .set(anomaly_detection_config::config_value.eq(&new_value))
                        .execute(conn)
                        .await
                        .map_err(db_error)?;
                    diesel::insert_into(config_history::table)
                        .values((
                            config_history::config_key.eq(entry.key),
                            config_history::old_value.eq(old_value),
                            config_history::new_value.eq(Some(new_value)),
                            config_history::changed_by.eq(by),
                        ))
                        .execute(conn)
                        .await
                        .map_err(db_error)?;
                }
                Ok(next)
            }
        })
        .await
    }

    async fn config_history(&self, limit: u32) -> Result<Vec<ConfigChange>> {
        let mut conn = self.conn().await?;
        let rows: Vec<HistoryRow> = config_history::table
            .select((
                config_history::config_key,
                config_history::old_value,
                config_history::new_value,
                config_history::changed_by,
                config_history::changed_at,
            ))
            .order((config_history::changed_at.desc(), config_history::id.desc()))
            .limit(i64::from(limit.clamp(1, MAX_PAGE)))
            .load(&mut conn)
            .await
            .map_err(db_error)?;
        Ok(rows
            .into_iter()
            .map(
                |(config_key, old_value, new_value, changed_by, changed_at)| ConfigChange {
                    config_key,
                    old_value,
                    new_value,
                    changed_by,
                    changed_at,
                },
            )
            .collect())
    }

    async fn save_baselines(&self, states: &[(String, Value)]) -> Result<()> {
        let mut conn = self.conn().await?;
        conn.transaction::<_, StoreError, _>(async move |conn| {
            for (key, state) in states {
                diesel::insert_into(detector_baselines::table)
                    .values((
                        detector_baselines::baseline_key.eq(key),
                        detector_baselines::state.eq(state),
                    ))
                    .on_conflict(detector_baselines::baseline_key)
                    .do_update()
                    .set((
                        detector_baselines::state.eq(state),
                        detector_baselines::updated_at.eq(diesel::dsl::now),
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
        let mut conn = self.conn().await?;
        detector_baselines::table
            .find(key)
            .select(detector_baselines::state)
            .first(&mut conn)
            .await
            .optional()
            .map_err(db_error)
    }

    async fn create_run(
        &self,
        trigger: RunTrigger,
        window: Option<(DateTime<Utc>, DateTime<Utc>)>,
    ) -> Result<RunRecord> {
        check_window(window)?;
        let mut conn = self.conn().await?;
        let row: RunRow = diesel::insert_into(detection_runs::table)
            .values((
                detection_runs::id.eq(Uuid::new_v4()),
                detection_runs::trigger.eq(trigger.as_str()),
                detection_runs::window_start.eq(window.map(|w| w.0)),
                detection_runs::window_end.eq(window.map(|w| w.1)),
            ))
            .returning(RunRow::as_returning())
            .get_result(&mut conn)
            .await
            .map_err(db_error)?;
        row.try_into()
    }

    async fn start_stream_run(
        &self,
        stream: &str,
        worker: &str,
        (start, end): (DateTime<Utc>, DateTime<Utc>),
    ) -> Result<RunRecord> {
        check_window(Some((start, end)))?;
        let mut conn = self.conn().await?;
        let row: RunRow = conn
            .transaction::<_, StoreError, _>(async move |conn| {
                diesel::update(
                    detection_runs::table
                        .filter(detection_runs::stream.eq(stream))
                        .filter(detection_runs::status.eq(RunStatus::Running.as_str())),
                )
                .set((
                    detection_runs::status.eq(RunStatus::Failed.as_str()),
                    detection_runs::error.eq(ABANDONED),
                    detection_runs::finished_at.eq(diesel::dsl::now),
                ))
                .execute(conn)
                .await
                .map_err(db_error)?;
                diesel::insert_into(detection_runs::table)
                    .values((
                        detection_runs::id.eq(Uuid::new_v4()),
                        detection_runs::trigger.eq(RunTrigger::Scheduled.as_str()),
                        detection_runs::window_start.eq(start),
                        detection_runs::window_end.eq(end),
                        detection_runs::status.eq(RunStatus::Running.as_str()),
                        detection_runs::worker.eq(worker),
                        detection_runs::stream.eq(stream),
                        detection_runs::started_at.eq(diesel::dsl::now),
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
        let mut conn = self.conn().await?;
        let row: Option<RunRow> = diesel::sql_query(
            "UPDATE detection_runs SET status = 'running', worker = $1, started_at = NOW()
             WHERE id = (
                 SELECT id FROM detection_runs WHERE status = 'pending' AND trigger = 'manual'
                 ORDER BY requested_at, id LIMIT 1 FOR UPDATE SKIP LOCKED
             )
             RETURNING *",
        )
        .bind::<Text, _>(worker)
        .get_result::<RunRow>(&mut conn)
        .await
        .optional()
        .map_err(db_error)?;
        row.map(RunRecord::try_from).transpose()
    }

    async fn finish_run(&self, id: Uuid, outcome: &RunOutcome) -> Result<RunRecord> {
        let mut conn = self.conn().await?;
        let row: Option<RunRow> = diesel::update(detection_runs::table.find(id))
            .set((
                detection_runs::status.eq(outcome.status.as_str()),
                detection_runs::spans.eq(outcome.spans),
                detection_runs::anomalies.eq(outcome.anomalies),
                detection_runs::error.eq(outcome.error.as_deref()),
                detection_runs::count_source.eq(outcome.count_source.as_deref()),
                detection_runs::finished_at.eq(diesel::dsl::now),
            ))
            .returning(RunRow::as_returning())
            .get_result(&mut conn)
            .await
            .optional()
            .map_err(db_error)?;
        row.ok_or_else(|| StoreError::not_found(format!("run {id}")))?
            .try_into()
    }

    async fn get_run(&self, id: Uuid) -> Result<RunRecord> {
        let mut conn = self.conn().await?;
        let row: Option<RunRow> = detection_runs::table
            .find(id)
            .select(RunRow::as_select())
            .first(&mut conn)
            .await
            .optional()
            .map_err(db_error)?;
        row.ok_or_else(|| StoreError::not_found(format!("run {id}")))?
            .try_into()
    }

    async fn recent_runs(&self, limit: u32) -> Result<Vec<RunRecord>> {
        let mut conn = self.conn().await?;
        let rows: Vec<RunRow> = detection_runs::table
            .order((
                detection_runs::requested_at.desc(),
                detection_runs::id.desc(),
            ))
            .limit(i64::from(limit.min(MAX_PAGE)))
            .select(RunRow::as_select())
            .load(&mut conn)
            .await
            .map_err(db_error)?;
        rows.into_iter().map(RunRecord::try_from).collect()
    }

    async fn try_acquire_lease(&self, key: &str, holder: &str, ttl: Duration) -> Result<bool> {
        let mut conn = self.conn().await?;
        let ttl_micros = i64::try_from(ttl.as_micros()).unwrap_or(i64::MAX);
        let taken = diesel::sql_query(
            "INSERT INTO work_leases (lease_key, holder, expires_at, acquired_at)
             VALUES ($1, $2, NOW() + make_interval(secs => $3::float8 / 1e6), NOW())
             ON CONFLICT (lease_key) DO UPDATE SET
                 holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at,
                 acquired_at = CASE WHEN work_leases.holder = EXCLUDED.holder
                                    THEN work_leases.acquired_at ELSE NOW() END
             WHERE work_leases.holder = EXCLUDED.holder OR work_leases.expires_at <= NOW()",
        )
        .bind::<Text, _>(key)
        .bind::<Text, _>(holder)
        .bind::<diesel::sql_types::BigInt, _>(ttl_micros)
        .execute(&mut conn)
        .await
        .map_err(db_error)?;
        Ok(taken == 1)
    }

    async fn release_lease(&self, key: &str, holder: &str) -> Result<()> {
        let mut conn = self.conn().await?;
        diesel::delete(
            work_leases::table
                .filter(work_leases::lease_key.eq(key))
                .filter(work_leases::holder.eq(holder)),
        )
        .execute(&mut conn)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn get_cursor(&self, key: &str) -> Result<Option<DateTime<Utc>>> {
        let mut conn = self.conn().await?;
        work_cursors::table
            .find(key)
            .select(work_cursors::position)
            .first(&mut conn)
            .await
            .optional()
            .map_err(db_error)
    }

    async fn advance_cursor(
        &self,
        key: &str,
        expected: Option<DateTime<Utc>>,
        to: DateTime<Utc>,
    ) -> Result<bool> {
        let mut conn = self.conn().await?;
        let moved = match expected {
            None => diesel::insert_into(work_cursors::table)
                .values((
                    work_cursors::cursor_key.eq(key),
                    work_cursors::position.eq(to),
                ))
                .on_conflict_do_nothing()
                .execute(&mut conn)
                .await
                .map_err(db_error)?,
            Some(from) => diesel::update(
                work_cursors::table
                    .filter(work_cursors::cursor_key.eq(key))
                    .filter(work_cursors::position.eq(from)),
            )
            .set((
                work_cursors::position.eq(to),
                work_cursors::updated_at.eq(diesel::dsl::now),
            ))
            .execute(&mut conn)
            .await
            .map_err(db_error)?,
        };
        Ok(moved == 1)
    }

    async fn claim_outbox(
        &self,
        worker: &str,
        limit: u32,
        claim_for: Duration,
    ) -> Result<Vec<OutboxItem>> {
        let mut conn = self.conn().await?;
        let claim_micros = i64::try_from(claim_for.as_micros()).unwrap_or(i64::MAX);
        let rows: Vec<OutboxRowByName> = diesel::sql_query(
            "UPDATE alert_outbox SET claimed_by = $1,
                 claimed_until = NOW() + make_interval(secs => $2::float8 / 1e6)
             WHERE id IN (
                 SELECT id FROM alert_outbox
                 WHERE sent_at IS NULL AND (claimed_until IS NULL OR claimed_until <= NOW())
                 ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED
             )
             RETURNING id, anomaly_id, event, attempts, created_at",
        )
        .bind::<Text, _>(worker)
        .bind::<diesel::sql_types::BigInt, _>(claim_micros)
        .bind::<diesel::sql_types::BigInt, _>(i64::from(limit.clamp(1, MAX_PAGE)))
        .load(&mut conn)
        .await
        .map_err(db_error)?;
        let mut items: Vec<OutboxItem> = rows
            .into_iter()
            .map(|r| OutboxItem {
                id: r.id,
                anomaly_id: r.anomaly_id,
                event: r.event,
                attempts: r.attempts,
                created_at: r.created_at,
            })
            .collect();
        items.sort_by_key(|i| i.id);
        Ok(items)
    }

    async fn ack_outbox(&self, id: i64, worker: &str) -> Result<bool> {
        let mut conn = self.conn().await?;
        let n = diesel::update(
            alert_outbox::table
                .find(id)
                .filter(alert_outbox::claimed_by.eq(worker))
                .filter(alert_outbox::sent_at.is_null()),
        )
        .set((
            alert_outbox::sent_at.eq(diesel::dsl::now),
            alert_outbox::claimed_until.eq(None::<DateTime<Utc>>),
        ))
        .execute(&mut conn)
        .await
        .map_err(db_error)?;
        Ok(n == 1)
    }

    async fn fail_outbox(
        &self,
        id: i64,
        worker: &str,
        error: &str,
        retry_after: Duration,
    ) -> Result<()> {
        let mut conn = self.conn().await?;
        let retry_micros = i64::try_from(retry_after.as_micros()).unwrap_or(i64::MAX);
        diesel::sql_query(
            "UPDATE alert_outbox SET attempts = attempts + 1, last_error = $3, claimed_by = NULL,
                 claimed_until = NOW() + make_interval(secs => $4::float8 / 1e6)
             WHERE id = $1 AND claimed_by = $2 AND sent_at IS NULL",
        )
        .bind::<diesel::sql_types::BigInt, _>(id)
        .bind::<Text, _>(worker)
        .bind::<Text, _>(error)
        .bind::<diesel::sql_types::BigInt, _>(retry_micros)
        .execute(&mut conn)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn anomaly_summary(&self, since: DateTime<Utc>) -> Result<AnomalySummary> {
        #[derive(QueryableByName)]
        struct BySeverity {
            #[diesel(sql_type = Text)]
            severity: String,
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        #[derive(QueryableByName)]
        struct ByHour {
            #[diesel(sql_type = diesel::sql_types::Timestamptz)]
            hour: DateTime<Utc>,
            #[diesel(sql_type = Text)]
            anomaly_type: String,
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let mut conn = self.conn().await?;
        let open: Vec<BySeverity> = diesel::sql_query(
            "SELECT severity, COUNT(*) AS n FROM trace_anomalies WHERE resolved IS NOT TRUE GROUP BY severity",
        )
        .load(&mut conn)
        .await
        .map_err(db_error)?;
        let hourly: Vec<ByHour> = diesel::sql_query(
            "SELECT date_trunc('hour', detected_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS hour,
                    anomaly_type, COUNT(*) AS n
             FROM trace_anomalies WHERE detected_at >= $1 GROUP BY 1, 2 ORDER BY 1, 2",
        )
        .bind::<diesel::sql_types::Timestamptz, _>(since)
        .load(&mut conn)
        .await
        .map_err(db_error)?;
        Ok(AnomalySummary {
            open_by_severity: open.into_iter().map(|r| (r.severity, r.n)).collect(),
            hourly: hourly
                .into_iter()
                .map(|r| (r.hour, r.anomaly_type, r.n))
                .collect(),
        })
    }

    async fn quiet_unresolved(&self, quiet_since: DateTime<Utc>, limit: u32) -> Result<Vec<Uuid>> {
        let mut conn = self.conn().await?;
        trace_anomalies::table
            .filter(trace_anomalies::resolved.is_distinct_from(true))
            .filter(
                diesel::dsl::sql::<diesel::sql_types::Bool>(
                    "COALESCE(last_seen_at, detected_at) < ",
                )
                .bind::<diesel::sql_types::Timestamptz, _>(quiet_since),
            )
            .order(trace_anomalies::last_seen_at.asc())
            .limit(i64::from(limit.clamp(1, MAX_PAGE)))
            .select(trace_anomalies::id)
            .load(&mut conn)
            .await
            .map_err(db_error)
    }
}

/// (key, old value, new value, who, when) of `config_history`.
type HistoryRow = (String, Option<Value>, Option<Value>, String, DateTime<Utc>);

#[derive(QueryableByName)]
#[diesel(table_name = alert_outbox, check_for_backend(diesel::pg::Pg))]
struct OutboxRowByName {
    id: i64,
    anomaly_id: Uuid,
    event: String,
    attempts: i32,
    created_at: DateTime<Utc>,
}
