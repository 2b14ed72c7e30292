//! Alerts: the sender that takes the store's alert outbox to Telegram, and the resolver that closes
//! incidents that stayed normal for the recovery period.
//!
//! Delivery: one api-server at a time sends (the `alerting:sender` lease). Each round claims the
//! outbox's unsent entries, lets `alerting::Policy` turn them (and due reminders) into messages, and
//! sends them in order. An entry is acknowledged only after Telegram accepted its message, and only
//! while this sender still holds its claim; a failure hands it back with a retry time (Telegram's
//! `retry_after`, or exponential backoff with jitter) and ends the round, so order is kept. What the
//! policy remembers per incident is saved in the store after every message. The one window for a
//! duplicate: a crash after Telegram accepted a message and before its acknowledgement is written.

use crate::events::EventHub;
use crate::telemetry::Metrics;
use alerting::{
    Alert, AlertEvent, AlertOrigin, Delivery, IncidentSummary, Notifier, NotifyError, Policy,
    PolicyState, TelegramNotifier, TelegramSettings, retry_delay,
};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use store_pg::{
    AnomalyRecord, IncidentRecord, IncidentStatus, OutboxItem, Repository, Store, StoreError,
};
use tracing::{debug, info, warn};

/// Who holds the sending.
const SENDER_LEASE: &str = "alerting:sender";
/// Where the policy's memory is kept (`detector_baselines`).
const STATE_KEY: &str = "alerting:state";
/// A claim outlives the slowest send (the notifier's timeout) with room to spare.
const CLAIM_FOR: Duration = Duration::from_secs(45);
/// The sender lease is renewed before every message; a sender that died is replaced this soon.
const LEASE_TTL: Duration = Duration::from_secs(15);
const BATCH: u32 = 100;
const RETRY_BASE: Duration = Duration::from_secs(2);
const RETRY_CAP: Duration = Duration::from_secs(300);
/// Incidents the policy has not spoken of for this long are forgotten.
const FORGET_AFTER: chrono::Duration = chrono::Duration::days(7);

#[derive(Clone, Debug)]
pub struct AlertSettings {
    /// None: alerting is off (said once at start).
    pub telegram: Option<TelegramSettings>,
    pub policy: Policy,
    /// Resolve incidents with no detection for this long; None: never.
    pub auto_resolve_after: Option<Duration>,
    /// Time between sender rounds.
    pub poll: Duration,
}

impl Default for AlertSettings {
    fn default() -> Self {
        AlertSettings {
            telegram: None,
            policy: Policy::default(),
            auto_resolve_after: None,
            poll: Duration::from_secs(1),
        }
    }
}

/// The running alert tasks.
pub struct AlertTasks {
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// This process's sender name, when it sends.
    sender: Option<String>,
}

impl AlertTasks {
    /// Stops the tasks and gives the sender lease back, so that another sender need not wait for
    /// it to expire. (A message in flight is not acknowledged: it is sent again by the next sender.)
    pub async fn stop(self, store: &Store) {
        for task in self.tasks {
            task.abort();
        }
        if let Some(holder) = self.sender {
            let _ = store.release_lease(SENDER_LEASE, &holder).await;
        }
    }
}

/// Starts what the settings ask for; the tasks run until [`AlertTasks::stop`].
pub fn spawn(
    store: &Store,
    settings: AlertSettings,
    metrics: Arc<Metrics>,
    events: EventHub,
) -> anyhow::Result<AlertTasks> {
    let mut tasks = Vec::new();
    let mut sender_name = None;
    if let Some(after) = settings.auto_resolve_after {
        tasks.push(tokio::spawn(resolve_recovered(
            store.clone(),
            after,
            events,
        )));
    }
    match &settings.telegram {
        None => info!(
            "alerting is off: set TELEGRAM_BOT_TOKEN and TELEGRAM_CHAT_ID to send HIGH and CRITICAL anomalies to Telegram"
        ),
        Some(telegram) => {
            let notifier = TelegramNotifier::new(telegram)
                .map_err(|e| anyhow::anyhow!("cannot set up Telegram: {e}"))?;
            info!(chat = ?telegram.chat, "alerting to Telegram");
            let holder = format!("api-server:{}:{}", std::process::id(), uuid::Uuid::new_v4());
            sender_name = Some(holder.clone());
            let sender = Sender {
                store: store.clone(),
                notifier,
                policy: settings.policy.clone(),
                holder,
                state: PolicyState::default(),
                metrics,
            };
            tasks.push(tokio::spawn(sender.run(settings.poll)));
        }
    }
    Ok(AlertTasks {
        tasks,
        sender: sender_name,
    })
}

