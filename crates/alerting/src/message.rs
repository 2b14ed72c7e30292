//! Messages for Telegram's HTML parse mode. Text from spans (service and operation names,
//! descriptions) can hold any character: it is cut to a bounded length and then escaped, so a span
//! named `<b>` shows as text and no cut falls inside an entity. A message never exceeds Telegram's
//! limit of 4,096 characters (counted here in UTF-16 units of the HTML, never fewer than Telegram
//! counts after parsing).
//!
//! An anomaly's message says what, where, how much and when. An incident's (findings grouped, with
//! probable origins) names its probable origin first with its evidence, then the other candidates, the
//! affected services, and links to the incident and to example traces.

use crate::alert::{Alert, AlertEvent, IncidentSummary};
use chrono::{DateTime, Utc};
use detect_core::Severity;

/// Telegram's limit for a message's text.
pub const MAX_MESSAGE_CHARS: usize = 4_096;
/// Longest piece of span text shown (names, descriptions).
const MAX_FIELD_CHARS: usize = 200;
const MAX_DESCRIPTION_CHARS: usize = 600;
/// Incidents listed by name in a digest; the rest are counted.
const DIGEST_LISTED: usize = 10;
/// The leading origin's evidence, and the other candidates' (shorter).
const MAX_EVIDENCE_CHARS: usize = 300;
const MAX_OTHER_EVIDENCE_CHARS: usize = 120;
/// Candidate origins shown after the leading one.
const OTHER_ORIGINS: usize = 2;
/// Affected services listed by name (each cut shorter than a field); the rest are counted.
const SERVICES_LISTED: usize = 8;
const MAX_SERVICE_CHARS: usize = 60;
/// Example traces linked from an incident's message.
const INCIDENT_TRACES: usize = 3;

/// Where a message links to.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Links {
    /// The dashboard's base URL (`https://tracewatch.example.com`): an anomaly is at `/anomalies/<id>`,
    /// an incident at `/incidents/<id>` (its UUID, the alert's `anomaly_id`).
    pub dashboard: Option<String>,
    /// A trace's URL with `{trace_id}` in it, for Grafana's Explore on Tempo or Tempo's own UI.
    pub trace: Option<String>,
}

/// Escapes text for Telegram HTML: `&`, `<` and `>` (teloxide's rule), and `"` for attribute values.
pub fn escape(text: &str) -> String {
    teloxide::utils::html::escape(text).replace('"', "&quot;")
}

/// The first `max` characters of `text`, with an ellipsis when cut.
fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_owned(),
        Some((at, _)) => format!("{}…", &text[..at]),
    }
}

fn field(text: &str) -> String {
    escape(&cut(text, MAX_FIELD_CHARS))
}

fn severity_mark(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "🟥",
        Severity::High => "🟧",
        Severity::Medium => "🟨",
        Severity::Low => "🟦",
    }
}

/// A value as people read it: no more digits than it has meaning.
fn value(v: f64) -> String {
    let a = v.abs();
    if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.4}")
    }
}

fn time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn what(alert: &Alert) -> String {
    let kind = match &alert.subtype {
        Some(subtype) => format!("{} / {}", alert.anomaly_type, subtype),
        None => alert.anomaly_type.clone(),
    };
    field(&kind)
}

/// A service in bold and an operation as code, each cut and escaped.
fn place(service: Option<&str>, operation: Option<&str>) -> Option<String> {
    match (service, operation) {
        (Some(s), Some(o)) => Some(format!("<b>{}</b> · <code>{}</code>", field(s), field(o))),
        (Some(s), None) => Some(format!("<b>{}</b>", field(s))),
        (None, Some(o)) => Some(format!("<code>{}</code>", field(o))),
        (None, None) => None,
    }
}

/// Service and operation, and the service called when the anomaly is about the way to it.
fn where_(alert: &Alert) -> Option<String> {
    let place = place(alert.service.as_deref(), alert.operation.as_deref());
    let peer = alert
        .peer_service
        .as_deref()
        .filter(|p| !p.is_empty())
        .map(|p| format!("on the way to <b>{}</b>", field(p)));
    match (place, peer) {
        (Some(place), Some(peer)) => Some(format!("{place} {peer}")),
        (place, peer) => place.or(peer),
    }
}

