//! Which messages a batch of alert events becomes. No spam, nothing silently lost:
//! - one incident (fingerprint: an anomaly row's, or `incident:<id>` for findings grouped with probable
//!   origins) sends one message when it opens; while it stays open, at most one reminder per cool-down;
//! - an incident that opens again within the cool-down of its last opening (flapping) is held back,
//!   with its resolution, and counted: the next message about it says how many were held back;
//! - a rise in severity of an open incident sends an escalation, and a new leading probable origin
//!   sends an origin change; neither waits for the cool-down, both are held back while the
//!   incident's opening is held back as flapping, and neither repeats what was announced already;
//! - a resolution is announced when the opening was; an opening delivered twice is announced once;
//! - more than `digest_above` new incidents (or resolutions) in one batch become one digest.
//!
//! [`Policy::plan`] is pure: it reads the state and says what to do; the caller delivers in order and
//! applies each delivery's effects with [`PolicyState::apply`] once it is done (a message accepted,
//! or an event held back), so a failed send changes nothing.

use crate::alert::{Alert, AlertEvent};
use crate::message::{Links, render, render_digest, render_resolved_digest};
use chrono::{DateTime, Duration, Utc};
use detect_core::Severity;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uuid::Uuid;

#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    pub cooldown: Duration,
    /// A batch with more new incidents than this sends them as one digest.
    pub digest_above: usize,
    pub links: Links,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            cooldown: Duration::minutes(30),
            digest_above: 5,
            links: Links::default(),
        }
    }
}

/// What the sender remembers per incident (saved between rounds and restarts).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PolicyState {
    pub incidents: BTreeMap<String, IncidentState>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IncidentState {
    /// The row whose opening was last considered.
    pub anomaly_id: Uuid,
    pub last_message_at: DateTime<Utc>,
    pub last_opened_at: Option<DateTime<Utc>>,
    /// The severity last announced.
    pub severity: Severity,
    /// The current row's opening was announced (so its resolution is, too).
    pub announced: bool,
    /// Events held back since the last message.
    pub held_back: u32,
    /// The incident's occurrences when it was last announced (a reminder needs new ones).
    #[serde(default)]
    pub occurrences: i64,
    /// The leading probable origin last announced, for an incident of grouped findings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
}

/// What a delivery changes once done.
#[derive(Clone, Debug, PartialEq)]
pub struct Effect {
    pub fingerprint: String,
    pub anomaly_id: Uuid,
    pub event: AlertEvent,
    pub severity: Severity,
    pub occurrences: i64,
    /// The leading probable origin the message names, for an incident of grouped findings.
    pub origin: Option<String>,
    /// True when a message carries the event; false when it is held back.
    pub sent: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Delivery {
    /// Send `text`; once accepted, the outbox entries are done and the effects apply.
    Send {
        text: String,
        outbox_ids: Vec<i64>,
        effects: Vec<Effect>,
    },
    /// No message; the outbox entries are done, with the reason.
    HoldBack {
        outbox_ids: Vec<i64>,
        reason: String,
        effects: Vec<Effect>,
    },
}

impl Delivery {
    pub fn outbox_ids(&self) -> &[i64] {
        match self {
            Delivery::Send { outbox_ids, .. } | Delivery::HoldBack { outbox_ids, .. } => outbox_ids,
        }
    }
    pub fn effects(&self) -> &[Effect] {
        match self {
            Delivery::Send { effects, .. } | Delivery::HoldBack { effects, .. } => effects,
        }
    }
}

/// The deliveries for a batch, in order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    pub deliveries: Vec<Delivery>,
}

