//! One behavioural suite, run against every backend of the repository API: PostgreSQL (a fresh
//! database per test on the real server) and the embedded store.

mod common;
#[path = "conformance/incidents.rs"]
mod incidents;
#[path = "conformance/live.rs"]
mod live;
#[path = "conformance/retention.rs"]
mod retention;

use chrono::{DateTime, Duration as ChronoDuration, TimeZone, Utc};
use detect_core::{AnomalyType, Severity};
use serde_json::json;
use std::time::Duration;
use store_pg::{
    AnomalyDetails, AnomalyFilter, InsertOutcome, NewAnomaly, Repository, RunOutcome, RunStatus,
    RunTrigger, StoreError,
};

fn at(minute: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 5, 0, 0, 0).unwrap() + ChronoDuration::minutes(minute)
}

/// A detection of fingerprint `fingerprint` in window `minute`.
fn detection(fingerprint: &str, minute: i64, severity: Severity) -> NewAnomaly {
    NewAnomaly {
        detection_key: format!("{fingerprint}/{minute}"),
        fingerprint: fingerprint.into(),
        trace_id: format!("{:032x}", minute + 1),
        span_id: Some(format!("{:016x}", minute + 1)),
        anomaly_type: AnomalyType::Performance,
        anomaly_subtype: "latency_spike".into(),
        severity,
        description: format!(
            "GET /cart on cart took {} ms where 40 ms is typical",
            400 + minute
        ),
        detected_at: at(minute),
        service_name: "cart".into(),
        operation: Some("GET /cart".into()),
        client: None,
        peer_service: None,
        observed_value: 400.0 + minute as f64,
        expected_value: 40.0,
        score: 7.5,
        window_start: at(minute),
        window_end: at(minute + 1),
        details: AnomalyDetails {
            spread: 0.3,
            threshold: 3.1,
            unit: "ms".into(),
            example_trace_ids: vec![format!("{:032x}", minute + 1)],
            traceql: None,
        },
        notify: severity >= Severity::High,
    }
}

mod suite {
    use super::*;
    pub use crate::incidents::*;
    pub use crate::live::*;
    pub use crate::retention::*;

    pub async fn a_detection_round_trips<R: Repository>(store: &R) {
        let d = detection("fp-1", 3, Severity::High);
        let [InsertOutcome::Inserted(id)] = store
            .insert_anomalies(std::slice::from_ref(&d))
            .await
            .unwrap()[..]
        else {
            panic!("inserted");
        };
        let r = store.get_anomaly(id).await.unwrap();
        assert_eq!(r.trace_id, d.trace_id);
        assert_eq!(r.span_id, d.span_id);
        assert_eq!(r.anomaly_type, AnomalyType::Performance);
        assert_eq!(r.anomaly_subtype.as_deref(), Some("latency_spike"));
        assert_eq!(r.severity, Severity::High);
        assert_eq!(r.description.as_deref(), Some(d.description.as_str()));
        assert_eq!(r.detected_at, Some(at(3)));
        assert!(!r.resolved);
        assert_eq!(r.service_name.as_deref(), Some("cart"));
        assert_eq!(r.operation.as_deref(), Some("GET /cart"));
        assert_eq!(r.observed_value, Some(403.0));
        assert_eq!(r.expected_value, Some(40.0));
        assert_eq!(r.score, Some(7.5));
        assert_eq!(r.fingerprint.as_deref(), Some("fp-1"));
        assert_eq!((r.window_start, r.window_end), (Some(at(3)), Some(at(4))));
        assert_eq!(r.occurrences, 1);
        assert_eq!(r.last_seen_at, Some(at(3)));
        assert_eq!(r.details.unwrap()["unit"], "ms");
        let missing = uuid::Uuid::from_u128(7);
        assert!(matches!(
            store.get_anomaly(missing).await,
            Err(StoreError::NotFound { .. })
        ));
    }

    pub async fn processing_a_window_again_adds_nothing<R: Repository>(store: &R) {
        let batch = [
            detection("fp-a", 1, Severity::Low),
            detection("fp-b", 1, Severity::Low),
        ];
        let first = store.insert_anomalies(&batch).await.unwrap();
        assert!(
            first
                .iter()
                .all(|o| matches!(o, InsertOutcome::Inserted(_)))
        );
        let again = store.insert_anomalies(&batch).await.unwrap();
        assert_eq!(
            again,
            vec![InsertOutcome::Duplicate, InsertOutcome::Duplicate]
        );
        let page = store
            .list_anomalies(&AnomalyFilter::default(), 50, None)
            .await
            .unwrap();
        assert_eq!(page.items.len(), 2);
        assert!(page.items.iter().all(|r| r.occurrences == 1));
    }