fn dashboard_link(alert: &Alert, links: &Links) -> Option<String> {
    let page = if alert.incident.is_some() {
        "incidents"
    } else {
        "anomalies"
    };
    links.dashboard.as_ref().map(|base| {
        let url = format!("{}/{page}/{}", base.trim_end_matches('/'), alert.anomaly_id);
        format!("<a href=\"{}\">Open in tracewatch</a>", escape(&url))
    })
}

fn trace_links(alert: &Alert, links: &Links, how_many: usize) -> Option<String> {
    let ids: Vec<String> = alert
        .trace_ids
        .iter()
        .filter(|id| !id.is_empty())
        .take(how_many)
        .map(|id| {
            let shown = format!("<code>{}</code>", field(id));
            match &links.trace {
                Some(template) => {
                    let url = template.replace("{trace_id}", id);
                    format!("<a href=\"{}\">{shown}</a>", escape(&url))
                }
                None => shown,
            }
        })
        .collect();
    (!ids.is_empty()).then(|| format!("Trace: {}", ids.join(", ")))
}

/// Telegram counts characters; a UTF-16 count of the HTML is never below its count of the text shown.
fn length(text: &str) -> usize {
    text.encode_utf16().count()
}

/// Lines joined; trailing optional lines are dropped while the message is too long.
fn assemble(lines: Vec<String>) -> String {
    assemble_ranked(lines.into_iter().enumerate().collect())
}

/// Lines joined, each with its rank; while the message is too long, the line of the highest rank
/// (the last of them when equal) is dropped, until only the first is left.
fn assemble_ranked<R: Ord + Copy>(mut lines: Vec<(R, String)>) -> String {
    let join = |lines: &[(R, String)]| {
        let texts: Vec<&str> = lines.iter().map(|(_, l)| l.as_str()).collect();
        texts.join("\n")
    };
    let mut text = join(&lines);
    while length(&text) > MAX_MESSAGE_CHARS && lines.len() > 1 {
        let drop = (1..lines.len())
            .max_by_key(|i| (lines[*i].0, *i))
            .expect("more than one line");
        lines.remove(drop);
        text = join(&lines);
    }
    if length(&text) > MAX_MESSAGE_CHARS {
        // Only the headline is left and it is still too long: it is cut as plain text.
        text = escape(&cut(&text, MAX_MESSAGE_CHARS / 8));
    }
    text
}

/// Who resolved it, and their notes.
fn resolution(alert: &Alert) -> String {
    let by = alert.resolved_by.as_deref().unwrap_or("someone");
    let mut closing = format!("Resolved by {}", field(by));
    if let Some(notes) = alert.resolution_notes.as_deref().filter(|n| !n.is_empty()) {
        closing.push_str(&format!(": <i>{}</i>", field(notes)));
    }
    closing
}

fn description(alert: &Alert) -> Option<String> {
    alert
        .description
        .as_deref()
        .filter(|d| !d.is_empty())
        .map(|d| format!("<i>{}</i>", escape(&cut(d, MAX_DESCRIPTION_CHARS))))
}

/// The message for one alert.
pub fn render(alert: &Alert, links: &Links) -> String {
    if let Some(incident) = &alert.incident {
        return render_incident(alert, incident, links);
    }
    let mark = severity_mark(alert.severity);
    let severity = alert.severity.as_str();
    if alert.event == AlertEvent::Resolved {
        let mut lines = vec![format!("✅ <b>Resolved</b>: {severity} {}", what(alert))];
        lines.extend(where_(alert));
        lines.push(resolution(alert));
        lines.extend(dashboard_link(alert, links));
        return assemble(lines);
    }
    let headline = match alert.event {
        AlertEvent::Opened => format!("{mark} <b>{severity}</b> {}", what(alert)),
        AlertEvent::Escalated => format!("{mark} <b>Escalated to {severity}</b>: {}", what(alert)),
        AlertEvent::OriginChanged => {
            format!(
                "{mark} <b>Probable origin changed</b>: {severity} {}",
                what(alert)
            )
        }
        AlertEvent::Reminder => format!("{mark} <b>Still firing</b>: {severity} {}", what(alert)),
        AlertEvent::Resolved => unreachable!("handled above"),
    };
    let mut lines = vec![headline];
    lines.extend(where_(alert));
    let unit = alert
        .unit
        .as_deref()
        .map(|u| format!(" {}", field(u)))
        .unwrap_or_default();
    match (alert.observed, alert.expected) {
        (Some(o), Some(e)) => lines.push(format!(
            "Observed <b>{}{unit}</b> against expected {}{unit}",
            value(o),
            value(e)
        )),
        (Some(o), None) => lines.push(format!("Observed <b>{}{unit}</b>", value(o))),
        _ => {}
    }
    let mut when = Vec::new();
    if let Some(t) = alert.detected_at {
        when.push(format!("Detected {}", time(t)));
    }
    if alert.occurrences > 1 {
        let last = alert
            .last_seen_at
            .map(|t| format!(", last {}", time(t)))
            .unwrap_or_default();
        when.push(format!("{} occurrences{last}", alert.occurrences));
    }
    if !when.is_empty() {
        lines.push(when.join(" · "));
    }
    lines.extend(trace_links(alert, links, 2));
    lines.extend(dashboard_link(alert, links));
    lines.extend(description(alert));
    assemble(lines)
}

