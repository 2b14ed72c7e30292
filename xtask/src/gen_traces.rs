//! `cargo xtask gen-traces`: realistic multi-service traffic of a small shop as OTLP JSON lines, with
//! labelled injected anomalies and the list of true statistical tails (see `labels`).
//!
//! Deterministic: the same seed, minutes and rate give byte-identical files. Event time starts at
//! [`EPOCH_NANOS`] (2026-01-05T00:00:00Z), never the wall clock; random numbers come from `StdRng`
//! seeded from the seed (one stream for traffic, one for the injection plan); nothing is iterated
//! from a hash map.
//!
//! Code map: `topology` (services, operations, routes, duration model), `traffic` (clients and
//! arrivals), `trace` (building one trace, and the edits injections make), `inject` (the plan of
//! labelled anomalies; `inject::near_threshold`, the few just past the rules), `otlp` (OTLP JSON lines), `labels` (the labels file format).

pub mod inject;
pub mod labels;
pub mod otlp;
pub mod topology;
pub mod trace;
pub mod traffic;

use anyhow::Context;
pub use inject::Spacing;
use inject::{LabelDraft, Plan};
use labels::{Label, NEAR_TAIL_Z, TAIL_Z, Tail};
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;
use topology::Topology;
use trace::{Builder, Ctx, GenStats, Role, Trace};
use traffic::{NANOS_PER_SEC, Population, Traffic, admin_requests};

/// 2026-01-05T00:00:00Z: where event time starts.
pub const EPOCH_NANOS: u64 = 1_767_571_200 * NANOS_PER_SEC;

#[derive(clap::Args, Debug, Clone)]
pub struct GenArgs {
    /// Seed of every random choice.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Minutes of event time to generate.
    #[arg(long, default_value_t = 60)]
    pub minutes: u64,
    /// Average root requests per second.
    #[arg(long, default_value_t = 15.0)]
    pub rate: f64,
    /// The OTLP JSON lines file to write.
    #[arg(long)]
    pub out: PathBuf,
    /// The labels file (default: OUT with `.jsonl` replaced by `.labels.jsonl`).
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// One injection of each subtype, each alone in time (give it about 240 minutes).
    #[arg(long)]
    pub one_at_a_time: bool,
}

impl GenArgs {
    pub fn spacing(&self) -> Spacing {
        if self.one_at_a_time {
            Spacing::OneAtATime
        } else {
            Spacing::Dense
        }
    }
}

/// What a generation produced, for the summary.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub traces: u64,
    pub spans: u64,
    pub lines: u64,
    pub labels_by_subtype: BTreeMap<&'static str, usize>,
    /// Labels of injections just past a detector's rule (`inject::near_threshold`).
    pub near_threshold_labels: usize,
    pub tails: usize,
    pub near_tails: usize,
    pub parents: u64,
    pub scaled_parents: u64,
    pub unplaced: Vec<&'static str>,
    pub unapplied_trace_injections: usize,
    pub dropped_labels: usize,
}

impl Summary {
    pub fn print(&self, elapsed: std::time::Duration) {
        eprintln!(
            "gen-traces: {} traces, {} spans in {} lines; {} tails (z ≥ {TAIL_Z}), {} near tails; \
             children scaled to fit in {:.2} % of parents; {:.1} s",
            self.traces,
            self.spans,
            self.lines,
            self.tails,
            self.near_tails,
            100.0 * self.scaled_parents as f64 / self.parents.max(1) as f64,
            elapsed.as_secs_f64(),
        );
        let total: usize = self.labels_by_subtype.values().sum();
        eprintln!(
            "labels: {total}, of which near threshold: {}",
            self.near_threshold_labels
        );
        for (subtype, n) in &self.labels_by_subtype {
            eprintln!("  {subtype:<30} {n}");
        }
        if !self.unplaced.is_empty() {
            eprintln!("injections that found no room: {:?}", self.unplaced);
        }
        if self.unapplied_trace_injections > 0 || self.dropped_labels > 0 {
            eprintln!(
                "per-trace injections not applied: {}; labels dropped for having no effect: {}",
                self.unapplied_trace_injections, self.dropped_labels
            );
        }
    }
}

