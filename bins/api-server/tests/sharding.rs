//! Scale-out of intake: two api-server instances behind the OpenTelemetry Collector's load-balancing
//! exporter with `routing_key: service` find the same anomalies as one instance that sees everything,
//! because each instance sees every span of the services it owns (baselines stay whole).
//!
//! The Collector cannot run here, so the test routes as that exporter does: each resource's spans go
//! whole to the instance its `service.name` hashes to. docs/ARCHITECTURE.md has the Collector setup.

mod common;

use common::{TestServer, slow_after_normal, start};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use serde_json::Value;
use std::collections::{BTreeSet, hash_map::DefaultHasher};
use std::hash::{Hash, Hasher};
use std::time::Duration;

const SERVICES: [&str; 6] = ["cart", "search", "users", "pay", "ship", "auth"];

fn owner(service: &str, instances: usize) -> usize {
    let mut h = DefaultHasher::new();
    service.hash(&mut h);
    (h.finish() % instances as u64) as usize
}

async fn send(server: &TestServer, request: &ExportTraceServiceRequest) {
    assert_eq!(server.post_otlp(request).await.status(), 200);
}

/// (service, operation, subtype) of every anomaly on `server`, once all `expected` services show one.
async fn anomalies(server: &TestServer, expected: usize) -> BTreeSet<(String, String, String)> {
    let mut found = BTreeSet::new();
    for _ in 0..100 {
        let (_, page) = server.get_json("/api/anomalies?limit=500").await;
        found = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a: &Value| {
                (
                    a["service_name"].as_str().unwrap_or("").to_owned(),
                    a["operation"].as_str().unwrap_or("").to_owned(),
                    a["anomaly_subtype"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect();
        let services: BTreeSet<_> = found.iter().map(|f| f.0.clone()).collect();
        if services.len() >= expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    found
}

#[actix_web::test]
async fn two_instances_routed_by_service_find_what_one_instance_finds() {
    let mut single = start(|_| {}).await;
    let mut shards = [start(|_| {}).await, start(|_| {}).await];
    let mut owned = [0, 0];
    for service in SERVICES {
        let request = slow_after_normal(service, "GET /work", 150);
        send(&single, &request).await;
        let shard = owner(service, shards.len());
        owned[shard] += 1;
        send(&shards[shard], &request).await;
    }
    assert!(
        owned.iter().all(|n| *n > 0),
        "both instances own services: {owned:?}"
    );

    let whole = anomalies(&single, SERVICES.len()).await;
    let mut split = anomalies(&shards[0], owned[0]).await;
    split.extend(anomalies(&shards[1], owned[1]).await);
    assert_eq!(whole.len(), SERVICES.len(), "{whole:?}");
    assert_eq!(split, whole);
    single.stop().await;
    for s in &mut shards {
        s.stop().await;
    }
}