/// The leading probable origin, as a digest line or a headline names it.
fn origin_place(alert: &Alert) -> Option<String> {
    let (service, operation) = alert.leading_origin()?;
    place(service, operation)
}

/// `a, b, … (N services)`: the first few names, cut shorter than a field, and how many there are.
fn affected(services: &[String]) -> String {
    let mut names: Vec<String> = services
        .iter()
        .take(SERVICES_LISTED)
        .map(|s| escape(&cut(s, MAX_SERVICE_CHARS)))
        .collect();
    if services.len() > SERVICES_LISTED {
        names.push("…".into());
    }
    format!(
        "Affected: {} ({})",
        names.join(", "),
        counted(services.len() as i64, "service")
    )
}

/// `1 finding`, `3 findings`.
fn counted(n: i64, noun: &str) -> String {
    let plural = if n == 1 { "" } else { "s" };
    format!("{n} {noun}{plural}")
}

/// What an incident's message gives up first when it is too long: the last of these first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Keep {
    Headline,
    Origin,
    Link,
    Resolution,
    Affected,
    Evidence,
    When,
    OtherOrigin,
    Traces,
    Title,
}

/// An incident's message: its probable origin first, with its evidence, then the other candidates,
/// the affected services, how much and since when, and links. When it is too long, the title, trace
/// links and other candidates go first; the headline, origin and incident link last ([`Keep`]).
fn render_incident(alert: &Alert, incident: &IncidentSummary, links: &Links) -> String {
    let mark = severity_mark(alert.severity);
    let severity = alert.severity.as_str();
    let headline = match alert.event {
        AlertEvent::Opened => format!("{mark} <b>Incident opened</b> · {severity}"),
        AlertEvent::Escalated => format!("{mark} <b>Incident escalated</b> to {severity}"),
        AlertEvent::OriginChanged => {
            format!("{mark} <b>Incident: probable origin changed</b> · {severity}")
        }
        AlertEvent::Reminder => format!("{mark} <b>Incident still open</b> · {severity}"),
        AlertEvent::Resolved => format!("✅ <b>Incident resolved</b> · {severity}"),
    };
    let mut lines = vec![(Keep::Headline, headline)];
    let leading = origin_place(alert).unwrap_or_else(|| "unknown".into());
    lines.push((Keep::Origin, format!("Probable origin: {leading}")));
    let resolved = alert.event == AlertEvent::Resolved;
    if !resolved {
        if let Some(evidence) = incident
            .origins
            .first()
            .map(|o| o.evidence.as_str())
            .filter(|e| !e.is_empty())
        {
            let evidence = escape(&cut(evidence, MAX_EVIDENCE_CHARS));
            lines.push((Keep::Evidence, format!("<i>{evidence}</i>")));
        }
        for other in incident.origins.iter().skip(1).take(OTHER_ORIGINS) {
            let mut line = format!(
                "Also possible: {}",
                place(Some(&other.service), other.operation.as_deref()).unwrap_or_default()
            );
            if !other.evidence.is_empty() {
                let evidence = escape(&cut(&other.evidence, MAX_OTHER_EVIDENCE_CHARS));
                line.push_str(&format!(" — <i>{evidence}</i>"));
            }
            lines.push((Keep::OtherOrigin, line));
        }
    }
    if !incident.services.is_empty() {
        lines.push((Keep::Affected, affected(&incident.services)));
    }
    if resolved {
        lines.push((Keep::Resolution, resolution(alert)));
        lines.extend(dashboard_link(alert, links).map(|l| (Keep::Link, l)));
        return assemble_ranked(lines);
    }
    let mut when = vec![format!(
        "{}, {}",
        counted(incident.findings, "finding"),
        counted(alert.occurrences, "detection")
    )];
    if let Some(t) = alert.detected_at {
        when.push(format!("since {}", time(t)));
    }
    if let Some(t) = alert.last_seen_at {
        when.push(format!("last seen {}", time(t)));
    }
    lines.push((Keep::When, when.join(" · ")));
    lines.extend(dashboard_link(alert, links).map(|l| (Keep::Link, l)));
    lines.extend(trace_links(alert, links, INCIDENT_TRACES).map(|l| (Keep::Traces, l)));
    lines.extend(description(alert).map(|l| (Keep::Title, l)));
    assemble_ranked(lines)
}