    pub async fn an_open_row_merges_and_escalates<R: Repository>(store: &R) {
        let [InsertOutcome::Inserted(id)] = store
            .insert_anomalies(&[detection("fp-m", 1, Severity::High)])
            .await
            .unwrap()[..]
        else {
            panic!("inserted");
        };
        // Two more detections of the same fingerprint in one batch: one merge each, the second escalates.
        let outcomes = store
            .insert_anomalies(&[
                detection("fp-m", 2, Severity::Medium),
                detection("fp-m", 3, Severity::Critical),
            ])
            .await
            .unwrap();
        assert_eq!(
            outcomes,
            vec![InsertOutcome::Merged(id), InsertOutcome::Merged(id)]
        );
        let r = store.get_anomaly(id).await.unwrap();
        assert_eq!(r.occurrences, 3);
        assert_eq!(r.last_seen_at, Some(at(3)));
        assert_eq!(r.severity, Severity::Critical);
        assert_eq!(
            r.detected_at,
            Some(at(1)),
            "the row keeps its first detection time"
        );
        assert_eq!(r.window_end, Some(at(4)));
        assert_eq!(
            r.observed_value,
            Some(403.0),
            "the escalating detection explains the row"
        );
        let outbox = store
            .claim_outbox("sender", 10, Duration::from_secs(60))
            .await
            .unwrap();
        let events: Vec<&str> = outbox.iter().map(|o| o.event.as_str()).collect();
        assert_eq!(events, vec!["opened", "escalated"]);
        assert!(outbox.iter().all(|o| o.anomaly_id == Some(id)));
    }

    pub async fn a_batch_folds_the_detections_of_a_new_fingerprint<R: Repository>(store: &R) {
        // A quiet detection first, then more severe ones of the same fingerprint, in one batch: one new
        // row explained by the most severe, and one `opened` alert (no `escalated`: it is new).
        let quiet = detection("fp-f", 1, Severity::Low);
        assert!(!quiet.notify);
        let outcomes = store
            .insert_anomalies(&[
                quiet,
                detection("fp-f", 2, Severity::Critical),
                detection("fp-f", 3, Severity::High),
            ])
            .await
            .unwrap();
        let [
            InsertOutcome::Inserted(id),
            InsertOutcome::Merged(m1),
            InsertOutcome::Merged(m2),
        ] = outcomes[..]
        else {
            panic!("{outcomes:?}")
        };
        assert_eq!((m1, m2), (id, id));
        let r = store.get_anomaly(id).await.unwrap();
        assert_eq!(r.occurrences, 3);
        assert_eq!(r.severity, Severity::Critical);
        assert_eq!(r.observed_value, Some(402.0));
        assert_eq!(r.detected_at, Some(at(1)));
        assert_eq!(r.last_seen_at, Some(at(3)));
        assert_eq!(r.window_end, Some(at(4)));
        let events: Vec<String> = store
            .claim_outbox("sender", 10, Duration::from_secs(60))
            .await
            .unwrap()
            .into_iter()
            .map(|o| o.event)
            .collect();
        assert_eq!(events, vec!["opened"]);
    }

    pub async fn a_folded_row_keeps_its_first_latest_and_most_severe_traces<R: Repository>(
        store: &R,
    ) {
        // 15 detections of one fingerprint, each naming its own trace, in batches of 4, 4, 4 and 3.
        let trace = |minute: i64| format!("{:032x}", minute + 1);
        let traces = |minutes: &[i64]| minutes.iter().map(|&m| trace(m)).collect::<Vec<_>>();
        let examples = async |id| {
            let details = store.get_anomaly(id).await.unwrap().details.unwrap();
            serde_json::from_value::<Vec<String>>(details["example_trace_ids"].clone()).unwrap()
        };
        let batch: Vec<NewAnomaly> = (0..15)
            .map(|minute| detection("fp-x", minute, Severity::High))
            .collect();
        let mut outcomes = Vec::new();
        for part in batch.chunks(4) {
            outcomes.extend(store.insert_anomalies(part).await.unwrap());
        }
        let InsertOutcome::Inserted(id) = outcomes[0] else {
            panic!("{outcomes:?}");
        };
        assert!(
            outcomes[1..]
                .iter()
                .all(|o| *o == InsertOutcome::Merged(id))
        );
        let r = store.get_anomaly(id).await.unwrap();
        assert_eq!(r.occurrences, 15);
        assert_eq!(
            r.trace_id,
            trace(0),
            "the row's trace stays its first detection's"
        );
        assert_eq!(
            examples(id).await,
            traces(&[0, 1, 2, 8, 9, 10, 11, 12, 13, 14]),
            "the first 3 and the latest, once each"
        );

        // A more severe detection, with its trace and another example: they stay after the first
        // while later, less severe detections come.
        let mut peak = detection("fp-x", 20, Severity::Critical);
        peak.details.example_trace_ids.push(trace(40));
        store.insert_anomalies(&[peak]).await.unwrap();
        for part in [21..26, 26..30] {
            let later: Vec<_> = part.map(|m| detection("fp-x", m, Severity::Low)).collect();
            store.insert_anomalies(&later).await.unwrap();
        }
        let r = store.get_anomaly(id).await.unwrap();
        assert_eq!((r.occurrences, r.severity), (25, Severity::Critical));
        assert_eq!(r.trace_id, trace(0));
        assert_eq!(
            r.observed_value,
            Some(420.0),
            "the most severe explains the row"
        );
        assert_eq!(
            examples(id).await,
            traces(&[0, 1, 2, 20, 40, 25, 26, 27, 28, 29])
        );
    }

