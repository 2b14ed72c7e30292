// The retention job (see `crate::retention`), written once and compiled in each backend's module (see
// `core.rs`), where `Store`, `Conn` and `Db` are that backend's and `RESOLVED` is the SQL of a resolved
// anomaly row, as the predicate of the index of resolved rows says it.
//
// Every batch is one short write transaction: the ids of at most `batch_rows` rows, oldest first along
// an index, then one delete of those ids that tests the condition again (a row that changed meanwhile
// stays); again until a batch is short. A writer waits for one batch at most.
//
// The order respects the foreign keys and deletes a row's dependants with or before it: delivered
// alerts, then the detection keys of old resolved anomalies, then the anomalies (with whatever alert
// or key is left of them, by ON DELETE CASCADE), then the incidents left with no anomaly, then runs
// and configuration history.

use crate::core::Task;
use crate::error::Result;
use crate::retention::{RetentionReport, RetentionSettings};
use crate::schema::alert_outbox::dsl as o;
use crate::schema::anomaly_detections::dsl as d;
use crate::schema::config_history::dsl as h;
use crate::schema::detection_runs::dsl as r;
use crate::schema::incidents::dsl as i;
use crate::schema::live_events::dsl as e;
use crate::schema::trace_anomalies::dsl as t;
use crate::sql_types::{At, Id};
use chrono::{DateTime, TimeDelta, Utc};
use diesel::dsl::sql;
use diesel::expression::SqlLiteral;
use diesel::prelude::*;
use diesel::sql_types::Bool;
use diesel_async::RunQueryDsl;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// An anomaly row none of whose alerts waits to be sent.
const NO_UNSENT_ANOMALY_ALERT: &str = "NOT EXISTS (SELECT 1 FROM alert_outbox \
     WHERE alert_outbox.anomaly_id = trace_anomalies.id AND alert_outbox.sent_at IS NULL)";
/// An anomaly row that is not part of an open incident.
const NOT_IN_OPEN_INCIDENT: &str = "NOT EXISTS (SELECT 1 FROM incidents \
     WHERE incidents.id = trace_anomalies.incident_id AND incidents.status = 'open')";
/// An incident that is not open (as the index of closed incidents says it).
const CLOSED_INCIDENT: &str = "status <> 'open'";
/// An incident with no anomaly row left and no alert waiting to be sent.
const INCIDENT_EMPTY_AND_SENT: &str = "NOT EXISTS (SELECT 1 FROM trace_anomalies \
     WHERE trace_anomalies.incident_id = incidents.id) \
     AND NOT EXISTS (SELECT 1 FROM alert_outbox \
     WHERE alert_outbox.incident_id = incidents.id AND alert_outbox.sent_at IS NULL)";
/// A finished run (as the index of finished runs says it).
const FINISHED_RUN: &str = "status IN ('succeeded', 'failed')";

/// `age` before `now` (the earliest time there is, for an age beyond it).
fn before(now: DateTime<Utc>, age: Duration) -> At {
    let age = TimeDelta::from_std(age).unwrap_or(TimeDelta::MAX);
    At(now.checked_sub_signed(age).unwrap_or(DateTime::<Utc>::MIN_UTC))
}

/// Runs the tasks `task` makes, each in its own short write transaction, until one deletes fewer
/// than `batch` rows; how many rows they deleted.
async fn in_batches<T>(store: &Store, batch: i64, task: impl Fn() -> T + Send) -> Result<u64>
where
    T: Task<Conn, usize>,
{
    let mut total = 0;
    loop {
        let deleted = store.write(task()).await?;
        total += deleted as u64;
        if (deleted as i64) < batch {
            return Ok(total);
        }
    }
}

/// Deletes what `settings` no longer keep as of `now`.
pub(super) async fn apply(
    store: &Store,
    settings: &RetentionSettings,
    now: DateTime<Utc>,
) -> Result<RetentionReport> {
    let started = Instant::now();
    let batch = i64::from(settings.batch_rows.max(1));
    let resolved_cut = before(now, settings.resolved);
    // Keys never outlive their anomaly: they go with it at the latest, in batches of their own.
    let keys_cut = before(now, settings.detection_keys.min(settings.resolved));
    let mut report = RetentionReport {
        outbox: delivered_alerts(store, batch, before(now, settings.outbox)).await?,
        detection_keys: detection_keys(store, batch, keys_cut).await?,
        anomalies: resolved_anomalies(store, batch, resolved_cut).await?,
        incidents: closed_incidents(store, batch, resolved_cut).await?,
        runs: finished_runs(store, batch, before(now, settings.runs)).await?,
        config_history: config_history(store, batch, before(now, settings.config_history))
            .await?,
        live_events: live_events(store, batch, settings.live_events).await?,
        took: Duration::ZERO,
    };
    report.took = started.elapsed();
    Ok(report)
}