pub fn run(args: &GenArgs) -> anyhow::Result<Summary> {
    let started = Instant::now();
    let labels_path = args
        .labels
        .clone()
        .unwrap_or_else(|| labels::default_labels_path(&args.out));
    let summary = write_files(
        args.seed,
        args.minutes,
        args.rate,
        args.spacing(),
        &args.out,
        &labels_path,
    )?;
    summary.print(started.elapsed());
    eprintln!("wrote {} and {}", args.out.display(), labels_path.display());
    Ok(summary)
}

/// Generates into `out` and `labels_path`, through temporary files renamed at the end, so that a
/// file that exists is always complete.
pub fn write_files(
    seed: u64,
    minutes: u64,
    rate: f64,
    spacing: Spacing,
    out: &Path,
    labels_path: &Path,
) -> anyhow::Result<Summary> {
    for path in [out, labels_path] {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
    }
    let tmp = |p: &Path| {
        let mut name = p.as_os_str().to_owned();
        name.push(".tmp");
        PathBuf::from(name)
    };
    let (out_tmp, labels_tmp) = (tmp(out), tmp(labels_path));
    let traces_file =
        File::create(&out_tmp).with_context(|| format!("creating {}", out_tmp.display()))?;
    let labels_file =
        File::create(&labels_tmp).with_context(|| format!("creating {}", labels_tmp.display()))?;
    let summary = generate(
        seed,
        minutes,
        rate,
        spacing,
        BufWriter::with_capacity(1 << 20, traces_file),
        BufWriter::new(labels_file),
    )
    .with_context(|| format!("writing {}", out.display()))?;
    std::fs::rename(&out_tmp, out).with_context(|| format!("renaming to {}", out.display()))?;
    std::fs::rename(&labels_tmp, labels_path)
        .with_context(|| format!("renaming to {}", labels_path.display()))?;
    Ok(summary)
}

/// Generates `minutes` of traffic: OTLP JSON lines into `traces_out`, labels and tails into
/// `labels_out`.
pub fn generate(
    seed: u64,
    minutes: u64,
    rate: f64,
    spacing: Spacing,
    traces_out: impl Write,
    mut labels_out: impl Write,
) -> anyhow::Result<Summary> {
    anyhow::ensure!(rate > 0.0 && rate.is_finite(), "--rate must be positive");
    let topo = Topology::shop();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut plan_rng = StdRng::seed_from_u64(seed ^ 0x5eed_1abe_15c0_ffee);
    let mut population = Population::new(&mut rng);
    let traffic = Traffic::new(&topo, rate, EPOCH_NANOS, &mut rng);
    let seconds = minutes * 60;
    let admins = admin_requests(&topo, &population, &mut rng, EPOCH_NANOS, seconds);
    let mut plan = Plan::new(
        &topo,
        &traffic,
        &population,
        &mut plan_rng,
        EPOCH_NANOS,
        minutes,
        spacing,
    );
    let mut writer = otlp::LineWriter::new(traces_out);
    let mut stats = GenStats::default();
    let mut tails = Vec::new();
    let mut root_traces = vec![0u32; topo.routes.len()];
    let mut next_admin = 0;
    let mut requests = Vec::new();
    let mut traces = 0u64;
    for second in 0..seconds {
        requests.clear();
        let second_start = EPOCH_NANOS + second * NANOS_PER_SEC;
        traffic.arrivals(
            &topo,
            &mut population,
            &mut rng,
            second,
            |r| plan.multiplier(r, second_start),
            &mut requests,
        );
        let second_end = second_start + NANOS_PER_SEC;
        while next_admin < admins.len() && admins[next_admin].start < second_end {
            requests.push(admins[next_admin].clone());
            next_admin += 1;
        }
        requests.extend_from_slice(plan.attacks_before(second_end));
        requests.sort_by_key(|r| r.start);
        for request in &requests {
            let faults = plan.faults(request.start);
            let mut builder = Builder {
                topo: &topo,
                rng: &mut rng,
                faults: &faults,
                ctx: Ctx::default(),
                stats: &mut stats,
            };
            let mut trace = builder.build(request);
            plan.after_build(&mut builder, &mut trace, &root_traces);
            root_traces[trace.route] += 1;
            collect_tails(&topo, &trace, &mut tails);
            writer.add(&topo, &trace);
            traces += 1;
        }
        // Every later trace starts after this second, so no later span can end in it.
        writer.flush_before(&topo, second_end / NANOS_PER_SEC)?;
    }
    let (lines, spans) = writer.finish(&topo)?;

    let unapplied = plan.pending_trace_injections();
    let unplaced = plan.unplaced.iter().map(|s| s.as_str()).collect();
    let (labels, dropped) = finish_labels(std::mem::take(&mut plan.labels));
    let mut summary = Summary {
        traces,
        spans,
        lines,
        tails: tails.iter().filter(|t| t.tail).count(),
        near_tails: tails.iter().filter(|t| !t.tail).count(),
        parents: stats.parents,
        scaled_parents: stats.scaled,
        unplaced,
        unapplied_trace_injections: unapplied,
        dropped_labels: dropped,
        ..Summary::default()
    };
    for label in &labels {
        let subtype = detect_core::Subtype::parse(&label.subtype)
            .map(|s| s.as_str())
            .unwrap_or("?");
        *summary.labels_by_subtype.entry(subtype).or_default() += 1;
        summary.near_threshold_labels += usize::from(label.near_threshold);
        serde_json::to_writer(&mut labels_out, label)?;
        labels_out.write_all(b"\n")?;
    }
    for tail in &tails {
        serde_json::to_writer(&mut labels_out, tail)?;
        labels_out.write_all(b"\n")?;
    }
    labels_out.flush()?;
    Ok(summary)
}