    pub async fn the_peer_service_round_trips_and_survives_merges<R: Repository>(store: &R) {
        // The client span's own time on the way to `payments`, and a fingerprint that names no peer.
        let mut wire = detection("fp-w", 1, Severity::High);
        wire.peer_service = Some("payments".into());
        let plain = detection("fp-n", 1, Severity::High);
        let [
            InsertOutcome::Inserted(wire_id),
            InsertOutcome::Inserted(plain_id),
        ] = store.insert_anomalies(&[wire, plain]).await.unwrap()[..]
        else {
            panic!("inserted");
        };
        let peer = async |id| store.get_anomaly(id).await.unwrap().peer_service;
        assert_eq!(peer(wire_id).await.as_deref(), Some("payments"));
        assert_eq!(peer(plain_id).await, None);

        // Later detections of the open row, one naming no peer and one escalating with another:
        // the row keeps the peer it named first.
        let quiet = detection("fp-w", 2, Severity::Medium);
        let mut elsewhere = detection("fp-w", 3, Severity::Critical);
        elsewhere.peer_service = Some("ledger".into());
        let outcomes = store.insert_anomalies(&[quiet, elsewhere]).await.unwrap();
        assert_eq!(
            outcomes,
            vec![
                InsertOutcome::Merged(wire_id),
                InsertOutcome::Merged(wire_id)
            ]
        );
        let r = store.get_anomaly(wire_id).await.unwrap();
        assert_eq!((r.occurrences, r.severity), (3, Severity::Critical));
        assert_eq!(r.peer_service.as_deref(), Some("payments"));

        // A row stored with no peer takes the first one a later detection names.
        let mut named = detection("fp-n", 2, Severity::Low);
        named.peer_service = Some("inventory".into());
        store.insert_anomalies(&[named]).await.unwrap();
        assert_eq!(peer(plain_id).await.as_deref(), Some("inventory"));

        // A new row folded from a batch whose first detection names no peer.
        let mut later = detection("fp-b", 2, Severity::High);
        later.peer_service = Some("search".into());
        let folded = store
            .insert_anomalies(&[detection("fp-b", 1, Severity::Low), later])
            .await
            .unwrap();
        let InsertOutcome::Inserted(folded_id) = folded[0] else {
            panic!("{folded:?}");
        };
        assert_eq!(folded[1], InsertOutcome::Merged(folded_id));
        assert_eq!(peer(folded_id).await.as_deref(), Some("search"));

        // The list shows it and filters by it.
        let page = store
            .list_anomalies(
                &AnomalyFilter {
                    peer_service: Some("payments".into()),
                    ..Default::default()
                },
                50,
                None,
            )
            .await
            .unwrap();
        let ids: Vec<_> = page.items.iter().map(|r| r.id).collect();
        assert_eq!(ids, vec![wire_id]);
        assert_eq!(page.items[0].peer_service.as_deref(), Some("payments"));
    }

    pub async fn text_search_ignores_case_beyond_ascii<R: Repository>(store: &R) {
        let mut d = detection("fp-u", 1, Severity::Low);
        d.description = "Überweisung on payments took 900 ms".into();
        store.insert_anomalies(&[d]).await.unwrap();
        for text in ["überweisung", "ÜBERWEISUNG", "PAYMENTS"] {
            let page = store
                .list_anomalies(
                    &AnomalyFilter {
                        text: Some(text.into()),
                        ..Default::default()
                    },
                    10,
                    None,
                )
                .await
                .unwrap();
            assert_eq!(page.items.len(), 1, "{text}");
        }
    }

    pub async fn a_resolved_fingerprint_that_returns_is_a_new_row<R: Repository>(store: &R) {
        let [InsertOutcome::Inserted(first)] = store
            .insert_anomalies(&[detection("fp-r", 1, Severity::Low)])
            .await
            .unwrap()[..]
        else {
            panic!("inserted");
        };
        store
            .resolve_anomaly(first, Some("fixed"), "alice")
            .await
            .unwrap();
        let [InsertOutcome::Inserted(second)] = store
            .insert_anomalies(&[detection("fp-r", 9, Severity::Low)])
            .await
            .unwrap()[..]
        else {
            panic!("a new row after resolution");
        };
        assert_ne!(first, second);
    }

