//! Messages for Telegram's HTML parse mode. Text from spans (service and operation names,
//! descriptions) can hold any character: it is cut to a bounded length and then escaped, so a span
//! named `<b>` shows as text and no cut falls inside an entity. A message never exceeds Telegram's
//! limit of 4,096 characters (counted here in UTF-16 units of the HTML, never fewer than Telegram
//! counts after parsing).

use crate::alert::{Alert, AlertEvent};
use chrono::{DateTime, Utc};
use detect_core::Severity;

/// Telegram's limit for a message's text.
pub const MAX_MESSAGE_CHARS: usize = 4_096;
/// Longest piece of span text shown (names, descriptions).
const MAX_FIELD_CHARS: usize = 200;
const MAX_DESCRIPTION_CHARS: usize = 600;
/// Incidents listed by name in a digest; the rest are counted.
const DIGEST_LISTED: usize = 10;

/// Where a message links to.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Links {
    /// The dashboard's base URL (`https://tracewatch.example.com`): an anomaly is at `/anomalies/<id>`.
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

/// Service and operation, and the service called when the anomaly is about the way to it.
fn where_(alert: &Alert) -> Option<String> {
    let place = match (&alert.service, &alert.operation) {
        (Some(s), Some(o)) => Some(format!("<b>{}</b> · <code>{}</code>", field(s), field(o))),
        (Some(s), None) => Some(format!("<b>{}</b>", field(s))),
        (None, Some(o)) => Some(format!("<code>{}</code>", field(o))),
        (None, None) => None,
    };
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
    links.dashboard.as_ref().map(|base| {
        let url = format!(
            "{}/anomalies/{}",
            base.trim_end_matches('/'),
            alert.anomaly_id
        );
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
fn assemble(mut lines: Vec<String>) -> String {
    let mut text = lines.join("\n");
    while length(&text) > MAX_MESSAGE_CHARS && lines.len() > 1 {
        lines.pop();
        text = lines.join("\n");
    }
    if length(&text) > MAX_MESSAGE_CHARS {
        // Only the headline is left and it is still too long: it is cut as plain text.
        text = escape(&cut(&text, MAX_MESSAGE_CHARS / 8));
    }
    text
}

/// The message for one alert.
pub fn render(alert: &Alert, links: &Links) -> String {
    let mark = severity_mark(alert.severity);
    let severity = alert.severity.as_str();
    if alert.event == AlertEvent::Resolved {
        let mut lines = vec![format!("✅ <b>Resolved</b>: {severity} {}", what(alert))];
        lines.extend(where_(alert));
        let by = alert.resolved_by.as_deref().unwrap_or("someone");
        let mut closing = format!("Resolved by {}", field(by));
        if let Some(notes) = alert.resolution_notes.as_deref().filter(|n| !n.is_empty()) {
            closing.push_str(&format!(": <i>{}</i>", field(notes)));
        }
        lines.push(closing);
        lines.extend(dashboard_link(alert, links));
        return assemble(lines);
    }
    let headline = match alert.event {
        AlertEvent::Opened => format!("{mark} <b>{severity}</b> {}", what(alert)),
        AlertEvent::Escalated => format!("{mark} <b>Escalated to {severity}</b>: {}", what(alert)),
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
    if let Some(d) = alert.description.as_deref().filter(|d| !d.is_empty()) {
        lines.push(format!("<i>{}</i>", escape(&cut(d, MAX_DESCRIPTION_CHARS))));
    }
    assemble(lines)
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
        "🚨 <b>{} new anomalies</b> ({})",
        alerts.len(),
        counts.join(", ")
    );
    listing(headline, &sorted, links, true)
}

/// One message for many resolutions at once.
pub fn render_resolved_digest(alerts: &[Alert], links: &Links) -> String {
    let headline = format!("✅ <b>{} anomalies resolved</b>", alerts.len());
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
        let place = where_(a).map(|w| format!(" · {w}")).unwrap_or_default();
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
}