/// Sorts labels by window, numbers them, and drops those the traffic never gave an effect.
fn finish_labels(mut drafts: Vec<LabelDraft>) -> (Vec<Label>, usize) {
    use detect_core::Subtype;
    let before = drafts.len();
    drafts.retain(|d| match d.subtype {
        Subtype::ThroughputSpike | Subtype::ThroughputDrop | Subtype::ServiceSilent => true,
        _ => !d.traces.is_empty() && !d.targets.is_empty(),
    });
    let dropped = before - drafts.len();
    drafts.sort_by(|a, b| {
        (a.start, a.end, a.subtype, &a.description).cmp(&(
            b.start,
            b.end,
            b.subtype,
            &b.description,
        ))
    });
    let labels = drafts
        .into_iter()
        .enumerate()
        .map(|(i, d)| Label {
            label_id: format!("L{:04}", i + 1),
            anomaly_type: d.subtype.anomaly_type().as_str().to_owned(),
            subtype: d.subtype.as_str().to_owned(),
            window_start_unix_nano: d.start.to_string(),
            window_end_unix_nano: d.end.to_string(),
            targets: d.targets.into_iter().collect(),
            side_effects: d.side_effects.into_iter().collect(),
            examples: d.traces.iter().take(5).map(hex::encode).collect(),
            traces: d.traces.iter().map(hex::encode).collect(),
            description: d.description,
            near_threshold: d.near_threshold,
            origin: d.origin,
        })
        .collect();
    (labels, dropped)
}

