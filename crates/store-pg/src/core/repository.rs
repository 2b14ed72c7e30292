// The repository, written once and compiled in each backend's module (see `core.rs`), where `Store`,
// `Conn`, `Db`, `insert`, `retention`, `text_matches`, `OPEN`, `HOURLY` and `LOCK_CONFIG` are that
// backend's.

use crate::clock::Clock;
use crate::error::{Result, StoreError};
use crate::incidents::{IncidentCursor, IncidentFilter, IncidentRecord, NewIncident};
use crate::live::{LiveEvent, LiveEventBounds, MAX_LIVE_EVENTS};
use crate::model::{
    AnomalyFilter, AnomalyRecord, AnomalySummary, ConfigChange, Cursor, InsertOutcome, MAX_PAGE,
    NewAnomaly, OutboxItem, Page, RunOutcome, RunRecord, RunStatus, RunTrigger,
};
use crate::fold::{bookkeeping, fold};
use crate::repository::{Repository, StoredConfigEntry};
use crate::retention::{RetentionReport, RetentionSettings};
use crate::rows::found;
use crate::schema::alert_outbox::{self, dsl as o};
use crate::schema::anomaly_detection_config::{self, dsl as c};
use crate::schema::config_history::{self, dsl as h};
use crate::schema::detection_runs::{self, dsl as r};
use crate::schema::detector_baselines::{self, dsl as b};
use crate::schema::trace_anomalies::{self, dsl as t};
use crate::schema::work_cursors::{self, dsl as w};
use crate::schema::work_leases::dsl as l;
use crate::shared::{
    ABANDONED, check_window, config_from_entries, page, severities_at_least,
};
use crate::sql_types::{AnyTime, At, Id, Json};
use chrono::{DateTime, Utc};
use detect_core::DetectionConfig;
use diesel::dsl::{AsSelect, SqlTypeOf, case_when, count_star, sql};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Text};
use diesel::upsert::excluded;
use diesel_async::RunQueryDsl;
use diesel_async::methods::{ExecuteDsl, LoadQuery};
use serde_json::Value;
use std::time::Duration;
use uuid::Uuid;

type AnomalyQuery =
    trace_anomalies::BoxedQuery<'static, Db, SqlTypeOf<AsSelect<AnomalyRecord, Db>>>;

/// The anomaly list's query: filters, the cursor, newest first, at most `limit` rows.
fn list_query(filter: &AnomalyFilter, cursor: Option<Cursor>, limit: i64) -> AnomalyQuery {
    let mut query = t::trace_anomalies
        .select(AnomalyRecord::as_select())
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
        Some(false) => query = query.filter(sql::<Bool>(OPEN)),
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
        query = query.filter(t::detected_at.ge(At(v)));
    }
    if let Some(v) = filter.until {
        query = query.filter(t::detected_at.lt(At(v)));
    }
    if let Some(text) = &filter.text {
        query = query.filter(text_matches(text));
    }
    if let Some(v) = filter.incident_id {
        query = query.filter(t::incident_id.eq(Id(v)));
    }
    if let Some(c) = cursor {
        let at = At(c.detected_at);
        let same_time_older = t::detected_at.eq(at).and(t::id.lt(Id(c.id)));
        query = query.filter(t::detected_at.lt(at).or(same_time_older));
    }
    query
        .filter(t::detected_at.is_not_null())
        .order((t::detected_at.desc(), t::id.desc()))
        .limit(limit)
}

async fn anomaly(conn: &mut Conn, id: Uuid) -> Result<AnomalyRecord> {
    let row = trace_anomalies::table
        .find(Id(id))
        .select(AnomalyRecord::as_select())
        .first(conn)
        .await
        .optional()?;
    found(row, || format!("anomaly {id}"))
}

/// Alert `id`, while `worker` holds its claim and it is unsent.
#[diesel::dsl::auto_type]
fn held(id: i64, worker: String) -> _ {
    let unsent = o::sent_at.is_null();
    o::alert_outbox
        .find(id)
        .filter(o::claimed_by.eq(worker))
        .filter(unsent)
}

async fn config_rows(conn: &mut Conn) -> Result<Vec<StoredConfigEntry>> {
    Ok(anomaly_detection_config::table
        .select(StoredConfigEntry::as_select())
        .order(anomaly_detection_config::config_key)
        .load(conn)
        .await?)
}

