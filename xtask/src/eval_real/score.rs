//! Scoring of `eval-real`: faults found, noise about other services, chronic pagers. How a result is
//! read is the datasets' README's: a fault is found when an anomaly names the injected service in
//! `[inject − 10 s, inject + 150 s]`; noise is what pages about other services in that period.

use super::Gate;
use super::incidents::{self, PeriodIncidents};
use anyhow::Context;
use detect_core::{Anomaly, Incident, Severity};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const BEFORE_NANOS: u64 = 10_000_000_000;
const AFTER_NANOS: u64 = 150_000_000_000;

#[derive(serde::Deserialize)]
pub struct FaultFile {
    pub faults: Vec<Fault>,
}

#[derive(serde::Deserialize, Clone)]
pub struct Fault {
    pub inject_unix: u64,
    pub service: String,
    #[serde(rename = "type")]
    pub kind: String,
}

impl FaultFile {
    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the faults file {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }
}

impl Fault {
    fn period(&self) -> (u64, u64) {
        let inject = self.inject_unix * 1_000_000_000;
        (inject.saturating_sub(BEFORE_NANOS), inject + AFTER_NANOS)
    }

    fn names(&self, a: &Anomaly) -> bool {
        a.service == self.service || a.peer_service.as_deref() == Some(self.service.as_str())
    }
}

fn overlaps(a: &Anomaly, (from, to): (u64, u64)) -> bool {
    a.window.start.0 <= to && a.window.end.0 >= from
}

fn pages(a: &Anomaly) -> bool {
    a.severity >= Severity::High
}

/// One fault period's outcome. Noise is a paging finding naming neither as its service nor as its
/// peer the injected service: "time on the way to X grew", said by X's caller, points at X.
pub struct PeriodScore {
    pub fault: Fault,
    pub found: bool,
    pub found_paging: bool,
    /// Distinct paging fingerprints about other services, with a description of one of each.
    pub noise: BTreeMap<String, String>,
    /// The service named most often by paging findings in the period (a stand-in for an origin until
    /// incidents rank origins), if any paged.
    pub loudest: Option<String>,
    pub incidents: PeriodIncidents,
}

pub struct FileScore {
    pub periods: Vec<PeriodScore>,
    /// Fingerprints paging about another service in more than a quarter of the periods, with the
    /// number of periods.
    pub chronic: Vec<(String, usize)>,
    pub anomalies: usize,
    pub paging: usize,
    pub minutes: u64,
}

impl FileScore {
    pub fn new(
        faults: &FaultFile,
        anomalies: &[Anomaly],
        incidents: &[Incident],
        minutes: u64,
    ) -> Self {
        let mut periods = Vec::new();
        let mut pager_periods: BTreeMap<String, (String, usize)> = BTreeMap::new();
        for fault in &faults.faults {
            let period = fault.period();
            let in_period: Vec<&Anomaly> =
                anomalies.iter().filter(|a| overlaps(a, period)).collect();
            let found = in_period.iter().any(|a| fault.names(a));
            let found_paging = in_period.iter().any(|a| fault.names(a) && pages(a));
            let mut noise = BTreeMap::new();
            let mut loud: BTreeMap<&str, usize> = BTreeMap::new();
            for a in in_period.iter().filter(|a| pages(a)) {
                *loud.entry(a.service.as_str()).or_default() += 1;
                if !fault.names(a) {
                    noise.entry(a.fingerprint()).or_insert_with(|| describe(a));
                }
            }
            for (fingerprint, text) in &noise {
                pager_periods
                    .entry(fingerprint.clone())
                    .or_insert_with(|| (text.clone(), 0))
                    .1 += 1;
            }
            let loudest = loud
                .into_iter()
                .max_by_key(|(s, n)| (*n, std::cmp::Reverse(*s)))
                .map(|(s, _)| s.to_owned());
            periods.push(PeriodScore {
                fault: fault.clone(),
                found,
                found_paging,
                noise,
                loudest,
                incidents: incidents::score(incidents, period, &fault.service),
            });
        }
        let limit = Gate::CHRONIC_SHARE * periods.len() as f64;
        let chronic = pager_periods
            .into_values()
            .filter(|(_, n)| *n as f64 > limit)
            .collect();
        FileScore {
            periods,
            chronic,
            anomalies: anomalies.len(),
            paging: anomalies.iter().filter(|a| pages(a)).count(),
            minutes,
        }
    }