/// Resolved anomalies last seen and resolved before `cut`, unless an alert of theirs waits to be sent
/// or their incident is open: what the anomaly pass deletes, and whose keys the key pass deletes.
#[diesel::dsl::auto_type]
fn old_resolved(cut: At) -> _ {
    let resolved: SqlLiteral<Bool> = sql::<Bool>(RESOLVED);
    let no_unsent_alert: SqlLiteral<Bool> = sql::<Bool>(NO_UNSENT_ANOMALY_ALERT);
    let not_in_open_incident: SqlLiteral<Bool> = sql::<Bool>(NOT_IN_OPEN_INCIDENT);
    t::trace_anomalies
        .filter(resolved)
        .filter(t::last_seen_at.lt(cut))
        .filter(t::resolved_at.is_null().or(t::resolved_at.lt(cut)))
        .filter(no_unsent_alert)
        .filter(not_in_open_incident)
}

/// All but the newest `keep` live events: the journal serves reconnecting streams, nothing older.
async fn live_events(store: &Store, batch: i64, keep: u64) -> Result<u64> {
    let latest = store
        .run(async move |conn: &mut Conn| super::live::bounds(conn).await)
        .await?
        .latest;
    let cut = latest.saturating_sub(i64::try_from(keep).unwrap_or(i64::MAX));
    in_batches(store, batch, move || {
        async move |conn: &mut Conn| {
            let oldest = e::live_events
                .filter(e::seq.le(cut))
                .order(e::seq)
                .select(e::seq)
                .limit(batch);
            let seqs: Vec<i64> = oldest.load(conn).await?;
            Ok(diesel::delete(e::live_events.filter(e::seq.eq_any(seqs)))
                .execute(conn)
                .await?)
        }
    })
    .await
}

/// Alerts delivered (or deliberately not sent) before `cut`; an unsent one is never deleted.
async fn delivered_alerts(store: &Store, batch: i64, cut: At) -> Result<u64> {
    let old = move || o::alert_outbox.filter(o::sent_at.lt(cut));
    in_batches(store, batch, move || {
        async move |conn: &mut Conn| {
            let oldest = old().order(o::sent_at).select(o::id).limit(batch);
            let ids: Vec<i64> = oldest.load(conn).await?;
            Ok(diesel::delete(old().filter(o::id.eq_any(ids)))
                .execute(conn)
                .await?)
        }
    })
    .await
}

/// Where a walk of [`old_resolved`] is: the last row it took (`last_seen_at`, `id`).
type Position = Option<(DateTime<Utc>, Uuid)>;

/// The next `limit` anomalies [`old_resolved`] as of `cut` after `after`, oldest first, and where the walk
/// is then (None when this was the last page). The walk never scans again what it passed: rows kept (an
/// open incident's, one with an unsent alert) and the dead entries of rows deleted behind it.
async fn next_old_resolved(
    store: &Store,
    cut: At,
    after: Position,
    limit: i64,
) -> Result<(Vec<Id>, Position)> {
    let mut page = old_resolved(cut).into_boxed();
    if let Some((seen, id)) = after {
        let same_time_later = t::last_seen_at.eq(At(seen)).and(t::id.gt(Id(id)));
        page = page.filter(t::last_seen_at.gt(At(seen)).or(same_time_later));
    }
    let page = page
        .order((t::last_seen_at, t::id))
        .select((t::last_seen_at, t::id))
        .limit(limit);
    let rows: Vec<(Option<DateTime<Utc>>, Uuid)> = store
        .run(async move |conn: &mut Conn| Ok(page.load(conn).await?))
        .await?;
    let next = match rows.last() {
        Some(&(Some(seen), id)) if rows.len() as i64 == limit => Some((seen, id)),
        _ => None,
    };
    Ok((rows.into_iter().map(|(_, id)| Id(id)).collect(), next))
}

