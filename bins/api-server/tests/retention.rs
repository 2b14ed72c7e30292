//! The retention loop: every api-server runs it, the store's `retention` lease lets one of them do the
//! work, and the one that did counts it in its metrics. (What the job deletes is store-pg's conformance
//! suite's.)

mod common;

use common::{TestDatabase, start};
use std::time::{Duration, Instant};

const RAN: &str = "tracewatch_retention_run_seconds_count 1";

/// Waits up to 10 s for any of `servers`' metrics to say that it ran the job; their metrics then.
async fn metrics_once_one_ran(servers: &[&common::TestServer]) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut texts = Vec::new();
        for server in servers {
            texts.push(server.metrics().await);
        }
        if texts.iter().any(|t| t.contains(RAN)) || Instant::now() > deadline {
            return texts;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_runs_retention_at_start_and_counts_it() {
    let mut server = start(|_| {}).await;
    let [text] = &metrics_once_one_ran(&[&server]).await[..] else {
        unreachable!()
    };
    assert!(text.contains(RAN), "{text}");
    for table in ["trace_anomalies", "anomaly_detections", "alert_outbox"] {
        let deleted = format!("tracewatch_retention_deleted_rows_total{{table=\"{table}\"}} 0");
        assert!(text.contains(&deleted), "{deleted} missing in\n{text}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_servers_on_one_database_one_runs_retention() {
    let db = TestDatabase::new().await;
    let url = db.url.clone();
    let mut first = start(|s| s.database_url = Some(url)).await;
    let url = db.url.clone();
    let mut second = start(|s| s.database_url = Some(url)).await;
    metrics_once_one_ran(&[&first, &second]).await;
    // The other's first run came at its start, too: give it time to have counted one if it did.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let texts = [first.metrics().await, second.metrics().await];
    let ran = texts.iter().filter(|t| t.contains(RAN)).count();
    assert_eq!(
        ran,
        1,
        "exactly one server ran the job:\n{}",
        texts.join("\n---\n")
    );
    first.stop().await;
    second.stop().await;
}
