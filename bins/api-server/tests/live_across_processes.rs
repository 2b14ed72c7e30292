//! Live events across processes on one PostgreSQL: two api-servers (one in this process, one a child
//! process of the built binary, both API-only as behind a load balancer) and a writer with its own
//! connections, as a detector-worker has (it writes through store-pg's repository, as here). What the
//! writer stores reaches both servers' streams, and a stream reconnecting with `Last-Event-ID` gets
//! what it missed.

mod common;

use common::sse::{self, Frame};
use common::{TempDir, TestDatabase, start, stored_detection};
use std::process::Stdio;
use std::time::Duration;
use store_pg::{InsertOutcome, Repository, Store};
use uuid::Uuid;

/// What the acceptance asks: an event on every server's stream within two seconds of the write.
const DELIVERY: Duration = Duration::from_secs(2);

async fn store_one(store: &Store, n: i64) -> Uuid {
    match store
        .insert_anomalies(&[stored_detection(n, "checkout")])
        .await
        .unwrap()[..]
    {
        [InsertOutcome::Inserted(id)] => id,
        ref other => panic!("stored: {other:?}"),
    }
}

/// The api-server binary on `database_url`, API only, on a free port; killed when dropped.
struct ChildServer {
    _child: tokio::process::Child,
    base: String,
}

async fn spawn_server(database_url: &str) -> ChildServer {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_api-server"))
        .args(["--listen", &format!("127.0.0.1:{port}"), "--no-detect"])
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the api-server binary starts");
    let server = ChildServer {
        _child: child,
        base: format!("http://127.0.0.1:{port}"),
    };
    let http = reqwest::Client::new();
    for _ in 0..300 {
        if let Ok(resp) = http.get(format!("{}/readyz", server.base)).send().await
            && resp.status() == 200
        {
            return server;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the second api-server did not get ready in 30 s");
}

/// Reads frames until one about `id` arrives; panics if `within` passes first.
async fn event_about(
    stream: &mut sse::Sse<impl futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin>,
    id: Uuid,
    within: Duration,
    server: &str,
) -> Frame {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let frame = stream
            .next(left)
            .await
            .unwrap_or_else(|| panic!("{server}: no event about {id} within {within:?}"));
        if frame.data["id"] == id.to_string() {
            return frame;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_by_another_process_reaches_every_servers_stream_and_a_reconnect_gets_what_it_missed()
 {
    let db = TestDatabase::new().await;
    let url = db.url.clone();
    let in_process = start(move |s| {
        s.database_url = Some(url);
        s.detect = false;
    })
    .await;
    let child = spawn_server(&db.url).await;
    let http = reqwest::Client::new();
    let mut first = sse::open(&http, &in_process.url("/api/anomalies/stream"), None).await;
    let mut second = sse::open(&http, &format!("{}/api/anomalies/stream", child.base), None).await;

    // The "worker": its own store, its own connections.
    let dir = TempDir::new().unwrap();
    let worker = Store::open(Some(&db.url), dir.path()).await.unwrap();
    let id = store_one(&worker, 1).await;
    let on_first = event_about(&mut first, id, DELIVERY, "the in-process server").await;
    let on_second = event_about(&mut second, id, DELIVERY, "the child-process server").await;
    for frame in [&on_first, &on_second] {
        assert_eq!(frame.event, "new");
        assert_eq!(frame.data["service_name"], "checkout");
        assert_eq!(frame.data["severity"], "HIGH");
    }
    // Delivered by the notification (a tick would deliver too, later): the listener is up.
    let metrics = in_process.metrics().await;
    assert!(
        metrics.contains("tracewatch_live_listener_connected 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tracewatch_live_events_total{subject=\"anomaly\"} 1"),
        "{metrics}"
    );
    let seen = on_second.id.expect("events carry their sequence number");
    assert_eq!(on_first.id, Some(seen), "one journal, one number");

    // The second server's client goes away; meanwhile two more are stored and the first resolved.
    drop(second);
    let later = [store_one(&worker, 2).await, store_one(&worker, 3).await];
    worker
        .resolve_anomaly(id, Some("rolled back"), "ops")
        .await
        .unwrap();
    let mut resumed = sse::open(
        &http,
        &format!("{}/api/anomalies/stream", child.base),
        Some(seen),
    )
    .await;
    let mut missed = Vec::new();
    for _ in 0..3 {
        let frame = resumed
            .next(DELIVERY)
            .await
            .expect("the missed events are replayed");
        missed.push(frame);
    }
    let got: Vec<(String, String)> = missed
        .iter()
        .map(|f| (f.event.clone(), f.data["id"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("new".to_owned(), later[0].to_string()),
            ("new".to_owned(), later[1].to_string()),
            ("resolved".to_owned(), id.to_string()),
        ]
    );
    assert!(
        missed.windows(2).all(|w| w[0].id < w[1].id) && missed[0].id > Some(seen),
        "in order, after the last one seen: {missed:?}"
    );
    // Nothing is sent twice: the live copies of the replayed events are dropped.
    let fourth = store_one(&worker, 4).await;
    let next = resumed.next(DELIVERY).await.expect("live again");
    assert_eq!(next.data["id"], fourth.to_string(), "{next:?}");

    // A Last-Event-ID that is not an event id is refused, with the problem named.
    let resp = http
        .get(format!("{}/api/anomalies/stream", child.base))
        .header("Last-Event-ID", "not-a-number")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["details"]["header"], "Last-Event-ID", "{body}");
    drop(child);
}
