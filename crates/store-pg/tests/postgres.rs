//! PostgreSQL-only behaviour: concurrent writers, a server that drops connections mid-batch, and the
//! seed schema's contract.

mod common;

use common::{count_rows, detection};

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use std::time::Duration;
use store_pg::{AnomalyFilter, NewAnomaly, Repository, StoreError};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_writers_of_one_fingerprint_leave_one_row() {
    let database = common::TestDatabase::new().await;
    let (a, b) = (database.store().await, database.store().await);
    for round in 0..20 {
        let fingerprint = format!("fp-{round}");
        let (da, db) = (
            [detection(&fingerprint, &format!("{round}/a"))],
            [detection(&fingerprint, &format!("{round}/b"))],
        );
        let (ra, rb) = tokio::join!(a.insert_anomalies(&da), b.insert_anomalies(&db));
        ra.unwrap();
        rb.unwrap();
        // And the very same detection from both at once: stored once.
        let same = detection(&format!("same-{round}"), &format!("{round}/same"));
        let (ra, rb) = tokio::join!(
            a.insert_anomalies(std::slice::from_ref(&same)),
            b.insert_anomalies(std::slice::from_ref(&same))
        );
        ra.unwrap();
        rb.unwrap();
    }
    let page = a
        .list_anomalies(&AnomalyFilter::default(), 500, None)
        .await
        .unwrap();
    assert_eq!(page.items.len(), 40);
    for row in &page.items {
        let expected = if row.fingerprint.as_deref().unwrap().starts_with("same") {
            1
        } else {
            2
        };
        assert_eq!(row.occurrences, expected, "{:?}", row.fingerprint);
    }
}

/// Kills every server process serving the test database but `spare`, as a restart of PostgreSQL
/// would, without disturbing the other tests that share the server.
async fn drop_connections(database: &str, spare: i32) {
    let mut admin = AsyncPgConnection::establish(&common::server_url())
        .await
        .unwrap();
    diesel::sql_query(format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = '{database}' AND pid <> pg_backend_pid() AND pid <> {spare}"
    ))
    .execute(&mut admin)
    .await
    .unwrap();
}

#[derive(diesel::QueryableByName)]
struct Pid {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pid: i32,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dropped_connection_mid_batch_is_typed_writes_nothing_and_the_pool_recovers() {
    let db = common::TestDatabase::new().await;
    let store = db.store().await;
    // Hold the outbox locked so that the batch is caught half way: its anomaly rows written, its
    // outbox entries waiting. Then the server drops the batch's connection.
    let mut blocker = AsyncPgConnection::establish(&db.url).await.unwrap();
    diesel::sql_query("BEGIN")
        .execute(&mut blocker)
        .await
        .unwrap();
    diesel::sql_query("LOCK TABLE alert_outbox IN ACCESS EXCLUSIVE MODE")
        .execute(&mut blocker)
        .await
        .unwrap();
    let spare = diesel::sql_query("SELECT pg_backend_pid() AS pid")
        .get_result::<Pid>(&mut blocker)
        .await
        .unwrap()
        .pid;
    let batch: Vec<NewAnomaly> = (0..500)
        .map(|i| detection(&format!("fp-{i}"), &format!("k-{i}")))
        .collect();
    let writer = {
        let store = store.clone();
        tokio::spawn(async move { store.insert_anomalies(&batch).await })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!writer.is_finished(), "the batch waits on the outbox lock");
    drop_connections(&db.name, spare).await;
    let result = writer.await.unwrap();
    diesel::sql_query("ROLLBACK")
        .execute(&mut blocker)
        .await
        .unwrap();
    match result {
        Err(StoreError::Unavailable(message)) => {
            assert!(
                !message.contains("postgres://"),
                "no connection string in errors: {message}"
            );
        }
        other => panic!("expected Unavailable, got {:?}", other.map(|v| v.len())),
    }
    // Nothing of the batch is there, and the next call works on a fresh connection.
    let mut recovered = None;
    for _ in 0..20 {
        match store.insert_anomalies(&[detection("after", "after")]).await {
            Ok(outcome) => {
                recovered = Some(outcome);
                break;
            }
            Err(e) => {
                assert!(e.is_transient(), "{e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    assert!(recovered.is_some(), "the pool recovers by itself");
    assert_eq!(count_rows(&store).await, 1);
}

#[tokio::test]
async fn an_unreachable_server_is_unavailable_and_the_error_hides_the_password() {
    let result =
        store_pg::PgStore::connect("postgres://tracewatch:s3cr3t-pw@127.0.0.1:1/tracewatch").await;
    let Err(error) = result else {
        panic!("connected to port 1?")
    };
    assert!(matches!(error, StoreError::Unavailable(_)), "{error}");
    let text = error.to_string();
    assert!(
        !text.contains("s3cr3t-pw") && !text.contains("postgres://"),
        "{text}"
    );
}

#[tokio::test]
async fn an_insert_written_for_the_seed_schema_still_works() {
    let db = common::TestDatabase::new().await;
    let store = db.store().await;
    let mut conn = AsyncPgConnection::establish(&db.url).await.unwrap();
    diesel::sql_query(
        "INSERT INTO trace_anomalies (trace_id, span_id, anomaly_type, anomaly_subtype, severity, description) \
         VALUES ('abc', 'def', 'SECURITY', 'unusual_access', 'HIGH', 'written by the old system')",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let refused = diesel::sql_query(
        "INSERT INTO trace_anomalies (trace_id, anomaly_type, severity) VALUES ('abc', 'SECURITY', 'SEVERE')",
    )
    .execute(&mut conn)
    .await;
    assert!(
        refused.is_err(),
        "severity is constrained to its four values"
    );
    let page = store
        .list_anomalies(&AnomalyFilter::default(), 10, None)
        .await
        .unwrap();
    let [row] = &page.items[..] else {
        panic!("{page:?}")
    };
    assert_eq!(row.trace_id, "abc");
    assert!(!row.resolved);
    assert_eq!(row.occurrences, 1);
    assert!(row.detected_at.is_some());
    assert_eq!(
        store
            .get_anomaly(row.id)
            .await
            .unwrap()
            .description
            .as_deref(),
        Some("written by the old system")
    );
    let resolved = store
        .resolve_anomaly(row.id, Some("seen"), "alice")
        .await
        .unwrap();
    assert!(resolved.resolved);
}
