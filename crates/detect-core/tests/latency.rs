//! Latency and call paths on traffic shaped like real services: heavy-tailed, bimodal durations (a cache
//! miss in twenty), a caller that waits on its callees, and faults that land in one place. The engine must
//! name that place, keep the callers that merely wait below paging, and stay quiet on ordinary traffic.

use detect_core::{
    Anomaly, DetectionConfig, Engine, Severity, Span, SpanId, SpanKind, Subtype, TraceId, UnixNanos,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, LogNormal};

const T0_MS: u64 = 1_767_571_200_000;

/// What goes wrong, from minute 20 to minute 22.
#[derive(Clone, Copy, PartialEq)]
enum Fault {
    None,
    /// `tax` `Rate` takes five times as long.
    SlowTax,
    /// Answers from `pricing` to `shop` take 40 ms more on the wire.
    SlowWireToPricing,
    /// `pricing` `Quote` stops calling `tax` `Rate` (an exception after the price lookup).
    QuoteSkipsTax,
    /// `tax` `Rate` takes four hundred times as long (one trace).
    VerySlowTax,
}

struct Shop {
    rng: StdRng,
    next_id: u64,
    spans: Vec<Span>,
}

impl Shop {
    fn new(seed: u64) -> Self {
        Shop {
            rng: StdRng::seed_from_u64(seed),
            next_id: 1,
            spans: Vec::new(),
        }
    }

    /// A heavy-tailed duration around `median_ms`: log-normal, and one in twenty eight times longer.
    fn duration(&mut self, median_ms: f64) -> u64 {
        let body = LogNormal::new(median_ms.ln(), 0.4)
            .unwrap()
            .sample(&mut self.rng);
        let miss = if self.rng.random::<f64>() < 0.05 {
            8.0
        } else {
            1.0
        };
        (body * miss * 1e6) as u64
    }

    fn span(
        &mut self,
        trace: TraceId,
        parent: Option<SpanId>,
        service: &str,
        op: &str,
        start: u64,
        end: u64,
    ) -> SpanId {
        self.next_id += 1;
        let id = SpanId(self.next_id.to_be_bytes());
        self.spans.push(Span {
            trace_id: trace,
            span_id: id,
            parent_span_id: parent,
            service: service.into(),
            operation: op.into(),
            kind: if parent.is_none() {
                SpanKind::Server
            } else {
                SpanKind::Internal
            },
            start: UnixNanos(start),
            duration_nanos: end - start,
            ..Span::default()
        });
        id
    }

    /// One request at `t` (ns): shop `GET /checkout` → pricing `Quote` → pricing `SELECT prices`, tax `Rate`.
    fn request(&mut self, t: u64, fault: Fault) {
        let mut trace = [0u8; 16];
        trace[8..].copy_from_slice(
            &self
                .next_id
                .wrapping_mul(0x9e37_79b9_7f4a_7c15)
                .to_be_bytes(),
        );
        trace[0] = 1;
        let trace = TraceId(trace);
        let wire = 500_000;
        let shop_pre = self.duration(2.0);
        let quote_start = t + shop_pre + wire;
        let db = self.duration(4.0);
        let mut tax = self.duration(6.0);
        if fault == Fault::SlowTax {
            tax *= 5;
        }
        if fault == Fault::VerySlowTax {
            tax *= 400;
        }
        let db_start = quote_start + 300_000;
        let tax_start = db_start + db + 200_000;
        let calls_tax = fault != Fault::QuoteSkipsTax;
        let quote_end = if calls_tax {
            tax_start + tax + 300_000
        } else {
            db_start + db + 300_000
        };
        let back = wire
            + if fault == Fault::SlowWireToPricing {
                40_000_000
            } else {
                0
            };
        let end = quote_end + back + self.duration(1.0);
        let root = self.span(trace, None, "shop", "GET /checkout", t, end);
        let quote = self.span(
            trace,
            Some(root),
            "pricing",
            "Quote",
            quote_start,
            quote_end,
        );
        self.span(
            trace,
            Some(quote),
            "pricing",
            "SELECT prices",
            db_start,
            db_start + db,
        );
        if calls_tax {
            self.span(
                trace,
                Some(quote),
                "tax",
                "Rate",
                tax_start,
                tax_start + tax,
            );
        }
    }

    /// `minutes` of traffic at 10 requests a second; `fault` during minutes 20 and 21.
    fn run(mut self, minutes: u64, fault: Fault) -> (Vec<Anomaly>, u64) {
        let mut traces = 0;
        for i in 0..minutes * 600 {
            let t = (T0_MS + i * 100) * 1_000_000 + self.rng.random_range(0..50_000_000);
            let now = if (20 * 600..22 * 600).contains(&i) {
                fault
            } else {
                Fault::None
            };
            self.request(t, now);
            traces += 1;
        }
        let mut spans = std::mem::take(&mut self.spans);
        spans.sort_by_key(|s| s.start);
        let config = DetectionConfig {
            sampling_enabled: false,
            ..DetectionConfig::default()
        };
        let mut engine = Engine::new(config);
        let mut out = Vec::new();
        for span in spans {
            engine.ingest(span, &mut out);
        }
        engine.finish(&mut out);
        (out, traces)
    }
}

