//! Embedded-only behaviour: the file outlives the process, `Store` picks the backend, bad paths are
//! typed errors, the seed schema's inserts work, callers that give up or share the file with another
//! process leave it consistent.

mod common;

use common::{count_rows, detection};

use chrono::{TimeZone, Utc};
use diesel::{Connection, RunQueryDsl, SqliteConnection};
use serde_json::json;
use std::path::Path;
use std::time::Duration;
use store_pg::{
    AnomalyFilter, EMBEDDED_FILE, InsertOutcome, NewAnomaly, Repository, RunStatus, RunTrigger,
    SqliteStore, Store, StoreError,
};

/// A second, plain connection to the store's file, as another program would open it.
fn raw_connection(path: &Path) -> SqliteConnection {
    let mut conn = SqliteConnection::establish(path.to_str().unwrap()).unwrap();
    diesel::connection::SimpleConnection::batch_execute(&mut conn, "PRAGMA busy_timeout = 5000")
        .unwrap();
    conn
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_survives_a_restart() {
    let dir = common::TempDir::new().unwrap();
    let path = dir.path().join("tracewatch.sqlite3");
    let store = SqliteStore::open(&path).await.unwrap();
    let [InsertOutcome::Inserted(id)] = store
        .insert_anomalies(&[detection("fp-1", "k-1")])
        .await
        .unwrap()[..]
    else {
        panic!("inserted")
    };
    store
        .resolve_anomaly(id, Some("scaled the cart service"), "alice")
        .await
        .unwrap();
    store
        .update_config(&json!({"error_rate_threshold": 0.2}), "alice")
        .await
        .unwrap();
    store
        .save_baselines(&[("latency/cart".into(), json!({"mean": 3.1}))])
        .await
        .unwrap();
    let run = store.create_run(RunTrigger::Manual, None).await.unwrap();
    let at = Utc.with_ymd_and_hms(2026, 1, 5, 0, 10, 0).unwrap();
    assert!(store.advance_cursor("tempo", None, at).await.unwrap());
    let outbox = store
        .claim_outbox("sender", 10, Duration::from_secs(60))
        .await
        .unwrap();
    let events: Vec<&str> = outbox.iter().map(|o| o.event.as_str()).collect();
    assert_eq!(events, vec!["opened", "resolved"]);
    assert!(store.ack_outbox(outbox[0].id, "sender").await.unwrap());
    store
        .fail_outbox(outbox[1].id, "sender", "telegram 502", Duration::ZERO)
        .await
        .unwrap();
    drop(store);

    let store = SqliteStore::open(&path).await.unwrap();
    let row = store.get_anomaly(id).await.unwrap();
    assert!(row.resolved);
    assert_eq!(
        row.resolution_notes.as_deref(),
        Some("scaled the cart service")
    );
    assert_eq!(row.resolved_by.as_deref(), Some("alice"));
    assert_eq!(row.detected_at, Some(detection("", "").detected_at));
    assert_eq!(count_rows(&store).await, 1);
    assert_eq!(store.load_config().await.unwrap().error_rate_threshold, 0.2);
    let history = store.config_history(10).await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].old_value, Some(json!(0.05)));
    assert_eq!(
        store.load_baseline("latency/cart").await.unwrap(),
        Some(json!({"mean": 3.1}))
    );
    assert_eq!(
        store.get_run(run.id).await.unwrap().status,
        RunStatus::Pending
    );
    assert_eq!(store.get_cursor("tempo").await.unwrap(), Some(at));
    // The failed notice is waiting, with its attempt counted; the acknowledged one is not handed out
    // again.
    let waiting: Vec<(String, i32)> = store
        .claim_outbox("sender", 10, Duration::from_secs(60))
        .await
        .unwrap()
        .into_iter()
        .map(|o| (o.event, o.attempts))
        .collect();
    assert_eq!(waiting, vec![("resolved".to_owned(), 1)]);
    // The same detection after the restart is still a duplicate.
    assert_eq!(
        store
            .insert_anomalies(&[detection("fp-1", "k-1")])
            .await
            .unwrap(),
        vec![InsertOutcome::Duplicate]
    );
    // The file is in WAL mode (a property of the file, kept across opens).
    #[derive(diesel::QueryableByName)]
    struct Mode {
        #[diesel(sql_type = diesel::sql_types::Text)]
        journal_mode: String,
    }
    let mode: Mode = diesel::sql_query("PRAGMA journal_mode")
        .get_result(&mut raw_connection(&path))
        .unwrap();
    assert_eq!(mode.journal_mode, "wal");
}

