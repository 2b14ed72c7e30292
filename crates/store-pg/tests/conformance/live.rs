//! The live-event cases of the conformance suite: every write of an anomaly or an incident, through
//! any method, adds one event to the journal, read back in order with its subject.

use super::{at, detection};
use crate::incidents::incident;
use detect_core::Severity;
use store_pg::{InsertOutcome, LiveEventKind, LiveSubject, Repository, RetentionSettings};
use uuid::Uuid;

/// `(kind, subject id, "anomaly"|"incident")` of the events after `after`.
async fn events_after<R: Repository>(
    store: &R,
    after: i64,
) -> Vec<(LiveEventKind, Uuid, &'static str)> {
    store
        .live_events_after(after, 1_000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| match e.subject {
            LiveSubject::Anomaly(a) => (e.kind, a.id, "anomaly"),
            LiveSubject::Incident(i) => (e.kind, i.id, "incident"),
            LiveSubject::Gone(id) => (e.kind, id, "gone"),
        })
        .collect()
}

pub async fn every_write_of_an_anomaly_or_incident_is_one_live_event<R: Repository>(store: &R) {
    let start = store.live_event_bounds().await.unwrap();
    assert_eq!(start.latest, 0, "a new store has no events");

    let [InsertOutcome::Inserted(id)] = store
        .insert_anomalies(&[detection("live-1", 1, Severity::High)])
        .await
        .unwrap()[..]
    else {
        panic!("inserted")
    };
    // The same detection again changes nothing: no event. A repeat adds an occurrence: updated.
    store
        .insert_anomalies(&[detection("live-1", 1, Severity::High)])
        .await
        .unwrap();
    store
        .insert_anomalies(&[detection("live-1", 2, Severity::High)])
        .await
        .unwrap();
    let mut incident = incident(7, 1, Severity::High, &["cart"]);
    incident.anomaly_ids = vec![id];
    store
        .record_incidents(std::slice::from_ref(&incident))
        .await
        .unwrap();
    // Written again unchanged: no event.
    store
        .record_incidents(std::slice::from_ref(&incident))
        .await
        .unwrap();
    // Resolving the incident resolves its anomaly too.
    store
        .resolve_incident(incident.id, Some("rolled back"), "ops")
        .await
        .unwrap();

    let events = events_after(store, 0).await;
    assert_eq!(
        events[..3],
        [
            (LiveEventKind::New, id, "anomaly"),
            (LiveEventKind::Updated, id, "anomaly"),
            (LiveEventKind::Updated, incident.id, "incident"),
        ],
        "new, repeated, incident opened: {events:?}"
    );
    // One transaction resolves the incident and its anomaly, in an order of its own.
    let mut resolutions = events[3..].to_vec();
    resolutions.sort_by_key(|(_, _, subject)| *subject);
    assert_eq!(
        resolutions,
        [
            (LiveEventKind::Resolved, id, "anomaly"),
            (LiveEventKind::Resolved, incident.id, "incident"),
        ]
    );
    let all = store.live_events_after(0, 1_000).await.unwrap();
    assert!(all.windows(2).all(|w| w[0].seq < w[1].seq), "ascending");
    let bounds = store.live_event_bounds().await.unwrap();
    assert_eq!((bounds.oldest, bounds.latest), (all[0].seq, all[4].seq));
    // Reading after an event gives what follows it, and a limit is kept.
    assert_eq!(events_after(store, all[2].seq).await.len(), 2);
    assert_eq!(store.live_events_after(0, 2).await.unwrap().len(), 2);
    // The subject is read as it stands now.
    let LiveSubject::Anomaly(first) = &all[0].subject else {
        panic!("an anomaly")
    };
    assert!(first.resolved, "read now, after its resolution");
}

pub async fn retention_keeps_the_newest_live_events<R: Repository>(store: &R) {
    for minute in 0..7 {
        store
            .insert_anomalies(&[detection(&format!("live-{minute}"), minute, Severity::Low)])
            .await
            .unwrap();
    }
    let settings = RetentionSettings {
        live_events: 3,
        batch_rows: 2,
        ..RetentionSettings::default()
    };
    let report = store.apply_retention(&settings, at(0)).await.unwrap();
    assert_eq!(report.live_events, 4);
    let left = store.live_events_after(0, 1_000).await.unwrap();
    assert_eq!(left.len(), 3);
    let bounds = store.live_event_bounds().await.unwrap();
    assert_eq!((bounds.oldest, bounds.latest), (left[0].seq, left[2].seq));
    assert_eq!(bounds.latest, 7);
}
