//! The incident cases of the conformance suite.

use super::{at, detection};
use detect_core::Severity;
use store_pg::{
    AnomalyFilter, IncidentFilter, IncidentStatus, InsertOutcome, NewIncident, OriginJson,
    Repository, StoreError,
};
use uuid::Uuid;

fn origin(service: &str) -> OriginJson {
    OriginJson {
        service_name: service.into(),
        operation: Some("GET /pay".into()),
        score: 2.5,
        evidence: format!("{service}: own time ×5.8 (p99 41 ms → 240 ms)"),
    }
}

/// Incident `n` of `services` starting at `minute`, with `origin` first, paging when HIGH or more.
pub(crate) fn incident(n: u128, minute: i64, severity: Severity, services: &[&str]) -> NewIncident {
    NewIncident {
        id: Uuid::from_u128(n),
        fingerprint: format!("fp-{n}"),
        severity,
        title: format!("{}: latency degradation", services[0]),
        client: None,
        started_at: at(minute),
        last_seen_at: at(minute + 1),
        ended_at: None,
        origins: vec![origin(services[0])],
        services: services.iter().map(|s| s.to_string()).collect(),
        calls: Vec::new(),
        anomaly_count: 1,
        detections: 1,
        example_trace_ids: vec![format!("{:032x}", n)],
        absorbed: Vec::new(),
        anomaly_ids: Vec::new(),
        notify: severity >= Severity::High,
    }
}

async fn row_of<R: Repository>(store: &R, fingerprint: &str, minute: i64) -> Uuid {
    match store
        .insert_anomalies(&[detection(fingerprint, minute, Severity::High)])
        .await
        .unwrap()[..]
    {
        [InsertOutcome::Inserted(id)] | [InsertOutcome::Merged(id)] => id,
        ref other => panic!("stored: {other:?}"),
    }
}

/// The events of the alerts queued for incidents, in order (claimed, so each is seen once).
async fn incident_alerts<R: Repository>(store: &R) -> Vec<(Uuid, String)> {
    store
        .claim_outbox("test", 500, std::time::Duration::from_secs(600))
        .await
        .unwrap()
        .into_iter()
        .filter_map(|item| item.incident_id.map(|id| (id, item.event)))
        .collect()
}

pub async fn an_incident_round_trips_names_its_anomalies_and_writing_it_again_changes_nothing<
    R: Repository,
>(
    store: &R,
) {
    let rows = [
        row_of(store, "fp-a", 1).await,
        row_of(store, "fp-b", 1).await,
    ];
    let mut new = incident(1, 1, Severity::High, &["payment", "checkout"]);
    new.anomaly_ids = rows.to_vec();
    new.anomaly_count = 2;
    store
        .record_incidents(std::slice::from_ref(&new))
        .await
        .unwrap();
    let stored = store.get_incident(new.id).await.unwrap();
    assert_eq!(stored.status, IncidentStatus::Open);
    assert_eq!(stored.severity, Severity::High);
    assert_eq!(stored.started_at, at(1));
    assert_eq!(stored.leading_origin(), Some("payment"));
    assert_eq!(stored.services, serde_json::json!(["payment", "checkout"]));
    assert_eq!(stored.anomaly_count, 2);
    let json = serde_json::to_value(&stored).unwrap();
    assert_eq!(json["started_at"], "2026-01-05T00:01:00.000Z");
    assert_eq!(json["origins"][0]["evidence"], new.origins[0].evidence);
    assert!(json.get("alerted").is_none(), "internal");
    for row in rows {
        assert_eq!(
            store.get_anomaly(row).await.unwrap().incident_id,
            Some(new.id)
        );
    }
    let filter = AnomalyFilter {
        incident_id: Some(new.id),
        ..AnomalyFilter::default()
    };
    assert_eq!(
        store
            .list_anomalies(&filter, 10, None)
            .await
            .unwrap()
            .items
            .len(),
        2
    );
    assert_eq!(
        incident_alerts(store).await,
        vec![(new.id, "opened".into())]
    );

    // A re-run writes the same state: no second row, no second alert.
    store
        .record_incidents(std::slice::from_ref(&new))
        .await
        .unwrap();
    let page = store
        .list_incidents(&IncidentFilter::default(), 10, None)
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0], stored);
    assert!(incident_alerts(store).await.is_empty());
}

