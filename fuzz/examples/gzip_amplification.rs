//! The heap a small gzip body costs the intake: `MIB` MiB of the cheapest spans there are (empty ones,
//! two bytes each in protobuf, `{}` in JSON), gzipped, through `POST /v1/traces`'s own path
//! (`tempo_client::decode_gzip`, the api-server's default 16 MiB limit and span budget; `SPAN_BUDGET=N` for
//! another, `18446744073709551615` to decode it whole). Measure the peak with
//! `/usr/bin/time -f %M cargo run --release -p tracewatch-fuzz --example gzip_amplification -- 4 proto`
//! (or `json`); figures in docs/PERFORMANCE.md, "Decoder fuzzing".

use std::io::Write;

use tempo_client::InputFormat;
use tracewatch_fuzz::proto_field as field;

fn main() {
    let mut args = std::env::args().skip(1);
    let mib: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(4);
    let json = args.next().as_deref() == Some("json");
    let bytes = mib << 20;
    let (body, format) = if json {
        let spans = vec!["{}"; bytes / 3 - 40].join(",");
        let body = format!(r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{spans}]}}]}}]}}"#);
        (body.into_bytes(), InputFormat::OtlpJson)
    } else {
        // TracesData { resource_spans: [{ scope_spans: [{ spans: [{}; n] }] }] }
        let spans = [0x12, 0x00].repeat(bytes / 2 - 16);
        (field(0x0a, &field(0x12, &spans)), InputFormat::OtlpProto)
    };
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(&body).expect("gzip in memory");
    let gzipped = encoder.finish().expect("gzip in memory");
    println!(
        "{} bytes gzipped to {} bytes ({} B for one protobuf Span)",
        body.len(),
        gzipped.len(),
        std::mem::size_of::<opentelemetry_proto::tonic::trace::v1::Span>()
    );
    drop(body);
    let started = std::time::Instant::now();
    // The budget as an argument: `usize::MAX` shows what decoding it whole would take.
    let budget = std::env::var("SPAN_BUDGET")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(tempo_client::DEFAULT_MAX_SPANS_PER_BODY);
    match tempo_client::decode_gzip(&gzipped, 16 << 20, format, budget) {
        Ok(outcome) => println!(
            "{} spans, {} skipped, {} errors, in {:.2?}",
            outcome.spans.len(),
            outcome.skipped_spans,
            outcome.errors.len(),
            started.elapsed()
        ),
        Err(error) => println!("refused: {error:?}"),
    }
}