/// What a digest of `alerts` counts: anomalies, incidents, or alerts when both.
fn digest_noun(alerts: &[Alert]) -> &'static str {
    let incidents = alerts.iter().filter(|a| a.incident.is_some()).count();
    if incidents == 0 {
        "anomalies"
    } else if incidents == alerts.len() {
        "incidents"
    } else {
        "alerts"
    }
}

/// One message for a storm of new incidents: how many of each severity, then the worst first.
pub fn render_digest(alerts: &[Alert], links: &Links) -> String {
    let mut sorted: Vec<&Alert> = alerts.iter().collect();
    sorted.sort_by_key(|a| std::cmp::Reverse(a.severity));
    let counts: Vec<String> = Severity::ALL
        .iter()
        .rev()
        .filter_map(|s| {
            let n = alerts.iter().filter(|a| a.severity == *s).count();
            (n > 0).then(|| format!("{n} {}", s.as_str()))
        })
        .collect();
    let headline = format!(
        "🚨 <b>{} new {}</b> ({})",
        alerts.len(),
        digest_noun(alerts),
        counts.join(", ")
    );
    listing(headline, &sorted, links, true)
}

/// One message for many resolutions at once.
pub fn render_resolved_digest(alerts: &[Alert], links: &Links) -> String {
    let headline = format!(
        "✅ <b>{} {} resolved</b>",
        alerts.len(),
        digest_noun(alerts)
    );
    listing(headline, &alerts.iter().collect::<Vec<_>>(), links, false)
}

