//! Incidents: how findings group, when incidents close, and which origin they name first.

use detect_core::{
    Anomaly, Cause, IncidentEvent, IncidentTracker, ServiceGraph, Severity, Subtype, UnixNanos,
    Window,
};

/// frontend → checkout → payment → db; frontend → ads.
fn graph() -> ServiceGraph {
    let mut g = ServiceGraph::default();
    g.record_call("frontend", "checkout", 100);
    g.record_call("checkout", "payment", 50);
    g.record_call("payment", "db", 50);
    g.record_call("frontend", "ads", 80);
    g.record_call("frontend", "cart", 80);
    g
}

struct Finding {
    subtype: Subtype,
    cause: Cause,
    service: &'static str,
    peer: Option<&'static str>,
    severity: Severity,
    minute: u64,
    /// (observed, expected) milliseconds.
    ms: (f64, f64),
    /// Its score against its threshold of 10.
    score: f64,
}

fn finding(service: &'static str, cause: Cause, minute: u64) -> Finding {
    Finding {
        subtype: Subtype::LatencyDegradation,
        cause,
        service,
        peer: None,
        severity: Severity::High,
        minute,
        ms: (400.0, 40.0),
        score: 50.0,
    }
}

impl Finding {
    fn peer(mut self, peer: &'static str) -> Self {
        self.peer = Some(peer);
        self
    }

    fn subtype(mut self, subtype: Subtype) -> Self {
        self.subtype = subtype;
        self
    }

    fn severity(mut self, severity: Severity) -> Self {
        self.severity = severity;
        self
    }

    fn score(mut self, score: f64) -> Self {
        self.score = score;
        self
    }

    fn ms(mut self, observed: f64, expected: f64) -> Self {
        self.ms = (observed, expected);
        self
    }

    fn anomaly(&self) -> Anomaly {
        let start = UnixNanos::from_secs(1_767_571_200 + self.minute * 60);
        let end = UnixNanos::from_secs(1_767_571_200 + self.minute * 60 + 60);
        Anomaly {
            cause: self.cause,
            subtype: self.subtype,
            severity: self.severity,
            service: self.service.into(),
            // A client span per callee: the way to each is a key of its own.
            operation: Some(match self.peer {
                Some(peer) => format!("call {peer}"),
                None => "serve".into(),
            }),
            client: None,
            peer_service: self.peer.map(Into::into),
            trace_id: None,
            span_id: None,
            observed: self.ms.0,
            expected: self.ms.1,
            spread: 0.5,
            score: self.score,
            threshold: 10.0,
            unit: if self.subtype == Subtype::CallPathChange {
                "ratio"
            } else {
                "ms"
            },
            window: Window { start, end },
            detected_at: end,
            examples: vec![],
            description: format!("{} {:?}", self.service, self.cause),
        }
    }
}

/// Every incident the findings form, closed at the end.
fn incidents(findings: &[Finding]) -> Vec<detect_core::Incident> {
    let graph = graph();
    let mut tracker = IncidentTracker::default();
    let mut out = Vec::new();
    for f in findings {
        let a = f.anomaly();
        tracker.observe(&a, &graph);
        out.extend(tracker.advance_to(a.detected_at));
    }
    out.extend(tracker.finish());
    out.into_iter().map(|e| e.incident().clone()).collect()
}

fn first_origin(i: &detect_core::Incident) -> &str {
    i.origins.first().map_or("-", |o| o.service.as_str())
}

#[test]
fn a_slow_service_and_the_callers_waiting_on_it_are_one_incident_naming_it_first() {
    let found = incidents(&[
        finding("payment", Cause::Itself, 0),
        finding("checkout", Cause::Peer, 0).peer("payment"),
        finding("frontend", Cause::Unknown, 1),
        finding("checkout", Cause::Unknown, 1).severity(Severity::Medium),
    ]);
    assert_eq!(found.len(), 1, "{found:#?}");
    let incident = &found[0];
    assert_eq!(first_origin(incident), "payment");
    assert_eq!(incident.severity, Severity::High);
    assert_eq!(incident.detections(), 4);
    assert!(incident.origins[0].evidence.contains("point at it"));
    assert_eq!(
        incident.services().into_iter().collect::<Vec<_>>(),
        ["checkout", "frontend", "payment"]
    );
}

#[test]
fn an_incident_closes_after_quiet_and_a_return_is_a_new_one() {
    let graph = graph();
    let mut tracker = IncidentTracker::default();
    let first = finding("payment", Cause::Itself, 0).anomaly();
    assert!(matches!(
        tracker.observe(&first, &graph),
        IncidentEvent::Opened(_)
    ));
    // Four minutes of quiet after its window: still open. Five: closed, ending where it was last seen.
    assert!(
        tracker
            .advance_to(UnixNanos(
                first.window.end.0 + 240 * UnixNanos::NANOS_PER_SEC
            ))
            .is_empty()
    );
    let closed = tracker.advance_to(UnixNanos(
        first.window.end.0 + 300 * UnixNanos::NANOS_PER_SEC,
    ));
    let [IncidentEvent::Closed(incident)] = &closed[..] else {
        panic!("{closed:?}");
    };
    assert_eq!(incident.ended_at, Some(first.window.end));
    let again = finding("payment", Cause::Itself, 10).anomaly();
    let IncidentEvent::Opened(second) = tracker.observe(&again, &graph) else {
        panic!("a new incident");
    };
    assert_ne!(second.id, incident.id);
}