impl PolicyState {
    /// Records a delivery that is done.
    pub fn apply(&mut self, delivery: &Delivery, now: DateTime<Utc>) {
        for e in delivery.effects() {
            let entry = self
                .incidents
                .entry(e.fingerprint.clone())
                .or_insert_with(|| IncidentState {
                    anomaly_id: e.anomaly_id,
                    last_message_at: now,
                    last_opened_at: None,
                    severity: e.severity,
                    announced: false,
                    held_back: 0,
                    occurrences: 0,
                    origin: None,
                });
            match (e.event, e.sent) {
                (AlertEvent::Opened, true) => {
                    entry.anomaly_id = e.anomaly_id;
                    entry.last_opened_at = Some(now);
                    entry.severity = e.severity;
                    entry.announced = true;
                }
                // A repeat of an announced opening changes nothing: its resolution is still announced.
                (AlertEvent::Opened, false)
                    if entry.announced && entry.anomaly_id == e.anomaly_id => {}
                (AlertEvent::Opened, false) => {
                    entry.anomaly_id = e.anomaly_id;
                    entry.announced = false;
                    entry.held_back += 1;
                }
                (AlertEvent::Escalated | AlertEvent::OriginChanged, true) => {
                    entry.severity = entry.severity.max(e.severity);
                    entry.announced = true;
                }
                (AlertEvent::Resolved, true) => entry.announced = false,
                (_, false) => entry.held_back += 1,
                (AlertEvent::Reminder, true) => {}
            }
            if e.sent {
                entry.last_message_at = now;
                entry.held_back = 0;
                entry.occurrences = e.occurrences;
                // Every incident message names its leading origin.
                if e.origin.is_some() {
                    entry.origin = e.origin.clone();
                }
            }
        }
    }

    /// Incidents announced, still open as far as the sender knows, with no message for a cool-down:
    /// a reminder is due if they fired again since (the caller checks the row).
    pub fn reminder_candidates(
        &self,
        now: DateTime<Utc>,
        cooldown: Duration,
    ) -> Vec<(&str, &IncidentState)> {
        self.incidents
            .iter()
            .filter(|(_, s)| s.announced && now - s.last_message_at >= cooldown)
            .map(|(fp, s)| (fp.as_str(), s))
            .collect()
    }

    /// Forgets incidents with no message for `older_than` (their cool-down is long over).
    pub fn forget_before(&mut self, cutoff: DateTime<Utc>) {
        self.incidents
            .retain(|_, s| s.announced || s.last_message_at >= cutoff);
    }
}

/// An incident alert's leading probable origin (`service operation`), as the state remembers it.
fn origin_key(alert: &Alert) -> Option<String> {
    let (service, operation) = alert.leading_origin()?;
    let key = [service, operation]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    Some(key)
}

/// Sends of one kind merged into one digest.
#[derive(Default)]
struct DigestGroup {
    alerts: Vec<Alert>,
    outbox_ids: Vec<i64>,
    effects: Vec<Effect>,
}

enum Decision {
    Send(Option<String>),
    HoldBack(String),
}

impl Policy {
    /// The deliveries for `batch` (outbox id, alert), oldest first.
    pub fn plan(&self, now: DateTime<Utc>, batch: &[(i64, Alert)], state: &PolicyState) -> Plan {
        // Decisions are made in order against the state as it will be once earlier ones are done.
        let mut simulated = state.clone();
        let mut singles: Vec<Delivery> = Vec::new();
        for (id, alert) in batch {
            let held = simulated
                .incidents
                .get(&alert.fingerprint)
                .map_or(0, |s| s.held_back);
            let decision = self.decide(now, alert, simulated.incidents.get(&alert.fingerprint));
            let effect = |sent| Effect {
                fingerprint: alert.fingerprint.clone(),
                anomaly_id: alert.anomaly_id,
                event: alert.event,
                severity: alert.severity,
                occurrences: alert.occurrences,
                origin: origin_key(alert),
                sent,
            };
            let delivery = match decision {
                Decision::Send(note) => {
                    let mut text = render(alert, &self.links);
                    if let Some(note) = note {
                        text.push_str(&format!("\n<i>{note}</i>"));
                    } else if held > 0 {
                        text.push_str(&format!(
                            "\n<i>{held} more alerts of this incident were held back since the last message</i>"
                        ));
                    }
                    Delivery::Send {
                        text,
                        outbox_ids: vec![*id],
                        effects: vec![effect(true)],
                    }
                }
                Decision::HoldBack(reason) => Delivery::HoldBack {
                    outbox_ids: vec![*id],
                    reason,
                    effects: vec![effect(false)],
                },
            };
            simulated.apply(&delivery, now);
            singles.push(delivery);
        }
        Plan {
            deliveries: self.digest(singles, batch),
        }
    }

