//! The repository API every backend implements, and that the conformance suite
//! (tests/conformance.rs) checks on each. Binaries use it through [`crate::Store`].

use crate::clock::Clock;
use crate::error::Result;
use crate::incidents::{IncidentCursor, IncidentFilter, IncidentRecord, NewIncident};
use crate::live::{LiveEvent, LiveEventBounds};
use crate::model::{
    AnomalyFilter, AnomalyRecord, AnomalySummary, ConfigChange, Cursor, InsertOutcome, NewAnomaly,
    OutboxItem, Page, RunOutcome, RunRecord, RunTrigger,
};
use crate::retention::{RetentionReport, RetentionSettings};
use chrono::{DateTime, Utc};
use detect_core::DetectionConfig;
use serde_json::Value;
use std::future::Future;
use std::time::Duration;
use uuid::Uuid;

/// A configuration row as stored: key, JSON value, description.
#[derive(Clone, Debug, PartialEq, diesel::Queryable, diesel::Selectable)]
#[diesel(table_name = crate::schema::anomaly_detection_config)]
pub struct StoredConfigEntry {
    #[diesel(column_name = config_key)]
    pub key: String,
    #[diesel(column_name = config_value)]
    pub value: Option<Value>,
    pub description: Option<String>,
}

pub trait Repository: Send + Sync {
    /// The time the store stamps and judges leases, claims and retries by (see [`Clock`]).
    fn clock(&self) -> &Clock;

    /// Stores a batch of detections in one transaction, with their alert-outbox entries.
    /// - a detection stored before (same `detection_key`) changes nothing: [`InsertOutcome::Duplicate`];
    /// - a detection of a fingerprint with an open row (unresolved) adds one to that row's
    ///   `occurrences`, moves `last_seen_at` on, raises its severity if higher and adds its traces to
    ///   the row's examples (up to 10: the first, the most severe detection's, the latest): `Merged`;
    /// - anything else is a new row: `Inserted`.
    ///
    /// An outbox entry is written for a new row (`opened`) or a raised severity (`escalated`) when
    /// `notify` is set. Outcomes are in the batch's order.
    fn insert_anomalies(
        &self,
        batch: &[NewAnomaly],
    ) -> impl Future<Output = Result<Vec<InsertOutcome>>> + Send;

    /// Newest first (`detected_at`, then `id`, descending), after `cursor`; at most `limit` (capped at
    /// [`crate::model::MAX_PAGE`]). `next_cursor` is set when more rows may follow.
    fn list_anomalies(
        &self,
        filter: &AnomalyFilter,
        limit: u32,
        cursor: Option<Cursor>,
    ) -> impl Future<Output = Result<Page<AnomalyRecord>>> + Send;

    fn get_anomaly(&self, id: Uuid) -> impl Future<Output = Result<AnomalyRecord>> + Send;

    /// Marks an anomaly resolved with notes and who. Resolving an already resolved anomaly is a
    /// [`crate::StoreError::Conflict`] that leaves the first resolution (notes, who, when) untouched.
    /// A `resolved` outbox entry is written when the anomaly had been alerted.
    fn resolve_anomaly(
        &self,
        id: Uuid,
        notes: Option<&str>,
        by: &str,
    ) -> impl Future<Output = Result<AnomalyRecord>> + Send;

    /// Open anomalies by severity, and anomalies detected since `since` per UTC hour and type.
    fn anomaly_summary(
        &self,
        since: DateTime<Utc>,
    ) -> impl Future<Output = Result<AnomalySummary>> + Send;

    /// Every stored configuration row.
    fn config_entries(&self) -> impl Future<Output = Result<Vec<StoredConfigEntry>>> + Send;

    /// The stored configuration over the defaults, validated.
    fn load_config(&self) -> impl Future<Output = Result<DetectionConfig>> + Send;

    /// Applies a partial update (key → value), validated as a whole with detect-core's validation,
    /// atomically, with one history row per changed key.
    fn update_config(
        &self,
        update: &Value,
        by: &str,
    ) -> impl Future<Output = Result<DetectionConfig>> + Send;

