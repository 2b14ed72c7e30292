//! `detector-worker replay`: runs every detector over OTLP files and prints each anomaly as one JSON
//! object per line on stdout, and a summary on stderr. Files are read in the order given; JSON lines
//! are streamed, so a file need not fit in memory.

use crate::anomaly_json::AnomalyJson;
use anyhow::{Context, Result, bail};
use detect_core::{Anomaly, AnomalyType, DetectionConfig, Engine, Severity};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
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
}

pub fn replay(options: &ReplayOptions, out: &mut impl Write) -> Result<(ReplaySummary, Engine)> {
    let mut engine = Engine::new(options.config.clone());
    let mut summary = ReplaySummary::default();
    let mut found = Vec::new();
    for input in &options.inputs {
        let name = input.display().to_string();
        let reader = open(input).with_context(|| format!("cannot read {name}"))?;
        let mut reader = BufReader::with_capacity(1 << 20, reader);
        let format = match options.format {
            Some(f) => f,
            None => sniff(&mut reader).with_context(|| format!("cannot read {name}"))?,
        };
        let mut feed = |spans: Vec<detect_core::Span>,
                        summary: &mut ReplaySummary,
                        found: &mut Vec<Anomaly>|
         -> Result<()> {
            for span in spans {
                engine.ingest(span, found);
            }
            emit(found, summary, out)
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
    emit(&mut found, &mut summary, out)?;
    out.flush()?;
    Ok((summary, engine))
}

fn open(path: &Path) -> io::Result<Box<dyn Read>> {
    if path == Path::new("-") {
        Ok(Box::new(io::stdin().lock()))
    } else {
        Ok(Box::new(File::open(path)?))
    }
}

/// Detects the format from the first bytes (without consuming them).
fn sniff(reader: &mut BufReader<Box<dyn Read>>) -> Result<InputFormat> {
    let head = reader.fill_buf()?;
    if head.is_empty() {
        bail!("the input is empty");
    }
    Ok(tempo_client::detect(head))
}

fn emit(found: &mut Vec<Anomaly>, summary: &mut ReplaySummary, out: &mut impl Write) -> Result<()> {
    for anomaly in found.drain(..) {
        *summary
            .by_type
            .entry((anomaly.anomaly_type(), anomaly.severity))
            .or_default() += 1;
        serde_json::to_writer(&mut *out, &AnomalyJson::from(&anomaly))?;
        out.write_all(b"\n")?;
    }
    Ok(())
}