/// The detection keys of the anomalies [`old_resolved`] as of `cut`, a page of anomalies at a time and
/// their keys in batches (an anomaly seen a million times has a million keys). With the settings'
/// defaults `cut` is the anomalies' own, and this deletes the keys of exactly the rows the next pass
/// deletes: every anomaly kept keeps its keys.
async fn detection_keys(store: &Store, batch: i64, cut: At) -> Result<u64> {
    let mut deleted = 0;
    let mut after = None;
    loop {
        let (ids, next) = next_old_resolved(store, cut, after, batch).await?;
        deleted += in_batches(store, batch, || {
            let ids = ids.clone();
            async move |conn: &mut Conn| {
                let of_page = d::anomaly_detections.filter(d::anomaly_id.eq_any(ids));
                let keys: Vec<String> = (of_page.clone())
                    .select(d::detection_key)
                    .limit(batch)
                    .load(conn)
                    .await?;
                Ok(diesel::delete(of_page.filter(d::detection_key.eq_any(keys)))
                    .execute(conn)
                    .await?)
            }
        })
        .await?;
        match next {
            Some(_) => after = next,
            None => return Ok(deleted),
        }
    }
}

/// The anomalies [`old_resolved`] as of `cut`, a batch at a time, each deleted only if it still is
/// (ON DELETE CASCADE takes what is left of their keys and alerts: the passes before took them in
/// batches).
async fn resolved_anomalies(store: &Store, batch: i64, cut: At) -> Result<u64> {
    let mut deleted = 0;
    let mut after = None;
    loop {
        let (ids, next) = next_old_resolved(store, cut, after, batch).await?;
        if !ids.is_empty() {
            let delete = diesel::delete(old_resolved(cut).filter(t::id.eq_any(ids)));
            deleted += store
                .write(async move |conn: &mut Conn| Ok(delete.execute(conn).await?))
                .await? as u64;
        }
        match next {
            Some(_) => after = next,
            None => return Ok(deleted),
        }
    }
}

/// Resolved or merged incidents last seen and last written before `cut`, once no anomaly row names
/// them and none of their alerts waits to be sent.
async fn closed_incidents(store: &Store, batch: i64, cut: At) -> Result<u64> {
    let old = move || {
        i::incidents
            .filter(sql::<Bool>(CLOSED_INCIDENT))
            .filter(i::last_seen_at.lt(cut))
            .filter(i::updated_at.lt(cut))
            .filter(sql::<Bool>(INCIDENT_EMPTY_AND_SENT))
    };
    in_batches(store, batch, move || {
        async move |conn: &mut Conn| {
            let oldest = old().order(i::last_seen_at).select(i::id);
            let ids: Vec<Id> = (oldest.limit(batch).load::<Uuid>(conn).await?)
                .into_iter()
                .map(Id)
                .collect();
            Ok(diesel::delete(old().filter(i::id.eq_any(ids)))
                .execute(conn)
                .await?)
        }
    })
    .await
}

/// Runs that finished before `cut`; pending and running ones are never deleted.
async fn finished_runs(store: &Store, batch: i64, cut: At) -> Result<u64> {
    let old = move || {
        r::detection_runs
            .filter(sql::<Bool>(FINISHED_RUN))
            .filter(r::finished_at.lt(cut))
    };
    in_batches(store, batch, move || {
        async move |conn: &mut Conn| {
            let oldest = old().order(r::finished_at).select(r::id);
            let ids: Vec<Id> = (oldest.limit(batch).load::<Uuid>(conn).await?)
                .into_iter()
                .map(Id)
                .collect();
            Ok(diesel::delete(old().filter(r::id.eq_any(ids)))
                .execute(conn)
                .await?)
        }
    })
    .await
}

/// Configuration changes made before `cut`.
async fn config_history(store: &Store, batch: i64, cut: At) -> Result<u64> {
    let old = move || h::config_history.filter(h::changed_at.lt(cut));
    in_batches(store, batch, move || {
        async move |conn: &mut Conn| {
            let oldest = old().order(h::changed_at).select(h::id);
            let ids: Vec<i64> = oldest.limit(batch).load(conn).await?;
            Ok(diesel::delete(old().filter(h::id.eq_any(ids)))
                .execute(conn)
                .await?)
        }
    })
    .await
}