#[test]
fn problems_far_apart_in_the_calls_or_in_time_are_separate_incidents() {
    let found = incidents(&[
        finding("db", Cause::Itself, 0),
        // ads is four calls from db: another problem.
        finding("ads", Cause::Itself, 0),
        // payment again, but three minutes after anything near it.
        finding("payment", Cause::Itself, 4),
    ]);
    assert_eq!(found.len(), 3, "{found:#?}");
}

#[test]
fn a_finding_linking_two_open_incidents_merges_them() {
    let found = incidents(&[
        finding("db", Cause::Itself, 0),
        finding("frontend", Cause::Itself, 0),
        // checkout is next to both.
        finding("checkout", Cause::Itself, 0),
    ]);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].findings.len(), 3);
    // The store retires the incident that was merged away.
    let frontend_alone = incidents(&[finding("frontend", Cause::Itself, 0)]);
    assert_eq!(found[0].absorbed, vec![frontend_alone[0].id.clone()]);
}

#[test]
fn a_caller_slow_toward_every_callee_is_the_origin_not_its_callees() {
    // frontend's CPU is starved: the way to each of its callees grew, and each callee sees its way in
    // grow from frontend.
    let found = incidents(&[
        finding("frontend", Cause::Peer, 0).peer("cart"),
        finding("frontend", Cause::Peer, 0).peer("ads"),
        finding("frontend", Cause::Peer, 0).peer("checkout"),
        finding("cart", Cause::Peer, 0).peer("frontend"),
        finding("ads", Cause::Peer, 0).peer("frontend"),
    ]);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(
        first_origin(&found[0]),
        "frontend",
        "{:#?}",
        found[0].origins
    );
}

#[test]
fn a_tiny_own_time_change_does_not_outrank_the_service_everyone_waits_seconds_on() {
    let found = incidents(&[
        // checkout's own time grew by 2 ms; the way to payment by 2 s.
        finding("checkout", Cause::Itself, 0)
            .ms(2.6, 0.6)
            .severity(Severity::Critical),
        finding("checkout", Cause::Peer, 0)
            .peer("payment")
            .ms(2_000.0, 5.0),
        finding("payment", Cause::Itself, 0).ms(2_000.0, 5.0),
    ]);
    assert_eq!(found.len(), 1);
    assert_eq!(first_origin(&found[0]), "payment");
}

#[test]
fn a_caller_that_changed_what_it_calls_outranks_the_callee_that_changed_with_it() {
    let shape = |service| {
        finding(service, Cause::Itself, 0)
            .subtype(Subtype::CallPathChange)
            .severity(Severity::Critical)
    };
    let found = incidents(&[shape("frontend"), shape("checkout")]);
    assert_eq!(found.len(), 1);
    assert_eq!(first_origin(&found[0]), "frontend");
}

#[test]
fn changed_traffic_is_named_where_it_enters_not_where_it_has_the_most_operations() {
    // Fewer requests come in at frontend; checkout has three operations that fell with it.
    let drop = |service| {
        finding(service, Cause::Unknown, 0)
            .subtype(Subtype::ThroughputDrop)
            .severity(Severity::Critical)
    };
    let found = incidents(&[
        drop("frontend"),
        drop("checkout"),
        drop("checkout"),
        drop("checkout"),
    ]);
    assert_eq!(found.len(), 1);
    assert_eq!(
        first_origin(&found[0]),
        "frontend",
        "{:#?}",
        found[0].origins
    );
}

#[test]
fn failures_pointing_at_two_callees_do_not_make_the_caller_the_origin() {
    // payment refuses calls: checkout's failures point at it; one slow trace of checkout points at
    // another callee. Only time toward several peers says the caller itself is slow.
    let found = incidents(&[
        finding("checkout", Cause::Peer, 0)
            .peer("payment")
            .subtype(Subtype::ErrorRateSpike)
            .severity(Severity::Critical),
        finding("checkout", Cause::Peer, 0)
            .peer("db")
            .subtype(Subtype::LatencySpike)
            .severity(Severity::Low),
        finding("payment", Cause::Itself, 0)
            .subtype(Subtype::ServiceSilent)
            .severity(Severity::Critical)
            .ms(0.0, 0.0),
    ]);
    assert_eq!(found.len(), 1);
    assert_eq!(
        first_origin(&found[0]),
        "payment",
        "{:#?}",
        found[0].origins
    );
}