/// Every minute (or every `after`, if shorter), resolves the incidents quiet for `after`; those
/// alerted get a resolved notice.
async fn resolve_recovered(store: Store, after: Duration, events: EventHub) {
    let period = after.min(Duration::from_secs(60));
    let minutes = after.as_secs() / 60;
    let notes = format!("recovered: no detection for {minutes} min");
    loop {
        let since = Utc::now() - chrono::Duration::from_std(after).unwrap_or(chrono::Duration::MAX);
        match store.resolve_quiet(since, "tracewatch", &notes).await {
            Ok(resolved) => {
                if !resolved.is_empty() {
                    info!(count = resolved.len(), "incidents recovered and resolved");
                    events.wake();
                }
            }
            Err(error) => warn!(%error, "cannot resolve recovered incidents"),
        }
        // Incidents whose tracker is gone (a crashed or retired instance) are resolved the same way.
        match store
            .resolve_quiet_incidents(since, "tracewatch", &notes)
            .await
        {
            Ok(resolved) => {
                if !resolved.is_empty() {
                    events.wake();
                }
            }
            Err(error) => warn!(%error, "cannot resolve quiet incidents"),
        }
        tokio::time::sleep(period).await;
    }
}

struct Sender<N> {
    store: Store,
    notifier: N,
    policy: Policy,
    holder: String,
    state: PolicyState,
    metrics: Arc<Metrics>,
}

/// An outbox entry ready for the policy.
fn alert_of(record: &AnomalyRecord, event: AlertEvent) -> Alert {
    let details = record.details.as_ref();
    let unit = details
        .and_then(|d| d.get("unit"))
        .and_then(|u| u.as_str())
        .filter(|u| !u.is_empty())
        .map(str::to_owned);
    let mut trace_ids = vec![record.trace_id.clone()];
    for id in details
        .and_then(|d| d.get("example_trace_ids"))
        .and_then(|e| e.as_array())
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str())
    {
        if !trace_ids.iter().any(|t| t == id) {
            trace_ids.push(id.to_owned());
        }
    }
    Alert {
        event,
        anomaly_id: record.id,
        fingerprint: record
            .fingerprint
            .clone()
            .unwrap_or_else(|| record.id.to_string()),
        severity: record.severity,
        anomaly_type: record.anomaly_type.as_str().to_lowercase(),
        subtype: record.anomaly_subtype.clone(),
        service: record.service_name.clone(),
        operation: record.operation.clone(),
        peer_service: record.peer_service.clone(),
        observed: record.observed_value,
        expected: record.expected_value,
        unit,
        detected_at: record.detected_at,
        last_seen_at: record.last_seen_at,
        occurrences: record.occurrences,
        trace_ids,
        description: record.description.clone(),
        resolved_by: record.resolved_by.clone(),
        resolution_notes: record.resolution_notes.clone(),
        incident: None,
    }
}

/// The policy's key of an incident (an anomaly's is its fingerprint).
const INCIDENT_KEY: &str = "incident:";

