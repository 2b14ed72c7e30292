//! The server on a real PostgreSQL (its own fresh database): spans in over OTLP, the anomaly listed
//! with filters and a cursor, resolved once (the second time a 409 that keeps the first), readiness,
//! and a configuration change refused whole.

mod common;

use common::{TestDatabase, slowdown, start};
use serde_json::{Value, json};
use std::time::Duration;

#[actix_web::test]
async fn the_api_on_postgresql_end_to_end() {
    let db = TestDatabase::new().await;
    let url = db.url.clone();
    let mut server = start(move |s| s.database_url = Some(url)).await;

    let (status, ready) = server.get_json("/readyz").await;
    assert_eq!(status, 200);
    assert_eq!(ready["store"], "postgres");

    // Both services in one request: its history is judged as soon as the clock reaches it.
    let request = slowdown(&["pg-a", "pg-b"], "POST /pay", 120);
    let resp = server.post_otlp(&request).await;
    assert_eq!(resp.status(), 200);
    let slow = |a: &Value| a["anomaly_subtype"] == "latency_degradation";
    let a = server
        .wait_for_anomaly("service=pg-a", Duration::from_secs(10), slow)
        .await
        .expect("pg-a's anomaly stored in PostgreSQL");
    server
        .wait_for_anomaly("service=pg-b", Duration::from_secs(10), slow)
        .await
        .expect("pg-b's anomaly stored in PostgreSQL");

    // One per page, newest first, through the cursor; the filter keeps to one service.
    let (_, first) = server
        .get_json("/api/anomalies?limit=1&min_severity=LOW")
        .await;
    let cursor = first["next_cursor"]
        .as_str()
        .expect("a second page")
        .to_owned();
    let (_, second) = server
        .get_json(&format!("/api/anomalies?limit=1&cursor={cursor}"))
        .await;
    assert_ne!(first["items"][0]["id"], second["items"][0]["id"]);
    let (_, only_a) = server.get_json("/api/anomalies?service=pg-a").await;
    assert!(
        only_a["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["service_name"] == "pg-a"),
        "{only_a}"
    );

    let path = format!("/api/anomalies/{}/resolve", a["id"].as_str().unwrap());
    let resolve = |notes: &'static str| {
        server
            .http
            .put(server.url(&path))
            .json(&json!({ "resolution_notes": notes }))
            .send()
    };
    let first = resolve("fixed").await.unwrap();
    assert_eq!(first.status(), 200);
    let again = resolve("again").await.unwrap();
    assert_eq!(again.status(), 409);
    let (_, stored) = server
        .get_json(&format!("/api/anomalies/{}", a["id"].as_str().unwrap()))
        .await;
    assert_eq!(stored["resolution_notes"], "fixed");
    assert_eq!(stored["resolved"], true);

    // A bad key refuses the whole update: the good key beside it is not applied.
    let resp = server
        .http
        .put(server.url("/api/anomaly-config"))
        .json(&json!({ "latency_threshold_stddev": 4.0, "sampling_ratio": 7 }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 422);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["details"]["key"], "sampling_ratio");
    let (_, config) = server.get_json("/api/anomaly-config").await;
    let latency = config["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["key"] == "latency_threshold_stddev")
        .unwrap()
        .clone();
    assert_eq!(latency["value"], 3.0);
    server.stop().await;
}