    pub async fn resolving_records_who_and_twice_is_a_conflict<R: Repository>(store: &R) {
        let [InsertOutcome::Inserted(id)] = store
            .insert_anomalies(&[detection("fp-x", 1, Severity::High)])
            .await
            .unwrap()[..]
        else {
            panic!("inserted");
        };
        let r = store
            .resolve_anomaly(id, Some("rolled back the deploy"), "alice")
            .await
            .unwrap();
        assert!(r.resolved);
        assert_eq!(
            r.resolution_notes.as_deref(),
            Some("rolled back the deploy")
        );
        assert_eq!(r.resolved_by.as_deref(), Some("alice"));
        assert!(r.resolved_at.is_some());
        let again = store.resolve_anomaly(id, Some("me too"), "bob").await;
        assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
        let kept = store.get_anomaly(id).await.unwrap();
        assert_eq!(
            kept.resolution_notes.as_deref(),
            Some("rolled back the deploy")
        );
        assert_eq!(kept.resolved_by.as_deref(), Some("alice"));
        let missing = store
            .resolve_anomaly(uuid::Uuid::from_u128(9), None, "bob")
            .await;
        assert!(matches!(missing, Err(StoreError::NotFound { .. })));
        // The alerted anomaly gets a resolved notice in the outbox.
        let events: Vec<String> = store
            .claim_outbox("sender", 10, Duration::from_secs(60))
            .await
            .unwrap()
            .into_iter()
            .map(|o| o.event)
            .collect();
        assert_eq!(events, vec!["opened", "resolved"]);
    }

    pub async fn filters_combine<R: Repository>(store: &R) {
        let mut security = detection("fp-s", 5, Severity::Critical);
        security.anomaly_type = AnomalyType::Security;
        security.anomaly_subtype = "auth_failure_burst".into();
        security.service_name = "gateway".into();
        security.operation = None;
        security.description = "client 203.0.113.9 drew 50% of 401s".into();
        let batch = [
            detection("fp-1", 1, Severity::Low),
            detection("fp-2", 2, Severity::Medium),
            detection("fp-3", 3, Severity::High),
            security,
        ];
        let ids: Vec<_> = store
            .insert_anomalies(&batch)
            .await
            .unwrap()
            .into_iter()
            .map(|o| match o {
                InsertOutcome::Inserted(id) => id,
                other => panic!("{other:?}"),
            })
            .collect();
        store.resolve_anomaly(ids[2], None, "alice").await.unwrap();
        let count = |filter: AnomalyFilter| async move {
            store
                .list_anomalies(&filter, 100, None)
                .await
                .unwrap()
                .items
                .len()
        };
        assert_eq!(count(AnomalyFilter::default()).await, 4);
        assert_eq!(
            count(AnomalyFilter {
                anomaly_type: Some(AnomalyType::Security),
                ..Default::default()
            })
            .await,
            1
        );
        assert_eq!(
            count(AnomalyFilter {
                anomaly_subtype: Some("latency_spike".into()),
                ..Default::default()
            })
            .await,
            3
        );
        assert_eq!(
            count(AnomalyFilter {
                min_severity: Some(Severity::High),
                ..Default::default()
            })
            .await,
            2
        );
        assert_eq!(
            count(AnomalyFilter {
                severity: Some(Severity::Medium),
                ..Default::default()
            })
            .await,
            1
        );
        assert_eq!(
            count(AnomalyFilter {
                resolved: Some(true),
                ..Default::default()
            })
            .await,
            1
        );
        assert_eq!(
            count(AnomalyFilter {
                resolved: Some(false),
                ..Default::default()
            })
            .await,
            3
        );
        assert_eq!(
            count(AnomalyFilter {
                service: Some("gateway".into()),
                ..Default::default()
            })
            .await,
            1
        );
        assert_eq!(
            count(AnomalyFilter {
                operation: Some("GET /cart".into()),
                ..Default::default()
            })
            .await,
            3
        );
        assert_eq!(
            count(AnomalyFilter {
                since: Some(at(2)),
                until: Some(at(5)),
                ..Default::default()
            })
            .await,
            2
        );
        assert_eq!(
            count(AnomalyFilter {
                text: Some("TOOK 402".into()),
                ..Default::default()
            })
            .await,
            1
        );
        // LIKE wildcards in the search text are the characters themselves.
        assert_eq!(
            count(AnomalyFilter {
                text: Some("50%".into()),
                ..Default::default()
            })
            .await,
            1
        );
        assert_eq!(
            count(AnomalyFilter {
                text: Some("%".into()),
                ..Default::default()
            })
            .await,
            1
        );
        assert_eq!(
            count(AnomalyFilter {
                text: Some("_".into()),
                ..Default::default()
            })
            .await,
            0
        );
        assert_eq!(
            count(AnomalyFilter {
                min_severity: Some(Severity::Medium),
                resolved: Some(false),
                service: Some("cart".into()),
                ..Default::default()
            })
            .await,
            1
        );
    }