    fn decide(&self, now: DateTime<Utc>, alert: &Alert, known: Option<&IncidentState>) -> Decision {
        let within_cooldown = |t: Option<DateTime<Utc>>| t.is_some_and(|t| now - t < self.cooldown);
        match alert.event {
            AlertEvent::Opened => match known {
                // The same opening again (an outbox entry delivered twice, after a crash between the
                // send and its acknowledgement): announced already.
                Some(s) if s.announced && s.anomaly_id == alert.anomaly_id => {
                    Decision::HoldBack("its opening was announced already".into())
                }
                Some(s) if within_cooldown(s.last_opened_at) => Decision::HoldBack(format!(
                    "flapping: this incident opened again within the cool-down ({} min) of its last message",
                    self.cooldown.num_minutes()
                )),
                _ => Decision::Send(None),
            },
            AlertEvent::Escalated => match known {
                Some(s)
                    if s.anomaly_id == alert.anomaly_id
                        && s.announced
                        && alert.severity <= s.severity =>
                {
                    Decision::HoldBack(format!("{} was announced already", alert.severity))
                }
                Some(s)
                    if s.anomaly_id == alert.anomaly_id
                        && !s.announced
                        && within_cooldown(Some(s.last_message_at)) =>
                {
                    Decision::HoldBack("its opening was held back as flapping".into())
                }
                _ => Decision::Send(None),
            },
            AlertEvent::OriginChanged => match known {
                Some(s)
                    if s.anomaly_id == alert.anomaly_id
                        && s.announced
                        && s.origin.is_some()
                        && s.origin == origin_key(alert) =>
                {
                    Decision::HoldBack(format!(
                        "its probable origin {} was announced already",
                        s.origin.as_deref().unwrap_or_default()
                    ))
                }
                Some(s)
                    if s.anomaly_id == alert.anomaly_id
                        && !s.announced
                        && within_cooldown(Some(s.last_message_at)) =>
                {
                    Decision::HoldBack("its opening was held back as flapping".into())
                }
                _ => Decision::Send(None),
            },
            AlertEvent::Reminder => match known {
                Some(s)
                    if s.announced
                        && s.anomaly_id == alert.anomaly_id
                        && !within_cooldown(Some(s.last_message_at)) =>
                {
                    Decision::Send(None)
                }
                _ => Decision::HoldBack("a message about it was sent within the cool-down".into()),
            },
            AlertEvent::Resolved => match known {
                Some(s) if s.announced && s.anomaly_id == alert.anomaly_id => Decision::Send(None),
                _ => Decision::HoldBack("its opening was not announced".into()),
            },
        }
    }

    /// More than `digest_above` sends of new incidents (or of resolutions) become one message each.
    fn digest(&self, singles: Vec<Delivery>, batch: &[(i64, Alert)]) -> Vec<Delivery> {
        let alert_of = |id: i64| batch.iter().find(|(i, _)| *i == id).map(|(_, a)| a);
        let mut out = Vec::new();
        // false: new incidents; true: resolutions.
        let mut groups: BTreeMap<bool, DigestGroup> = BTreeMap::new();
        let sends_of = |event: AlertEvent| {
            singles
                .iter()
                .filter(
                    |d| matches!(d, Delivery::Send { effects, .. } if effects[0].event == event),
                )
                .count()
        };
        let digest_opened = sends_of(AlertEvent::Opened) > self.digest_above;
        let digest_resolved = sends_of(AlertEvent::Resolved) > self.digest_above;
        for d in singles {
            let group = match &d {
                Delivery::Send { effects, .. } => match effects[0].event {
                    AlertEvent::Opened if digest_opened => Some(false),
                    AlertEvent::Resolved if digest_resolved => Some(true),
                    _ => None,
                },
                Delivery::HoldBack { .. } => None,
            };
            match group {
                None => out.push(d),
                Some(g) => {
                    let entry = groups.entry(g).or_default();
                    for id in d.outbox_ids() {
                        entry.alerts.extend(alert_of(*id).cloned());
                        entry.outbox_ids.push(*id);
                    }
                    entry.effects.extend(d.effects().iter().cloned());
                }
            }
        }
        for (resolutions, group) in groups {
            let text = if resolutions {
                render_resolved_digest(&group.alerts, &self.links)
            } else {
                render_digest(&group.alerts, &self.links)
            };
            out.push(Delivery::Send {
                text,
                outbox_ids: group.outbox_ids,
                effects: group.effects,
            });
        }
        out.sort_by_key(|d| d.outbox_ids().iter().min().copied());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::AlertOrigin;
    use crate::message::tests::{alert, incident};
    use chrono::TimeZone;

    fn at(minute: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 5, 10, 0, 0).unwrap() + Duration::minutes(minute)
    }

