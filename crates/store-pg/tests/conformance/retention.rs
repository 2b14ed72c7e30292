//! The retention cases of the conformance suite: what the job deletes and what it never deletes, and
//! that one process at a time runs it.

use super::detection;
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use detect_core::Severity;
use serde_json::json;
use std::time::Duration;
use store_pg::retention::{LEASE, run_under_lease};
use store_pg::{
    IncidentStatus, InsertOutcome, NewAnomaly, NewIncident, Repository, RetentionSettings,
    RunOutcome, RunStatus, RunTrigger, StoreError,
};
use uuid::Uuid;

const DAY: Duration = Duration::from_secs(24 * 60 * 60);

fn days(n: i64) -> ChronoDuration {
    ChronoDuration::days(n)
}

/// A detection of `fingerprint` in the window starting at `when` (its key names the window).
fn seen(fingerprint: &str, when: DateTime<Utc>, severity: Severity) -> NewAnomaly {
    let mut d = detection(fingerprint, 0, severity);
    d.detection_key = format!("{fingerprint}/{}", when.timestamp());
    d.detected_at = when;
    d.window_start = when;
    d.window_end = when + ChronoDuration::minutes(1);
    d
}

async fn store_row<R: Repository>(store: &R, batch: &[NewAnomaly]) -> Uuid {
    match store.insert_anomalies(batch).await.unwrap()[..] {
        [InsertOutcome::Inserted(id), ..] => id,
        ref other => panic!("stored: {other:?}"),
    }
}

/// Incident `n` last seen at `last_seen` with `anomalies`; resolved (ended) or open; paging.
fn incident(n: u128, last_seen: DateTime<Utc>, anomalies: &[Uuid], ended: bool) -> NewIncident {
    NewIncident {
        id: Uuid::from_u128(n),
        fingerprint: format!("incident-{n}"),
        severity: Severity::High,
        title: "cart: latency degradation".into(),
        client: None,
        started_at: last_seen - ChronoDuration::minutes(5),
        last_seen_at: last_seen,
        ended_at: ended.then_some(last_seen + ChronoDuration::minutes(5)),
        origins: Vec::new(),
        services: vec!["cart".into()],
        calls: Vec::new(),
        anomaly_count: anomalies.len() as i64,
        detections: anomalies.len() as i64,
        example_trace_ids: Vec::new(),
        absorbed: Vec::new(),
        anomaly_ids: anomalies.to_vec(),
        notify: true,
    }
}

/// A window run of `stream` that starts and finishes now, and its id.
async fn finished_run<R: Repository>(store: &R, stream: &str) -> Uuid {
    let at = store.clock().time();
    let window = (at - ChronoDuration::minutes(1), at);
    let run = store.start_stream_run(stream, "w", window).await.unwrap();
    let outcome = RunOutcome::succeeded(10, 1);
    store.finish_run(run.id, &outcome).await.unwrap();
    run.id
}

/// Claims and acknowledges every unsent alert (delivered now); how many.
async fn deliver_all<R: Repository>(store: &R) -> usize {
    let items = store
        .claim_outbox("sender", 500, Duration::from_secs(60))
        .await
        .unwrap();
    for item in &items {
        assert!(store.ack_outbox(item.id, "sender").await.unwrap());
    }
    items.len()
}

fn is_gone<T: std::fmt::Debug>(result: Result<T, StoreError>) -> bool {
    matches!(result, Err(StoreError::NotFound { .. }))
}

