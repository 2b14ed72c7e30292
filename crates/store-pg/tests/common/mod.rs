//! Helpers shared by the store's integration tests; the test databases themselves are in
//! `store_pg::testing` (shared with the binaries' tests).

#![allow(dead_code)]

use chrono::{TimeZone, Utc};
use detect_core::{AnomalyType, Severity};
#[allow(unused_imports)]
pub use store_pg::testing::{TempDir, TestDatabase, database_url, server_url};
use store_pg::{AnomalyDetails, AnomalyFilter, NewAnomaly, Repository};

/// A HIGH throughput spike of fingerprint `fingerprint`, stored under `key`.
pub fn detection(fingerprint: &str, key: &str) -> NewAnomaly {
    let t = Utc.with_ymd_and_hms(2026, 1, 5, 0, 0, 0).unwrap();
    NewAnomaly {
        detection_key: key.into(),
        fingerprint: fingerprint.into(),
        trace_id: "0af7651916cd43dd8448eb211c80319c".into(),
        span_id: None,
        anomaly_type: AnomalyType::Performance,
        anomaly_subtype: "throughput_spike".into(),
        severity: Severity::High,
        description: "GET /cart on cart rose to 900 requests".into(),
        detected_at: t,
        service_name: "cart".into(),
        operation: Some("GET /cart".into()),
        client: None,
        peer_service: None,
        observed_value: 900.0,
        expected_value: 300.0,
        score: 9.0,
        window_start: t,
        window_end: t,
        details: AnomalyDetails::default(),
        notify: true,
    }
}

/// Every stored anomaly, counted page by page.
pub async fn count_rows(store: &impl Repository) -> usize {
    let mut total = 0;
    let mut cursor = None;
    loop {
        let page = store
            .list_anomalies(&AnomalyFilter::default(), 500, cursor)
            .await
            .unwrap();
        total += page.items.len();
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => return total,
        }
    }
}
