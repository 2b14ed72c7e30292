//! `detector-worker once` and `run` as processes, against the fake Tempo (`tempo_client::testing`:
//! search by window with `limit`, trace by id on the v2 path in protobuf, TraceQL metrics) holding
//! made-up traffic, and a real PostgreSQL:
//! anomalies stored once however often a range is processed, one run record per window, the cursor
//! moved past what is done; a failing Tempo leaves a failed run with the reason and the cursor where
//! it was; and of two `run` workers, one processes while the other stands by and takes over, from the
//! cursor, when the first is killed.

mod common;

use chrono::{TimeZone, Utc};
use common::{NANOS, rows_of, t0, traffic_of};
use std::process::{Command, Stdio};
use std::time::Duration;
use store_pg::testing::TestDatabase;
use store_pg::{AnomalyFilter, PgStore, Repository};
use tempo_client::testing::{FakeTempo, Reply, Route, Traffic};

/// Minutes of traffic the fake Tempo holds, from `t0()`.
const MINUTES: u64 = 12;

/// 4 requests a second of `GET /x` on each of `shop` and `cart`, about 20 ms each; in minute 10 nine
/// in ten take five times as long (a window-level slowdown); in minute 11 half of `cart`'s fail. (With `--shard K/2`, `shop` is shard 0 and `cart`
/// shard 1.)
fn traffic() -> Traffic {
    traffic_of(MINUTES, 11..=11)
}

fn start_tempo() -> FakeTempo {
    FakeTempo::start(traffic()).unwrap()
}

/// The windows searched so far, in Unix seconds.
fn searched_windows(tempo: &FakeTempo) -> Vec<(u64, u64)> {
    let seconds = |v: &String| v.parse::<u64>().unwrap();
    tempo
        .requests()
        .iter()
        .filter(|r| r.route == Some(Route::Search))
        .map(|r| (seconds(&r.query["start"]), seconds(&r.query["end"])))
        .collect()
}

/// `detector-worker once` over the whole traffic; its exit status and stderr.
async fn once(tempo: &FakeTempo, db: &TestDatabase) -> (bool, String) {
    once_over(tempo, db, 0, MINUTES).await
}

/// `detector-worker once` over minutes `[from, to)` of the traffic.
async fn once_over(tempo: &FakeTempo, db: &TestDatabase, from: u64, to: u64) -> (bool, String) {
    once_fetching(tempo, db, from, to, "all").await
}

async fn once_fetching(
    tempo: &FakeTempo,
    db: &TestDatabase,
    from: u64,
    to: u64,
    fetch: &str,
) -> (bool, String) {
    let minute = 60 * NANOS;
    let range = (t0() + from * minute, t0() + to * minute);
    common::once(&tempo.url, &db.url, range, fetch).await
}

async fn latency_rows(store: &PgStore) -> Vec<store_pg::AnomalyRecord> {
    latency_rows_of(store, "shop").await
}

async fn latency_rows_of(store: &PgStore, service: &str) -> Vec<store_pg::AnomalyRecord> {
    rows_of(store, service, "latency_degradation").await
}

#[actix_web::test]
async fn once_stores_each_anomaly_once_and_moves_the_cursor() {
    let tempo = start_tempo();
    let db = TestDatabase::new().await;
    let (ok, stderr) = once(&tempo, &db).await;
    assert!(ok, "{stderr}");
    let store = db.store().await;
    let rows = latency_rows(&store).await;
    assert_eq!(
        rows.len(),
        1,
        "the slow minute is found once: {stderr} {rows:?}"
    );
    let occurrences: i64 = rows.iter().map(|r| r.occurrences).sum();
    let row = &rows[0];
    assert!(
        matches!(row.severity.as_str(), "HIGH" | "CRITICAL"),
        "{rows:?}"
    );
    let expected = row.expected_value.unwrap();
    assert!(expected < 30.0, "{rows:?}");
    assert!(row.observed_value.unwrap() > 3.0 * expected, "{rows:?}");
    let cursor = store.get_cursor("tempo:windows").await.unwrap().unwrap();
    assert_eq!(
        cursor.timestamp_nanos_opt().unwrap() as u64,
        t0() + MINUTES * 60 * NANOS
    );
    // Every window was searched with both ends (Tempo looks only at recent data without them).
    let windows = searched_windows(&tempo);
    assert_eq!(windows.len() as u64, MINUTES, "{windows:?}");
    assert!(windows.iter().all(|(s, e)| e - s == 60));

    // The same range again: nothing new is stored.
    let (ok, stderr) = once(&tempo, &db).await;
    assert!(ok, "{stderr}");
    let again = latency_rows(&store).await;
    assert_eq!(again.len(), rows.len());
    assert_eq!(
        again.iter().map(|r| r.occurrences).sum::<i64>(),
        occurrences,
        "a window processed twice adds nothing"
    );
}