    /// The newest configuration changes first.
    fn config_history(&self, limit: u32) -> impl Future<Output = Result<Vec<ConfigChange>>> + Send;

    fn save_baselines(&self, states: &[(String, Value)])
    -> impl Future<Output = Result<()>> + Send;

    fn load_baseline(&self, key: &str) -> impl Future<Output = Result<Option<Value>>> + Send;

    fn create_run(
        &self,
        trigger: RunTrigger,
        window: Option<(DateTime<Utc>, DateTime<Utc>)>,
    ) -> impl Future<Output = Result<RunRecord>> + Send;

    /// Records that `worker` has started `window` of `stream` (a scheduled run, running). Runs of that
    /// stream still running are abandoned: only the stream's lease holder starts its runs, one window at
    /// a time, so a running one is left by a worker that died or lost the lease; it becomes failed with
    /// the reason, in the same transaction.
    fn start_stream_run(
        &self,
        stream: &str,
        worker: &str,
        window: (DateTime<Utc>, DateTime<Utc>),
    ) -> impl Future<Output = Result<RunRecord>> + Send;

    /// Takes the oldest pending *manual* run for `worker` (status becomes running), if any. Two workers
    /// never take the same run. Scheduled runs belong to the worker that recorded them and are never
    /// handed to another (see [`Repository::start_stream_run`] for one whose worker died).
    fn claim_pending_run(
        &self,
        worker: &str,
    ) -> impl Future<Output = Result<Option<RunRecord>>> + Send;

    fn finish_run(
        &self,
        id: Uuid,
        outcome: &RunOutcome,
    ) -> impl Future<Output = Result<RunRecord>> + Send;

    fn get_run(&self, id: Uuid) -> impl Future<Output = Result<RunRecord>> + Send;

    /// The newest `limit` runs (by request time), newest first.
    fn recent_runs(&self, limit: u32) -> impl Future<Output = Result<Vec<RunRecord>>> + Send;