pub async fn retention_deletes_only_what_is_old_resolved_and_done<R: Repository>(store: &R) {
    let start = store.clock().time();
    // 40 days before the job: an incident resolved with its anomaly, found 60 days before that; an
    // open one; a resolved anomaly whose alerts were never delivered; runs; a configuration change.
    let old = start - days(60);
    let old_resolved_batch = [
        seen("old-resolved", old, Severity::High),
        seen(
            "old-resolved",
            old + ChronoDuration::minutes(1),
            Severity::High,
        ),
    ];
    let old_resolved = store_row(store, &old_resolved_batch).await;
    let old_open_batch = [seen("old-open", old, Severity::High)];
    let old_open = store_row(store, &old_open_batch).await;
    store
        .resolve_anomaly(old_resolved, Some("fixed"), "ops")
        .await
        .unwrap();
    let closed = incident(1, old, &[old_resolved], true);
    let open = incident(2, old, &[old_open], false);
    store.record_incidents(&[closed, open]).await.unwrap();
    let delivered = deliver_all(store).await;
    assert!(delivered >= 4, "alerts of both incidents and anomalies");
    let unsent_batch = [seen("old-unsent", old, Severity::High)];
    let old_unsent = store_row(store, &unsent_batch).await;
    store
        .resolve_anomaly(old_unsent, None, "ops")
        .await
        .unwrap();
    let old_run = finished_run(store, "old").await;
    let running = store.create_run(RunTrigger::Manual, None).await.unwrap();
    store.claim_pending_run("w").await.unwrap().unwrap();
    let pending = store.create_run(RunTrigger::Manual, None).await.unwrap();
    store
        .update_config(&json!({"sampling_ratio": 0.2}), "admin")
        .await
        .unwrap();

    store.clock().advance(40 * DAY);
    let now = store.clock().time();
    // Recent: resolved 15 and 5 days after their last finding (in an incident resolved today), open.
    let mid_batch = [seen("mid-resolved", now - days(15), Severity::Low)];
    let mid_resolved = store_row(store, &mid_batch).await;
    let recent_batch = [seen("recent-resolved", now - days(5), Severity::Low)];
    let recent_resolved = store_row(store, &recent_batch).await;
    let recent_open_batch = [seen("recent-open", now - days(1), Severity::Low)];
    let recent_open = store_row(store, &recent_open_batch).await;
    let mut recent_incident = incident(3, now - days(15), &[mid_resolved], true);
    recent_incident.notify = false;
    store.record_incidents(&[recent_incident]).await.unwrap();
    for id in [mid_resolved, recent_resolved] {
        store.resolve_anomaly(id, None, "ops").await.unwrap();
    }
    let recent_run = finished_run(store, "recent").await;

    let settings = RetentionSettings {
        config_history: 30 * DAY,
        batch_rows: 2,
        ..RetentionSettings::default()
    };
    let report = store.apply_retention(&settings, now).await.unwrap();
    assert_eq!(report.outbox, delivered as u64, "{report:?}");
    assert_eq!(
        report.detection_keys, 2,
        "the old resolved anomaly's: {report:?}"
    );
    assert_eq!(report.anomalies, 1, "{report:?}");
    assert_eq!(report.incidents, 1, "{report:?}");
    assert_eq!(report.runs, 1, "{report:?}");
    assert_eq!(report.config_history, 1, "{report:?}");

    // Gone: the old resolved anomaly and its incident, the old finished run, the old history.
    assert!(is_gone(store.get_anomaly(old_resolved).await));
    assert!(is_gone(store.get_incident(Uuid::from_u128(1)).await));
    assert!(is_gone(store.get_run(old_run).await));
    assert!(store.config_history(10).await.unwrap().is_empty());
    let config = store.load_config().await.unwrap();
    assert_eq!(config.sampling_ratio, 0.2, "the configuration itself stays");
    // Kept: open ones however old, one with an alert still to send, recent ones.
    for id in [
        old_open,
        old_unsent,
        mid_resolved,
        recent_resolved,
        recent_open,
    ] {
        store.get_anomaly(id).await.unwrap();
    }
    let open = store.get_incident(Uuid::from_u128(2)).await.unwrap();
    assert_eq!(open.status, IncidentStatus::Open);
    let recent = store.get_incident(Uuid::from_u128(3)).await.unwrap();
    assert_eq!(recent.status, IncidentStatus::Resolved);
    assert_eq!(
        store.get_run(running.id).await.unwrap().status,
        RunStatus::Running
    );
    assert_eq!(
        store.get_run(pending.id).await.unwrap().status,
        RunStatus::Pending
    );
    store.get_run(recent_run).await.unwrap();
    let unsent = store
        .claim_outbox("sender", 500, Duration::from_secs(60))
        .await
        .unwrap();
    assert!(!unsent.is_empty());
    assert!(unsent.iter().all(|i| i.anomaly_id == Some(old_unsent)));

    // Re-running the windows: every anomaly still stored still knows its detections; the deleted
    // one is found again as new.
    for batch in [
        &old_open_batch[..],
        &unsent_batch,
        &mid_batch,
        &recent_batch,
        &recent_open_batch,
    ] {
        let again = store.insert_anomalies(batch).await.unwrap();
        assert_eq!(again, vec![InsertOutcome::Duplicate], "{batch:?}");
    }
    let again = store.insert_anomalies(&old_resolved_batch).await.unwrap();
    assert!(matches!(again[0], InsertOutcome::Inserted(_)), "{again:?}");

    // A second run finds nothing more to delete.
    let report = store.apply_retention(&settings, now).await.unwrap();
    assert_eq!(report.total(), 0, "{report:?}");
}