#[actix_web::test]
async fn a_second_process_goes_on_from_what_the_first_learned() {
    let tempo = start_tempo();
    let db = TestDatabase::new().await;
    // Two processes, one after the other: minutes 0–9, then 9–12 (the slow minute is 10). The second
    // sees a single ordinary window before the slow one, too few to judge on its own (a key needs
    // two learned windows): the slow minute is found only from what the first process learned.
    let (ok, stderr) = once_over(&tempo, &db, 0, 9).await;
    assert!(ok, "{stderr}");
    let (ok, stderr) = once_over(&tempo, &db, 9, MINUTES).await;
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("went on from the learned state"),
        "{stderr}"
    );
    let store = db.store().await;
    let rows = latency_rows(&store).await;
    assert_eq!(rows.len(), 1, "{stderr} {rows:?}");
    assert!(rows[0].expected_value.unwrap() < 30.0, "{rows:?}");
}

#[actix_web::test]
async fn a_failing_tempo_fails_the_window_with_the_reason_and_keeps_the_cursor() {
    let tempo = start_tempo();
    tempo.fail_next(u32::MAX, Reply::text(500, "tempo is down"));
    let db = TestDatabase::new().await;
    let (ok, stderr) = once(&tempo, &db).await;
    assert!(!ok, "exits non-zero");
    assert!(
        stderr.contains("500") && stderr.contains("tempo is down"),
        "{stderr}"
    );
    let store = db.store().await;
    assert_eq!(store.get_cursor("tempo:windows").await.unwrap(), None);
    let run = store.claim_pending_run("probe").await.unwrap();
    assert!(
        run.is_none(),
        "the failed window's run is finished, not left pending"
    );
    // Tempo is back: the same command now processes everything.
    tempo.stop_failing();
    let (ok, stderr) = once(&tempo, &db).await;
    assert!(ok, "{stderr}");
    assert!(!latency_rows(&store).await.is_empty());
}

/// `detector-worker run` with the cursor at `t0()`: every window is due (the traffic is in the past).
fn spawn_run(tempo: &FakeTempo, db: &TestDatabase) -> std::process::Child {
    spawn_shard(tempo, db, "0/1")
}

/// A `run` worker of `shard` that looks every trace up (`all`), so that a delay on lookups makes its
/// windows slow enough to be killed mid-stream, and its lookups say which traces it read.
fn spawn_shard(tempo: &FakeTempo, db: &TestDatabase, shard: &str) -> std::process::Child {
    run_command(tempo, db, shard)
        .env("TRACEWATCH_TRACE_FETCH", "all")
        .spawn()
        .unwrap()
}

fn run_command(tempo: &FakeTempo, db: &TestDatabase, shard: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_detector-worker"));
    command
        .args([
            "run",
            "--interval-seconds",
            "1",
            "--lag-seconds",
            "0",
            "--lease-seconds",
            "3",
            "--shard",
            shard,
        ])
        .env("TEMPO_ENDPOINT", &tempo.url)
        .env("DATABASE_URL", &db.url)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
}