    pub async fn pages_are_newest_first_without_gaps_or_repeats<R: Repository>(store: &R) {
        // 25 anomalies, five of them at the same instant: ties are ordered by id.
        let batch: Vec<NewAnomaly> = (0..25)
            .map(|i| {
                let mut d = detection(&format!("fp-p{i}"), i.min(20), Severity::Low);
                d.detection_key = format!("page-{i}");
                d
            })
            .collect();
        store.insert_anomalies(&batch).await.unwrap();
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let page = store
                .list_anomalies(&AnomalyFilter::default(), 10, cursor)
                .await
                .unwrap();
            assert!(page.items.len() <= 10);
            seen.extend(page.items.iter().map(|r| (r.detected_at.unwrap(), r.id)));
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        assert_eq!(seen.len(), 25);
        let mut sorted = seen.clone();
        sorted.sort_by(|a, b| b.cmp(a));
        assert_eq!(seen, sorted, "newest first, then by id");
        sorted.dedup();
        assert_eq!(sorted.len(), 25);
    }

    pub async fn config_is_seeded_validated_atomic_and_kept_in_history<R: Repository>(store: &R) {
        let entries = store.config_entries().await.unwrap();
        let keys: Vec<&str> = entries.iter().map(|e| e.key.as_str()).collect();
        for key in [
            "latency_threshold_stddev",
            "error_rate_threshold",
            "throughput_spike_threshold",
            "sampling_enabled",
            "sampling_ratio",
        ] {
            assert!(keys.contains(&key), "{key} seeded: {keys:?}");
        }
        let sampling = entries.iter().find(|e| e.key == "sampling_ratio").unwrap();
        assert_eq!(sampling.value, Some(json!(0.1)));
        assert!(sampling.description.is_some());
        assert_eq!(
            store.load_config().await.unwrap(),
            detect_core::DetectionConfig::default()
        );

        let refused = store
            .update_config(
                &json!({"error_rate_threshold": 0.2, "sampling_ratio": 3}),
                "bob",
            )
            .await;
        match refused {
            Err(StoreError::InvalidConfig(e)) => assert_eq!(e.key(), Some("sampling_ratio")),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            store.load_config().await.unwrap().error_rate_threshold,
            0.05,
            "nothing half applied"
        );
        assert!(store.config_history(10).await.unwrap().is_empty());

        let updated = store
            .update_config(
                &json!({"error_rate_threshold": 0.2, "window_seconds": 120}),
                "alice",
            )
            .await
            .unwrap();
        assert_eq!(updated.error_rate_threshold, 0.2);
        assert_eq!(store.load_config().await.unwrap(), updated);
        let history = store.config_history(10).await.unwrap();
        assert_eq!(history.len(), 2);
        let change = history
            .iter()
            .find(|c| c.config_key == "error_rate_threshold")
            .unwrap();
        assert_eq!(change.old_value, Some(json!(0.05)));
        assert_eq!(change.new_value, Some(json!(0.2)));
        assert_eq!(change.changed_by, "alice");
        // Setting a key to the value it has is no change.
        store
            .update_config(&json!({"error_rate_threshold": 0.2}), "alice")
            .await
            .unwrap();
        assert_eq!(store.config_history(10).await.unwrap().len(), 2);
    }

    pub async fn baselines_survive<R: Repository>(store: &R) {
        assert_eq!(store.load_baseline("latency/cart").await.unwrap(), None);
        store
            .save_baselines(&[
                ("latency/cart".into(), json!({"mean": 3.1})),
                ("rates/cart".into(), json!([1, 2])),
            ])
            .await
            .unwrap();
        store
            .save_baselines(&[("latency/cart".into(), json!({"mean": 3.2}))])
            .await
            .unwrap();
        assert_eq!(
            store.load_baseline("latency/cart").await.unwrap(),
            Some(json!({"mean": 3.2}))
        );
        assert_eq!(
            store.load_baseline("rates/cart").await.unwrap(),
            Some(json!([1, 2]))
        );
    }

