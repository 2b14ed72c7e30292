//! Alerts from the running system to a local fake of Telegram's Bot API (teloxide pointed at it with
//! the API URL): a HIGH incident reaches it exactly once, its probable origin first, with hostile span
//! names escaped; Telegram's 429 answers are honoured and an alert pending across a restart of the
//! sender is delivered once; many findings of one problem are one message, and an ongoing incident
//! stays quiet; resolutions, by hand or by recovery, send a short notice once.

mod common;

use alerting::testing::{Answer, FakeBotApi};
use api_server::server::ServerSettings;
use common::{
    LEARNED_WINDOWS, TestServer, WINDOW_NANOS, export, server_span, slow_after_normal, start,
    window_spans,
};
use std::time::{Duration, Instant};

fn with_telegram(fake: &FakeBotApi) -> impl Fn(&mut ServerSettings) + '_ {
    move |s: &mut ServerSettings| {
        s.alerts.telegram = Some(
            alerting::TelegramSettings::from_values(
                Some("123:test-token"),
                Some("42"),
                Some(&fake.url),
            )
            .unwrap()
            .unwrap(),
        );
        s.alerts.poll = Duration::from_millis(100);
        s.alerts.policy.links.dashboard = Some("https://tw.example".into());
    }
}

async fn wait_for_messages(fake: &FakeBotApi, n: usize, timeout: Duration) -> Vec<String> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if fake.delivered().len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    fake.delivered()
}

/// Nothing more arrives for a while.
async fn settle(fake: &FakeBotApi) -> Vec<String> {
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    fake.delivered()
}

/// The opening, then a resolved notice that says `why`.
fn assert_resolved_notice(messages: &[String], why: &str) {
    assert_eq!(messages.len(), 2, "{messages:#?}");
    assert!(
        messages[1].starts_with("✅ <b>Incident resolved</b>"),
        "{}",
        messages[1]
    );
    assert!(messages[1].contains(why), "{}", messages[1]);
}

/// One opening; anything else is the same incident's rise in severity (the findings of one window
/// may reach the store in more than one batch, the more severe later).
fn assert_one_opening(messages: &[String]) {
    let openings = messages
        .iter()
        .filter(|m| m.contains("<b>Incident opened</b>"))
        .count();
    assert_eq!(openings, 1, "{messages:#?}");
    assert!(
        messages.iter().all(
            |m| m.contains("<b>Incident opened</b>") || m.contains("<b>Incident escalated</b>")
        ),
        "{messages:#?}"
    );
    assert!(messages.len() <= 3, "at most two rises: {messages:#?}");
}

async fn first_incident(server: &TestServer) -> serde_json::Value {
    server
        .wait_for_incident("min_severity=HIGH", Duration::from_secs(20))
        .await
        .expect("a HIGH incident")
}