#[actix_web::test]
async fn a_tempo_that_refuses_the_whole_trace_search_is_read_by_lookups() {
    let tempo = start_tempo();
    tempo.refuse_queries_containing(
        "nestedSetLeft",
        Reply::text(400, "invalid TraceQL query: unknown intrinsic"),
    );
    let db = TestDatabase::new().await;
    let (ok, stderr) = once_fetching(&tempo, &db, 0, MINUTES, "search").await;
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("refused the whole-trace search"),
        "{stderr}"
    );
    // Every window read whole by lookups: the slow minute is found.
    let store = db.store().await;
    assert!(!latency_rows(&store).await.is_empty());
    assert!(tempo.count(Route::TraceV2) >= tempo.traffic().len());
    let runs = store.recent_runs(100).await.unwrap();
    assert_eq!(runs.len() as u64, MINUTES, "{runs:#?}");
    assert!(
        runs.iter().all(|r| r.tempo_lookups.is_some_and(|l| l > 0)),
        "{runs:#?}"
    );
}

/// Kills the child when dropped (a failed assertion must not leave a worker running).
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[actix_web::test]
async fn a_running_worker_reads_whole_traces_by_default_and_serves_its_metrics() {
    let tempo = start_tempo();
    let db = TestDatabase::new().await;
    let store = db.store().await;
    let t = Utc.timestamp_nanos(t0() as i64);
    assert!(
        store
            .advance_cursor("tempo:windows", None, t)
            .await
            .unwrap()
    );
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let _worker = Running(
        run_command(&tempo, &db, "0/1")
            .args(["--metrics-listen", &addr.to_string()])
            .spawn()
            .unwrap(),
    );
    let end = t0() + MINUTES * 60 * NANOS;
    for _ in 0..600 {
        if cursor_at(&db, "tempo:windows").await >= end {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        cursor_at(&db, "tempo:windows").await >= end,
        "every window done"
    );
    // Whole traces from one search a window: the slow minute is found, and no trace was looked up.
    assert!(!latency_rows(&store).await.is_empty());
    assert_eq!(tempo.count(Route::TraceV2), 0);
    // The worker goes on with the (empty) windows after the traffic, up to now: its counters only grow.
    tempo_client::install_tls_provider();
    let text = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let value = |name: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} in\n{text}"))
    };
    assert!(value("tracewatch_worker_windows_total{outcome=\"succeeded\"}") >= MINUTES as f64);
    let queries = value("tracewatch_worker_tempo_queries_total");
    assert!(queries >= MINUTES as f64, "{text}");
    assert!(
        queries <= tempo.count(Route::Search) as f64,
        "every query is a search: {text}"
    );
    assert_eq!(value("tracewatch_worker_tempo_lookups_total"), 0.0);
    assert!(value("tracewatch_worker_spans_total") >= (MINUTES * 60 * 8) as f64);
    assert!(value("tracewatch_worker_tempo_bytes_total") > 0.0);
    assert!(value("tracewatch_worker_tempo_seconds_total") > 0.0);
}