pub async fn an_incident_alerts_its_escalation_origin_change_and_resolution_once<R: Repository>(
    store: &R,
) {
    let quiet = incident(2, 1, Severity::Medium, &["payment"]);
    store
        .record_incidents(std::slice::from_ref(&quiet))
        .await
        .unwrap();
    assert!(
        incident_alerts(store).await.is_empty(),
        "MEDIUM does not page"
    );

    let mut high = quiet.clone();
    (high.severity, high.notify) = (Severity::High, true);
    let mut critical = high.clone();
    critical.severity = Severity::Critical;
    let mut moved = critical.clone();
    moved.origins.insert(0, origin("db"));
    let mut ended = moved.clone();
    ended.ended_at = Some(at(7));
    for step in [&high, &high, &critical, &moved, &moved, &ended, &ended] {
        store
            .record_incidents(std::slice::from_ref(step))
            .await
            .unwrap();
    }
    let events: Vec<String> = incident_alerts(store)
        .await
        .into_iter()
        .map(|(_, e)| e)
        .collect();
    assert_eq!(
        events,
        ["opened", "escalated", "origin_changed", "resolved"]
    );
    let stored = store.get_incident(quiet.id).await.unwrap();
    assert_eq!(stored.status, IncidentStatus::Resolved);
    assert_eq!(stored.resolved_by.as_deref(), Some("tracewatch"));
    assert_eq!(stored.ended_at, Some(at(7)));
    assert_eq!(stored.leading_origin(), Some("db"));
}

pub async fn a_merged_incident_hands_its_anomalies_over<R: Repository>(store: &R) {
    let (a_row, b_row) = (
        row_of(store, "fp-a", 1).await,
        row_of(store, "fp-b", 1).await,
    );
    let mut a = incident(3, 1, Severity::High, &["checkout"]);
    a.anomaly_ids = vec![a_row];
    let mut b = incident(4, 1, Severity::High, &["db"]);
    b.anomaly_ids = vec![b_row];
    store
        .record_incidents(&[a.clone(), b.clone()])
        .await
        .unwrap();
    assert_eq!(incident_alerts(store).await.len(), 2);

    let mut merged = a.clone();
    merged.absorbed = vec![b.id];
    merged.anomaly_ids = Vec::new();
    merged.services = vec!["checkout".into(), "db".into()];
    store.record_incidents(&[merged]).await.unwrap();
    let gone = store.get_incident(b.id).await.unwrap();
    assert_eq!(gone.status, IncidentStatus::Merged);
    assert_eq!(gone.merged_into, Some(a.id));
    assert_eq!(
        store.get_anomaly(b_row).await.unwrap().incident_id,
        Some(a.id)
    );
    let open = IncidentFilter {
        status: Some(IncidentStatus::Open),
        ..IncidentFilter::default()
    };
    let ids: Vec<Uuid> = store
        .list_incidents(&open, 10, None)
        .await
        .unwrap()
        .items
        .iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(ids, [a.id]);
    assert!(
        incident_alerts(store).await.is_empty(),
        "a merge is not a page"
    );
}

