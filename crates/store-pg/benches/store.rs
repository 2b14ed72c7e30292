//! Store benchmarks on a real PostgreSQL (`cargo bench -p store-pg --bench store`):
//! batched anomaly inserts per second through the repository, then first-page latency (p50/p99)
//! of the dashboard's queries with 1M anomalies stored, and the query plans that serve them; the live
//! events' write → notification latency and journal reads.
//! `TRACEWATCH_BENCH_DATABASE_URL` names the server's maintenance database
//! (default postgres://postgres@127.0.0.1:5432/postgres); the bench creates and drops its own database.

use chrono::{Duration as ChronoDuration, TimeZone, Utc};
use detect_core::{AnomalyType, Severity};
use diesel::QueryableByName;
use diesel::sql_types::Text;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use std::time::Instant;
use store_pg::{AnomalyDetails, AnomalyFilter, NewAnomaly, PgStore, Repository};

const DATABASE: &str = "tracewatch_bench";
const ROWS: i64 = 1_000_000;
const INSERTS: usize = 50_000;
const BATCH: usize = 1_000;
const QUERIES: usize = 300;
const LIVE_WRITES: usize = 200;

fn server_url() -> String {
    std::env::var("TRACEWATCH_BENCH_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

fn database_url() -> String {
    let server = server_url();
    let base = server.rsplit_once('/').map_or(server.as_str(), |(b, _)| b);
    format!("{base}/{DATABASE}")
}

fn detection(i: usize) -> NewAnomaly {
    let t = Utc.with_ymd_and_hms(2026, 1, 5, 0, 0, 0).unwrap() + ChronoDuration::seconds(i as i64);
    NewAnomaly {
        detection_key: format!("bench/{i}"),
        fingerprint: format!("{:032x}", i % 40_000),
        trace_id: format!("{i:032x}"),
        span_id: Some(format!("{i:016x}")),
        anomaly_type: AnomalyType::Performance,
        anomaly_subtype: "latency_spike".into(),
        severity: Severity::ALL[i % 4],
        description: format!(
            "GET /items on service-{} took {} ms where 40 ms is typical",
            i % 20,
            400 + i % 300
        ),
        detected_at: t,
        service_name: format!("service-{}", i % 20),
        operation: Some("GET /items".into()),
        client: None,
        peer_service: None,
        observed_value: 400.0,
        expected_value: 40.0,
        score: 7.0,
        window_start: t,
        window_end: t,
        details: AnomalyDetails::default(),
        notify: i % 4 >= 2,
    }
}

#[derive(QueryableByName)]
struct PlanLine {
    #[diesel(sql_type = Text, column_name = "QUERY PLAN")]
    line: String,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` asks for a list; there is nothing to list.
    }
    let mut admin = AsyncPgConnection::establish(&server_url())
        .await
        .expect("PostgreSQL is reachable");
    diesel::sql_query(format!("DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)"))
        .execute(&mut admin)
        .await
        .unwrap();
    diesel::sql_query(format!("CREATE DATABASE {DATABASE}"))
        .execute(&mut admin)
        .await
        .unwrap();
    let store = PgStore::connect(&database_url())
        .await
        .expect("store connects");

    // 1. Batched inserts through the repository (new rows and merges into open rows).
    let batches: Vec<Vec<NewAnomaly>> = (0..INSERTS)
        .map(detection)
        .collect::<Vec<_>>()
        .chunks(BATCH)
        .map(<[_]>::to_vec)
        .collect();
    let started = Instant::now();
    for batch in &batches {
        store.insert_anomalies(batch).await.unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "insert_anomalies: {INSERTS} detections in batches of {BATCH} (40k new rows, 10k merges): {:.2} s, {:.0} detections/s",
        elapsed,
        INSERTS as f64 / elapsed
    );

    // 1b. Live events: from a one-detection write to its notification on another connection, and a
    // follower's read of 500 journal rows with their subjects.
    let mut listener = store.listen().await.expect("listens");
    let mut waits = Vec::with_capacity(LIVE_WRITES);
    for i in 0..LIVE_WRITES {
        let mut d = detection(INSERTS + i);
        d.fingerprint = format!("live-{i}");
        let started = Instant::now();
        store.insert_anomalies(&[d]).await.unwrap();
        assert!(
            listener
                .wait(std::time::Duration::from_secs(5))
                .await
                .unwrap()
        );
        waits.push(started.elapsed().as_secs_f64() * 1e3);
    }
    waits.sort_by(f64::total_cmp);
    let latest = store.live_event_bounds().await.unwrap().latest;
    let mut reads = Vec::with_capacity(QUERIES);
    for _ in 0..QUERIES {
        let started = Instant::now();
        let events = store.live_events_after(latest - 500, 500).await.unwrap();
        assert_eq!(events.len(), 500);
        reads.push(started.elapsed().as_secs_f64() * 1e3);
    }
    reads.sort_by(f64::total_cmp);
    println!(
        "live events: write → notification p50 {:.2} ms, p99 {:.2} ms ({LIVE_WRITES} writes); 500 events read with their subjects p50 {:.2} ms, p99 {:.2} ms",
        percentile(&waits, 0.5),
        percentile(&waits, 0.99),
        percentile(&reads, 0.5),
        percentile(&reads, 0.99)
    );
    drop(listener);

    // 2. Fill to 1M rows in SQL (fast), then analyse.
    let mut conn = AsyncPgConnection::establish(&database_url()).await.unwrap();
    let started = Instant::now();
    diesel::sql_query(format!(
        "INSERT INTO trace_anomalies (trace_id, anomaly_type, anomaly_subtype, severity, description, detected_at, \
             resolved, service_name, operation, fingerprint, occurrences, last_seen_at) \
         SELECT md5(g::text), (ARRAY['PERFORMANCE','SECURITY','RESOURCE'])[1 + g % 3], 'latency_spike', \
             (ARRAY['LOW','LOW','LOW','MEDIUM','MEDIUM','HIGH','CRITICAL'])[1 + g % 7], \
             'operation op-' || (g % 50) || ' on service-' || (g % 20) || ' was slow', \
             TIMESTAMPTZ '2026-01-01' + g * INTERVAL '2 seconds', (g / 7) % 10 <> 0, 'service-' || (g % 20), \
             'op-' || (g % 50), 'fill-' || g, 1, TIMESTAMPTZ '2026-01-01' + g * INTERVAL '2 seconds' \
         FROM generate_series(1, {}) g",
        ROWS - INSERTS as i64 * 4 / 5
    ))
    .execute(&mut conn)
    .await
    .unwrap();
    diesel::sql_query("VACUUM ANALYZE trace_anomalies")
        .execute(&mut conn)
        .await
        .unwrap();
    println!(
        "filled to {ROWS} rows in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // 3. First-page latency of the dashboard's queries.
    let shapes: Vec<(&str, AnomalyFilter)> = vec![
        ("newest first, no filter", AnomalyFilter::default()),
        (
            "unresolved HIGH and CRITICAL (alert panel)",
            AnomalyFilter {
                resolved: Some(false),
                min_severity: Some(Severity::High),
                ..Default::default()
            },
        ),
        (
            "one service",
            AnomalyFilter {
                service: Some("service-7".into()),
                ..Default::default()
            },
        ),
        (
            "type + service + unresolved",
            AnomalyFilter {
                anomaly_type: Some(AnomalyType::Security),
                service: Some("service-3".into()),
                resolved: Some(false),
                ..Default::default()
            },
        ),
        (
            "text in description",
            AnomalyFilter {
                text: Some("op-7 on service-7".into()),
                ..Default::default()
            },
        ),
    ];
    for (name, filter) in &shapes {
        let mut times = Vec::with_capacity(QUERIES);
        let mut cursor = None;
        for i in 0..QUERIES {
            let started = Instant::now();
            let page = store.list_anomalies(filter, 50, None).await.unwrap();
            times.push(started.elapsed().as_secs_f64() * 1e3);
            if i == 0 {
                cursor = page.next_cursor;
            }
        }
        times.sort_by(f64::total_cmp);
        let started = Instant::now();
        store.list_anomalies(filter, 50, cursor).await.unwrap();
        let second = started.elapsed().as_secs_f64() * 1e3;
        println!(
            "first page of 50, {name}: p50 {:.2} ms, p99 {:.2} ms (second page {:.2} ms)",
            percentile(&times, 0.5),
            percentile(&times, 0.99),
            second
        );
    }

    // 4. The plans: each must walk an index, not sort or scan the table.
    let columns = "id, detected_at, severity, service_name, description";
    let plans = [
        (
            "newest first",
            format!(
                "SELECT {columns} FROM trace_anomalies WHERE detected_at IS NOT NULL ORDER BY detected_at DESC, id DESC LIMIT 51"
            ),
        ),
        (
            "alert panel",
            format!(
                "SELECT {columns} FROM trace_anomalies WHERE severity IN ('HIGH','CRITICAL') AND resolved IS NOT TRUE AND detected_at IS NOT NULL ORDER BY detected_at DESC, id DESC LIMIT 51"
            ),
        ),
        (
            "one service",
            format!(
                "SELECT {columns} FROM trace_anomalies WHERE service_name = 'service-7' AND detected_at IS NOT NULL ORDER BY detected_at DESC, id DESC LIMIT 51"
            ),
        ),
        (
            "by fingerprint",
            "SELECT id FROM trace_anomalies WHERE fingerprint = 'fill-77'".to_string(),
        ),
    ];
    for (name, sql) in plans {
        let lines: Vec<PlanLine> = diesel::sql_query(format!(
            "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) {sql}"
        ))
        .load(&mut conn)
        .await
        .unwrap();
        println!("plan, {name}:");
        for l in lines {
            println!("    {}", l.line);
        }
    }
    drop(conn);
    drop(store);
    diesel::sql_query(format!("DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)"))
        .execute(&mut admin)
        .await
        .unwrap();

    // 5. The embedded store (SQLite file), same batches.
    let dir = std::env::temp_dir().join(format!("tracewatch-bench-{}", std::process::id()));
    let embedded = store_pg::SqliteStore::open(&dir.join("bench.sqlite3"))
        .await
        .expect("embedded store opens");
    let started = Instant::now();
    for batch in &batches {
        embedded.insert_anomalies(batch).await.unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "embedded insert_anomalies: {INSERTS} detections in batches of {BATCH}: {:.2} s, {:.0} detections/s",
        elapsed,
        INSERTS as f64 / elapsed
    );
    let mut times = Vec::with_capacity(QUERIES);
    for _ in 0..QUERIES {
        let started = Instant::now();
        embedded
            .list_anomalies(&AnomalyFilter::default(), 50, None)
            .await
            .unwrap();
        times.push(started.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "embedded first page of 50 at 40k rows, newest first: p50 {:.2} ms, p99 {:.2} ms",
        percentile(&times, 0.5),
        percentile(&times, 0.99)
    );
    drop(embedded);
    let _ = std::fs::remove_dir_all(&dir);
}