    fn of(event: AlertEvent, row: u128, fp: &str) -> Alert {
        let mut a = alert(event);
        a.anomaly_id = Uuid::from_u128(row);
        a.fingerprint = fp.into();
        a
    }

    /// Runs a batch as the sender does when every send succeeds; the kinds of what was done.
    fn run(
        policy: &Policy,
        state: &mut PolicyState,
        now: DateTime<Utc>,
        batch: &[(i64, Alert)],
    ) -> Vec<String> {
        let plan = policy.plan(now, batch, state);
        plan.deliveries
            .iter()
            .map(|d| {
                state.apply(d, now);
                match d {
                    Delivery::Send {
                        text, outbox_ids, ..
                    } => {
                        format!("send {:?}: {}", outbox_ids, text.lines().next().unwrap())
                    }
                    Delivery::HoldBack { outbox_ids, .. } => format!("hold {outbox_ids:?}"),
                }
            })
            .collect()
    }

    #[test]
    fn one_incident_one_message_then_reminders_at_most_once_per_cooldown() {
        let policy = Policy::default();
        let mut state = PolicyState::default();
        let done = run(
            &policy,
            &mut state,
            at(0),
            &[(1, of(AlertEvent::Opened, 1, "a"))],
        );
        assert_eq!(
            done,
            vec!["send [1]: 🟧 <b>HIGH</b> performance / latency_spike"]
        );
        // A reminder within the cool-down is held back; after it, one is sent.
        let early = run(
            &policy,
            &mut state,
            at(10),
            &[(0, of(AlertEvent::Reminder, 1, "a"))],
        );
        assert_eq!(early, vec!["hold [0]"]);
        let due = run(
            &policy,
            &mut state,
            at(31),
            &[(0, of(AlertEvent::Reminder, 1, "a"))],
        );
        assert_eq!(due.len(), 1);
        assert!(
            due[0].starts_with("send [0]: 🟧 <b>Still firing</b>"),
            "{due:?}"
        );
        let again = run(
            &policy,
            &mut state,
            at(40),
            &[(0, of(AlertEvent::Reminder, 1, "a"))],
        );
        assert_eq!(again, vec!["hold [0]"]);
    }

    #[test]
    fn escalation_is_sent_once_per_rise() {
        let policy = Policy::default();
        let mut state = PolicyState::default();
        run(
            &policy,
            &mut state,
            at(0),
            &[(1, of(AlertEvent::Opened, 1, "a"))],
        );
        let mut up = of(AlertEvent::Escalated, 1, "a");
        up.severity = Severity::Critical;
        let done = run(&policy, &mut state, at(2), &[(2, up.clone())]);
        assert!(
            done[0].starts_with("send [2]: 🟥 <b>Escalated to CRITICAL</b>"),
            "{done:?}"
        );
        assert_eq!(
            run(&policy, &mut state, at(3), &[(3, up)]),
            vec!["hold [3]"]
        );
    }