pub async fn resolving_an_incident_resolves_its_anomalies_and_twice_is_a_conflict<R: Repository>(
    store: &R,
) {
    let row = row_of(store, "fp-r", 1).await;
    let mut new = incident(5, 1, Severity::Critical, &["payment"]);
    new.anomaly_ids = vec![row];
    store
        .record_incidents(std::slice::from_ref(&new))
        .await
        .unwrap();
    incident_alerts(store).await;
    let resolved = store
        .resolve_incident(new.id, Some("rolled back"), "alice")
        .await
        .unwrap();
    assert_eq!(resolved.status, IncidentStatus::Resolved);
    assert_eq!(resolved.resolved_by.as_deref(), Some("alice"));
    assert_eq!(resolved.resolution_notes.as_deref(), Some("rolled back"));
    let anomaly = store.get_anomaly(row).await.unwrap();
    assert!(anomaly.resolved);
    assert_eq!(anomaly.resolved_by.as_deref(), Some("alice"));
    assert_eq!(
        incident_alerts(store).await,
        vec![(new.id, "resolved".into())]
    );
    let again = store.resolve_incident(new.id, None, "bob").await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    assert_eq!(
        store
            .get_incident(new.id)
            .await
            .unwrap()
            .resolved_by
            .as_deref(),
        Some("alice"),
        "the first resolution stays"
    );
    // Later writes of the tracker do not reopen what a person resolved.
    store
        .record_incidents(std::slice::from_ref(&new))
        .await
        .unwrap();
    assert_eq!(
        store.get_incident(new.id).await.unwrap().status,
        IncidentStatus::Resolved
    );
    assert!(matches!(
        store
            .resolve_incident(Uuid::from_u128(99), None, "bob")
            .await,
        Err(StoreError::NotFound { .. })
    ));
}

pub async fn incidents_list_newest_first_with_filters_and_pages<R: Repository>(store: &R) {
    let mut all = Vec::new();
    for n in 0..7u128 {
        let severity = if n % 2 == 0 {
            Severity::High
        } else {
            Severity::Low
        };
        let services: &[&str] = if n < 3 { &["cart"] } else { &["db", "payment"] };
        let mut new = incident(10 + n, n as i64, severity, services);
        let row = row_of(store, &format!("fp-list-{n}"), n as i64).await;
        new.anomaly_ids = vec![row];
        all.push(new);
    }
    store.record_incidents(&all).await.unwrap();
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .list_incidents(&IncidentFilter::default(), 3, cursor)
            .await
            .unwrap();
        seen.extend(page.items.iter().map(|i| i.started_at));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let newest_first: Vec<_> = (0..7).rev().map(at).collect();
    assert_eq!(seen, newest_first);
    let count = async |filter: IncidentFilter| {
        store
            .list_incidents(&filter, 100, None)
            .await
            .unwrap()
            .items
            .len()
    };
    // The detections of the test rows are about "cart": every incident has one.
    let cart = IncidentFilter {
        service: Some("cart".into()),
        ..IncidentFilter::default()
    };
    assert_eq!(count(cart).await, 7);
    let nowhere = IncidentFilter {
        service: Some("nowhere".into()),
        ..IncidentFilter::default()
    };
    assert_eq!(count(nowhere).await, 0);
    let high = IncidentFilter {
        min_severity: Some(Severity::High),
        ..IncidentFilter::default()
    };
    assert_eq!(count(high).await, 4);
    let window = IncidentFilter {
        since: Some(at(2)),
        until: Some(at(5)),
        severity: Some(Severity::Low),
        ..IncidentFilter::default()
    };
    assert_eq!(count(window).await, 1, "minute 3 only");
}

pub async fn incidents_left_open_resolve_once_quiet<R: Repository>(store: &R) {
    let row = row_of(store, "fp-q", 1).await;
    let mut paged = incident(30, 1, Severity::High, &["payment"]);
    paged.anomaly_ids = vec![row];
    let recent = incident(31, 20, Severity::High, &["cart"]);
    store
        .record_incidents(&[paged.clone(), recent.clone()])
        .await
        .unwrap();
    incident_alerts(store).await;
    let resolved = store
        .resolve_quiet_incidents(at(10), "tracewatch", "no finding for 30 min")
        .await
        .unwrap();
    let ids: Vec<Uuid> = resolved.iter().map(|i| i.id).collect();
    assert_eq!(ids, [paged.id], "only the one quiet since before minute 10");
    assert_eq!(resolved[0].resolved_by.as_deref(), Some("tracewatch"));
    assert!(store.get_anomaly(row).await.unwrap().resolved);
    assert_eq!(
        incident_alerts(store).await,
        vec![(paged.id, "resolved".into())]
    );
    let again = store
        .resolve_quiet_incidents(at(10), "tracewatch", "again")
        .await
        .unwrap();
    assert!(again.is_empty(), "nothing twice");
    assert_eq!(
        store.get_incident(recent.id).await.unwrap().status,
        IncidentStatus::Open
    );
}
