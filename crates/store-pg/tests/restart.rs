//! A real PostgreSQL restart in the middle of a batch of writes. It restarts the server that every
//! other test shares, so it is `#[ignore]`d in the normal run; `.ci/run` runs it on its own afterwards
//! (`cargo test -p store-pg --test restart -- --ignored`). Needs the rights to run `pg_ctlcluster`.

mod common;

use chrono::{TimeZone, Utc};
use detect_core::{AnomalyType, Severity};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use std::process::Command;
use std::time::Duration;
use store_pg::{AnomalyDetails, AnomalyFilter, NewAnomaly, Repository, StoreError};

fn detection(i: usize) -> NewAnomaly {
    let t = Utc.with_ymd_and_hms(2026, 1, 5, 0, 0, 0).unwrap();
    NewAnomaly {
        detection_key: format!("restart/{i}"),
        fingerprint: format!("fp-{i}"),
        trace_id: format!("{i:032x}"),
        span_id: None,
        anomaly_type: AnomalyType::Resource,
        anomaly_subtype: "n_plus_one_query".into(),
        severity: Severity::High,
        description: "N+1".into(),
        detected_at: t,
        service_name: "orders".into(),
        operation: None,
        client: None,
        peer_service: None,
        observed_value: 40.0,
        expected_value: 10.0,
        score: 4.0,
        window_start: t,
        window_end: t,
        details: AnomalyDetails::default(),
        notify: true,
    }
}

fn restart_postgres() {
    let version = std::fs::read_dir("/etc/postgresql")
        .expect("a Debian PostgreSQL cluster")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .max()
        .expect("a cluster version");
    let status = Command::new("pg_ctlcluster")
        .args(["--skip-systemctl-redirect", &version, "main", "restart"])
        .status()
        .expect("pg_ctlcluster runs");
    assert!(status.success(), "PostgreSQL restarted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "restarts the shared PostgreSQL server; .ci/run runs it alone"]
async fn a_restart_mid_batch_is_typed_writes_nothing_and_the_pool_recovers() {
    let db = common::TestDatabase::new().await;
    let store = db.store().await;
    // The batch waits on the locked outbox, half written, when the server goes down.
    let mut blocker = AsyncPgConnection::establish(&db.url).await.unwrap();
    diesel::sql_query("BEGIN")
        .execute(&mut blocker)
        .await
        .unwrap();
    diesel::sql_query("LOCK TABLE alert_outbox IN ACCESS EXCLUSIVE MODE")
        .execute(&mut blocker)
        .await
        .unwrap();
    let batch: Vec<NewAnomaly> = (0..500).map(detection).collect();
    let writer = {
        let store = store.clone();
        tokio::spawn(async move { store.insert_anomalies(&batch).await })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!writer.is_finished());
    tokio::task::spawn_blocking(restart_postgres).await.unwrap();
    let result = writer.await.unwrap();
    assert!(
        matches!(result, Err(StoreError::Unavailable(_))),
        "{:?}",
        result.map(|v| v.len())
    );
    drop(blocker);

    let mut recovered = false;
    for _ in 0..100 {
        match store.insert_anomalies(&[detection(9_999)]).await {
            Ok(_) => {
                recovered = true;
                break;
            }
            Err(e) => {
                assert!(e.is_transient(), "{e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    assert!(
        recovered,
        "the pool recovers by itself once the server is back"
    );
    let page = store
        .list_anomalies(&AnomalyFilter::default(), 500, None)
        .await
        .unwrap();
    assert_eq!(
        page.items.len(),
        1,
        "nothing of the interrupted batch was kept"
    );
}