    pub async fn runs_are_claimed_once<R: Repository>(store: &R) {
        // A worker's own record of a scheduled window is never handed to anyone else.
        let scheduled = store
            .create_run(RunTrigger::Scheduled, Some((at(0), at(1))))
            .await
            .unwrap();
        let run = store
            .create_run(RunTrigger::Manual, Some((at(0), at(5))))
            .await
            .unwrap();
        assert_eq!(run.status, RunStatus::Pending);
        assert_eq!(run.window_start, Some(at(0)));
        let claimed = store.claim_pending_run("worker-1").await.unwrap().unwrap();
        assert_eq!(claimed.id, run.id);
        assert_eq!(claimed.status, RunStatus::Running);
        assert_eq!(claimed.worker.as_deref(), Some("worker-1"));
        assert!(store.claim_pending_run("worker-2").await.unwrap().is_none());
        assert_eq!(
            store.get_run(scheduled.id).await.unwrap().status,
            RunStatus::Pending
        );
        let done = store
            .finish_run(
                run.id,
                &RunOutcome::succeeded(1_000, 3).with_count_source("traceql-metrics"),
            )
            .await
            .unwrap();
        assert_eq!(
            (done.status, done.spans, done.anomalies),
            (RunStatus::Succeeded, 1_000, 3)
        );
        assert_eq!(done.count_source.as_deref(), Some("traceql-metrics"));
        assert!(done.finished_at.is_some());
        assert_eq!(store.get_run(run.id).await.unwrap(), done);
        let recent = store.recent_runs(10).await.unwrap();
        assert_eq!(
            recent.iter().map(|r| r.id).collect::<Vec<_>>(),
            vec![run.id, scheduled.id],
            "newest first"
        );
        assert_eq!(store.recent_runs(1).await.unwrap().len(), 1);
        let bad = store
            .create_run(RunTrigger::Scheduled, Some((at(5), at(5))))
            .await;
        assert!(matches!(bad, Err(StoreError::Invalid(_))), "{bad:?}");
        assert!(matches!(
            store.get_run(uuid::Uuid::from_u128(1)).await,
            Err(StoreError::NotFound { .. })
        ));
    }

    pub async fn a_stream_run_left_running_is_abandoned_by_the_next<R: Repository>(store: &R) {
        let first = store
            .start_stream_run("tempo:windows", "worker-1", (at(0), at(1)))
            .await
            .unwrap();
        assert_eq!(first.status, RunStatus::Running);
        assert_eq!(first.trigger, RunTrigger::Scheduled);
        assert_eq!(first.stream.as_deref(), Some("tempo:windows"));
        assert_eq!(first.worker.as_deref(), Some("worker-1"));
        assert!(first.started_at.is_some());
        // Another stream's run is not touched by this one's next holder.
        let other = store
            .start_stream_run("tempo:windows:1-of-2", "worker-3", (at(0), at(1)))
            .await
            .unwrap();
        // worker-1 died mid-window; worker-2 takes the stream and starts the same window again.
        let second = store
            .start_stream_run("tempo:windows", "worker-2", (at(0), at(1)))
            .await
            .unwrap();
        let abandoned = store.get_run(first.id).await.unwrap();
        assert_eq!(abandoned.status, RunStatus::Failed);
        assert!(
            abandoned.error.as_deref().unwrap().starts_with("abandoned"),
            "{abandoned:?}"
        );
        assert!(abandoned.finished_at.is_some());
        assert_eq!(
            store.get_run(other.id).await.unwrap().status,
            RunStatus::Running
        );
        assert_eq!(
            store.get_run(second.id).await.unwrap().status,
            RunStatus::Running
        );
        // A finished run is never abandoned afterwards.
        store
            .finish_run(second.id, &RunOutcome::succeeded(10, 0))
            .await
            .unwrap();
        store
            .start_stream_run("tempo:windows", "worker-2", (at(1), at(2)))
            .await
            .unwrap();
        assert_eq!(
            store.get_run(second.id).await.unwrap().status,
            RunStatus::Succeeded
        );
        let backwards = store
            .start_stream_run("tempo:windows", "worker-2", (at(2), at(1)))
            .await;
        assert!(
            matches!(backwards, Err(StoreError::Invalid(_))),
            "{backwards:?}"
        );
    }

    pub async fn the_summary_counts_open_by_severity_and_hours_by_type<R: Repository>(store: &R) {
        store
            .insert_anomalies(&[
                detection("fp-s1", 1, Severity::High),
                detection("fp-s2", 2, Severity::High),
                detection("fp-s3", 70, Severity::Critical),
                detection("fp-s4", 75, Severity::Low),
            ])
            .await
            .unwrap();
        let low = store
            .list_anomalies(
                &AnomalyFilter {
                    severity: Some(Severity::Low),
                    ..AnomalyFilter::default()
                },
                10,
                None,
            )
            .await
            .unwrap();
        store
            .resolve_anomaly(low.items[0].id, None, "test")
            .await
            .unwrap();
        let summary = store.anomaly_summary(at(0)).await.unwrap();
        let mut open = summary.open_by_severity.clone();
        open.sort();
        assert_eq!(open, vec![("CRITICAL".into(), 1), ("HIGH".into(), 2)]);
        assert_eq!(
            summary.hourly,
            vec![
                (at(0), "PERFORMANCE".into(), 2),
                (at(60), "PERFORMANCE".into(), 2)
            ]
        );
        let later = store.anomaly_summary(at(61)).await.unwrap();
        assert_eq!(later.hourly, vec![(at(60), "PERFORMANCE".into(), 2)]);
    }