    pub fn print(&self, verbose: bool) {
        println!(
            "{:<12} {:<34} {:<15} {:>6} {:>7} {:>6} {:>5} {:>5}  origin (rank of the faulty one) / loudest",
            "inject", "service", "type", "found", "paged", "noise", "incs", "pages"
        );
        for p in &self.periods {
            let i = &p.incidents;
            println!(
                "{:<12} {:<34} {:<15} {:>6} {:>7} {:>6} {:>5} {:>5}  {} ({}) / {}",
                p.fault.inject_unix,
                p.fault.service,
                p.fault.kind,
                yes(p.found),
                yes(p.found_paging),
                p.noise.len(),
                i.incidents,
                i.paging,
                i.origin.as_deref().unwrap_or("-"),
                i.origin_rank
                    .map_or("-".to_owned(), |r| (r + 1).to_string()),
                p.loudest.as_deref().unwrap_or("-"),
            );
            if verbose {
                for text in p.noise.values() {
                    println!("    noise: {text}");
                }
                for line in &p.incidents.detail {
                    println!("    {line}");
                }
            }
        }
        for (text, n) in &self.chronic {
            println!(
                "  chronic pager ({n} of {} periods): {text}",
                self.periods.len()
            );
        }
        print_rates(self.anomalies, self.paging, self.minutes);
        println!();
    }
}

fn print_rates(anomalies: usize, paging: usize, minutes: u64) {
    let minutes = minutes.max(1) as f64;
    println!(
        "detections: {anomalies} ({:.1} a minute), paging {paging} ({:.2} a minute)",
        anomalies as f64 / minutes,
        paging as f64 / minutes,
    );
}