/// The methods that are one statement run it through these. (Each says its future is `Send`: the
/// compiler cannot see that through a generic query when it checks the trait's futures.)
impl Store {
    /// The rows `query` returns.
    fn load<U: Send + 'static>(
        &self,
        query: impl LoadQuery<'static, Conn, U> + Send + 'static,
    ) -> impl Future<Output = Result<Vec<U>>> + Send {
        self.run(async move |conn: &mut Conn| Ok(query.load(conn).await?))
    }

    /// The row `query` returns, if any.
    fn optional<U: Send + 'static>(
        &self,
        query: impl LoadQuery<'static, Conn, U> + Send + 'static,
    ) -> impl Future<Output = Result<Option<U>>> + Send {
        self.run(async move |conn: &mut Conn| Ok(query.get_result(conn).await.optional()?))
    }

    /// How many rows `query` wrote.
    fn execute(
        &self,
        query: impl ExecuteDsl<Conn> + Send + 'static,
    ) -> impl Future<Output = Result<usize>> + Send {
        self.run(async move |conn: &mut Conn| Ok(query.execute(conn).await?))
    }
}

impl Repository for Store {
    fn clock(&self) -> &Clock {
        &self.clock
    }

    async fn insert_anomalies(&self, batch: &[NewAnomaly]) -> Result<Vec<InsertOutcome>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let batch = batch.to_vec();
        // The steps are fold.rs's; the SQL is the backend's `insert`.
        self.write(async move |conn: &mut Conn| {
            let new_keys = insert::new_keys(conn, &batch).await?;
            let folded = fold(&batch, |key| new_keys.contains(key));
            if folded.is_empty() {
                return Ok(vec![InsertOutcome::Duplicate; batch.len()]);
            }
            let rows = insert::write_rows(conn, &folded).await?;
            let done = bookkeeping(&batch, &folded, &rows);
            insert::write_bookkeeping(conn, &done).await?;
            Ok(done.outcomes)
        })
        .await
    }

    async fn list_anomalies(
        &self,
        filter: &AnomalyFilter,
        limit: u32,
        cursor: Option<Cursor>,
    ) -> Result<Page<AnomalyRecord>> {
        let limit = limit.clamp(1, MAX_PAGE);
        let rows = self.load(list_query(filter, cursor, i64::from(limit) + 1));
        Ok(page(rows.await?, limit))
    }

    async fn get_anomaly(&self, id: Uuid) -> Result<AnomalyRecord> {
        self.run(async move |conn: &mut Conn| anomaly(conn, id).await)
            .await
    }

    async fn resolve_anomaly(
        &self,
        id: Uuid,
        notes: Option<&str>,
        by: &str,
    ) -> Result<AnomalyRecord> {
        let (notes, by) = (notes.map(str::to_owned), by.to_owned());
        let now = self.clock.now();
        self.write(async move |conn: &mut Conn| {
            let open = t::resolved.is_null().or(t::resolved.eq(false));
            let resolved = diesel::update(t::trace_anomalies.find(Id(id)).filter(open))
                .set((
                    t::resolved.eq(true),
                    t::resolution_notes.eq(notes),
                    t::resolved_by.eq(by),
                    t::resolved_at.eq(now.nullable()),
                ))
                .returning(AnomalyRecord::as_returning())
                .get_result(conn)
                .await
                .optional()?;
            let Some(row) = resolved else {
                let first = anomaly(conn, id).await?.resolved_by;
                let by = first.map(|b| format!(" by {b}")).unwrap_or_default();
                return Err(StoreError::Conflict(format!(
                    "anomaly {id} is already resolved{by}"
                )));
            };
            let alerted: i64 = alert_outbox::table
                .filter(alert_outbox::anomaly_id.eq(Id(id)))
                .count()
                .get_result(conn)
                .await?;
            if alerted > 0 {
                diesel::insert_into(alert_outbox::table)
                    .values((
                        alert_outbox::anomaly_id.eq(Id(id)),
                        alert_outbox::event.eq("resolved"),
                        alert_outbox::created_at.eq(now),
                    ))
                    .execute(conn)
                    .await?;
            }
            Ok(row)
        })
        .await
    }

    async fn config_entries(&self) -> Result<Vec<StoredConfigEntry>> {
        self.run(async move |conn: &mut Conn| config_rows(conn).await)
            .await
    }

    async fn load_config(&self) -> Result<DetectionConfig> {
        config_from_entries(&self.config_entries().await?)
    }

    async fn update_config(&self, update: &Value, by: &str) -> Result<DetectionConfig> {
        let update = update
            .as_object()
            .ok_or(detect_core::ConfigError::NotAnObject)?
            .clone();
        let by = by.to_owned();
        let now = self.clock.now();
        self.write(async move |conn: &mut Conn| {
            if let Some(lock) = LOCK_CONFIG {
                diesel::sql_query(lock).execute(conn).await?;
            }
            let entries = config_rows(conn).await?;
            let next = config_from_entries(&entries)?.merged(&Value::Object(update.clone()))?;
            for entry in next.to_entries() {
                if !update.contains_key(entry.key) {
                    continue;
                }
                let old = entries.iter().find(|e| e.key == entry.key);
                let old_value = old.and_then(|e| e.value.clone());
                if old_value.as_ref() == Some(&entry.value) {
                    continue;
                }
                let new_value = Json(entry.value.clone());
                diesel::insert_into(c::anomaly_detection_config)
                    .values((
                        c::id.eq(Id(Uuid::new_v4())),
                        c::config_key.eq(entry.key),
                        c::config_value.eq(&new_value),
                        c::description.eq(entry.description),
                    ))
                    .on_conflict(c::config_key)
                    .do_update()
                    .set(c::config_value.eq(&new_value))
                    .execute(conn)
                    .await?;
                diesel::insert_into(config_history::table)
                    .values((
                        config_history::config_key.eq(entry.key),
                        config_history::old_value.eq(old_value.map(Json)),
                        config_history::new_value.eq(&new_value),
                        config_history::changed_by.eq(&by),
                        config_history::changed_at.eq(now),
                    ))
                    .execute(conn)
                    .await?;
            }
            Ok(next)
        })
        .await
    }

    async fn config_history(&self, limit: u32) -> Result<Vec<ConfigChange>> {
        let query = h::config_history
            .select(ConfigChange::as_select())
            .order((h::changed_at.desc(), h::id.desc()))
            .limit(i64::from(limit.clamp(1, MAX_PAGE)));
        self.load(query).await
    }

    async fn save_baselines(&self, states: &[(String, Value)]) -> Result<()> {
        let states = states.to_vec();
        let now = self.clock.now();
        self.write(async move |conn: &mut Conn| {
            for (key, state) in states {
                let state = Json(state);
                diesel::insert_into(b::detector_baselines)
                    .values((
                        b::baseline_key.eq(&key),
                        b::state.eq(&state),
                        b::updated_at.eq(now),
                    ))
                    .on_conflict(b::baseline_key)
                    .do_update()
                    .set((b::state.eq(&state), b::updated_at.eq(now)))
                    .execute(conn)
                    .await?;
            }
            Ok(())
        })
        .await
    }

    async fn load_baseline(&self, key: &str) -> Result<Option<Value>> {
        let query = detector_baselines::table.find(key.to_owned());
        self.optional(query.select(detector_baselines::state)).await
    }

    async fn create_run(
        &self,
        trigger: RunTrigger,
        window: Option<(DateTime<Utc>, DateTime<Utc>)>,
    ) -> Result<RunRecord> {
        check_window(window)?;
        let query = diesel::insert_into(r::detection_runs)
            .values((
                r::id.eq(Id(Uuid::new_v4())),
                r::trigger.eq(trigger.as_str()),
                r::window_start.eq(window.map(|w| At(w.0))),
                r::window_end.eq(window.map(|w| At(w.1))),
                r::requested_at.eq(self.clock.now()),
            ))
            .returning(RunRecord::as_returning());
        found(self.optional(query).await?, || "the new run".into())
    }

    async fn start_stream_run(
        &self,
        stream: &str,
        worker: &str,
        (start, end): (DateTime<Utc>, DateTime<Utc>),
    ) -> Result<RunRecord> {
        check_window(Some((start, end)))?;
        let (stream, worker) = (stream.to_owned(), worker.to_owned());
        let running = RunStatus::Running.as_str();
        let now = self.clock.now();
        self.write(async move |conn: &mut Conn| {
                diesel::update(
                    r::detection_runs
                        .filter(r::stream.eq(&stream))
                        .filter(r::status.eq(running)),
                )
                .set((
                    r::status.eq(RunStatus::Failed.as_str()),
                    r::error.eq(ABANDONED),
                    r::finished_at.eq(now.nullable()),
                ))
                .execute(conn)
                .await?;
                Ok(diesel::insert_into(r::detection_runs)
                    .values((
                        r::id.eq(Id(Uuid::new_v4())),
                        r::trigger.eq(RunTrigger::Scheduled.as_str()),
                        r::window_start.eq(At(start)),
                        r::window_end.eq(At(end)),
                        r::status.eq(running),
                        r::worker.eq(&worker),
                        r::stream.eq(&stream),
                        r::requested_at.eq(now),
                        r::started_at.eq(now.nullable()),
                    ))
                    .returning(RunRecord::as_returning())
                    .get_result(conn)
                    .await?)
            })
            .await
    }

    async fn claim_pending_run(&self, worker: &str) -> Result<Option<RunRecord>> {
        let worker = worker.to_owned();
        let pending = RunStatus::Pending.as_str();
        let now = self.clock.now();
        self.write(async move |conn: &mut Conn| {
                loop {
                    let oldest: Option<Uuid> = r::detection_runs
                        .filter(r::status.eq(pending))
                        .filter(r::trigger.eq(RunTrigger::Manual.as_str()))
                        .order((r::requested_at, r::id))
                        .select(r::id)
                        .first(conn)
                        .await
                        .optional()?;
                    let Some(id) = oldest else {
                        return Ok(None);
                    };
                    // Taken by another worker meanwhile: try the next.
                    let taken = diesel::update(
                        r::detection_runs.find(Id(id)).filter(r::status.eq(pending)),
                    )
                    .set((
                        r::status.eq(RunStatus::Running.as_str()),
                        r::worker.eq(&worker),
                        r::started_at.eq(now.nullable()),
                    ))
                    .returning(RunRecord::as_returning())
                    .get_result(conn)
                    .await
                    .optional()?;
                    if taken.is_some() {
                        return Ok(taken);
                    }
                }
            })
            .await
    }

    async fn finish_run(&self, id: Uuid, outcome: &RunOutcome) -> Result<RunRecord> {
        let outcome = outcome.clone();
        let query = diesel::update(r::detection_runs.find(Id(id)))
            .set((
                r::status.eq(outcome.status.as_str()),
                r::spans.eq(outcome.spans),
                r::anomalies.eq(outcome.anomalies),
                r::error.eq(outcome.error),
                r::count_source.eq(outcome.count_source),
                r::tempo_queries.eq(outcome.cost.map(|c| c.queries)),
                r::tempo_lookups.eq(outcome.cost.map(|c| c.lookups)),
                r::tempo_bytes.eq(outcome.cost.map(|c| c.bytes)),
                r::tempo_seconds.eq(outcome.cost.map(|c| c.seconds)),
                r::finished_at.eq(self.clock.now().nullable()),
            ))
            .returning(RunRecord::as_returning());
        found(self.optional(query).await?, || format!("run {id}"))
    }

    async fn get_run(&self, id: Uuid) -> Result<RunRecord> {
        let query = detection_runs::table.find(Id(id));
        let row = self.optional(query.select(RunRecord::as_select()));
        found(row.await?, || format!("run {id}"))
    }

    async fn recent_runs(&self, limit: u32) -> Result<Vec<RunRecord>> {
        let query = r::detection_runs
            .order((r::requested_at.desc(), r::id.desc()))
            .limit(i64::from(limit.min(MAX_PAGE)))
            .select(RunRecord::as_select());
        self.load(query).await
    }

    async fn try_acquire_lease(&self, key: &str, holder: &str, ttl: Duration) -> Result<bool> {
        let same_holder = l::holder.eq(excluded(l::holder));
        let upsert = diesel::insert_into(l::work_leases)
            .values((
                l::lease_key.eq(key.to_owned()),
                l::holder.eq(holder.to_owned()),
                l::expires_at.eq(self.clock.now_plus(ttl)),
                l::acquired_at.eq(self.clock.now()),
            ))
            .on_conflict(l::lease_key)
            .do_update()
            .set((
                l::holder.eq(excluded(l::holder)),
                l::expires_at.eq(excluded(l::expires_at)),
                // The holder renews: the lease keeps the time it was first taken.
                l::acquired_at
                    .eq(case_when(same_holder, l::acquired_at).otherwise(excluded(l::acquired_at))),
            ));
        let free = same_holder.or(l::expires_at.le(self.clock.now()));
        // The upsert's WHERE: `filter` of `QueryDsl` is for selects.
        let upsert = diesel::query_dsl::methods::FilterDsl::filter(upsert, free);
        Ok(self.execute(upsert).await? == 1)
    }

    async fn release_lease(&self, key: &str, holder: &str) -> Result<()> {
        let lease = l::work_leases.filter(l::lease_key.eq(key.to_owned()));
        self.execute(diesel::delete(lease.filter(l::holder.eq(holder.to_owned()))))
            .await?;
        Ok(())
    }

    async fn get_cursor(&self, key: &str) -> Result<Option<DateTime<Utc>>> {
        let query = work_cursors::table.find(key.to_owned());
        self.optional(query.select(work_cursors::position)).await
    }

    async fn advance_cursor(
        &self,
        key: &str,
        expected: Option<DateTime<Utc>>,
        to: DateTime<Utc>,
    ) -> Result<bool> {
        let key = key.to_owned();
        let moved = match expected {
            None => {
                let cursor = (w::cursor_key.eq(key), w::position.eq(At(to)));
                let insert = diesel::insert_into(w::work_cursors)
                    .values((cursor, w::updated_at.eq(self.clock.now())))
                    .on_conflict_do_nothing();
                self.execute(insert).await?
            }
            Some(from) => {
                let cursor = w::work_cursors.filter(w::cursor_key.eq(key));
                let update = diesel::update(cursor.filter(w::position.eq(At(from))))
                    .set((w::position.eq(At(to)), w::updated_at.eq(self.clock.now())));
                self.execute(update).await?
            }
        };
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
        let now = self.clock.now();
        let until = self.clock.now_plus(claim_for);
        let mut rows: Vec<OutboxItem> = self
            .write(async move |conn: &mut Conn| {
                let free = || {
                    let expired = o::claimed_until.le(now.nullable());
                    o::sent_at
                        .is_null()
                        .and(o::claimed_until.is_null().or(expired))
                };
                let ids: Vec<i64> = o::alert_outbox
                    .filter(free())
                    .order(o::id)
                    .limit(limit)
                    .select(o::id)
                    .load(conn)
                    .await?;
                if ids.is_empty() {
                    return Ok(Vec::new());
                }
                Ok(
                    diesel::update(o::alert_outbox.filter(o::id.eq_any(ids)).filter(free()))
                        .set((
                            o::claimed_by.eq(worker),
                            o::claimed_until.eq(until.nullable()),
                        ))
                        .returning(OutboxItem::as_returning())
                        .get_results(conn)
                        .await?,
                )
            })
            .await?;
        rows.sort_by_key(|i| i.id);
        Ok(rows)
    }

    async fn ack_outbox(&self, id: i64, worker: &str) -> Result<bool> {
        let ack = diesel::update(held(id, worker.to_owned())).set((
            o::sent_at.eq(self.clock.now().nullable()),
            o::claimed_until.eq(None::<At>),
        ));
        Ok(self.execute(ack).await? == 1)
    }

    async fn fail_outbox(
        &self,
        id: i64,
        worker: &str,
        error: &str,
        retry_after: Duration,
    ) -> Result<()> {
        let fail = diesel::update(held(id, worker.to_owned())).set((
            o::attempts.eq(o::attempts + 1),
            o::last_error.eq(error.to_owned()),
            o::claimed_by.eq(None::<String>),
            o::claimed_until.eq(self.clock.now_plus(retry_after).nullable()),
        ));
        self.execute(fail).await?;
        Ok(())
    }

    async fn anomaly_summary(&self, since: DateTime<Utc>) -> Result<AnomalySummary> {
        #[derive(QueryableByName)]
        struct ByHour {
            #[diesel(sql_type = AnyTime)]
            hour: DateTime<Utc>,
            #[diesel(sql_type = Text)]
            anomaly_type: String,
            #[diesel(sql_type = BigInt)]
            n: i64,
        }
        let (open, hourly) = self
            .run(async move |conn: &mut Conn| {
                let open: Vec<(String, i64)> = t::trace_anomalies
                    .filter(sql::<Bool>(OPEN))
                    .group_by(t::severity)
                    .select((t::severity, count_star()))
                    .load(conn)
                    .await?;
                let hourly: Vec<ByHour> = diesel::sql_query(HOURLY)
                    .bind::<AnyTime, _>(At(since))
                    .load(conn)
                    .await?;
                Ok((open, hourly))
            })
            .await?;
        let hourly = hourly
            .into_iter()
            .map(|r| (r.hour, r.anomaly_type, r.n))
            .collect();
        Ok(AnomalySummary {
            open_by_severity: open,
            hourly,
        })
    }

    async fn resolve_quiet(
        &self,
        quiet_since: DateTime<Utc>,
        by: &str,
        notes: &str,
    ) -> Result<Vec<AnomalyRecord>> {
        let since = At(quiet_since);
        let never_seen = t::last_seen_at.is_null().and(t::detected_at.lt(since));
        let quiet = t::trace_anomalies
            .filter(t::resolved.is_null().or(t::resolved.eq(false)))
            .filter(t::last_seen_at.lt(since).or(never_seen))
            .order(t::last_seen_at.asc())
            .limit(500)
            .select(t::id);
        let mut resolved = Vec::new();
        for id in self.load(quiet).await? {
            match self.resolve_anomaly(id, Some(notes), by).await {
                Ok(record) => resolved.push(record),
                Err(StoreError::Conflict(_)) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(resolved)
    }

    async fn resolve_quiet_incidents(
        &self,
        quiet_since: DateTime<Utc>,
        by: &str,
        notes: &str,
    ) -> Result<Vec<IncidentRecord>> {
        use crate::incidents::IncidentStatus;
        use crate::schema::incidents::dsl as i;
        let quiet = i::incidents
            .filter(i::status.eq(IncidentStatus::Open.as_str()))
            .filter(i::last_seen_at.lt(At(quiet_since)))
            .order(i::last_seen_at.asc())
            .limit(500)
            .select(i::id);
        let mut resolved = Vec::new();
        for id in self.load(quiet).await? {
            match self.resolve_incident(id, Some(notes), by).await {
                Ok(record) => resolved.push(record),
                Err(StoreError::Conflict(_)) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(resolved)
    }

    async fn record_incidents(&self, batch: &[NewIncident]) -> Result<Vec<IncidentRecord>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let (batch, now) = (batch.to_vec(), self.clock.now());
        self.write(async move |conn: &mut Conn| {
            let mut written = Vec::with_capacity(batch.len());
            for incident in &batch {
                written.push(incidents::record(conn, incident, now).await?);
            }
            Ok(written)
        })
        .await
    }

    async fn list_incidents(
        &self,
        filter: &IncidentFilter,
        limit: u32,
        cursor: Option<IncidentCursor>,
    ) -> Result<Page<IncidentRecord, IncidentCursor>> {
        let limit = limit.clamp(1, MAX_PAGE);
        let query = incidents::list_query(filter, cursor, i64::from(limit) + 1);
        let mut rows = self.load(query).await?;
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let next_cursor = more.then(|| rows.last()).flatten().map(|r| IncidentCursor {
            started_at: r.started_at,
            id: r.id,
        });
        Ok(Page {
            items: rows,
            next_cursor,
        })
    }

    async fn get_incident(&self, id: Uuid) -> Result<IncidentRecord> {
        self.run(async move |conn: &mut Conn| incidents::incident(conn, id).await)
            .await
    }

    async fn resolve_incident(
        &self,
        id: Uuid,
        notes: Option<&str>,
        by: &str,
    ) -> Result<IncidentRecord> {
        let (notes, by, now) = (notes.map(str::to_owned), by.to_owned(), self.clock.now());
        self.write(async move |conn: &mut Conn| incidents::resolve(conn, id, notes, by, now).await)
            .await
    }

    async fn apply_retention(
        &self,
        settings: &RetentionSettings,
        now: DateTime<Utc>,
    ) -> Result<RetentionReport> {
        retention::apply(self, settings, now).await
    }

    async fn live_event_bounds(&self) -> Result<LiveEventBounds> {
        self.run(async move |conn: &mut Conn| live::bounds(conn).await)
            .await
    }

    async fn live_events_after(&self, after: i64, limit: u32) -> Result<Vec<LiveEvent>> {
        let limit = i64::from(limit.clamp(1, MAX_LIVE_EVENTS));
        self.run(async move |conn: &mut Conn| live::after(conn, after, limit).await)
            .await
    }
}