#[test]
fn a_caller_slow_on_its_own_side_keeps_its_failures_pointing_at_the_callee() {
    // cart is silent: frontend's calls to it fail, and frontend's own time grew (its threads held while
    // the calls time out); one slow trace of frontend's on the way to cart makes frontend "slow on its
    // own side" for time. Its failures still point at cart.
    let found = incidents(
        &[
            finding("cart", Cause::Itself, 0)
                .subtype(Subtype::ServiceSilent)
                .severity(Severity::Critical)
                .ms(0.0, 0.0),
            finding("frontend", Cause::Itself, 0)
                .severity(Severity::Critical)
                .ms(22.0, 8.0),
            finding("frontend", Cause::Peer, 1)
                .peer("cart")
                .subtype(Subtype::LatencySpike)
                .severity(Severity::Low)
                .ms(20.0, 5.0),
        ]
        .into_iter()
        .chain((0..4).map(|_| {
            finding("frontend", Cause::Peer, 0)
                .peer("cart")
                .subtype(Subtype::ErrorRateSpike)
                .severity(Severity::Critical)
        }))
        .collect::<Vec<_>>(),
    );
    assert_eq!(found.len(), 1);
    assert_eq!(first_origin(&found[0]), "cart", "{:#?}", found[0].origins);
}

#[test]
fn a_shift_of_many_requests_outweighs_two_slow_requests_pointing_elsewhere() {
    // checkout's own time grew by 3 ms over two windows (most of its requests); in the same minutes
    // two single slow requests of checkout's spent 14 ms more on the way to payment.
    let slow_request = |minute| {
        finding("checkout", Cause::Peer, minute)
            .peer("payment")
            .subtype(Subtype::LatencySpike)
            .severity(Severity::Low)
            .ms(20.0, 6.0)
            .score(14.5)
    };
    let found = incidents(&[
        finding("checkout", Cause::Itself, 0)
            .severity(Severity::Critical)
            .ms(6.4, 3.5),
        slow_request(0),
        finding("checkout", Cause::Itself, 1)
            .severity(Severity::Critical)
            .ms(6.4, 3.5),
        slow_request(2),
    ]);
    assert_eq!(found.len(), 1);
    assert_eq!(
        first_origin(&found[0]),
        "checkout",
        "{:#?}",
        found[0].origins
    );
}

#[test]
fn security_findings_are_an_incident_per_client_and_shared_ones_stay_apart() {
    let security = |client: &str, minute| {
        let mut a = finding("frontend", Cause::Itself, minute)
            .subtype(Subtype::AuthFailureBurst)
            .anomaly();
        a.client = Some(client.into());
        a
    };
    let pipeline = {
        let mut a = finding("frontend", Cause::Shared, 0)
            .subtype(Subtype::ServiceSilent)
            .severity(Severity::Medium)
            .anomaly();
        a.operation = None;
        a
    };
    let graph = graph();
    let mut tracker = IncidentTracker::default();
    for a in [
        security("10.0.0.1", 0),
        security("10.0.0.2", 0),
        security("10.0.0.1", 1),
        finding("frontend", Cause::Itself, 0).anomaly(),
        pipeline,
    ] {
        tracker.observe(&a, &graph);
    }
    let mut kinds: Vec<(Option<String>, bool, u32)> = tracker
        .open()
        .iter()
        .map(|i| (i.client.clone(), i.shared, i.detections()))
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        vec![
            (None, false, 1),
            (None, true, 1),
            (Some("10.0.0.1".into()), false, 2),
            (Some("10.0.0.2".into()), false, 1),
        ]
    );
    let shared = tracker.open().iter().find(|i| i.shared).unwrap();
    assert!(shared.origins.is_empty(), "the pipeline is no service");
}

#[test]
fn the_same_findings_give_the_same_incidents() {
    let run = || {
        incidents(&[
            finding("payment", Cause::Itself, 0),
            finding("checkout", Cause::Peer, 0).peer("payment"),
            finding("ads", Cause::Itself, 2),
        ])
    };
    assert_eq!(run(), run());
}

#[test]
fn a_tracker_restored_from_its_saved_state_goes_on_with_the_open_incidents() {
    let graph = graph();
    let findings = [
        finding("payment", Cause::Itself, 0),
        finding("checkout", Cause::Peer, 1).peer("payment"),
        finding("payment", Cause::Itself, 2),
    ];
    let mut whole = IncidentTracker::default();
    let mut resumed = IncidentTracker::default();
    for (i, f) in findings.iter().enumerate() {
        whole.observe(&f.anomaly(), &graph);
        if i == 1 {
            // A restart: only the saved state survives.
            let saved = serde_json::to_string(&resumed).unwrap();
            resumed = serde_json::from_str(&saved).unwrap();
        }
        resumed.observe(&f.anomaly(), &graph);
    }
    let (whole, resumed) = (whole.finish(), resumed.finish());
    assert_eq!(whole.len(), 1);
    assert_eq!(whole, resumed);
    assert_eq!(resumed[0].incident().detections(), 3);
}
