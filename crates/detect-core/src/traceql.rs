//! A TraceQL query that selects a finding's traces in Tempo, so that every finding leads to all of its
//! traces, not only its few examples: its service and operation, and what made it a finding (slower
//! than the usual p99, failing, from its client). Run it over the finding's window.
//!
//! `{ resource.service.name = "checkout" && name = "GET /api/orders" && duration > 43ms }`
//!
//! A finding about the way into a service (the wire and queues before it) is not in that service's
//! spans but in its callers': the query selects its spans whose caller's span took longer than that
//! way's usual p99: `{ duration > 240ms } > { resource.service.name = "ts-food-service" }`.

use crate::anomaly::{Anomaly, AnomalyType, Subtype};
use crate::detect::latency::WAY_IN;

/// The query for `a`'s traces.
pub fn traceql(a: &Anomaly) -> String {
    let mut conditions = vec![format!("resource.service.name = {}", quoted(&a.service))];
    if let Some(operation) = &a.operation {
        conditions.push(format!("name = {}", quoted(operation)));
    }
    match a.subtype {
        // Slower than usual: the operation's spans past its usual p99 (the median when no spread).
        Subtype::LatencySpike | Subtype::LatencyDegradation if a.unit == "ms" => {
            let usual_p99 = a.expected * a.spread.clamp(0.0, 20.0).exp();
            if usual_p99.is_finite() && usual_p99 > 0.0 {
                let slower = format!("duration > {}", millis(usual_p99));
                if a.description.contains(WAY_IN) {
                    return format!("{{ {slower} }} > {{ {} }}", conditions.join(" && "));
                }
                conditions.push(slower);
            }
        }
        Subtype::ErrorRateSpike => conditions.push("status = error".into()),
        _ => {}
    }
    if a.anomaly_type() == AnomalyType::Security
        && let Some(client) = &a.client
    {
        conditions.push(format!("span.client.address = {}", quoted(client)));
    }
    format!("{{ {} }}", conditions.join(" && "))
}

/// A TraceQL string literal: double quotes, with `\` and `"` escaped.
fn quoted(text: &str) -> String {
    let escaped = text.replace('\\', "\\\\").replace('"', "\\\"");
    format!("\"{escaped}\"")
}

/// A duration TraceQL reads: whole milliseconds, or microseconds below one.
fn millis(ms: f64) -> String {
    if ms >= 1.0 {
        format!("{}ms", ms.floor())
    } else {
        format!("{}us", (ms * 1000.0).floor().max(1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::anomaly::{Cause, Severity, Window};
    use crate::span::UnixNanos;

    fn anomaly(subtype: Subtype, unit: &'static str) -> Anomaly {
        Anomaly {
            cause: Cause::Itself,
            subtype,
            severity: Severity::High,
            service: "checkout".into(),
            operation: Some("GET /api/orders".into()),
            client: None,
            peer_service: None,
            trace_id: None,
            span_id: None,
            observed: 400.0,
            expected: 20.0,
            spread: (43.0f64 / 20.0).ln(),
            score: 9.0,
            threshold: 3.0,
            unit,
            window: Window {
                start: UnixNanos(0),
                end: UnixNanos(60),
            },
            detected_at: UnixNanos(60),
            examples: vec![],
            description: String::new(),
        }
    }

    #[test]
    fn a_slow_operation_selects_its_spans_past_the_usual_p99() {
        assert_eq!(
            traceql(&anomaly(Subtype::LatencyDegradation, "ms")),
            r#"{ resource.service.name = "checkout" && name = "GET /api/orders" && duration > 43ms }"#
        );
        let mut fast = anomaly(Subtype::LatencySpike, "ms");
        (fast.expected, fast.spread) = (0.2, 0.0);
        assert!(traceql(&fast).ends_with("&& duration > 200us }"));
    }

    #[test]
    fn a_slow_way_into_a_service_selects_the_calls_into_it_that_took_long() {
        let mut way_in = anomaly(Subtype::LatencyDegradation, "ms");
        way_in.operation = None;
        way_in.description = format!("checkout: {WAY_IN} (the network …) ×20");
        assert_eq!(
            traceql(&way_in),
            r#"{ duration > 43ms } > { resource.service.name = "checkout" }"#
        );
    }

    #[test]
    fn errors_select_failing_spans_and_security_the_client() {
        assert!(
            traceql(&anomaly(Subtype::ErrorRateSpike, "ratio")).ends_with("&& status = error }")
        );
        let mut burst = anomaly(Subtype::AuthFailureBurst, "count");
        (burst.operation, burst.client) = (None, Some("203.0.113.66".into()));
        assert_eq!(
            traceql(&burst),
            r#"{ resource.service.name = "checkout" && span.client.address = "203.0.113.66" }"#
        );
    }

    #[test]
    fn quotes_and_backslashes_in_names_stay_inside_the_string() {
        let mut odd = anomaly(Subtype::ThroughputSpike, "requests/window");
        odd.service = r#"we"ird\svc"#.into();
        odd.operation = None;
        assert_eq!(
            traceql(&odd),
            r#"{ resource.service.name = "we\"ird\\svc" }"#
        );
    }
}
