//! What the worker's process tests share: running `detector-worker once`, and reading findings back.

#![allow(dead_code)]

use chrono::{TimeZone, Utc};
use std::process::Command;
use store_pg::{AnomalyFilter, AnomalyRecord, PgStore, Repository};

/// `detector-worker once` over `[from, to)` (Unix nanoseconds) against the Tempo at `endpoint`, into the
/// database at `database_url`, reading windows as `fetch` says; its exit status and stderr.
pub async fn once(
    endpoint: &str,
    database_url: &str,
    (from, to): (u64, u64),
    fetch: &str,
) -> (bool, String) {
    let rfc3339 = |nanos: u64| Utc.timestamp_nanos(nanos as i64).to_rfc3339();
    let mut command = Command::new(env!("CARGO_BIN_EXE_detector-worker"));
    command
        .args(["once", "--from", &rfc3339(from), "--to", &rfc3339(to)])
        .env("TEMPO_ENDPOINT", endpoint)
        .env("DATABASE_URL", database_url)
        .env("TEMPO_TIMEOUT_SECONDS", "5")
        .env("TRACEWATCH_TRACE_FETCH", fetch);
    tokio::task::spawn_blocking(move || {
        let out = command.output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .unwrap()
}

/// The stored findings of `subtype` about `service`.
pub async fn rows_of(store: &PgStore, service: &str, subtype: &str) -> Vec<AnomalyRecord> {
    let filter = AnomalyFilter {
        service: Some(service.into()),
        anomaly_subtype: Some(subtype.into()),
        ..AnomalyFilter::default()
    };
    store
        .list_anomalies(&filter, 500, None)
        .await
        .unwrap()
        .items
}
