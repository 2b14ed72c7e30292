//! What the worker's process tests share: running `detector-worker once`, and reading findings back.

#![allow(dead_code)]

use chrono::{TimeZone, Utc};
use std::process::Command;
use store_pg::{AnomalyFilter, AnomalyRecord, PgStore, Repository};
use tempo_client::testing::{Traffic, one_span_trace};

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

pub const NANOS: u64 = 1_000_000_000;

/// 2026-01-05T10:00:00Z.
pub fn t0() -> u64 {
    Utc.with_ymd_and_hms(2026, 1, 5, 10, 0, 0)
        .unwrap()
        .timestamp() as u64
        * NANOS
}

/// 4 requests a second of `GET /x` on each of `shop` and `cart`, about 20 ms each, over `minutes`; in
/// minute 10 nine in ten take five times as long (a window-level slowdown); half of `cart`'s fail in
/// `failing` minutes. (With `--shard K/2`, `shop` is shard 0 and `cart` shard 1.)
pub fn traffic_of(minutes: u64, failing: std::ops::RangeInclusive<u64>) -> Traffic {
    (0..minutes * 60 * 8)
        .map(|n| {
            let (i, service) = (n / 2, if n % 2 == 0 { "shop" } else { "cart" });
            let start = t0() + i * NANOS / 4 + (n % 2) * NANOS / 8;
            let minute = i / 240;
            let slow = minute == 10 && i % 10 != 9;
            let failing = failing.contains(&minute) && service == "cart" && i % 2 == 0;
            let ms = 20.0
                * (1.0 + 0.2 * ((i * 7_919 % 100) as f64 / 100.0 - 0.5))
                * if slow { 5.0 } else { 1.0 };
            let mut id = [0u8; 16];
            // The low half is what the sampling rule reads: spread it; the high half starts with zeros.
            id[..8].copy_from_slice(&(n + 1).to_be_bytes());
            id[8..].copy_from_slice(&(n + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15).to_be_bytes());
            let end = start + (ms * 1e6) as u64;
            one_span_trace(id, service, "GET /x", start, end, failing)
        })
        .collect()
}
