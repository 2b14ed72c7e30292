//! The retention job on a real PostgreSQL (`cargo bench -p store-pg --bench retention`): a store filled
//! with anomalies over 90 days of event time (1M by default; `TRACEWATCH_BENCH_RETENTION_ROWS` for
//! another count), with their detection keys, incidents, delivered alerts, runs and configuration
//! history; then the job with the default settings (30 days) while a writer keeps inserting batches of
//! anomalies, as the pipeline does. Prints what was deleted and how long it took, checks that exactly
//! what the settings keep is left, and prints the writer's insert latency (p50, p99, max) without and
//! during the job. `TRACEWATCH_BENCH_DATABASE_URL` names the server's maintenance database (default
//! postgres://postgres@127.0.0.1:5432/postgres); the bench creates and drops its own database.

use chrono::Utc;
use detect_core::{AnomalyType, Severity};
use diesel::QueryableByName;
use diesel::sql_types::BigInt;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use store_pg::{AnomalyDetails, NewAnomaly, PgStore, Repository, RetentionSettings};

const DATABASE: &str = "tracewatch_bench_retention";
/// Detections per insert, and the pause between inserts, of the writer.
const WRITER_BATCH: usize = 10;
const WRITER_PAUSE: Duration = Duration::from_millis(5);
/// How long the writer runs alone first, for the baseline.
const BASELINE: Duration = Duration::from_secs(15);

