//! The dashboard end to end in a real browser: Debian's headless Chromium driven by playwright-core
//! (`tests/browser/e2e.mjs`) against a running api-server with access control and live detection.
//! It loads each page, signs in as a viewer (no resolve or config controls) and as an admin, filters
//! (the URL holds the filters), opens a detail, resolves, sees a new anomaly appear in the alert panel
//! without a reload, checks that hostile span names show as text; lists an open incident first on the
//! Supervisor and draws its page (ranked origins and evidence, the services drawing with the origin
//! marked, hostile service names as text), resolves it; and saves screenshots under
//! `target/tmp/dashboard-screenshots` (`CARGO_TARGET_TMPDIR`).
//!
//! Needs `node`, and Chromium at `/usr/bin/chromium` (Debian's `chromium` package) or `$CHROMIUM`;
//! `.ci/setup-test-env` (run by `cargo xtask test`) installs both. playwright-core is installed here with `npm ci` when missing.

mod common;

use api_server::auth::Authenticator;
use chrono::{Duration as TimeDelta, Utc};
use common::{TestServer, slowdown_of, start};
use detect_core::Severity;
use prost::Message;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use store_pg::{CallJson, NewIncident, OriginJson, Repository};

const VIEWER: &str = "viewer-key-0123456789";
const ADMIN: &str = "admin-key-0123456789";

fn chromium() -> PathBuf {
    let path = std::env::var_os("CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    assert!(
        path.exists(),
        "the browser tests need Chromium at {} (Debian: apt-get install chromium; or set CHROMIUM); .ci/setup-test-env installs it",
        path.display()
    );
    path
}

fn scripts() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    if !dir.join("node_modules/playwright-core").exists() {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .status()
            .expect("the browser tests need node and npm");
        assert!(status.success(), "npm ci in {} failed", dir.display());
    }
    dir
}

async fn post(server: &TestServer, keys: &[(&str, &str)]) {
    let resp = server
        .http
        .post(server.url("/v1/traces"))
        .bearer_auth(ADMIN)
        .header("Content-Type", "application/x-protobuf")
        .body(slowdown_of(keys, 300).encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

/// A service name that is an HTML injection: it must show as text everywhere.
const HOSTILE: &str = "<img src=x onerror=alert(1)>";

/// An open CRITICAL incident across four services, started a minute ago (the newest), whose probable
/// origin is the hostile service; it holds `anomaly`. Written to the running server's store, as its
/// in-process detection would, so that its services, calls and origins are known exactly.
async fn seed_incident(server: &TestServer, anomaly: uuid::Uuid) -> uuid::Uuid {
    let now = Utc::now();
    let call = |caller: &str, callee: &str, calls| CallJson {
        caller: caller.into(),
        callee: callee.into(),
        calls,
    };
    let incident = NewIncident {
        id: uuid::Uuid::new_v4(),
        fingerprint: "browser-test".into(),
        severity: Severity::Critical,
        title: format!("{HOSTILE}: latency degradation"),
        client: None,
        started_at: now - TimeDelta::minutes(1),
        last_seen_at: now,
        ended_at: None,
        origins: vec![
            OriginJson {
                service_name: HOSTILE.into(),
                operation: Some("<b>POST /pay</b>".into()),
                score: 3.2,
                evidence: format!("{HOSTILE}: own time ×5.8 (p99 41 ms → 240 ms)"),
            },
            OriginJson {
                service_name: "payments".into(),
                operation: Some("POST /charge".into()),
                score: 1.1,
                evidence: "payments: slower only while its caller is".into(),
            },
        ],
        services: ["frontend", HOSTILE, "checkout", "payments"]
            .map(String::from)
            .to_vec(),
        calls: vec![
            call("frontend", HOSTILE, 120),
            call("frontend", "checkout", 80),
            call(HOSTILE, "payments", 110),
            call("checkout", "payments", 75),
        ],
        anomaly_count: 1,
        detections: 3,
        example_trace_ids: vec!["4bf92f3577b34da6a3ce929d0e0e4736".into()],
        absorbed: Vec::new(),
        anomaly_ids: vec![anomaly],
        notify: false,
    };
    let store = &server.running.as_ref().expect("running").store;
    let written = store.record_incidents(&[incident]).await.unwrap();
    written[0].id
}

#[actix_web::test]
async fn the_dashboard_works_in_a_real_browser() {
    let (browser, dir) = (chromium(), scripts());
    let server = start(|s| {
        s.auth = Authenticator::new(
            Some(&format!("viewer:{VIEWER},admin:{ADMIN}")),
            None,
            "app_metadata.tracewatch_role",
            None,
        )
        .unwrap();
        s.alerts.policy.links.trace =
            Some("https://grafana.example/explore?trace={trace_id}".into());
    })
    .await;
    // Two open incidents, one on a span whose name is an HTML injection.
    post(
        &server,
        &[
            ("checkout", "<img src=x onerror=alert(1)>"),
            ("payments", "POST /pay"),
        ],
    )
    .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let detected = loop {
        let body: serde_json::Value = server
            .http
            .get(server.url("/api/anomalies?min_severity=HIGH"))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if body["items"].as_array().unwrap().len() >= 2 {
            break body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the seeded anomalies were not detected"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let payments = detected["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["service_name"] == "payments")
        .expect("the payments anomaly");
    let payments = payments["id"].as_str().unwrap().parse().unwrap();
    let incident = seed_incident(&server, payments).await.to_string();
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard-screenshots");
    let (base, shots_arg) = (server.base.clone(), shots.display().to_string());
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(dir.join("e2e.mjs"))
            .args([&base, &shots_arg, VIEWER, ADMIN, &incident, HOSTILE])
            .env("CHROMIUM", browser)
            .output()
            .expect("node runs")
    })
    .await
    .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    println!("{stdout}");
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(shots.join("supervisor-live.png").exists());
    assert!(shots.join("incident.png").exists());
}