/// An incident's outbox entry ready for the policy: its origin first.
fn alert_of_incident(record: &IncidentRecord, event: AlertEvent) -> Alert {
    let origins: Vec<AlertOrigin> =
        serde_json::from_value::<Vec<store_pg::OriginJson>>(record.origins.clone())
            .unwrap_or_default()
            .into_iter()
            .map(|o| AlertOrigin {
                service: o.service_name,
                operation: o.operation,
                score: o.score,
                evidence: o.evidence,
            })
            .collect();
    let strings = |v: &serde_json::Value| -> Vec<String> {
        serde_json::from_value(v.clone()).unwrap_or_default()
    };
    let lead = origins.first();
    Alert {
        event,
        anomaly_id: record.id,
        fingerprint: format!("{INCIDENT_KEY}{}", record.id),
        severity: record.severity,
        anomaly_type: "incident".into(),
        subtype: None,
        service: lead.map(|o| o.service.clone()),
        operation: lead.and_then(|o| o.operation.clone()),
        peer_service: None,
        observed: None,
        expected: None,
        unit: None,
        detected_at: Some(record.started_at),
        last_seen_at: Some(record.last_seen_at),
        occurrences: record.detections,
        trace_ids: strings(&record.example_trace_ids),
        description: Some(record.title.clone()),
        resolved_by: record.resolved_by.clone(),
        resolution_notes: record.resolution_notes.clone(),
        incident: Some(IncidentSummary {
            origins,
            services: strings(&record.services),
            findings: record.anomaly_count,
        }),
    }
}

impl<N: Notifier> Sender<N> {
    async fn run(mut self, poll: Duration) {
        let mut holding = false;
        loop {
            let pause = match self.renew_lease().await {
                Ok(true) => {
                    if !holding {
                        // Another sender may have sent meanwhile: start from what it saved.
                        self.state = self.load_state().await;
                        holding = true;
                    }
                    match self.round().await {
                        Ok(pause) => pause,
                        Err(error) => {
                            warn!(error = %format!("{error:#}"), "alert round failed; its alerts are tried again");
                            None
                        }
                    }
                }
                Ok(false) => {
                    holding = false;
                    None
                }
                Err(error) => {
                    warn!(%error, "cannot reach the store for the sender lease");
                    None
                }
            };
            tokio::time::sleep(pause.unwrap_or(poll).max(poll)).await;
        }
    }

    async fn renew_lease(&self) -> Result<bool, StoreError> {
        self.store
            .try_acquire_lease(SENDER_LEASE, &self.holder, LEASE_TTL)
            .await
    }

    async fn load_state(&self) -> PolicyState {
        match self.store.load_baseline(STATE_KEY).await {
            Ok(Some(saved)) => serde_json::from_value(saved).unwrap_or_else(|error| {
                warn!(%error, "the saved alerting state is not readable; starting afresh");
                PolicyState::default()
            }),
            Ok(None) => PolicyState::default(),
            Err(error) => {
                warn!(%error, "cannot load the alerting state; starting afresh");
                PolicyState::default()
            }
        }
    }

    async fn save_state(&self) -> Result<(), StoreError> {
        let value =
            serde_json::to_value(&self.state).map_err(|e| StoreError::Invalid(e.to_string()))?;
        self.store
            .save_baselines(&[(STATE_KEY.to_owned(), value)])
            .await
    }

    /// Open incidents announced a cool-down ago that fired again since.
    async fn due_reminders(&self, now: DateTime<Utc>) -> Result<Vec<Alert>, StoreError> {
        let mut due = Vec::new();
        for (key, known) in self.state.reminder_candidates(now, self.policy.cooldown) {
            if key.starts_with(INCIDENT_KEY) {
                let record = match self.store.get_incident(known.anomaly_id).await {
                    Ok(r) => r,
                    Err(StoreError::NotFound { .. }) => continue,
                    Err(e) => return Err(e),
                };
                if record.status == IncidentStatus::Open && record.detections > known.occurrences {
                    due.push(alert_of_incident(&record, AlertEvent::Reminder));
                }
                continue;
            }
            let record = match self.store.get_anomaly(known.anomaly_id).await {
                Ok(r) => r,
                Err(StoreError::NotFound { .. }) => continue,
                Err(e) => return Err(e),
            };
            if !record.resolved && record.occurrences > known.occurrences {
                due.push(alert_of(&record, AlertEvent::Reminder));
            }
        }
        Ok(due)
    }