/// Records the normal spans of `trace` whose duration is a tail of their key's log-normal.
fn collect_tails(topo: &Topology, trace: &Trace, out: &mut Vec<Tail>) {
    for span in &trace.spans {
        if span.modified || span.injected {
            continue;
        }
        let (median_ms, sigma) = topo.ln_params(span.op, span.role == Role::Client);
        let z = ((span.dur as f64 / 1e6).ln() - median_ms.ln()) / sigma;
        if z >= NEAR_TAIL_Z {
            out.push(Tail {
                tail: z >= TAIL_Z,
                trace_id: hex::encode(trace.trace_id),
                span_id: hex::encode(span.span_id),
                z: (z * 1000.0).round() / 1000.0,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn run(seed: u64, minutes: u64) -> (Vec<u8>, Vec<u8>, Summary) {
        let (mut traces, mut labels) = (Vec::new(), Vec::new());
        let summary = generate(
            seed,
            minutes,
            15.0,
            Spacing::Dense,
            &mut traces,
            &mut labels,
        )
        .unwrap();
        (traces, labels, summary)
    }

    fn parse_labels(bytes: &[u8]) -> (Vec<Label>, Vec<Tail>) {
        let (mut labels, mut tails) = (Vec::new(), Vec::new());
        for line in std::str::from_utf8(bytes).unwrap().lines() {
            match labels::Line::parse(line).unwrap() {
                labels::Line::Label(l) => labels.push(*l),
                labels::Line::Tail(t) => tails.push(t),
            }
        }
        (labels, tails)
    }

    #[test]
    fn the_same_seed_gives_the_same_bytes() {
        let a = run(3, 1);
        let b = run(3, 1);
        assert!(a.0 == b.0 && a.1 == b.1, "not deterministic");
        assert!(a.2.spans > 1_000, "{:?}", a.2);
        let c = run(4, 1);
        assert!(a.0 != c.0);
    }

    #[test]
    fn output_is_strict_otlp_json_that_the_decoder_reads() {
        let (traces, _, summary) = run(5, 1);
        let text = std::str::from_utf8(&traces).unwrap();
        let mut spans = 0;
        let mut last_end = 0;
        for (i, line) in text.lines().enumerate() {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            for rs in value["resourceSpans"].as_array().unwrap() {
                for span in rs["scopeSpans"][0]["spans"].as_array().unwrap() {
                    let id = span["traceId"].as_str().unwrap();
                    assert_eq!(id.len(), 32);
                    assert!(
                        id.bytes()
                            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
                    );
                    assert_eq!(span["spanId"].as_str().unwrap().len(), 16);
                    let end: u64 = span["endTimeUnixNano"].as_str().unwrap().parse().unwrap();
                    // Lines are in event-time order: each holds the spans that ended in one second.
                    assert!(end / NANOS_PER_SEC >= last_end / NANOS_PER_SEC);
                    last_end = last_end.max(end);
                }
            }
            spans += tempo_client::decode_json_line(line, i + 1).unwrap().len() as u64;
        }
        assert_eq!(spans, summary.spans);
    }

    #[test]
    fn labels_and_tails_reference_spans_that_exist() {
        let (traces, labels, summary) = run(11, 24);
        let mut ids = BTreeSet::new();
        let mut trace_ids = BTreeSet::new();
        for (i, line) in std::str::from_utf8(&traces).unwrap().lines().enumerate() {
            for span in tempo_client::decode_json_line(line, i + 1).unwrap() {
                trace_ids.insert(span.trace_id.to_string());
                ids.insert((span.trace_id.to_string(), span.span_id.to_string()));
            }
        }
        let (labels, tails) = parse_labels(&labels);
        assert!(labels.len() >= 10, "{summary:?}");
        for label in &labels {
            let (start, end) = label.window();
            assert!(
                start >= EPOCH_NANOS + inject::WARMUP_SECONDS * NANOS_PER_SEC && end >= start,
                "{label:?}"
            );
            assert!(!label.targets.is_empty(), "{label:?}");
            for t in &label.targets {
                match (&t.trace_id, &t.span_id) {
                    (Some(trace), Some(span)) => {
                        assert!(ids.contains(&(trace.clone(), span.clone())), "{t:?}")
                    }
                    (Some(trace), None) => assert!(trace_ids.contains(trace), "{t:?}"),
                    _ => {}
                }
            }
            for trace in label.traces.iter().chain(&label.examples) {
                assert!(trace_ids.contains(trace), "{trace}");
            }
        }
        assert!(!tails.is_empty());
        for tail in &tails {
            assert!(ids.contains(&(tail.trace_id.clone(), tail.span_id.clone())));
            assert_eq!(tail.tail, tail.z >= TAIL_Z);
        }
    }

    #[test]
    fn an_hour_holds_every_subtype() {
        let (mut traces, mut labels) = (std::io::sink(), Vec::new());
        let summary = generate(7, 60, 15.0, Spacing::Dense, &mut traces, &mut labels).unwrap();
        let (labels, _) = parse_labels(&labels);
        let found: BTreeSet<&str> = labels.iter().map(|l| l.subtype.as_str()).collect();
        for subtype in detect_core::Subtype::ALL {
            use detect_core::Subtype::{CallPathChange, LatencyDegradation};
            // Window-level findings of real-traffic faults: not injected one by one.
            if matches!(subtype, LatencyDegradation | CallPathChange) {
                continue;
            }
            assert!(
                found.contains(subtype.as_str()),
                "{subtype} missing: {summary:?}"
            );
        }
        // About 3–6 per subtype per hour (slow single spans come on top for latency).
        for (subtype, n) in &summary.labels_by_subtype {
            assert!(*n >= 2 && *n <= 30, "{subtype}: {n}");
        }
        // Normal spans with z ≥ 3: about 1 in 740.
        let share = summary.tails as f64 / summary.spans as f64;
        assert!((0.0007..0.0025).contains(&share), "{share}");
    }
}