/// `headline`, then a line per alert while there is room, then how many were left out.
fn listing(mut text: String, alerts: &[&Alert], links: &Links, marks: bool) -> String {
    let mut listed = 0;
    for a in alerts.iter().take(DIGEST_LISTED) {
        let mark = if marks {
            format!("{} ", severity_mark(a.severity))
        } else {
            String::new()
        };
        let place = match &a.incident {
            Some(incident) => format!(
                " · probable origin {} · {}",
                origin_place(a).unwrap_or_else(|| "unknown".into()),
                counted(incident.services.len() as i64, "service")
            ),
            None => where_(a).map(|w| format!(" · {w}")).unwrap_or_default(),
        };
        let link = dashboard_link(a, links)
            .map(|l| format!(" · {l}"))
            .unwrap_or_default();
        let line = format!("\n{mark}{} {}{place}{link}", a.severity.as_str(), what(a));
        // Room is kept for the closing line.
        if length(&text) + length(&line) > MAX_MESSAGE_CHARS - 64 {
            break;
        }
        text.push_str(&line);
        listed += 1;
    }
    if listed < alerts.len() {
        text.push_str(&format!("\n… and {} more", alerts.len() - listed));
    }
    text
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::alert::AlertOrigin;
    use chrono::TimeZone;
    use uuid::Uuid;

    pub(crate) fn alert(event: AlertEvent) -> Alert {
        Alert {
            event,
            anomaly_id: Uuid::from_u128(7),
            fingerprint: "fp".into(),
            severity: Severity::High,
            anomaly_type: "performance".into(),
            subtype: Some("latency_spike".into()),
            service: Some("checkout-api".into()),
            operation: Some("GET /api/orders".into()),
            peer_service: None,
            observed: Some(2013.4),
            expected: Some(20.26),
            unit: Some("ms".into()),
            detected_at: Some(Utc.with_ymd_and_hms(2026, 1, 5, 10, 10, 0).unwrap()),
            last_seen_at: None,
            occurrences: 1,
            trace_ids: vec![
                "4bf92f3577b34da6a3ce929d0e0e4736".into(),
                "00f0".into(),
                "x".into(),
            ],
            description: Some("2.0 s against a 20 ms baseline".into()),
            resolved_by: None,
            resolution_notes: None,
            incident: None,
        }
    }

    /// An incident of grouped findings: payments' charge is the probable origin, two other candidates.
    pub(crate) fn incident(event: AlertEvent) -> Alert {
        let origin =
            |service: &str, operation: Option<&str>, score: f64, evidence: &str| AlertOrigin {
                service: service.into(),
                operation: operation.map(Into::into),
                score,
                evidence: evidence.into(),
            };
        Alert {
            event,
            anomaly_id: Uuid::from_u128(0x1c1d),
            fingerprint: "incident:9f2c".into(),
            severity: Severity::High,
            anomaly_type: "incident".into(),
            subtype: None,
            service: Some("payments".into()),
            operation: Some("POST /charge".into()),
            peer_service: None,
            observed: None,
            expected: None,
            unit: None,
            detected_at: Some(Utc.with_ymd_and_hms(2026, 1, 5, 10, 10, 0).unwrap()),
            last_seen_at: Some(Utc.with_ymd_and_hms(2026, 1, 5, 10, 14, 30).unwrap()),
            occurrences: 17,
            trace_ids: vec!["t1".into(), "t2".into(), "t3".into(), "t4".into()],
            description: Some("Slow checkout: payments".into()),
            resolved_by: None,
            resolution_notes: None,
            incident: Some(IncidentSummary {
                origins: vec![
                    origin(
                        "payments",
                        Some("POST /charge"),
                        4.2,
                        "own time ×5.8 (p99 41 ms → 240 ms) while its callees are normal",
                    ),
                    origin("postgres", Some("SELECT orders"), 1.1, "p99 ×1.4"),
                    origin("checkout-api", None, 0.6, "slower only through payments"),
                    origin("frontend", None, 0.2, "a caller"),
                ],
                services: vec![
                    "checkout-api".into(),
                    "frontend".into(),
                    "payments".into(),
                    "postgres".into(),
                ],
                findings: 5,
            }),
        }
    }

    fn links() -> Links {
        Links {
            dashboard: Some("https://tw.example/".into()),
            trace: Some("https://grafana.example/explore?trace={trace_id}".into()),
        }
    }

    #[test]
    fn an_opened_alert_says_what_where_how_much_when_and_links() {
        let text = render(&alert(AlertEvent::Opened), &links());
        assert_eq!(
            text,
            "🟧 <b>HIGH</b> performance / latency_spike\n\
             <b>checkout-api</b> · <code>GET /api/orders</code>\n\
             Observed <b>2013 ms</b> against expected 20.26 ms\n\
             Detected 2026-01-05 10:10:00 UTC\n\
             Trace: <a href=\"https://grafana.example/explore?trace=4bf92f3577b34da6a3ce929d0e0e4736\"><code>4bf92f3577b34da6a3ce929d0e0e4736</code></a>, \
             <a href=\"https://grafana.example/explore?trace=00f0\"><code>00f0</code></a>\n\
             <a href=\"https://tw.example/anomalies/00000000-0000-0000-0000-000000000007\">Open in tracewatch</a>\n\
             <i>2.0 s against a 20 ms baseline</i>"
        );
    }

    #[test]
    fn the_peer_service_is_named_when_the_anomaly_is_on_the_way_to_it() {
        let mut a = alert(AlertEvent::Opened);
        a.operation = Some("POST payments".into());
        a.peer_service = Some("<payments>".into());
        let text = render(&a, &Links::default());
        assert_eq!(
            text.lines().nth(1),
            Some(
                "<b>checkout-api</b> · <code>POST payments</code> on the way to <b>&lt;payments&gt;</b>"
            ),
            "{text}"
        );
        let digest = render_digest(&[a.clone(), a], &Links::default());
        assert!(
            digest.contains("on the way to <b>&lt;payments&gt;</b>"),
            "{digest}"
        );
    }

    #[test]
    fn hostile_span_text_is_escaped_and_links_do_not_break_out() {
        let mut a = alert(AlertEvent::Opened);
        a.operation = Some("<img src=x onerror=alert(1)> & <b>".into());
        a.service = Some("\"svc\"".into());
        let mut l = links();
        l.dashboard = Some("https://tw.example/\"><script>".into());
        let text = render(&a, &l);
        assert!(
            text.contains("&lt;img src=x onerror=alert(1)&gt; &amp; &lt;b&gt;"),
            "{text}"
        );
        assert!(text.contains("<b>&quot;svc&quot;</b>"), "{text}");
        assert!(
            text.contains("https://tw.example/&quot;&gt;&lt;script&gt;"),
            "{text}"
        );
        assert!(
            !text.contains("<img") && !text.contains("<script"),
            "{text}"
        );
    }

    #[test]
    fn no_message_exceeds_the_limit_and_no_cut_splits_a_character() {
        let mut a = alert(AlertEvent::Opened);
        a.operation = Some("é<".repeat(5_000));
        a.description = Some("😀&".repeat(10_000));
        a.service = Some("s".repeat(100_000));
        let text = render(&a, &links());
        assert!(length(&text) <= MAX_MESSAGE_CHARS, "{}", length(&text));
        assert!(text.contains("…"));
        let many: Vec<Alert> = (0..500).map(|_| a.clone()).collect();
        let digest = render_digest(&many, &links());
        assert!(length(&digest) <= MAX_MESSAGE_CHARS, "{}", length(&digest));
        assert!(digest.contains("more"), "{digest}");
    }

    #[test]
    fn resolved_and_escalated_and_reminders_say_so() {
        let mut r = alert(AlertEvent::Resolved);
        r.resolved_by = Some("alice".into());
        r.resolution_notes = Some("deploy rolled back".into());
        assert_eq!(
            render(&r, &Links::default()),
            "✅ <b>Resolved</b>: HIGH performance / latency_spike\n\
             <b>checkout-api</b> · <code>GET /api/orders</code>\n\
             Resolved by alice: <i>deploy rolled back</i>"
        );
        let mut e = alert(AlertEvent::Escalated);
        e.severity = Severity::Critical;
        assert!(
            render(&e, &Links::default())
                .starts_with("🟥 <b>Escalated to CRITICAL</b>: performance / latency_spike")
        );
        let mut m = alert(AlertEvent::Reminder);
        m.occurrences = 14;
        m.last_seen_at = Some(Utc.with_ymd_and_hms(2026, 1, 5, 10, 40, 0).unwrap());
        let text = render(&m, &Links::default());
        assert!(text.starts_with("🟧 <b>Still firing</b>: HIGH"), "{text}");
        assert!(
            text.contains("14 occurrences, last 2026-01-05 10:40:00 UTC"),
            "{text}"
        );
        assert!(
            text.contains(
                "Trace: <code>4bf92f3577b34da6a3ce929d0e0e4736</code>, <code>00f0</code>"
            ),
            "{text}"
        );
    }

    #[test]
    fn a_digest_counts_by_severity_and_lists_the_worst_first() {
        let mut alerts: Vec<Alert> = (0..12).map(|_| alert(AlertEvent::Opened)).collect();
        alerts[11].severity = Severity::Critical;
        alerts[11].service = Some("payments".into());
        let text = render_digest(&alerts, &Links::default());
        let mut lines = text.lines();
        assert_eq!(
            lines.next().unwrap(),
            "🚨 <b>12 new anomalies</b> (1 CRITICAL, 11 HIGH)"
        );
        assert!(lines.next().unwrap().contains("<b>payments</b>"));
        assert_eq!(text.lines().last().unwrap(), "… and 2 more");
    }

    #[test]
    fn an_incident_opening_names_its_probable_origin_first_then_the_rest_and_links() {
        let text = render(&incident(AlertEvent::Opened), &links());
        assert_eq!(
            text,
            "🟧 <b>Incident opened</b> · HIGH\n\
             Probable origin: <b>payments</b> · <code>POST /charge</code>\n\
             <i>own time ×5.8 (p99 41 ms → 240 ms) while its callees are normal</i>\n\
             Also possible: <b>postgres</b> · <code>SELECT orders</code> — <i>p99 ×1.4</i>\n\
             Also possible: <b>checkout-api</b> — <i>slower only through payments</i>\n\
             Affected: checkout-api, frontend, payments, postgres (4 services)\n\
             5 findings, 17 detections · since 2026-01-05 10:10:00 UTC · last seen 2026-01-05 10:14:30 UTC\n\
             <a href=\"https://tw.example/incidents/00000000-0000-0000-0000-000000001c1d\">Open in tracewatch</a>\n\
             Trace: <a href=\"https://grafana.example/explore?trace=t1\"><code>t1</code></a>, \
             <a href=\"https://grafana.example/explore?trace=t2\"><code>t2</code></a>, \
             <a href=\"https://grafana.example/explore?trace=t3\"><code>t3</code></a>\n\
             <i>Slow checkout: payments</i>"
        );
    }

    #[test]
    fn each_incident_event_has_its_headline_and_a_resolution_says_who() {
        let headline = |event, severity| {
            let mut a = incident(event);
            a.severity = severity;
            render(&a, &Links::default())
                .lines()
                .next()
                .unwrap()
                .to_owned()
        };
        assert_eq!(
            headline(AlertEvent::Escalated, Severity::Critical),
            "🟥 <b>Incident escalated</b> to CRITICAL"
        );
        assert_eq!(
            headline(AlertEvent::OriginChanged, Severity::Medium),
            "🟨 <b>Incident: probable origin changed</b> · MEDIUM"
        );
        assert_eq!(
            headline(AlertEvent::Reminder, Severity::Low),
            "🟦 <b>Incident still open</b> · LOW"
        );
        let mut r = incident(AlertEvent::Resolved);
        r.resolved_by = Some("<alice>".into());
        r.resolution_notes = Some("rolled back payments".into());
        assert_eq!(
            render(&r, &links()),
            "✅ <b>Incident resolved</b> · HIGH\n\
             Probable origin: <b>payments</b> · <code>POST /charge</code>\n\
             Affected: checkout-api, frontend, payments, postgres (4 services)\n\
             Resolved by &lt;alice&gt;: <i>rolled back payments</i>\n\
             <a href=\"https://tw.example/incidents/00000000-0000-0000-0000-000000001c1d\">Open in tracewatch</a>"
        );
        // Without origins, the alert's own service and operation lead.
        let mut bare = incident(AlertEvent::Opened);
        bare.incident.as_mut().unwrap().origins.clear();
        bare.service = Some("cart".into());
        bare.operation = None;
        let text = render(&bare, &Links::default());
        assert_eq!(
            text.lines().nth(1),
            Some("Probable origin: <b>cart</b>"),
            "{text}"
        );
        assert!(!text.contains("Also possible"), "{text}");
    }

    #[test]
    fn hostile_names_in_an_incident_stay_text() {
        let mut a = incident(AlertEvent::Opened);
        let summary = a.incident.as_mut().unwrap();
        summary.origins[0].service = "<b>x</b>".into();
        summary.origins[0].operation = Some("<script>alert(1)</script>".into());
        summary.origins[0].evidence = "p99 <i>&</i> \"more\"".into();
        summary.origins[1].service = "<a href=\"evil\">".into();
        summary.services = vec!["<b>x</b>".into(), "a&b".into()];
        a.trace_ids = vec!["\"><img src=x>".into()];
        a.description = Some("</i><b>title</b>".into());
        let text = render(&a, &links());
        for expected in [
            "Probable origin: <b>&lt;b&gt;x&lt;/b&gt;</b> · <code>&lt;script&gt;alert(1)&lt;/script&gt;</code>",
            "<i>p99 &lt;i&gt;&amp;&lt;/i&gt; &quot;more&quot;</i>",
            "Also possible: <b>&lt;a href=&quot;evil&quot;&gt;</b>",
            "Affected: &lt;b&gt;x&lt;/b&gt;, a&amp;b (2 services)",
            "explore?trace=&quot;&gt;&lt;img src=x&gt;\"",
            "<i>&lt;/i&gt;&lt;b&gt;title&lt;/b&gt;</i>",
        ] {
            assert!(text.contains(expected), "{expected}\n{text}");
        }
        assert!(
            !text.contains("<b>x</b>") && !text.contains("<script") && !text.contains("<img"),
            "{text}"
        );
        let digest = render_digest(&[a.clone(), a], &links());
        assert!(
            digest.contains("probable origin <b>&lt;b&gt;x&lt;/b&gt;</b>"),
            "{digest}"
        );
        assert!(!digest.contains("<b>x</b>"), "{digest}");
    }

    #[test]
    fn an_incident_with_500_services_and_long_evidence_stays_within_the_limit() {
        let mut a = incident(AlertEvent::Opened);
        let summary = a.incident.as_mut().unwrap();
        summary.services = (0..500)
            .map(|i| format!("service-{i:03}-{}", "<&>".repeat(100)))
            .collect();
        for o in &mut summary.origins {
            o.service = "s&".repeat(1_000);
            o.operation = Some("é<".repeat(5_000));
            o.evidence = "😀\"".repeat(10_000);
        }
        a.description = Some("&".repeat(10_000));
        a.trace_ids = vec!["<".repeat(5_000); 5];
        let text = render(&a, &links());
        assert!(length(&text) <= MAX_MESSAGE_CHARS, "{}", length(&text));
        // The origin, the incident link and the affected services survive; the list is cut and
        // counted; the title, the least needed, went first.
        assert!(
            text.contains("https://tw.example/incidents/00000000-0000-0000-0000-000000001c1d"),
            "{text}"
        );
        assert!(!text.contains("&amp;&amp;&amp;"), "{text}");
        assert!(
            text.lines()
                .nth(1)
                .unwrap()
                .starts_with("Probable origin: <b>s&amp;s&amp;"),
            "{text}"
        );
        let affected = text
            .lines()
            .find(|l| l.starts_with("Affected: "))
            .expect(&text);
        assert!(affected.ends_with(", … (500 services)"), "{affected}");
        assert_eq!(
            affected.matches("service-").count(),
            SERVICES_LISTED,
            "{affected}"
        );
        assert!(!affected.contains("service-499"), "{affected}");
        let many: Vec<Alert> = (0..500).map(|_| a.clone()).collect();
        for digest in [
            render_digest(&many, &links()),
            render_resolved_digest(&many, &links()),
        ] {
            assert!(length(&digest) <= MAX_MESSAGE_CHARS, "{}", length(&digest));
            assert!(digest.contains("more"), "{digest}");
        }
    }

    #[test]
    fn a_digest_of_incidents_names_their_origins() {
        let mut alerts: Vec<Alert> = (0..3).map(|_| incident(AlertEvent::Opened)).collect();
        alerts[1].severity = Severity::Critical;
        alerts[1].incident.as_mut().unwrap().origins[0].service = "auth".into();
        alerts[1].incident.as_mut().unwrap().origins[0].operation = None;
        let text = render_digest(&alerts, &links());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "🚨 <b>3 new incidents</b> (1 CRITICAL, 2 HIGH)");
        assert_eq!(
            lines[1],
            "🟥 CRITICAL incident · probable origin <b>auth</b> · 4 services · \
             <a href=\"https://tw.example/incidents/00000000-0000-0000-0000-000000001c1d\">Open in tracewatch</a>"
        );
        assert!(
            lines[2].contains(
                "probable origin <b>payments</b> · <code>POST /charge</code> · 4 services"
            ),
            "{text}"
        );
        let resolved = render_resolved_digest(&alerts, &Links::default());
        assert!(
            resolved.starts_with("✅ <b>3 incidents resolved</b>\n"),
            "{resolved}"
        );
        assert!(
            resolved.contains("probable origin <b>auth</b>"),
            "{resolved}"
        );
        // Anomalies and incidents together are alerts; anomalies alone keep their word.
        let mixed = render_digest(&[alert(AlertEvent::Opened), alerts[0].clone()], &links());
        assert!(mixed.starts_with("🚨 <b>2 new alerts</b>"), "{mixed}");
    }
}