fn server_url() -> String {
    std::env::var("TRACEWATCH_BENCH_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

fn database_url() -> String {
    let server = server_url();
    let base = server.rsplit_once('/').map_or(server.as_str(), |(b, _)| b);
    format!("{base}/{DATABASE}")
}

fn rows() -> i64 {
    std::env::var("TRACEWATCH_BENCH_RETENTION_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

/// What the writer stores: new anomalies of their own fingerprints, now.
fn live(i: usize) -> NewAnomaly {
    let t = Utc::now();
    NewAnomaly {
        detection_key: format!("live/{i}"),
        fingerprint: format!("live-{i}"),
        trace_id: format!("{i:032x}"),
        span_id: Some(format!("{i:016x}")),
        anomaly_type: AnomalyType::Performance,
        anomaly_subtype: "latency_spike".into(),
        severity: Severity::ALL[i % 4],
        description: format!("GET /items on service-{} took 400 ms", i % 20),
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
        notify: false,
    }
}

/// Event time of fill row `g` of `n`: spread evenly over the 90 days before now.
fn at(g: &str, n: i64) -> String {
    format!("(NOW() - INTERVAL '90 days' + ({g}) * (INTERVAL '90 days' / {n}))")
}

/// Fills the store in SQL. Anomaly `g`: open when `g % 10 = 0`, otherwise resolved 30 minutes after its
/// finding and part of incident `g / 100` (open when that is a multiple of 10); two detection keys;
/// `g % 20 = 5` were alerted (opened and resolved, both delivered). A finished run every 10 minutes, 10 pending
/// ones, a configuration change a day.
async fn fill(conn: &mut AsyncPgConnection, n: i64) {
    let t = at("g", n);
    let incident_t = at("k * 100", n);
    let statements = [
        format!(
            "INSERT INTO incidents (id, fingerprint, status, severity, title, started_at, last_seen_at, \
                 ended_at, resolved_at, origins, services, calls, anomaly_count, detections, \
                 example_trace_ids, alerted, updated_at) \
             SELECT md5('incident' || k)::uuid, 'incident-' || k, \
                 CASE WHEN k % 10 = 0 THEN 'open' ELSE 'resolved' END, 'HIGH', 'bench', {incident_t}, \
                 {incident_t} + INTERVAL '1 hour', \
                 CASE WHEN k % 10 = 0 THEN NULL ELSE {incident_t} + INTERVAL '2 hours' END, \
                 CASE WHEN k % 10 = 0 THEN NULL ELSE {incident_t} + INTERVAL '2 hours' END, \
                 '[]', '[]', '[]', 100, 100, '[]', TRUE, {incident_t} + INTERVAL '2 hours' \
             FROM generate_series(0, {n} / 100) k"
        ),
        format!(
            "INSERT INTO trace_anomalies (id, trace_id, anomaly_type, anomaly_subtype, severity, description, \
                 detected_at, resolved, resolved_at, resolved_by, service_name, operation, fingerprint, \
                 occurrences, last_seen_at, incident_id) \
             SELECT md5('anomaly' || g)::uuid, md5(g::text), 'PERFORMANCE', 'latency_spike', \
                 (ARRAY['LOW','MEDIUM','HIGH','CRITICAL'])[1 + g % 4], 'op-' || (g % 50) || ' was slow', \
                 {t}, g % 10 <> 0, CASE WHEN g % 10 <> 0 THEN {t} + INTERVAL '30 minutes' END, \
                 CASE WHEN g % 10 <> 0 THEN 'ops' END, 'service-' || (g % 20), 'op-' || (g % 50), \
                 'fill-' || g, 2, {t}, \
                 CASE WHEN g % 10 <> 0 THEN md5('incident' || (g / 100))::uuid END \
             FROM generate_series(1, {n}) g"
        ),
        format!(
            "INSERT INTO anomaly_detections (detection_key, anomaly_id, stored_at) \
             SELECT 'fill/' || g || '/' || j, md5('anomaly' || g)::uuid, {t} \
             FROM generate_series(1, {n}) g, generate_series(1, 2) j"
        ),
        format!(
            "INSERT INTO alert_outbox (anomaly_id, event, created_at, sent_at, attempts) \
             SELECT md5('anomaly' || g)::uuid, e.event, {t} + e.after, {t} + e.after, 1 \
             FROM generate_series(5, {n}, 20) g, \
                 (VALUES ('opened', INTERVAL '1 minute'), ('resolved', INTERVAL '31 minutes')) e(event, after)"
        ),
        "INSERT INTO detection_runs (trigger, status, window_start, window_end, requested_at, started_at, finished_at) \
         SELECT 'scheduled', 'succeeded', w, w + INTERVAL '10 minutes', w, w, w + INTERVAL '11 minutes' \
         FROM generate_series(NOW() - INTERVAL '90 days', NOW(), INTERVAL '10 minutes') w"
            .to_string(),
        "INSERT INTO detection_runs (trigger, status, requested_at) \
         SELECT 'manual', 'pending', NOW() - INTERVAL '60 days' FROM generate_series(1, 10)"
            .to_string(),
        "INSERT INTO config_history (config_key, new_value, changed_by, changed_at) \
         SELECT 'sampling_ratio', '0.1', 'admin', d \
         FROM generate_series(NOW() - INTERVAL '90 days', NOW(), INTERVAL '1 day') d"
            .to_string(),
        "VACUUM ANALYZE".to_string(),
    ];
    for sql in statements {
        diesel::sql_query(sql).execute(conn).await.unwrap();
    }
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

async fn count(conn: &mut AsyncPgConnection, sql: &str) -> i64 {
    let rows: Vec<Count> = diesel::sql_query(format!("SELECT COUNT(*) AS n FROM {sql}"))
        .load(conn)
        .await
        .unwrap();
    rows[0].n
}

/// What the default settings keep of the filled rows, counted in SQL as of the job's cut-off (`$cut`:
/// 30 days before the job's now).
const KEPT: [(&str, &str); 6] = [
    (
        "open anomalies",
        "trace_anomalies WHERE fingerprint LIKE 'fill-%' AND resolved IS NOT TRUE",
    ),
    (
        "resolved anomalies seen or resolved within 30 days",
        "trace_anomalies WHERE resolved IS TRUE AND (last_seen_at >= $cut OR resolved_at >= $cut)",
    ),
    (
        "older resolved anomalies of open incidents",
        "trace_anomalies a JOIN incidents i ON i.id = a.incident_id WHERE a.resolved IS TRUE \
         AND a.last_seen_at < $cut AND a.resolved_at < $cut AND i.status = 'open'",
    ),
    (
        "incidents open, within 30 days, or with a kept anomaly",
        "incidents i WHERE status = 'open' OR last_seen_at >= $cut OR updated_at >= $cut \
         OR EXISTS (SELECT 1 FROM trace_anomalies a WHERE a.incident_id = i.id \
             AND (a.resolved IS NOT TRUE OR a.last_seen_at >= $cut OR a.resolved_at >= $cut))",
    ),
    (
        "runs pending, or finished within 30 days",
        "detection_runs WHERE status = 'pending' OR finished_at >= $cut",
    ),
    (
        "alerts delivered within 7 days",
        "alert_outbox WHERE sent_at >= $cut + INTERVAL '23 days'",
    ),
];

/// All that is left of the filled rows: anomalies, keys, incidents, runs, alerts.
const LEFT: [&str; 5] = [
    "trace_anomalies WHERE fingerprint LIKE 'fill-%'",
    "anomaly_detections WHERE detection_key LIKE 'fill/%'",
    "incidents",
    "detection_runs",
    "alert_outbox",
];

async fn kept(conn: &mut AsyncPgConnection, cut: &str) -> Vec<i64> {
    let mut counts = Vec::new();
    for (_, sql) in KEPT {
        counts.push(count(conn, &sql.replace("$cut", cut)).await);
    }
    counts
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Inserts batches until `stop`; each insert's latency in ms.
async fn writer(store: PgStore, first: usize, stop: Arc<AtomicBool>) -> Vec<f64> {
    let mut times = Vec::new();
    let mut i = first;
    while !AtomicBool::load(&stop, Ordering::Acquire) {
        let batch: Vec<NewAnomaly> = (i..i + WRITER_BATCH).map(live).collect();
        i += WRITER_BATCH;
        let started = Instant::now();
        store.insert_anomalies(&batch).await.unwrap();
        times.push(started.elapsed().as_secs_f64() * 1e3);
        tokio::time::sleep(WRITER_PAUSE).await;
    }
    times.sort_by(f64::total_cmp);
    times
}

fn latency(what: &str, times: &[f64]) {
    println!(
        "insert_anomalies ({WRITER_BATCH} detections) {what}: {} inserts, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        times.len(),
        percentile(times, 0.5),
        percentile(times, 0.99),
        times.last().copied().unwrap_or(0.0)
    );
}

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` asks for a list; there is nothing to list.
    }
    let n = rows();
    let mut admin = AsyncPgConnection::establish(&server_url())
        .await
        .expect("PostgreSQL is reachable");
    for sql in [
        format!("DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)"),
        format!("CREATE DATABASE {DATABASE}"),
    ] {
        diesel::sql_query(sql).execute(&mut admin).await.unwrap();
    }
    let store = PgStore::connect(&database_url())
        .await
        .expect("store connects");
    let mut conn = AsyncPgConnection::establish(&database_url()).await.unwrap();
    let started = Instant::now();
    fill(&mut conn, n).await;
    println!(
        "filled: {n} anomalies over 90 days, {} detection keys, {} incidents, {} alerts, {} runs in {:.1} s",
        count(&mut conn, "anomaly_detections").await,
        count(&mut conn, "incidents").await,
        count(&mut conn, "alert_outbox").await,
        count(&mut conn, "detection_runs").await,
        started.elapsed().as_secs_f64()
    );

    // The writer alone, then during the job.
    let stop = Arc::new(AtomicBool::new(false));
    let alone = tokio::spawn(writer(store.clone(), 0, stop.clone()));
    tokio::time::sleep(BASELINE).await;
    stop.store(true, Ordering::Release);
    latency("alone", &alone.await.unwrap());

    let settings = RetentionSettings::default();
    let now = store.clock().time();
    let cut = format!("TIMESTAMPTZ '{}'", now - chrono::Duration::days(30));
    let expected = kept(&mut conn, &cut).await;
    let stop = Arc::new(AtomicBool::new(false));
    let during = tokio::spawn(writer(store.clone(), 10_000_000, stop.clone()));
    let report = store.apply_retention(&settings, now).await.unwrap();
    stop.store(true, Ordering::Release);
    latency("during the job", &during.await.unwrap());
    println!(
        "retention job: {:.1} s, {} rows deleted ({:.0} rows/s)",
        report.took.as_secs_f64(),
        report.total(),
        report.total() as f64 / report.took.as_secs_f64()
    );
    for (table, rows) in report.by_table() {
        println!("    {table}: {rows} deleted");
    }

    // Exactly what the settings keep is left of the filled rows.
    let left = kept(&mut conn, &cut).await;
    for (i, (what, _)) in KEPT.iter().enumerate() {
        println!("kept, {what}: {} (before the job {})", left[i], expected[i]);
        assert_eq!(left[i], expected[i], "{what}");
    }
    let mut totals = Vec::new();
    for sql in LEFT {
        totals.push(count(&mut conn, sql).await);
    }
    let anomalies = expected[0] + expected[1] + expected[2];
    println!(
        "left: {} anomalies, {} keys, {} incidents, {} runs, {} alerts",
        totals[0], totals[1], totals[2], totals[3], totals[4]
    );
    assert_eq!(
        totals[0], anomalies,
        "nothing else is left of the anomalies"
    );
    assert_eq!(
        totals[1],
        2 * anomalies,
        "every kept anomaly keeps its keys"
    );
    assert_eq!(
        totals[2..],
        expected[3..],
        "nothing else is left of the rest"
    );
    let again = store.apply_retention(&settings, now).await.unwrap();
    println!(
        "second run right after: {} rows deleted in {:.2} s",
        again.total(),
        again.took.as_secs_f64()
    );

    drop(conn);
    drop(store);
    diesel::sql_query(format!("DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)"))
        .execute(&mut admin)
        .await
        .unwrap();
}