#[actix_web::test]
async fn of_two_workers_one_processes_and_the_other_takes_over_when_it_dies() {
    let tempo = start_tempo();
    // About 0.4 s a window, so that the first worker is killed in the middle.
    tempo.delay(Route::TraceV2, Duration::from_millis(25));
    let db = TestDatabase::new().await;
    let store = db.store().await;
    let t = Utc.timestamp_nanos(t0() as i64);
    assert!(
        store
            .advance_cursor("tempo:windows", None, t)
            .await
            .unwrap()
    );
    let end = t0() + MINUTES * 60 * NANOS;

    let mut first = spawn_run(&tempo, &db);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut second = spawn_run(&tempo, &db);
    // Let the first do a few windows, then kill it without warning.
    let position = |store: PgStore| async move {
        store
            .get_cursor("tempo:windows")
            .await
            .unwrap()
            .map_or(0, |c| c.timestamp_nanos_opt().unwrap() as u64)
    };
    for _ in 0..200 {
        if position(db.store().await).await >= t0() + 3 * 60 * NANOS {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    first.kill().unwrap();
    let _ = first.wait();
    let killed_at = position(db.store().await).await;
    assert!(killed_at < end, "killed before the end");

    // The second takes over once the lease expires (now: no waiting for it) and finishes every window.
    db.expire_leases().await;
    let mut reached = 0;
    for _ in 0..600 {
        reached = position(db.store().await).await;
        if reached >= end {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // SIGTERM: the second finishes the window it is in, gives the lease back and exits.
    let status = Command::new("kill")
        .args(["-TERM", &second.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = second.wait().unwrap();
    assert!(exit.success(), "{exit:?}");
    assert!(
        store
            .try_acquire_lease("tempo:stream", "someone-else", Duration::from_secs(5))
            .await
            .unwrap(),
        "the lease was given back"
    );
    assert!(
        reached >= end,
        "the second worker carried on: {} of {} windows",
        (reached - t0()) / (60 * NANOS),
        MINUTES
    );
    // Nothing was lost: the slow minute (minute 10) is stored.
    assert!(!latency_rows(&store).await.is_empty());
    // The window the first was in when killed is not left running: the second marked it abandoned.
    let runs = store.recent_runs(500).await.unwrap();
    assert!(
        runs.iter()
            .all(|r| r.status != store_pg::RunStatus::Running),
        "{runs:?}"
    );
    let abandoned = runs
        .iter()
        .filter(|r| {
            r.error
                .as_deref()
                .is_some_and(|e| e.starts_with("abandoned"))
        })
        .count();
    assert!(abandoned <= 1, "{runs:?}");
    assert!(
        runs.iter()
            .filter(|r| r.status == store_pg::RunStatus::Succeeded)
            .count() as u64
            >= MINUTES
    );
}

/// Where the cursor `key` is, in nanoseconds (0 before it exists).
async fn cursor_at(db: &TestDatabase, key: &str) -> u64 {
    db.store()
        .await
        .get_cursor(key)
        .await
        .unwrap()
        .map_or(0, |c| c.timestamp_nanos_opt().unwrap() as u64)
}

#[actix_web::test]
async fn three_workers_share_two_shards_and_one_killed_mid_stream_loses_nothing() {
    let tempo = start_tempo();
    tempo.delay(Route::TraceV2, Duration::from_millis(25));
    let db = TestDatabase::new().await;
    let store = db.store().await;
    let (shop, cart) = ("tempo:windows:0-of-2", "tempo:windows:1-of-2");
    for key in [shop, cart] {
        let t = Utc.timestamp_nanos(t0() as i64);
        assert!(store.advance_cursor(key, None, t).await.unwrap());
    }
    let end = t0() + MINUTES * 60 * NANOS;
    // Shard 0 (shop) has an active worker and a standby; shard 1 (cart) one worker.
    let mut shop_active = spawn_shard(&tempo, &db, "0/2");
    let mut cart_worker = spawn_shard(&tempo, &db, "1/2");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut shop_standby = spawn_shard(&tempo, &db, "0/2");
    for _ in 0..200 {
        if cursor_at(&db, shop).await >= t0() + 3 * 60 * NANOS {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    shop_active.kill().unwrap();
    let _ = shop_active.wait();
    assert!(cursor_at(&db, shop).await < end, "killed mid-stream");
    let mut done = false;
    for _ in 0..600 {
        if cursor_at(&db, shop).await >= end && cursor_at(&db, cart).await >= end {
            done = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for worker in [&mut cart_worker, &mut shop_standby] {
        let _ = worker.kill();
        let _ = worker.wait();
    }
    assert!(done, "both shards reached the end");
    // Each shard detected its own service's slow minute; nothing was lost to the killed worker.
    assert!(!latency_rows_of(&store, "shop").await.is_empty());
    assert!(!latency_rows_of(&store, "cart").await.is_empty());
    // Each shard fetched only its own traces: every trace was fetched by one shard (or, for the
    // window the killed worker was in, twice), never by all three workers.
    let fetches = tempo.count(Route::TraceV2);
    assert!(
        fetches < tempo.traffic().len() * 3 / 2,
        "{fetches} fetches of {} traces",
        tempo.traffic().len()
    );
}

#[actix_web::test]
async fn baselines_learned_under_another_configuration_are_not_used() {
    let tempo = start_tempo();
    let db = TestDatabase::new().await;
    let (ok, stderr) = once_over(&tempo, &db, 0, 6).await;
    assert!(ok, "{stderr}");
    let store = db.store().await;
    store
        .update_config(
            &serde_json::json!({ "latency_threshold_stddev": 4.0 }),
            "test",
        )
        .await
        .unwrap();
    let (ok, stderr) = once_over(&tempo, &db, 6, MINUTES).await;
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("learned under another configuration"),
        "{stderr}"
    );
}

#[actix_web::test]
async fn sampled_fetch_takes_counts_from_traceql_metrics_and_fetches_only_the_sample() {
    let tempo = start_tempo();
    // The reference: every trace read.
    let full_db = TestDatabase::new().await;
    let (ok, stderr) = once_fetching(&tempo, &full_db, 0, MINUTES, "all").await;
    assert!(ok, "{stderr}");
    let full_errors = rows_of(&full_db.store().await, "cart", "error_rate_spike").await;
    assert_eq!(full_errors.len(), 1, "the failing minute: {full_errors:?}");
    assert_eq!(tempo.count(Route::Metrics), 0);

    let before = tempo.count(Route::TraceV2);
    let db = TestDatabase::new().await;
    let (ok, stderr) = once_fetching(&tempo, &db, 0, MINUTES, "sampled").await;
    assert!(ok, "{stderr}");
    let fetched = tempo.count(Route::TraceV2) - before;
    let all = tempo.traffic().len();
    // The default sampling ratio is 10 %.
    assert!(
        (all / 20..all * 3 / 20).contains(&fetched),
        "{fetched} of {all} traces fetched"
    );
    // Two TraceQL metrics queries a window: every span, and the errors.
    assert_eq!(tempo.count(Route::Metrics) as u64, 2 * MINUTES);
    let store = db.store().await;
    let errors = rows_of(&store, "cart", "error_rate_spike").await;
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(
        (errors[0].observed_value, errors[0].window_start),
        (full_errors[0].observed_value, full_errors[0].window_start),
        "Tempo's exact counts judge the window as reading every trace does"
    );
    let runs = store.recent_runs(100).await.unwrap();
    assert_eq!(runs.len() as u64, MINUTES);
    assert!(
        runs.iter()
            .all(|r| r.count_source.as_deref() == Some("traceql-metrics")
                && r.status == store_pg::RunStatus::Succeeded),
        "{runs:?}"
    );
}

#[actix_web::test]
async fn without_traceql_metrics_a_sampled_worker_reads_every_trace_and_says_so() {
    let tempo = start_tempo();
    tempo.answer(Route::Metrics, Some(Reply::metrics_out_of_range()));
    let db = TestDatabase::new().await;
    let (ok, stderr) = once_fetching(&tempo, &db, 0, 4, "sampled").await;
    assert!(ok, "{stderr}");
    let in_range = tempo.traffic().starting_in(0, t0() + 4 * 60 * NANOS).len();
    assert_eq!(tempo.count(Route::TraceV2), in_range);
    let runs = db.store().await.recent_runs(100).await.unwrap();
    assert_eq!(runs.len(), 4);
    for run in runs {
        let source = run.count_source.unwrap_or_default();
        assert!(
            source.starts_with("traces (TraceQL metrics unavailable")
                && source.contains("time range must be within last 20m0s"),
            "{source}"
        );
    }
}

/// What a run makes of the incidents, without the times the store itself stamps.
async fn incidents_of(store: &PgStore) -> Vec<serde_json::Value> {
    let page = store
        .list_incidents(&store_pg::IncidentFilter::default(), 500, None)
        .await
        .unwrap();
    page.items
        .iter()
        .map(|i| {
            let mut json = serde_json::to_value(i).unwrap();
            json.as_object_mut().unwrap().remove("resolved_at");
            json
        })
        .collect()
}

async fn incident_alerts(store: &PgStore) -> usize {
    store
        .claim_outbox("test", 500, Duration::from_secs(600))
        .await
        .unwrap()
        .iter()
        .filter(|item| item.incident_id.is_some())
        .count()
}

#[actix_web::test]
async fn incidents_are_the_same_run_twice_or_across_a_restart() {
    // 14 minutes; cart fails in minutes 11 and 12.
    let tempo = FakeTempo::start(traffic_of(14, 11..=12)).unwrap();
    let once = async |tempo: &FakeTempo, db: &TestDatabase| once_over(tempo, db, 0, 14).await;
    // One process over the whole range, then the same range again.
    let whole = TestDatabase::new().await;
    let (ok, stderr) = once(&tempo, &whole).await;
    assert!(ok, "{stderr}");
    let store = whole.store().await;
    let first = incidents_of(&store).await;
    // Minute 10 slows both services down (they do not call each other: two incidents); in minutes
    // 11 and 12 cart's errors join cart's incident.
    assert_eq!(first.len(), 2, "{first:#?}");
    let cart = first
        .iter()
        .find(|i| i["services"] == serde_json::json!(["cart"]))
        .expect("cart's incident");
    assert_eq!(cart["origins"][0]["service_name"], "cart");
    assert!(cart["anomaly_count"].as_i64().unwrap() >= 2, "{cart:#}");
    let cart_id: uuid::Uuid = cart["id"].as_str().unwrap().parse().unwrap();
    let filter = AnomalyFilter {
        incident_id: Some(cart_id),
        ..AnomalyFilter::default()
    };
    let rows = store
        .list_anomalies(&filter, 100, None)
        .await
        .unwrap()
        .items;
    assert_eq!(rows.len() as i64, cart["anomaly_count"].as_i64().unwrap());
    let alerts = incident_alerts(&store).await;
    assert_eq!(alerts, 2, "one opening per incident, nothing per finding");

    let (ok, stderr) = once(&tempo, &whole).await;
    assert!(ok, "{stderr}");
    assert_eq!(
        incidents_of(&store).await,
        first,
        "a range run twice changes no incident"
    );
    assert_eq!(incident_alerts(&store).await, 0, "and sends nothing again");

    // Two processes, the second starting while cart's incident is open: its errors of minute 12 join
    // the incident the first opened.
    let restarted = TestDatabase::new().await;
    let (ok, stderr) = once_over(&tempo, &restarted, 0, 12).await;
    assert!(ok, "{stderr}");
    let (ok, stderr) = once_over(&tempo, &restarted, 12, 14).await;
    assert!(ok, "{stderr}");
    assert_eq!(
        incidents_of(&restarted.store().await).await,
        first,
        "a restart goes on with the open incidents"
    );
}

/// Every stored finding, as what it says (not the ids or times the store stamps).
async fn findings_of(store: &PgStore) -> Vec<(String, String, String, String, i64)> {
    let page = store
        .list_anomalies(&AnomalyFilter::default(), 500, None)
        .await
        .unwrap();
    let mut found: Vec<_> = page
        .items
        .iter()
        .map(|a| {
            (
                a.service_name.clone().unwrap_or_default(),
                a.anomaly_subtype.clone().unwrap_or_default(),
                a.window_start.map(|t| t.to_rfc3339()).unwrap_or_default(),
                a.severity.as_str().to_owned(),
                a.occurrences,
            )
        })
        .collect();
    found.sort();
    found
}

#[actix_web::test]
async fn a_restart_right_after_a_slow_minute_loses_none_of_its_findings() {
    let tempo = start_tempo();
    let whole = TestDatabase::new().await;
    let (ok, stderr) = once(&tempo, &whole).await;
    assert!(ok, "{stderr}");
    let expected = findings_of(&whole.store().await).await;
    assert!(
        expected.iter().any(|f| f.1 == "latency_degradation"),
        "{expected:#?}"
    );
    // Stopped right after minute 10, the slow one: its requests' latency is judged only once its
    // traces are complete, which the first process does not wait for.
    let split = TestDatabase::new().await;
    let (ok, stderr) = once_over(&tempo, &split, 0, 11).await;
    assert!(ok, "{stderr}");
    let (ok, stderr) = once_over(&tempo, &split, 11, MINUTES).await;
    assert!(ok, "{stderr}");
    assert!(stderr.contains("reading again a window"), "{stderr}");
    let store = split.store().await;
    assert_eq!(findings_of(&store).await, expected);
    assert_eq!(
        incidents_of(&store).await,
        incidents_of(&whole.store().await).await
    );
}