pub async fn a_shorter_key_retention_drops_keys_before_their_anomaly<R: Repository>(store: &R) {
    let start = store.clock().time();
    let resolved_batch = [seen("resolved", start - days(5), Severity::Low)];
    let resolved = store_row(store, &resolved_batch).await;
    store.resolve_anomaly(resolved, None, "ops").await.unwrap();
    let open_batch = [seen("open", start - days(5), Severity::Low)];
    let open = store_row(store, &open_batch).await;
    store.clock().advance(10 * DAY);
    let settings = RetentionSettings {
        detection_keys: 7 * DAY,
        ..RetentionSettings::default()
    };
    let report = store
        .apply_retention(&settings, store.clock().time())
        .await
        .unwrap();
    assert_eq!(report.detection_keys, 1, "{report:?}");
    assert_eq!(report.anomalies, 0, "{report:?}");
    store.get_anomaly(resolved).await.unwrap();
    let again = store.insert_anomalies(&open_batch).await.unwrap();
    assert_eq!(
        again,
        vec![InsertOutcome::Duplicate],
        "an open row's keys stay"
    );
    // The documented trade-off of a shorter key retention: a re-run of that window stores it again.
    let again = store.insert_anomalies(&resolved_batch).await.unwrap();
    assert!(matches!(again[0], InsertOutcome::Inserted(_)), "{again:?}");
    store.get_anomaly(open).await.unwrap();
}

pub async fn one_caller_at_a_time_runs_retention<R: Repository>(store: &R) {
    let settings = RetentionSettings::default();
    let (a, b) = tokio::join!(
        run_under_lease(store, &settings, "instance-a"),
        run_under_lease(store, &settings, "instance-b"),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert!(a.is_some() != b.is_some(), "exactly one ran: {a:?} {b:?}");
    let (winner, loser) = if a.is_some() {
        ("instance-a", "instance-b")
    } else {
        ("instance-b", "instance-a")
    };
    // Within the interval nobody else runs it, even after the winner finished.
    let again = run_under_lease(store, &settings, loser).await.unwrap();
    assert!(again.is_none());
    assert!(
        !store
            .try_acquire_lease(LEASE, loser, Duration::from_secs(1))
            .await
            .unwrap()
    );
    // The holder runs it again next interval; another takes over once its lease ran out.
    assert!(
        run_under_lease(store, &settings, winner)
            .await
            .unwrap()
            .is_some()
    );
    store
        .clock()
        .advance(settings.interval + Duration::from_secs(1));
    assert!(
        run_under_lease(store, &settings, loser)
            .await
            .unwrap()
            .is_some()
    );
}