    /// One round; returns how long to pause when Telegram asked to wait.
    async fn round(&mut self) -> anyhow::Result<Option<Duration>> {
        let now = Utc::now();
        self.state.forget_before(now - FORGET_AFTER);
        let items = self
            .store
            .claim_outbox(&self.holder, BATCH, CLAIM_FOR)
            .await?;
        let mut batch = Vec::new();
        let mut claimed: HashMap<i64, &OutboxItem> = HashMap::new();
        for item in &items {
            let Some(event) = AlertEvent::parse(&item.event) else {
                warn!(event = %item.event, "unknown outbox event; dropped");
                self.store.ack_outbox(item.id, &self.holder).await?;
                continue;
            };
            let alert = match (item.incident_id, item.anomaly_id) {
                (Some(id), _) => alert_of_incident(&self.store.get_incident(id).await?, event),
                (None, Some(id)) => alert_of(&self.store.get_anomaly(id).await?, event),
                (None, None) => {
                    warn!(id = item.id, "outbox entry about nothing; dropped");
                    self.store.ack_outbox(item.id, &self.holder).await?;
                    continue;
                }
            };
            batch.push((item.id, alert));
            claimed.insert(item.id, item);
        }
        // Reminders have no outbox entry: negative ids, never acknowledged.
        for (i, reminder) in self.due_reminders(now).await?.into_iter().enumerate() {
            batch.push((-1 - i as i64, reminder));
        }
        if batch.is_empty() {
            return Ok(None);
        }
        let plan = self.policy.plan(now, &batch, &self.state);
        for (index, delivery) in plan.deliveries.iter().enumerate() {
            match delivery {
                Delivery::HoldBack {
                    reason, outbox_ids, ..
                } => {
                    debug!(%reason, ?outbox_ids, "alert held back");
                    self.state.apply(delivery, now);
                    self.acknowledge(outbox_ids).await?;
                }
                Delivery::Send { .. } if !self.renew_lease().await? => {
                    warn!("lost the sender lease mid-round; the rest is left to the new sender");
                    return Ok(None);
                }
                Delivery::Send {
                    text, outbox_ids, ..
                } => match self.notifier.send(text).await {
                    Ok(()) => {
                        self.state.apply(delivery, Utc::now());
                        self.save_state().await?;
                        self.acknowledge(outbox_ids).await?;
                        for id in outbox_ids.iter().filter(|id| **id > 0) {
                            let waited = claimed.get(id).map(|i| Utc::now() - i.created_at);
                            self.metrics.alert_sent(
                                waited.and_then(|w| w.to_std().ok()).unwrap_or_default(),
                            );
                        }
                    }
                    Err(error) => {
                        self.metrics.alert_failed();
                        let attempts = outbox_ids
                            .iter()
                            .filter_map(|id| claimed.get(id).map(|i| i.attempts))
                            .max()
                            .unwrap_or(0);
                        let (delay, pause) = match &error {
                            NotifyError::RetryAfter(after) => (*after, Some(*after)),
                            NotifyError::Failed(_) => (
                                retry_delay(attempts.max(0) as u32, RETRY_BASE, RETRY_CAP),
                                None,
                            ),
                        };
                        warn!(%error, retry_in_s = delay.as_secs_f64(), "alert not delivered; it is tried again");
                        // This and every later delivery of the round go back, in order.
                        let reason = error.to_string();
                        for later in &plan.deliveries[index..] {
                            for id in later.outbox_ids().iter().filter(|id| **id > 0) {
                                self.store
                                    .fail_outbox(*id, &self.holder, &reason, delay)
                                    .await?;
                            }
                        }
                        self.save_state().await?;
                        return Ok(pause);
                    }
                },
            }
        }
        self.save_state().await?;
        Ok(None)
    }

    async fn acknowledge(&self, outbox_ids: &[i64]) -> Result<(), StoreError> {
        for id in outbox_ids.iter().filter(|id| **id > 0) {
            if !self.store.ack_outbox(*id, &self.holder).await? {
                warn!(
                    id,
                    "an alert's claim had expired when it was acknowledged: another sender may repeat it"
                );
            }
        }
        Ok(())
    }
}