#[tokio::test]
async fn without_a_url_the_store_is_the_embedded_file_in_the_data_directory() {
    let dir = common::TempDir::new().unwrap();
    let data_dir = dir.path().join("not").join("there").join("yet");
    let store = Store::open(None, &data_dir).await.unwrap();
    assert_eq!(store.backend_name(), "sqlite");
    assert!(matches!(store, Store::Embedded(_)));
    assert!(data_dir.join(EMBEDDED_FILE).is_file());
    assert_eq!(store.load_config().await.unwrap(), Default::default());
    // An empty URL (an unset variable written as `DATABASE_URL=`) counts as none.
    let again = Store::open(Some(""), &data_dir).await.unwrap();
    assert_eq!(again.backend_name(), "sqlite");
    assert_eq!(store_pg::DEFAULT_DATA_DIR, "tracewatch-data");
}

#[tokio::test]
async fn with_a_url_the_store_is_postgres() {
    let db = common::TestDatabase::new().await;
    let dir = common::TempDir::new().unwrap();
    let store = Store::open(Some(&db.url), dir.path()).await.unwrap();
    assert_eq!(store.backend_name(), "postgres");
    assert!(!dir.path().join(EMBEDDED_FILE).exists());
}

#[tokio::test]
async fn a_path_that_cannot_be_created_is_a_typed_error() {
    let dir = common::TempDir::new().unwrap();
    let file = dir.path().join("plain-file");
    std::fs::write(&file, "not a directory").unwrap();
    let result = Store::open(None, &file.join("data")).await;
    assert!(
        matches!(result, Err(StoreError::Unavailable(_))),
        "{result:?}"
    );
    // A file that is not a database is refused too, and left as it was.
    let result = SqliteStore::open(&file).await;
    assert!(result.is_err(), "{result:?}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "not a directory");
}

#[tokio::test]
async fn an_insert_written_for_the_seed_schema_still_works() {
    let dir = common::TempDir::new().unwrap();
    let path = dir.path().join("tracewatch.sqlite3");
    let store = SqliteStore::open(&path).await.unwrap();
    // One row stored through the store first: the seed's row must sort with it by time.
    store
        .insert_anomalies(&[detection("fp-old", "k-old")])
        .await
        .unwrap();
    let mut conn = raw_connection(&path);
    diesel::sql_query(
        "INSERT INTO trace_anomalies (trace_id, anomaly_type, severity, description) \
         VALUES ('abc', 'SECURITY', 'HIGH', 'written by the old system')",
    )
    .execute(&mut conn)
    .unwrap();
    let refused = diesel::sql_query(
        "INSERT INTO trace_anomalies (trace_id, anomaly_type, severity) VALUES ('abc', 'SECURITY', 'SEVERE')",
    )
    .execute(&mut conn);
    assert!(
        refused.is_err(),
        "severity is constrained to its four values"
    );
    let page = store
        .list_anomalies(&AnomalyFilter::default(), 10, None)
        .await
        .unwrap();
    let [row, older] = &page.items[..] else {
        panic!("{page:?}")
    };
    assert_eq!(older.fingerprint.as_deref(), Some("fp-old"));
    assert_eq!(row.trace_id, "abc");
    assert!(!row.resolved);
    assert_eq!(row.occurrences, 1);
    let detected_at = row.detected_at.expect("detected_at defaults to now");
    assert!((Utc::now() - detected_at).num_seconds().abs() < 60);
    let read = store.get_anomaly(row.id).await.unwrap();
    assert_eq!(
        read.description.as_deref(),
        Some("written by the old system")
    );
    assert_eq!(read.id, row.id);
    // Newer than anything before it: a filter on time finds it.
    let since = store
        .list_anomalies(
            &AnomalyFilter {
                since: Some(detected_at),
                ..Default::default()
            },
            10,
            None,
        )
        .await
        .unwrap();
    assert_eq!(since.items.len(), 1);
    // And it resolves like any other row.
    store.resolve_anomaly(row.id, None, "bob").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_that_gives_up_leaves_the_store_consistent_and_working() {
    let dir = common::TempDir::new().unwrap();
    let store = SqliteStore::open(&dir.path().join("tracewatch.sqlite3"))
        .await
        .unwrap();
    let batch: Vec<NewAnomaly> = (0..300)
        .map(|i| detection(&format!("fp-{i}"), &format!("k-{i}")))
        .collect();
    // The caller drops the call almost at once, in the middle of its transaction.
    let gave_up = tokio::time::timeout(Duration::from_millis(2), store.insert_anomalies(&batch))
        .await
        .is_err();
    assert!(gave_up, "the batch takes longer than 2 ms");
    // The next calls work, and the batch is there whole: it ran to completion on its own.
    let after = store
        .insert_anomalies(&[detection("after", "after")])
        .await
        .unwrap();
    assert!(matches!(after[..], [InsertOutcome::Inserted(_)]));
    let mut rows = 0;
    for _ in 0..100 {
        rows = count_rows(&store).await;
        assert!(rows == 1 || rows == 301, "never half a batch: {rows}");
        if rows == 301 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(rows, 301);
    assert_eq!(
        store.insert_anomalies(&batch).await.unwrap(),
        vec![InsertOutcome::Duplicate; 300]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_stores_on_one_file_leave_one_row_per_fingerprint() {
    // An API server and a worker sharing a data directory: two processes, two connections.
    let dir = common::TempDir::new().unwrap();
    let path = dir.path().join("tracewatch.sqlite3");
    let (a, b) = (
        SqliteStore::open(&path).await.unwrap(),
        SqliteStore::open(&path).await.unwrap(),
    );
    for round in 0..20 {
        let fingerprint = format!("fp-{round}");
        let (da, db) = (
            [detection(&fingerprint, &format!("{round}/a"))],
            [detection(&fingerprint, &format!("{round}/b"))],
        );
        let (ra, rb) = tokio::join!(a.insert_anomalies(&da), b.insert_anomalies(&db));
        ra.unwrap();
        rb.unwrap();
        let same = detection(&format!("same-{round}"), &format!("{round}/same"));
        let (ra, rb) = tokio::join!(
            a.insert_anomalies(std::slice::from_ref(&same)),
            b.insert_anomalies(std::slice::from_ref(&same))
        );
        ra.unwrap();
        rb.unwrap();
    }
    let page = b
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
    // Each alert goes to one of them.
    let (ca, cb) = tokio::join!(
        a.claim_outbox("a", 500, Duration::from_secs(60)),
        b.claim_outbox("b", 500, Duration::from_secs(60))
    );
    assert_eq!(ca.unwrap().len() + cb.unwrap().len(), 40);
    // And a pending manual run is claimed by one of them.
    a.create_run(RunTrigger::Manual, None).await.unwrap();
    let (ra, rb) = tokio::join!(a.claim_pending_run("a"), b.claim_pending_run("b"));
    assert_eq!(
        usize::from(ra.unwrap().is_some()) + usize::from(rb.unwrap().is_some()),
        1
    );
}