    pub async fn leases_expire_and_belong_to_their_holder<R: Repository>(store: &R) {
        let ttl = Duration::from_secs(30);
        assert!(
            store
                .try_acquire_lease("window/5", "w1", ttl)
                .await
                .unwrap()
        );
        assert!(
            !store
                .try_acquire_lease("window/5", "w2", ttl)
                .await
                .unwrap()
        );
        assert!(
            store
                .try_acquire_lease("window/5", "w1", ttl)
                .await
                .unwrap(),
            "the holder renews"
        );
        store.release_lease("window/5", "w2").await.unwrap();
        assert!(
            !store
                .try_acquire_lease("window/5", "w2", ttl)
                .await
                .unwrap(),
            "only the holder releases"
        );
        store.clock().advance(Duration::from_secs(31));
        assert!(
            store
                .try_acquire_lease("window/5", "w2", ttl)
                .await
                .unwrap(),
            "an expired lease is free"
        );
        store.release_lease("window/5", "w2").await.unwrap();
        assert!(
            store
                .try_acquire_lease("window/5", "w3", ttl)
                .await
                .unwrap()
        );
    }

    pub async fn cursors_move_only_from_where_they_are<R: Repository>(store: &R) {
        assert_eq!(store.get_cursor("tempo").await.unwrap(), None);
        assert!(store.advance_cursor("tempo", None, at(1)).await.unwrap());
        assert!(
            !store.advance_cursor("tempo", None, at(2)).await.unwrap(),
            "exists already"
        );
        assert!(
            !store
                .advance_cursor("tempo", Some(at(0)), at(2))
                .await
                .unwrap(),
            "not where expected"
        );
        assert!(
            store
                .advance_cursor("tempo", Some(at(1)), at(2))
                .await
                .unwrap()
        );
        assert_eq!(store.get_cursor("tempo").await.unwrap(), Some(at(2)));
    }

