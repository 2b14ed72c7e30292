//! `detector-worker replay`: runs every detector over OTLP files and prints each anomaly as one JSON
//! object per line on stdout, and a summary on stderr; with `--incidents FILE`, the incidents they form
//! as JSON lines in that file. Files are read in the order given; gzip is
//! read directly, and JSON lines are streamed, so a file need not fit in memory.

use crate::incident_lines::IncidentLines;
use anyhow::{Context, Result, bail};
use detect_core::{Anomaly, AnomalyType, DetectionConfig, Engine, ServiceGraph, Severity};
use flate2::read::MultiGzDecoder;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Cursor, Read, Write};
use std::path::{Path, PathBuf};
use tempo_client::{DecodeError, InputFormat};

pub struct ReplayOptions {
    pub inputs: Vec<PathBuf>,
    pub format: Option<InputFormat>,
    pub config: DetectionConfig,
}

/// What a replay did, for the summary and the exit code.
#[derive(Default)]
pub struct ReplaySummary {
    pub input_errors: Vec<String>,
    pub skipped_spans: usize,
    pub by_type: BTreeMap<(AnomalyType, Severity), u64>,
    /// Incidents written to `--incidents`.
    pub incidents: usize,
}

/// Where incidents go, if anywhere.
pub type Incidents = Option<IncidentLines<Box<dyn Write>>>;

pub fn replay(
    options: &ReplayOptions,
    out: &mut impl Write,
    mut incidents: Incidents,
) -> Result<(ReplaySummary, Engine)> {
    let mut engine = Engine::new(options.config.clone());
    let mut summary = ReplaySummary::default();
    let mut found = Vec::new();
    for input in &options.inputs {
        let name = input.display().to_string();
        let reader = open(input).with_context(|| format!("cannot read {name}"))?;
        let (format, mut reader) = match options.format {
            Some(f) => (f, reader),
            None => sniff(reader).with_context(|| format!("cannot read {name}"))?,
        };
        let mut feed = |spans: Vec<detect_core::Span>,
                        summary: &mut ReplaySummary,
                        found: &mut Vec<Anomaly>|
         -> Result<()> {
            for span in spans {
                engine.ingest(span, found);
            }
            let graph = engine.service_graph();
            emit(found, summary, out, &mut incidents, graph)
        };
        match format {
            InputFormat::OtlpJsonLines => {
                let mut line = String::new();
                let mut line_no = 0;
                loop {
                    line.clear();
                    let n = reader
                        .read_line(&mut line)
                        .with_context(|| format!("cannot read {name} after line {line_no}"))?;
                    if n == 0 {
                        break;
                    }
                    line_no += 1;
                    if line.trim().is_empty() {
                        continue;
                    }
                    match tempo_client::decode_json_line(&line, line_no) {
                        Ok(spans) => feed(spans, &mut summary, &mut found)?,
                        Err(e) => summary.input_errors.push(format!("{name}: {e}")),
                    }
                }
            }
            InputFormat::OtlpJson | InputFormat::OtlpProto => {
                let mut bytes = Vec::new();
                reader
                    .read_to_end(&mut bytes)
                    .with_context(|| format!("cannot read {name}"))?;
                let outcome = tempo_client::decode(&bytes, format);
                summary.skipped_spans += outcome.skipped_spans;
                summary.input_errors.extend(
                    outcome
                        .errors
                        .iter()
                        .map(|e: &DecodeError| format!("{name}: {e}")),
                );
                feed(outcome.spans, &mut summary, &mut found)?;
            }
        }
    }
    engine.finish(&mut found);
    emit(
        &mut found,
        &mut summary,
        out,
        &mut incidents,
        engine.service_graph(),
    )?;
    out.flush()?;
    if let Some(incidents) = incidents {
        summary.incidents = incidents.finish()?;
    }
    Ok((summary, engine))
}

const BUFFER: usize = 1 << 20;

/// Opens a file, or stdin for `-`, and decompresses it when it starts with gzip's magic bytes.
fn open(path: &Path) -> io::Result<Box<dyn BufRead>> {
    let raw: Box<dyn Read> = if path == Path::new("-") {
        Box::new(io::stdin().lock())
    } else {
        Box::new(File::open(path)?)
    };
    let mut raw = BufReader::with_capacity(BUFFER, raw);
    if raw.fill_buf()?.starts_with(&[0x1f, 0x8b]) {
        let gunzipped = MultiGzDecoder::new(raw);
        Ok(Box::new(BufReader::with_capacity(BUFFER, gunzipped)))
    } else {
        Ok(Box::new(raw))
    }
}

/// Detects the format from the content, and gives back a reader that still yields every byte.
///
/// JSON lines can be megabytes long, so for JSON the first line is read whole, however long, and then
/// the start of what follows: `detect` needs both to tell one document from JSON lines. Those bytes are
/// chained back in front of the rest, which is still streamed.
fn sniff(mut reader: Box<dyn BufRead>) -> Result<(InputFormat, Box<dyn BufRead>)> {
    let buffered = reader.fill_buf()?;
    if buffered.is_empty() {
        bail!("the input is empty");
    }
    if !buffered.trim_ascii_start().starts_with(b"{") {
        return Ok((tempo_client::detect(buffered), reader));
    }
    let mut head = Vec::new();
    while head.trim_ascii().is_empty() && reader.read_until(b'\n', &mut head)? > 0 {}
    reader.by_ref().take(BUFFER as u64).read_to_end(&mut head)?;
    let format = tempo_client::detect(&head);
    Ok((format, Box::new(Cursor::new(head).chain(reader))))
}

fn emit(
    found: &mut Vec<Anomaly>,
    summary: &mut ReplaySummary,
    out: &mut impl Write,
    incidents: &mut Incidents,
    graph: &ServiceGraph,
) -> Result<()> {
    for anomaly in found.drain(..) {
        if let Some(incidents) = incidents {
            incidents.place(&anomaly, graph)?;
        }
        *summary
            .by_type
            .entry((anomaly.anomaly_type(), anomaly.severity))
            .or_default() += 1;
        serde_json::to_writer(&mut *out, &store_pg::wire::replay_json(&anomaly))?;
        out.write_all(b"\n")?;
    }
    Ok(())
}