#[actix_web::test]
async fn a_high_incident_reaches_telegram_once_origin_first_and_its_resolution_once() {
    let fake = FakeBotApi::start();
    let server = start(with_telegram(&fake)).await;
    let hostile = "<img src=x onerror=alert(1)>";
    let resp = server
        .post_otlp(&slow_after_normal("checkout", hostile, 100))
        .await;
    assert_eq!(resp.status(), 200);
    let incident = first_incident(&server).await;
    let messages = wait_for_messages(&fake, 1, Duration::from_secs(20)).await;
    assert_eq!(messages.len(), 1, "{messages:#?}");
    let text = &messages[0];
    let first_line = text.lines().next().unwrap();
    assert!(
        first_line.contains("<b>Incident opened</b>")
            && (first_line.contains("HIGH") || first_line.contains("CRITICAL")),
        "{text}"
    );
    let second_line = text.lines().nth(1).unwrap();
    assert_eq!(
        second_line,
        "Probable origin: <b>checkout</b> · <code>&lt;img src=x onerror=alert(1)&gt;</code>",
        "{text}"
    );
    assert!(!text.contains("<img"), "{text}");
    let id = incident["id"].as_str().unwrap();
    assert!(
        text.contains(&format!("<a href=\"https://tw.example/incidents/{id}\">")),
        "{text}"
    );
    let request = &fake.requests()[0];
    assert_eq!(request.body["chat_id"], 42);
    assert_eq!(request.body["parse_mode"], "HTML");
    assert_eq!(settle(&fake).await.len(), 1, "exactly once");

    let resp = server
        .http
        .put(server.url(&format!("/api/incidents/{id}/resolve")))
        .json(&serde_json::json!({ "resolution_notes": "rolled <back>" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let messages = wait_for_messages(&fake, 2, Duration::from_secs(10)).await;
    assert_resolved_notice(&messages, "<i>rolled &lt;back&gt;</i>");
    let (_, findings) = server
        .get_json(&format!("/api/anomalies?incident_id={id}"))
        .await;
    let findings = findings["items"].as_array().unwrap();
    assert!(!findings.is_empty());
    assert!(
        findings.iter().all(|a| a["resolved"] == true),
        "resolving the incident resolves its anomalies: {findings:#?}"
    );
    // The sender counts a delivery once Telegram's answer is back, a moment after the fake has it.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut metrics = server.metrics().await;
    while !metrics.contains("tracewatch_alerts_total{outcome=\"sent\"} 2")
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
        metrics = server.metrics().await;
    }
    assert!(
        metrics.contains("tracewatch_alerts_total{outcome=\"sent\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tracewatch_alert_delivery_seconds_count 2"),
        "{metrics}"
    );
}

#[actix_web::test]
async fn rate_limits_are_honoured_and_a_restart_neither_loses_nor_repeats_an_alert() {
    let fake = FakeBotApi::start();
    fake.script([Answer::RetryAfter(2), Answer::RetryAfter(1)]);
    let mut server = start(with_telegram(&fake)).await;
    server
        .post_otlp(&slow_after_normal("cart", "GET /cart", 100))
        .await;
    first_incident(&server).await;
    // The first attempt is refused with retry_after 2: restart the sender while the alert waits.
    let deadline = Instant::now() + Duration::from_secs(20);
    while fake.requests().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let refused_at = Instant::now();
    assert_eq!(fake.requests().len(), 1);
    server.restart(with_telegram(&fake)).await;
    let messages = wait_for_messages(&fake, 1, Duration::from_secs(20)).await;
    assert_eq!(messages.len(), 1, "{:#?}", fake.requests());
    assert!(
        refused_at.elapsed() >= Duration::from_secs(2),
        "retry_after is honoured across the restart"
    );
    assert_eq!(fake.requests().len(), 3, "429, 429, accepted");
    server.restart(with_telegram(&fake)).await;
    assert_eq!(settle(&fake).await.len(), 1, "nothing is sent twice");
}

#[actix_web::test]
async fn eight_findings_of_one_problem_are_one_message_and_an_ongoing_incident_is_quiet() {
    let fake = FakeBotApi::start();
    let server = start(with_telegram(&fake)).await;
    // Eight operations of one service learn their baseline, then most of their requests are 5×
    // slower for a window: eight findings of one problem.
    let slow_window = common::judged_window_start();
    let ops: Vec<String> = (0..8).map(|op| format!("GET /op{op}")).collect();
    let mut spans = Vec::new();
    for w in 0..=LEARNED_WINDOWS {
        let window_start = slow_window - (LEARNED_WINDOWS - w) * WINDOW_NANOS;
        for (op, name) in ops.iter().enumerate() {
            let first_id = op as u64 * 100_000 + w * 1_000;
            let slow = w == LEARNED_WINDOWS;
            spans.extend(window_spans(first_id, name, 100, window_start, slow));
        }
    }
    spans.sort_by_key(|s| s.start_time_unix_nano);
    server.post_otlp(&export("storm", spans)).await;
    let messages = wait_for_messages(&fake, 1, Duration::from_secs(20)).await;
    assert!(
        messages[0].contains("<b>Incident opened</b>")
            && messages[0].contains("Probable origin: <b>storm</b>"),
        "{}",
        messages[0]
    );
    assert_one_opening(&settle(&fake).await);
    let incident = first_incident(&server).await;
    let (_, detail) = server
        .get_json(&format!(
            "/api/incidents/{}",
            incident["id"].as_str().unwrap()
        ))
        .await;
    let operations: std::collections::BTreeSet<&str> = detail["anomalies"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["operation"].as_str())
        .collect();
    assert_eq!(operations.len(), 8, "every operation's findings: {detail}");
    // The same findings again a window later, the incident still open: it goes on, no message within
    // the cool-down. A span a minute on moves the event clock past the window's judgement. Placed from
    // the slow window, not from the clock: a minute boundary crossed meanwhile would put it two windows
    // on, beyond the incident's join gap (a new incident, a second opening).
    let open_window = slow_window + 2 * WINDOW_NANOS;
    let mut again = Vec::new();
    for (op, name) in ops.iter().enumerate() {
        let first_id = op as u64 * 100_000 + 50_000;
        again.extend(window_spans(first_id, name, 100, open_window, true));
    }
    again.sort_by_key(|s| s.start_time_unix_nano);
    again.push(server_span(
        90_000_000,
        &ops[0],
        open_window + 2 * WINDOW_NANOS + 1_000_000_000,
        20.0,
    ));
    server.post_otlp(&export("storm", again)).await;
    assert_one_opening(&settle(&fake).await);
    let (_, open) = server.get_json("/api/incidents?status=open").await;
    assert_eq!(open["items"].as_array().unwrap().len(), 1, "{open}");
}

#[actix_web::test]
async fn an_incident_that_goes_quiet_resolves_itself_with_a_notice() {
    let fake = FakeBotApi::start();
    let mut server = start(with_telegram(&fake)).await;
    // The quiet period is configuration: set, then taken up by the detectors at start.
    let resp = server
        .http
        .put(server.url("/api/anomaly-config"))
        .json(&serde_json::json!({ "incident_quiet_seconds": 10 }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    server.restart(with_telegram(&fake)).await;
    server
        .post_otlp(&slow_after_normal("search", "GET /search", 100))
        .await;
    let messages = wait_for_messages(&fake, 2, Duration::from_secs(40)).await;
    assert_resolved_notice(
        &messages,
        "Resolved by tracewatch: <i>recovered: no new finding since ",
    );
    assert_eq!(settle(&fake).await.len(), 2, "once");
    let (_, body) = server.get_json("/api/incidents?status=resolved").await;
    assert_eq!(body["items"][0]["resolved_by"], "tracewatch", "{body}");
}