    #[test]
    fn flapping_is_held_back_to_one_message_per_cooldown_and_counted() {
        let policy = Policy::default();
        let mut state = PolicyState::default();
        let mut log = Vec::new();
        // Fires and recovers every five minutes: a new row each time (the old one resolved).
        for i in 0..6u128 {
            let minute = i as i64 * 5;
            log.extend(run(
                &policy,
                &mut state,
                at(minute),
                &[(2 * i as i64, of(AlertEvent::Opened, i, "a"))],
            ));
            log.extend(run(
                &policy,
                &mut state,
                at(minute + 2),
                &[(2 * i as i64 + 1, of(AlertEvent::Resolved, i, "a"))],
            ));
        }
        let sent: Vec<&String> = log.iter().filter(|l| l.starts_with("send")).collect();
        assert_eq!(
            sent.len(),
            2,
            "the first opening and its resolution only: {log:#?}"
        );
        // Past the cool-down the next opening is sent, and says what was held back.
        let plan = policy.plan(at(31), &[(20, of(AlertEvent::Opened, 9, "a"))], &state);
        let Delivery::Send { text, .. } = &plan.deliveries[0] else {
            panic!("{plan:?}")
        };
        assert!(
            text.ends_with(
                "<i>10 more alerts of this incident were held back since the last message</i>"
            ),
            "{text}"
        );
    }

    #[test]
    fn a_storm_becomes_one_digest_and_its_state_is_per_incident() {
        let policy = Policy::default();
        let mut state = PolicyState::default();
        let batch: Vec<(i64, Alert)> = (0..20)
            .map(|i| (i as i64, of(AlertEvent::Opened, i, &format!("fp{i}"))))
            .collect();
        let done = run(&policy, &mut state, at(0), &batch);
        assert_eq!(done.len(), 1, "{done:?}");
        assert!(done[0].starts_with("send [0, 1, 2"), "{done:?}");
        assert!(done[0].contains("20 new anomalies"), "{done:?}");
        assert_eq!(state.incidents.len(), 20);
        assert!(state.incidents.values().all(|s| s.announced));
        // Five at once is not a storm.
        let few: Vec<(i64, Alert)> = (0..5)
            .map(|i| {
                (
                    100 + i as i64,
                    of(AlertEvent::Opened, 100 + i, &format!("new{i}")),
                )
            })
            .collect();
        assert_eq!(
            run(&policy, &mut PolicyState::default(), at(0), &few).len(),
            5
        );
    }

    #[test]
    fn a_resolution_is_announced_only_when_the_opening_was() {
        let policy = Policy::default();
        let mut state = PolicyState::default();
        let unknown = run(
            &policy,
            &mut state,
            at(0),
            &[(1, of(AlertEvent::Resolved, 5, "z"))],
        );
        assert_eq!(unknown, vec!["hold [1]"]);
        run(
            &policy,
            &mut state,
            at(0),
            &[(2, of(AlertEvent::Opened, 6, "y"))],
        );
        let done = run(
            &policy,
            &mut state,
            at(1),
            &[(3, of(AlertEvent::Resolved, 6, "y"))],
        );
        assert!(
            done[0].starts_with("send [3]: ✅ <b>Resolved</b>"),
            "{done:?}"
        );
    }

    #[test]
    fn a_failed_send_changes_nothing() {
        let policy = Policy::default();
        let state = PolicyState::default();
        let batch = [(1, of(AlertEvent::Opened, 1, "a"))];
        let first = policy.plan(at(0), &batch, &state);
        // Not applied (the send failed): the retry plans the same message.
        assert_eq!(
            policy.plan(at(1), &batch, &state).deliveries.len(),
            first.deliveries.len()
        );
        assert!(matches!(
            policy.plan(at(1), &batch, &state).deliveries[0],
            Delivery::Send { .. }
        ));
    }

