//! `replay --incidents FILE`: the incidents the replayed findings form, one JSON object per line, each
//! written as it stands when it closes (after its quiet period, or at the end of the input).

use anyhow::{Context, Result};
use detect_core::{Anomaly, Incident, IncidentEvent, IncidentTracker, ServiceGraph, UnixNanos};
use serde::Serialize;
use std::io::Write;

#[derive(Serialize)]
struct IncidentLine<'a> {
    id: &'a str,
    /// The client, for a security incident.
    client: Option<&'a str>,
    started_at: String,
    ended_at: Option<String>,
    severity: &'static str,
    anomaly_count: u32,
    services: Vec<&'a str>,
    /// Best first.
    probable_origins: Vec<OriginLine<'a>>,
}

#[derive(Serialize)]
struct OriginLine<'a> {
    service_name: &'a str,
    operation: Option<&'a str>,
    score: f64,
    evidence: &'a str,
}

pub struct IncidentLines<W: Write> {
    tracker: IncidentTracker,
    out: W,
    pub written: usize,
}

impl<W: Write> IncidentLines<W> {
    pub fn new(out: W) -> Self {
        IncidentLines {
            tracker: IncidentTracker::default(),
            out,
            written: 0,
        }
    }

    /// Places a finding, and writes the incidents its time closes.
    pub fn place(&mut self, a: &Anomaly, graph: &ServiceGraph) -> Result<()> {
        self.tracker.observe(a, graph);
        let closed = self.tracker.advance_to(a.detected_at);
        self.write(closed)
    }

    /// Writes the incidents still open, as they stand at the end of the input.
    pub fn finish(mut self) -> Result<usize> {
        let open = self.tracker.finish();
        self.write(open)?;
        self.out.flush().context("cannot write the incidents")?;
        Ok(self.written)
    }

    fn write(&mut self, events: Vec<IncidentEvent>) -> Result<()> {
        for event in events {
            let line = line(event.incident());
            serde_json::to_writer(&mut self.out, &line).context("cannot write the incidents")?;
            self.out
                .write_all(b"\n")
                .context("cannot write the incidents")?;
            self.written += 1;
        }
        Ok(())
    }
}

fn line(i: &Incident) -> IncidentLine<'_> {
    IncidentLine {
        id: &i.id,
        client: i.client.as_deref(),
        started_at: rfc3339(i.started_at),
        ended_at: i.ended_at.map(rfc3339),
        severity: i.severity.as_str(),
        anomaly_count: i.detections(),
        services: i.services().into_iter().collect(),
        probable_origins: i
            .origins
            .iter()
            .map(|o| OriginLine {
                service_name: &o.service,
                operation: o.operation.as_deref(),
                score: o.score,
                evidence: &o.evidence,
            })
            .collect(),
    }
}

/// As the anomalies' times: RFC 3339, UTC, milliseconds.
fn rfc3339(t: UnixNanos) -> String {
    store_pg::model::to_datetime(t).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