/// A trace fetched beside the sample for being among the slowest (one in a hundred): judged against
/// what was learned, with a limit a hundred times stricter. An ordinary trace is not flagged; one with a
/// span four hundred times its usual is.
#[test]
fn a_trace_chosen_for_being_slow_is_judged_for_what_it_is_not_for_being_chosen() {
    let mut shop = Shop::new(3);
    for i in 0..25 * 600 {
        let t = (T0_MS + i * 100) * 1_000_000;
        shop.request(t, Fault::None);
    }
    let mut spans = std::mem::take(&mut shop.spans);
    spans.sort_by_key(|s| s.start);
    let mut engine = Engine::new(DetectionConfig {
        sampling_enabled: false,
        ..DetectionConfig::default()
    });
    let mut out = Vec::new();
    for span in spans {
        engine.ingest(span, &mut out);
    }
    // Minute 24 is still open (it closes 30 s after its end).
    let at = (T0_MS + 24 * 60_000 + 50_000) * 1_000_000;
    let mut chosen = |fault| {
        shop.request(at, fault);
        let trace = std::mem::take(&mut shop.spans);
        let mut found = Vec::new();
        engine.ingest_chosen_trace(trace, 100.0, &mut found);
        found
    };
    let ordinary = chosen(Fault::None);
    assert!(ordinary.is_empty(), "{ordinary:#?}");
    let slow = chosen(Fault::VerySlowTax);
    assert!(
        slow.iter()
            .any(|a| a.subtype == Subtype::LatencySpike && a.description.contains("limit 1.3e-5")),
        "{slow:#?}"
    );
}

fn paging(out: &[Anomaly]) -> Vec<&Anomaly> {
    out.iter()
        .filter(|a| a.severity >= Severity::High)
        .collect()
}

#[test]
fn ordinary_heavy_tailed_traffic_pages_nothing_and_flags_few_traces() {
    let (out, traces) = Shop::new(1).run(30, Fault::None);
    assert!(paging(&out).is_empty(), "{:#?}", paging(&out));
    let flagged = out
        .iter()
        .filter(|a| a.subtype == Subtype::LatencySpike)
        .count();
    assert!(
        flagged as f64 <= traces as f64 / 1_000.0,
        "{flagged} of {traces} traces flagged"
    );
    assert!(
        out.iter()
            .all(|a| a.subtype != Subtype::LatencyDegradation || a.severity <= Severity::Medium),
        "{out:#?}"
    );
}

#[test]
fn a_slow_callee_is_where_the_time_went_and_its_callers_only_wait() {
    let (out, _) = Shop::new(2).run(25, Fault::SlowTax);
    let pages = paging(&out);
    assert!(
        pages
            .iter()
            .any(|a| a.subtype == Subtype::LatencyDegradation && a.service == "tax"),
        "{out:#?}"
    );
    assert!(pages.iter().all(|a| a.service == "tax"), "{pages:#?}");
    let quote = out
        .iter()
        .find(|a| {
            a.subtype == Subtype::LatencyDegradation && a.operation.as_deref() == Some("Quote")
        })
        .expect("the caller is reported as affected");
    assert!(quote.severity <= Severity::Medium);
    assert!(
        quote.description.contains("waiting on tax `Rate`"),
        "{}",
        quote.description
    );
    assert_eq!(quote.peer_service.as_deref(), Some("tax"));
}

#[test]
fn a_slower_way_into_a_service_pages_about_it_and_its_caller_names_it_as_the_peer() {
    let (out, _) = Shop::new(3).run(25, Fault::SlowWireToPricing);
    let pages = paging(&out);
    let quote = pages
        .iter()
        .find(|a| a.service == "pricing" && a.operation.as_deref() == Some("Quote"))
        .unwrap_or_else(|| panic!("{out:#?}"));
    assert!(
        quote.description.contains("on the way into it"),
        "{}",
        quote.description
    );
    assert!(pages.iter().all(|a| a.service == "pricing"), "{pages:#?}");
    let shop = out
        .iter()
        .find(|a| a.service == "shop" && a.subtype == Subtype::LatencyDegradation)
        .unwrap_or_else(|| panic!("{out:#?}"));
    assert_eq!(shop.peer_service.as_deref(), Some("pricing"), "{shop:#?}");
    assert!(
        shop.description.contains("on the way to pricing"),
        "{}",
        shop.description
    );
    assert!(shop.severity <= Severity::Medium, "{shop:#?}");
}

#[test]
fn a_call_that_stops_is_a_call_path_change_without_any_status_code() {
    let (out, _) = Shop::new(4).run(25, Fault::QuoteSkipsTax);
    let change = out
        .iter()
        .find(|a| a.subtype == Subtype::CallPathChange)
        .unwrap_or_else(|| panic!("{out:#?}"));
    assert_eq!(change.service, "pricing");
    assert_eq!(change.peer_service.as_deref(), Some("tax"));
    assert!(change.severity >= Severity::High, "{change:#?}");
    assert!(
        change.description.contains("tax `Rate`"),
        "{}",
        change.description
    );
    // tax, no longer called, falls silent too (one page each until incidents join them); the
    // caller of pricing changed nothing.
    assert!(paging(&out).iter().all(|a| a.service != "shop"), "{out:#?}");
}