    /// An incident alert of incident `row` (`incident:<row>`), its origins in the order named.
    fn inc(event: AlertEvent, row: u128, origins: &[&str]) -> Alert {
        let mut a = incident(event);
        a.anomaly_id = Uuid::from_u128(row);
        a.fingerprint = format!("incident:{row}");
        let template = a.incident.as_ref().unwrap().origins[0].clone();
        a.incident.as_mut().unwrap().origins = origins
            .iter()
            .map(|s| AlertOrigin {
                service: (*s).into(),
                ..template.clone()
            })
            .collect();
        a
    }

    fn reason(plan: &Plan) -> &str {
        match &plan.deliveries[..] {
            [Delivery::HoldBack { reason, .. }] => reason,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_origin_change_is_sent_once_without_waiting_for_the_cooldown() {
        let policy = Policy::default();
        let mut state = PolicyState::default();
        let opened = run(
            &policy,
            &mut state,
            at(0),
            &[(1, inc(AlertEvent::Opened, 1, &["payments"]))],
        );
        assert_eq!(opened, vec!["send [1]: 🟧 <b>Incident opened</b> · HIGH"]);
        // Within the cool-down, a new leading origin is news.
        let moved = inc(AlertEvent::OriginChanged, 1, &["postgres", "payments"]);
        let plan = policy.plan(at(2), &[(2, moved.clone())], &state);
        let [Delivery::Send { text, .. }] = &plan.deliveries[..] else {
            panic!("{plan:?}")
        };
        assert!(
            text.starts_with(
                "🟧 <b>Incident: probable origin changed</b> · HIGH\n\
                 Probable origin: <b>postgres</b> · <code>POST /charge</code>\n"
            ),
            "{text}"
        );
        assert!(text.contains("Also possible: <b>payments</b>"), "{text}");
        state.apply(&plan.deliveries[0], at(2));
        // The same origin again (a repeated entry) is not sent twice.
        let again = policy.plan(at(3), &[(3, moved)], &state);
        assert_eq!(
            reason(&again),
            "its probable origin postgres POST /charge was announced already"
        );
        // Back to the first origin: that is a change from what was announced last.
        let back = run(
            &policy,
            &mut state,
            at(4),
            &[(4, inc(AlertEvent::OriginChanged, 1, &["payments"]))],
        );
        assert_eq!(
            back,
            vec!["send [4]: 🟧 <b>Incident: probable origin changed</b> · HIGH"]
        );
        // An escalation that names the current origin announces it too.
        let mut up = inc(AlertEvent::Escalated, 1, &["auth"]);
        up.severity = Severity::Critical;
        run(&policy, &mut state, at(5), &[(5, up)]);
        assert_eq!(
            state.incidents["incident:1"].origin.as_deref(),
            Some("auth POST /charge")
        );
        let same = policy.plan(
            at(6),
            &[(6, inc(AlertEvent::OriginChanged, 1, &["auth"]))],
            &state,
        );
        assert!(reason(&same).contains("announced already"), "{same:?}");
    }

    #[test]
    fn an_origin_change_of_an_incident_held_back_as_flapping_is_held_back_too() {
        let policy = Policy::default();
        let mut state = PolicyState::default();
        // Opens, resolves, and opens again within the cool-down: the second opening is held back.
        let mut log = run(
            &policy,
            &mut state,
            at(0),
            &[(1, inc(AlertEvent::Opened, 7, &["a"]))],
        );
        log.extend(run(
            &policy,
            &mut state,
            at(1),
            &[(2, inc(AlertEvent::Resolved, 7, &["a"]))],
        ));
        log.extend(run(
            &policy,
            &mut state,
            at(2),
            &[(3, inc(AlertEvent::Opened, 7, &["a"]))],
        ));
        assert_eq!(log.last().unwrap(), "hold [3]", "{log:?}");
        let plan = policy.plan(
            at(3),
            &[(4, inc(AlertEvent::OriginChanged, 7, &["b"]))],
            &state,
        );
        assert_eq!(reason(&plan), "its opening was held back as flapping");
        state.apply(&plan.deliveries[0], at(3));
        // As with an escalation: once the cool-down is over, the change is sent and says what was held.
        let plan = policy.plan(
            at(40),
            &[(5, inc(AlertEvent::OriginChanged, 7, &["c"]))],
            &state,
        );
        let [Delivery::Send { text, .. }] = &plan.deliveries[..] else {
            panic!("{plan:?}")
        };
        assert!(text.contains("Probable origin: <b>c</b>"), "{text}");
        assert!(
            text.ends_with(
                "<i>2 more alerts of this incident were held back since the last message</i>"
            ),
            "{text}"
        );
        state.apply(&plan.deliveries[0], at(40));
        assert!(state.incidents["incident:7"].announced);
    }

    #[test]
    fn an_incident_is_announced_once_and_its_resolution_once_after_it() {
        let policy = Policy::default();
        let mut state = PolicyState::default();
        let early = run(
            &policy,
            &mut state,
            at(0),
            &[(1, inc(AlertEvent::Resolved, 3, &["a"]))],
        );
        assert_eq!(early, vec!["hold [1]"]);
        let done = run(
            &policy,
            &mut state,
            at(1),
            &[
                (2, inc(AlertEvent::Opened, 3, &["a"])),
                (3, inc(AlertEvent::Opened, 3, &["a"])),
            ],
        );
        assert_eq!(
            done,
            vec!["send [2]: 🟧 <b>Incident opened</b> · HIGH", "hold [3]"]
        );
        // A reminder waits for the cool-down.
        let reminder = [(-1, inc(AlertEvent::Reminder, 3, &["a"]))];
        assert_eq!(
            run(&policy, &mut state, at(10), &reminder),
            vec!["hold [-1]"]
        );
        assert_eq!(
            run(&policy, &mut state, at(32), &reminder),
            vec!["send [-1]: 🟧 <b>Incident still open</b> · HIGH"]
        );
        let resolved = [(4, inc(AlertEvent::Resolved, 3, &["a"]))];
        assert_eq!(
            run(&policy, &mut state, at(33), &resolved),
            vec!["send [4]: ✅ <b>Incident resolved</b> · HIGH"]
        );
        assert_eq!(
            run(&policy, &mut state, at(34), &resolved),
            vec!["hold [4]"]
        );
    }

    #[test]
    fn a_storm_of_incident_openings_becomes_one_digest_naming_their_origins() {
        let policy = Policy::default();
        let mut state = PolicyState::default();
        let batch: Vec<(i64, Alert)> = (0..7u128)
            .map(|i| {
                (
                    i as i64,
                    inc(AlertEvent::Opened, 100 + i, &[&format!("origin-{i}")]),
                )
            })
            .collect();
        let plan = policy.plan(at(0), &batch, &state);
        let [
            Delivery::Send {
                text,
                outbox_ids,
                effects,
            },
        ] = &plan.deliveries[..]
        else {
            panic!("{plan:?}")
        };
        assert_eq!(outbox_ids, &(0..7).collect::<Vec<i64>>());
        assert_eq!(effects.len(), 7);
        assert!(
            text.starts_with("🚨 <b>7 new incidents</b> (7 HIGH)\n"),
            "{text}"
        );
        for i in 0..7 {
            assert!(
                text.contains(&format!(
                    "probable origin <b>origin-{i}</b> · <code>POST /charge</code>"
                )),
                "{i}: {text}"
            );
        }
        state.apply(&plan.deliveries[0], at(0));
        assert_eq!(state.incidents.len(), 7);
        assert!(state.incidents.values().all(|s| s.announced));
        assert_eq!(
            state.incidents["incident:103"].origin.as_deref(),
            Some("origin-3 POST /charge")
        );
        // Their resolutions, all at once, become one digest too.
        let resolutions: Vec<(i64, Alert)> = (0..7u128)
            .map(|i| {
                (
                    10 + i as i64,
                    inc(AlertEvent::Resolved, 100 + i, &[&format!("origin-{i}")]),
                )
            })
            .collect();
        let done = run(&policy, &mut state, at(5), &resolutions);
        assert_eq!(done.len(), 1, "{done:?}");
        assert!(
            done[0].contains("✅ <b>7 incidents resolved</b>"),
            "{done:?}"
        );
    }
}
