//! Live events across processes on one PostgreSQL: two api-servers (API only, as behind a load
//! balancer; each with its own connections and listener) and `detector-worker once` as a process of its
//! own. Every anomaly the worker stores reaches both servers' live streams, within two seconds of the
//! worker's end.

mod common;

use api_server::server::{self, Running, ServerSettings};
use common::{NANOS, t0, traffic_of};
use futures_util::StreamExt;
use std::collections::BTreeSet;
use std::time::Duration;
use store_pg::testing::{TempDir, TestDatabase};
use store_pg::{AnomalyFilter, Repository};
use tempo_client::testing::FakeTempo;

/// What the acceptance asks: on every server's stream within two seconds.
const DELIVERY: Duration = Duration::from_secs(2);

async fn api_server(database_url: &str, dir: &TempDir) -> Running {
    let mut settings = ServerSettings::local("127.0.0.1:0".parse().unwrap(), dir.path().into());
    settings.database_url = Some(database_url.to_owned());
    settings.detect = false;
    settings.http_workers = 1;
    server::start(settings).await.expect("api-server starts")
}

/// Reads `stream` for `new` events until `deadline`: the anomaly ids they carry.
async fn new_ids<B: AsRef<[u8]>>(
    stream: &mut (impl futures_util::Stream<Item = reqwest::Result<B>> + Unpin),
    buffer: &mut String,
    deadline: tokio::time::Instant,
) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    while let Ok(Some(Ok(chunk))) = tokio::time::timeout_at(deadline, stream.next()).await {
        buffer.push_str(&String::from_utf8_lossy(chunk.as_ref()));
        while let Some(end) = buffer.find("\n\n") {
            let frame: String = buffer.drain(..end + 2).collect();
            if !frame.lines().any(|l| l == "event: new") {
                continue;
            }
            let data = frame.lines().find_map(|l| l.strip_prefix("data: "));
            let anomaly: serde_json::Value = serde_json::from_str(data.unwrap()).unwrap();
            ids.insert(anomaly["id"].as_str().unwrap().to_owned());
        }
    }
    ids
}

#[actix_web::test]
async fn what_a_worker_stores_reaches_the_live_streams_of_every_api_server() {
    // Ten ordinary minutes, then one where `shop` is five times slower and half of `cart` fails.
    let tempo = FakeTempo::start(traffic_of(11, 10..=10)).unwrap();
    let db = TestDatabase::new().await;
    let (dir_a, dir_b) = (TempDir::new().unwrap(), TempDir::new().unwrap());
    let (a, b) = (
        api_server(&db.url, &dir_a).await,
        api_server(&db.url, &dir_b).await,
    );
    let http = reqwest::Client::new();
    let open = |server: &Running| {
        http.get(format!("http://{}/api/anomalies/stream", server.addr))
            .send()
    };
    let (mut stream_a, mut stream_b) = (
        open(&a).await.unwrap().bytes_stream(),
        open(&b).await.unwrap().bytes_stream(),
    );

    let (ok, stderr) =
        common::once(&tempo.url, &db.url, (t0(), t0() + 11 * 60 * NANOS), "all").await;
    assert!(ok, "{stderr}");
    let deadline = tokio::time::Instant::now() + DELIVERY;

    let store = db.store().await;
    let stored: BTreeSet<String> = store
        .list_anomalies(&AnomalyFilter::default(), 500, None)
        .await
        .unwrap()
        .items
        .iter()
        .map(|r| r.id.to_string())
        .collect();
    assert!(!stored.is_empty(), "the worker found the slow minute");
    let (mut buf_a, mut buf_b) = (String::new(), String::new());
    let (on_a, on_b) = tokio::join!(
        new_ids(&mut stream_a, &mut buf_a, deadline),
        new_ids(&mut stream_b, &mut buf_b, deadline),
    );
    assert_eq!(on_a, stored, "first api-server's stream");
    assert_eq!(on_b, stored, "second api-server's stream");
    a.stop().await;
    b.stop().await;
}
