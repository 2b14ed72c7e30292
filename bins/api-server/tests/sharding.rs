//! Scale-out of intake: two api-server instances behind the OpenTelemetry Collector's load-balancing
//! exporter with `routing_key: service` find the same anomalies as one instance that sees everything,
//! because each instance sees every span of the services it owns (baselines stay whole).
//!
//! The Collector cannot run here, so the test routes as that exporter does: each resource's spans go
//! whole to the instance its `service.name` hashes to. docs/ARCHITECTURE.md has the Collector setup.

mod common;

use common::{TestServer, slowdown, start};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value;
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
    // One request of every service in time order, routed as the exporter does: each resource's
    // spans whole to the instance that owns its service.
    let request = slowdown(&SERVICES, "GET /work", 150);
    send(&single, &request).await;
    let mut routed = [
        ExportTraceServiceRequest::default(),
        ExportTraceServiceRequest::default(),
    ];
    for resource in &request.resource_spans {
        let service = resource.resource.as_ref().unwrap().attributes[0]
            .value
            .as_ref()
            .unwrap();
        let Some(any_value::Value::StringValue(service)) = &service.value else {
            panic!("service.name is a string");
        };
        routed[owner(service, shards.len())]
            .resource_spans
            .push(resource.clone());
    }
    let mut owned = [0, 0];
    for service in SERVICES {
        owned[owner(service, shards.len())] += 1;
    }
    for (shard, request) in shards.iter().zip(&routed) {
        send(shard, request).await;
    }
    assert!(
        owned.iter().all(|n| *n > 0),
        "both instances own services: {owned:?}"
    );

    let whole = anomalies(&single, SERVICES.len()).await;
    let mut split = anomalies(&shards[0], owned[0]).await;
    split.extend(anomalies(&shards[1], owned[1]).await);
    for service in SERVICES {
        assert!(
            whole.contains(&(
                service.to_owned(),
                "GET /work".to_owned(),
                "latency_degradation".to_owned()
            )),
            "{whole:?}"
        );
    }
    assert_eq!(split, whole);
    single.stop().await;
    for s in &mut shards {
        s.stop().await;
    }
}