    pub async fn the_outbox_hands_each_alert_to_one_sender_until_acked<R: Repository>(store: &R) {
        let quiet = detection("fp-quiet", 1, Severity::Low);
        assert!(!quiet.notify);
        store
            .insert_anomalies(&[
                quiet,
                detection("fp-o1", 1, Severity::High),
                detection("fp-o2", 2, Severity::Critical),
            ])
            .await
            .unwrap();
        let first = store
            .claim_outbox("s1", 10, Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(first.len(), 2, "LOW without notify has no alert");
        assert!(
            store
                .claim_outbox("s2", 10, Duration::from_secs(60))
                .await
                .unwrap()
                .is_empty()
        );
        assert!(
            !store.ack_outbox(first[0].id, "s2").await.unwrap(),
            "only the claim's holder acknowledges"
        );
        assert!(store.ack_outbox(first[0].id, "s1").await.unwrap());
        assert!(!store.ack_outbox(first[0].id, "s1").await.unwrap(), "once");
        store
            .fail_outbox(first[1].id, "s1", "telegram 502", Duration::from_secs(30))
            .await
            .unwrap();
        assert!(
            store
                .claim_outbox("s2", 10, Duration::from_secs(60))
                .await
                .unwrap()
                .is_empty(),
            "not before its retry time"
        );
        store.clock().advance(Duration::from_secs(31));
        let retry = store
            .claim_outbox("s2", 10, Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(retry.len(), 1);
        assert_eq!(retry[0].id, first[1].id);
        assert_eq!(retry[0].attempts, 1);
        // s1's claim is gone: its late failure report changes nothing.
        store
            .fail_outbox(retry[0].id, "s1", "late", Duration::ZERO)
            .await
            .unwrap();
        assert!(store.ack_outbox(retry[0].id, "s2").await.unwrap());
        assert!(
            store
                .claim_outbox("s3", 10, Duration::from_millis(1))
                .await
                .unwrap()
                .is_empty()
        );
        assert!(!store.ack_outbox(999_999, "s1").await.unwrap());
    }

    pub async fn quiet_rows_resolve_themselves_with_a_notice_when_alerted<R: Repository>(
        store: &R,
    ) {
        // fp-old last fired at minute 1 (alerted); fp-low at minute 2 (not alerted); fp-new at 50.
        store
            .insert_anomalies(&[
                detection("fp-old", 1, Severity::High),
                detection("fp-low", 2, Severity::Low),
                detection("fp-new", 50, Severity::High),
            ])
            .await
            .unwrap();
        let claimed = store
            .claim_outbox("s", 10, Duration::from_secs(60))
            .await
            .unwrap();
        for c in &claimed {
            assert!(store.ack_outbox(c.id, "s").await.unwrap());
        }
        let resolved = store
            .resolve_quiet(at(30), "tracewatch", "recovered: quiet for 30 min")
            .await
            .unwrap();
        let mut fps: Vec<_> = resolved
            .iter()
            .map(|r| r.fingerprint.clone().unwrap())
            .collect();
        fps.sort();
        assert_eq!(fps, vec!["fp-low", "fp-old"]);
        assert!(
            resolved
                .iter()
                .all(|r| r.resolved_by.as_deref() == Some("tracewatch"))
        );
        let notices = store
            .claim_outbox("s", 10, Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(
            notices.len(),
            1,
            "only the alerted one gets a resolved notice"
        );
        assert_eq!(notices[0].event, "resolved");
        assert!(
            store
                .resolve_quiet(at(30), "tracewatch", "again")
                .await
                .unwrap()
                .is_empty(),
            "nothing twice"
        );
    }

    pub async fn an_expired_claim_is_handed_out_again<R: Repository>(store: &R) {
        store
            .insert_anomalies(&[detection("fp-e", 1, Severity::High)])
            .await
            .unwrap();
        let first = store
            .claim_outbox("s1", 10, Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(first.len(), 1);
        assert!(
            store
                .claim_outbox("s2", 10, Duration::from_secs(60))
                .await
                .unwrap()
                .is_empty(),
            "held while the claim lasts"
        );
        store.clock().advance(Duration::from_secs(61));
        let again = store
            .claim_outbox("s2", 10, Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(again.len(), 1, "a sender that died does not lose the alert");
    }
}

/// Runs every case of the suite against one backend; `$make` gives `(store, guard)`.
macro_rules! conformance {
    ($backend:ident, $make:path) => {
        conformance!(@cases $backend, $make, [
            a_detection_round_trips,
            processing_a_window_again_adds_nothing,
            an_open_row_merges_and_escalates,
            a_batch_folds_the_detections_of_a_new_fingerprint,
            a_folded_row_keeps_its_first_latest_and_most_severe_traces,
            the_peer_service_round_trips_and_survives_merges,
            text_search_ignores_case_beyond_ascii,
            a_resolved_fingerprint_that_returns_is_a_new_row,
            resolving_records_who_and_twice_is_a_conflict,
            filters_combine,
            pages_are_newest_first_without_gaps_or_repeats,
            config_is_seeded_validated_atomic_and_kept_in_history,
            baselines_survive,
            runs_are_claimed_once,
            the_summary_counts_open_by_severity_and_hours_by_type,
            a_stream_run_left_running_is_abandoned_by_the_next,
            leases_expire_and_belong_to_their_holder,
            cursors_move_only_from_where_they_are,
            the_outbox_hands_each_alert_to_one_sender_until_acked,
            an_expired_claim_is_handed_out_again,
            quiet_rows_resolve_themselves_with_a_notice_when_alerted,
            an_incident_round_trips_names_its_anomalies_and_writing_it_again_changes_nothing,
            an_incident_alerts_its_escalation_origin_change_and_resolution_once,
            a_merged_incident_hands_its_anomalies_over,
            resolving_an_incident_resolves_its_anomalies_and_twice_is_a_conflict,
            incidents_list_newest_first_with_filters_and_pages,
            incidents_left_open_resolve_once_quiet,
            retention_deletes_only_what_is_old_resolved_and_done,
            a_shorter_key_retention_drops_keys_before_their_anomaly,
            one_caller_at_a_time_runs_retention,
            every_write_of_an_anomaly_or_incident_is_one_live_event,
            retention_keeps_the_newest_live_events,
        ]);
    };
    (@cases $backend:ident, $make:path, [$($name:ident),* $(,)?]) => {
        mod $backend {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let (store, _guard) = $make().await;
                    suite::$name(&store).await;
                }
            )*
        }
    };
}

async fn postgres() -> (store_pg::PgStore, common::TestDatabase) {
    let db = common::TestDatabase::new().await;
    (db.store().await, db)
}

conformance!(on_postgres, postgres);

/// The embedded store in a fresh directory; the guard removes it.
async fn sqlite() -> (store_pg::SqliteStore, common::TempDir) {
    let dir = common::TempDir::new().unwrap();
    let store = store_pg::SqliteStore::open(&dir.path().join("tracewatch.sqlite3"))
        .await
        .expect("embedded store opens and migrates");
    (store, dir)
}

conformance!(on_sqlite, sqlite);