    /// Takes (or renews, for the same holder) the lease `key` until now + `ttl`. False when another
    /// holder's lease has not expired.
    fn try_acquire_lease(
        &self,
        key: &str,
        holder: &str,
        ttl: Duration,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// Gives a lease back (only the holder's own).
    fn release_lease(&self, key: &str, holder: &str) -> impl Future<Output = Result<()>> + Send;

    fn get_cursor(&self, key: &str) -> impl Future<Output = Result<Option<DateTime<Utc>>>> + Send;

    /// Moves a cursor from `expected` (None: it does not exist yet) to `to`; false when it was not at
    /// `expected` (someone else moved it).
    fn advance_cursor(
        &self,
        key: &str,
        expected: Option<DateTime<Utc>>,
        to: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// Claims up to `limit` unsent alerts not claimed by anyone else, for `claim_for`; oldest first.
    fn claim_outbox(
        &self,
        worker: &str,
        limit: u32,
        claim_for: Duration,
    ) -> impl Future<Output = Result<Vec<OutboxItem>>> + Send;

    /// Marks an alert sent (or deliberately not sent) by `worker`, only while `worker` still holds
    /// its claim: false when the claim expired and someone else took it, or it was acknowledged
    /// before. A sender that gets false knows another may be delivering the same alert.
    fn ack_outbox(&self, id: i64, worker: &str) -> impl Future<Output = Result<bool>> + Send;

    /// Records a failed attempt of `worker` (while it holds the claim) and hands the alert out again
    /// no sooner than `retry_after` from now.
    fn fail_outbox(
        &self,
        id: i64,
        worker: &str,
        error: &str,
        retry_after: Duration,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Resolves the open rows whose last detection (`last_seen_at`, event time) is before
    /// `quiet_since`, oldest first, at most 500 a call (as [`Repository::resolve_anomaly`] does, so
    /// that those alerted get a `resolved` outbox entry). One resolved meanwhile by someone else is
    /// left as it is. Returns those resolved here.
    fn resolve_quiet(
        &self,
        quiet_since: DateTime<Utc>,
        by: &str,
        notes: &str,
    ) -> impl Future<Output = Result<Vec<AnomalyRecord>>> + Send;

    /// Writes incidents as they stand, in order, in one transaction: each is inserted or updated by
    /// id (writing the same state again changes nothing), its anomaly rows name it, incidents merged
    /// into it become `merged` with their anomalies moved to it. An incident that pages (`notify`)
    /// queues an alert when it opens, and once alerted when its severity rises, its first origin
    /// changes or it resolves (its `ended_at` is set: quiet long enough). Returns the rows as written.
    fn record_incidents(
        &self,
        batch: &[NewIncident],
    ) -> impl Future<Output = Result<Vec<IncidentRecord>>> + Send;

    /// Resolves the open incidents whose last finding (`last_seen_at`, event time) is before
    /// `quiet_since`, oldest first, at most 500 a call, as [`Repository::resolve_incident`] does (their
    /// open anomalies too; a `resolved` alert for those alerted). A safety net for incidents whose
    /// tracker state was lost (a crashed process, an instance gone); the tracker itself closes an
    /// incident after its quiet period. Returns those resolved here.
    fn resolve_quiet_incidents(
        &self,
        quiet_since: DateTime<Utc>,
        by: &str,
        notes: &str,
    ) -> impl Future<Output = Result<Vec<IncidentRecord>>> + Send;

    /// Newest start first (`started_at`, then `id`, descending), after `cursor`; at most `limit`
    /// (capped at [`crate::model::MAX_PAGE`]).
    fn list_incidents(
        &self,
        filter: &IncidentFilter,
        limit: u32,
        cursor: Option<IncidentCursor>,
    ) -> impl Future<Output = Result<Page<IncidentRecord, IncidentCursor>>> + Send;

    fn get_incident(&self, id: Uuid) -> impl Future<Output = Result<IncidentRecord>> + Send;

    /// Resolves an open incident and its open anomalies, with notes and who; a `resolved` alert when
    /// its opening was alerted. One not open is a [`crate::StoreError::Conflict`].
    fn resolve_incident(
        &self,
        id: Uuid,
        notes: Option<&str>,
        by: &str,
    ) -> impl Future<Output = Result<IncidentRecord>> + Send;

    /// Deletes what `settings` no longer keep as of `now` (the store's time: [`Clock::time`]), in
    /// batches of `settings.batch_rows` rows, each statement its own transaction:
    /// - alerts delivered (or deliberately not sent) more than `outbox` ago; never an unsent one;
    /// - the detection keys of resolved anomalies last seen more than `detection_keys` (at most
    ///   `resolved`) ago; never those of an open anomaly;
    /// - resolved anomalies last seen and resolved more than `resolved` ago, with their remaining
    ///   keys and alerts; never an open one, one of an open incident, or one with an unsent alert;
    /// - resolved or merged incidents last seen and written more than `resolved` ago that no anomaly
    ///   row names any more; never an open one, or one with an unsent alert;
    /// - runs finished more than `runs` ago; never a pending or running one;
    /// - configuration history older than `config_history`.
    ///
    /// Rows without the time they are judged by (a `last_seen_at` or `finished_at` left NULL by
    /// another program) are kept. Safe to run concurrently with writers and with itself.
    fn apply_retention(
        &self,
        settings: &RetentionSettings,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<RetentionReport>> + Send;

    /// The live-event journal's oldest and newest sequence numbers (see [`crate::live`]).
    fn live_event_bounds(&self) -> impl Future<Output = Result<LiveEventBounds>> + Send;

    /// The journal's events after sequence number `after`, oldest first, at most `limit` (and at
    /// most [`crate::live::MAX_LIVE_EVENTS`]), each with its subject as it stands now.
    fn live_events_after(
        &self,
        after: i64,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<LiveEvent>>> + Send;
}