fn yes(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn describe(a: &Anomaly) -> String {
    format!(
        "{} {} {}/{}{}",
        a.severity,
        a.subtype,
        a.service,
        a.operation.as_deref().unwrap_or("-"),
        a.peer_service
            .as_deref()
            .map(|p| format!(" (peer {p})"))
            .unwrap_or_default(),
    )
}

/// Totals over every file, and the gate.
#[derive(Default)]
pub struct Totals {
    faults: usize,
    found: usize,
    found_paging: usize,
    loudest_right: usize,
    origin_top1: usize,
    origin_top3: usize,
    incidents: usize,
    paging_incidents: usize,
    noise: usize,
    chronic: usize,
    anomalies: usize,
    paging: usize,
    minutes: u64,
    /// Fault type → (faults, found).
    by_kind: BTreeMap<String, (usize, usize)>,
}

impl Totals {
    pub fn add(&mut self, file: &FileScore) {
        for p in &file.periods {
            self.faults += 1;
            self.found += usize::from(p.found);
            self.found_paging += usize::from(p.found_paging);
            self.loudest_right += usize::from(p.loudest.as_deref() == Some(&p.fault.service));
            self.origin_top1 += usize::from(p.incidents.origin_rank == Some(0));
            self.origin_top3 += usize::from(p.incidents.origin_rank.is_some_and(|r| r < 3));
            self.incidents += p.incidents.incidents;
            self.paging_incidents += p.incidents.paging;
            self.noise += p.noise.len();
            let kind = self.by_kind.entry(p.fault.kind.clone()).or_default();
            kind.0 += 1;
            kind.1 += usize::from(p.found);
        }
        self.chronic += file.chronic.len();
        self.anomalies += file.anomalies;
        self.paging += file.paging;
        self.minutes += file.minutes;
    }

    /// Prints the totals and the gate's verdict; true when it passes.
    pub fn print(&self) -> bool {
        let faults = self.faults.max(1) as f64;
        let noise = self.noise as f64 / faults;
        println!(
            "faults found: {} of {} ({} paged); the loudest service is the faulty one in {} of {}",
            self.found, self.faults, self.found_paging, self.loudest_right, self.faults
        );
        println!(
            "origin of the largest incident: the faulty service first in {} of {}, in the first three in {}; incidents per fault period {:.2} ({:.2} paging)",
            self.origin_top1,
            self.faults,
            self.origin_top3,
            self.incidents as f64 / faults,
            self.paging_incidents as f64 / faults,
        );
        let kinds: BTreeSet<_> = self.by_kind.keys().collect();
        for kind in kinds {
            let (n, found) = self.by_kind[kind];
            println!("  {kind:<15} {found} of {n}");
        }
        println!(
            "paging fingerprints about other services: {noise:.2} per fault period; chronic pagers: {}",
            self.chronic
        );
        print_rates(self.anomalies, self.paging, self.minutes);
        let passed = self.found as f64 >= Gate::MIN_FOUND_SHARE * faults - 1e-9
            && self.by_kind.values().all(|(_, found)| *found > 0)
            && noise <= Gate::MAX_NOISE_PER_PERIOD
            && self.chronic == 0
            && self.origin_top1 as f64 >= Gate::MIN_ORIGIN_TOP1_SHARE * faults - 1e-9
            && self.origin_top3 as f64 >= Gate::MIN_ORIGIN_TOP3_SHARE * faults - 1e-9
            && self.incidents as f64 <= Gate::MAX_INCIDENTS_PER_PERIOD * faults + 1e-9;
        println!(
            "Gate (found ≥ {:.1} %, every fault type found, ≤ {} paging fingerprints about other services per period, no chronic pager; origin first ≥ {:.0} %, in the first three ≥ {:.1} %, ≤ {} incidents per period): {}",
            Gate::MIN_FOUND_SHARE * 100.0,
            Gate::MAX_NOISE_PER_PERIOD,
            Gate::MIN_ORIGIN_TOP1_SHARE * 100.0,
            Gate::MIN_ORIGIN_TOP3_SHARE * 100.0,
            Gate::MAX_INCIDENTS_PER_PERIOD,
            if passed { "PASS" } else { "FAIL" }
        );
        passed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use detect_core::{Subtype, UnixNanos, Window};

    fn anomaly(service: &str, peer: Option<&str>, severity: Severity, at_secs: u64) -> Anomaly {
        Anomaly {
            cause: detect_core::Cause::Itself,
            subtype: Subtype::LatencyDegradation,
            severity,
            service: service.into(),
            operation: Some("op".into()),
            client: None,
            peer_service: peer.map(Into::into),
            trace_id: None,
            span_id: None,
            observed: 0.0,
            expected: 0.0,
            spread: 0.0,
            score: 0.0,
            threshold: 0.0,
            unit: "ms",
            window: Window {
                start: UnixNanos::from_secs(at_secs),
                end: UnixNanos::from_secs(at_secs + 60),
            },
            detected_at: UnixNanos::from_secs(at_secs + 60),
            examples: vec![],
            description: String::new(),
        }
    }

    fn faults() -> FaultFile {
        let fault = |inject_unix, service: &str| Fault {
            inject_unix,
            service: service.into(),
            kind: "network_delay".into(),
        };
        FaultFile {
            faults: vec![fault(1_000, "a"), fault(5_000, "b"), fault(9_000, "c")],
        }
    }

    #[test]
    fn found_by_service_or_peer_in_the_period_and_noise_is_what_pages_about_others() {
        let anomalies = vec![
            // a: named as the peer by its caller, at LOW: found, not paged.
            anomaly("caller", Some("a"), Severity::Low, 1_020),
            // b: paged; a paging finding about x in the same period is noise, a MEDIUM one is not.
            anomaly("b", None, Severity::Critical, 5_000),
            anomaly("x", None, Severity::High, 5_060),
            anomaly("y", None, Severity::Medium, 5_060),
            // c: named only long after its period.
            anomaly("c", None, Severity::High, 9_300),
        ];
        let score = FileScore::new(&faults(), &anomalies, &[], 10);
        let found: Vec<(bool, bool, usize)> = score
            .periods
            .iter()
            .map(|p| (p.found, p.found_paging, p.noise.len()))
            .collect();
        assert_eq!(
            found,
            vec![(true, false, 0), (true, true, 1), (false, false, 0)]
        );
        // x pages about another service in 1 of 3 periods: more than a quarter.
        assert_eq!(score.chronic.len(), 1);
        assert_eq!(score.chronic[0].1, 1);
    }

    #[test]
    fn a_fingerprint_paging_about_others_in_most_periods_is_chronic() {
        let anomalies: Vec<Anomaly> = [1_000, 5_000, 9_000]
            .into_iter()
            .map(|t| anomaly("x", None, Severity::High, t))
            .collect();
        let score = FileScore::new(&faults(), &anomalies, &[], 10);
        assert_eq!(score.chronic.len(), 1);
        assert_eq!(score.chronic[0].1, 3);
    }
}
