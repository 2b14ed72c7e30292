//! The replay command as a user runs it: real files in, JSON lines out, clear errors and exit codes.

use flate2::Compression;
use flate2::write::GzEncoder;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../crates/tempo-client/tests/fixtures")
        .join(name)
}

fn replay(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_detector-worker"))
        .arg("replay")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("detector-worker starts");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("stdin written");
    child.wait_with_output().expect("detector-worker finishes")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Writes `bytes` to a file of this test process's temporary folder.
fn temp_file(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tracewatch-replay-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// One OTLP span at `start` nanoseconds, as the Collector's JSON exporter writes it.
fn span_json(n: u64, start: u64, client: &str, status: i64) -> String {
    format!(
        r#"{{"traceId":"{n:032x}","spanId":"{n:016x}","name":"POST /api/login","kind":2,"startTimeUnixNano":"{start}","endTimeUnixNano":"{end}","attributes":[{{"key":"http.response.status_code","value":{{"intValue":"{status}"}}}},{{"key":"client.address","value":{{"stringValue":"{client}"}}}},{{"key":"http.route","value":{{"stringValue":"/api/login"}}}}]}}"#,
        end = start + 20_000_000,
    )
}

/// One `TracesData` of the gateway service holding `spans`, on one line.
fn traces_data(spans: &[String]) -> String {
    format!(
        r#"{{"resourceSpans":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"gateway"}}}}]}},"scopeSpans":[{{"spans":[{}]}}]}}]}}"#,
        spans.join(",")
    )
}

/// The summary's span count, from stderr.
fn spans_replayed(output: &Output) -> u64 {
    let stderr = text(&output.stderr);
    let count = stderr
        .split("replay: ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_else(|| panic!("no summary in {stderr}"));
    count.parse().unwrap()
}

const T0: u64 = 1_767_571_200_000_000_000;

/// A first line of 16 000 spans (over 4 MB), then the 1 540 spans of [`auth_burst_jsonl`].
fn long_first_line_jsonl() -> String {
    let spans: Vec<String> = (0..16_000u64)
        .map(|i| span_json(1_000_000 + i, T0 + i * 1_000, "198.51.100.1", 200))
        .collect();
    let first = traces_data(&spans);
    assert!(first.len() > 4 << 20, "first line is {} bytes", first.len());
    first + "\n" + &auth_burst_jsonl()
}

/// 40 authentication failures from one client in one minute, after 20 minutes of quiet traffic, as
/// OTLP JSON lines (hex ids, numeric enums, ints as strings).
fn auth_burst_jsonl() -> String {
    let mut lines = String::new();
    let mut n = 0u64;
    let mut span = |at: u64, client: &str, status: i64| {
        n += 1;
        span_json(n, T0 + at, client, status)
    };
    for second in 0..(25 * 60u64) {
        let mut spans = vec![span(
            second * 1_000_000_000,
            &format!("198.51.100.{}", second % 40),
            200,
        )];
        if (20 * 60..20 * 60 + 40).contains(&second) {
            spans.push(span(second * 1_000_000_000 + 1_000, "203.0.113.66", 401));
        }
        lines.push_str(&traces_data(&spans));
        lines.push('\n');
    }
    lines
}

#[test]
fn replays_json_lines_from_stdin_and_prints_the_api_shape() {
    let output = replay(&["-"], auth_burst_jsonl().as_bytes());
    assert!(output.status.success(), "{}", text(&output.stderr));
    let anomalies: Vec<serde_json::Value> = text(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    let burst: Vec<_> = anomalies
        .iter()
        .filter(|a| a["anomaly_subtype"] == "auth_failure_burst")
        .collect();
    assert_eq!(burst.len(), 1, "{anomalies:#?}");
    let a = burst[0];
    assert_eq!(a["anomaly_type"], "SECURITY");
    assert_eq!(a["client"], "203.0.113.66");
    assert_eq!(a["observed_value"], 40.0);
    assert_eq!(a["window_start"], "2026-01-05T00:20:00.000Z");
    assert_eq!(a["window_end"], "2026-01-05T00:21:00.000Z");
    assert_eq!(a["resolved"], false);
    for key in [
        "id",
        "trace_id",
        "severity",
        "description",
        "detected_at",
        "service_name",
        "expected_value",
        "score",
        "fingerprint",
    ] {
        assert!(!a[key].is_null(), "{key} missing in {a}");
    }
    assert!(
        text(&output.stderr).contains("anomalies"),
        "summary on stderr"
    );
}

#[test]
fn the_same_input_gives_the_same_output() {
    let input = auth_burst_jsonl();
    let a = replay(&["-"], input.as_bytes());
    let b = replay(&["-", "--format", "otlp-jsonl"], input.as_bytes());
    assert!(!a.stdout.is_empty());
    assert_eq!(a.stdout, b.stdout);
}

#[test]
fn reads_tempo_answers_in_json_and_protobuf() {
    for name in [
        "trace_by_id_v1.json",
        "trace_by_id_v2.json",
        "trace_by_id_v2.pb",
        "sdk_trace_by_id_v1.pb",
    ] {
        let output = replay(&[fixture(name).to_str().unwrap()], b"");
        assert!(output.status.success(), "{name}: {}", text(&output.stderr));
        assert!(
            text(&output.stderr).contains("replay: "),
            "{name}: {}",
            text(&output.stderr)
        );
        assert!(
            !text(&output.stderr).contains("replay: 0 spans"),
            "{name}: {}",
            text(&output.stderr)
        );
    }
}

#[test]
fn a_missing_file_is_named_and_fails() {
    let output = replay(&["/no/such/file.jsonl"], b"");
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("/no/such/file.jsonl"),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn a_bad_line_is_reported_with_its_number_and_the_rest_is_read() {
    let mut input = auth_burst_jsonl();
    input.insert_str(0, "{\"resourceSpans\": [}\n");
    let output = replay(&["-"], input.as_bytes());
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("line 1"),
        "{}",
        text(&output.stderr)
    );
    assert!(
        text(&output.stdout).contains("auth_failure_burst"),
        "good lines still replayed"
    );
}

#[test]
fn an_invalid_config_names_the_key() {
    let dir = std::env::temp_dir().join(format!("tracewatch-replay-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("config.json");
    std::fs::write(&config, r#"{"error_rate_threshold": 7}"#).unwrap();
    let output = replay(&["--config", config.to_str().unwrap(), "-"], b"");
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("error_rate_threshold"),
        "{}",
        text(&output.stderr)
    );
    std::fs::write(&config, "not json").unwrap();
    let output = replay(&["--config", config.to_str().unwrap(), "-"], b"");
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("not valid JSON"),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn garbage_and_empty_input_fail_without_panicking() {
    let output = replay(
        &["--format", "otlp-proto", "-"],
        &[0xff, 0xff, 0xff, 0x01, 0x02],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(!text(&output.stderr).contains("panicked"));
    let output = replay(&["-"], b"");
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("empty"),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn json_lines_whose_first_line_is_megabytes_long_are_detected_and_read() {
    let input = long_first_line_jsonl();
    let path = temp_file("long-first-line.jsonl", input.as_bytes());
    let output = replay(&[path.to_str().unwrap()], b"");
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(spans_replayed(&output), 16_000 + 1_540);
    assert!(text(&output.stdout).contains("auth_failure_burst"));
}

#[test]
fn gzip_is_read_directly_from_a_file_and_from_stdin() {
    let input = long_first_line_jsonl();
    let plain = replay(&["-"], input.as_bytes());
    assert!(plain.status.success(), "{}", text(&plain.stderr));

    let path = temp_file("long-first-line.otlp.jsonl.gz", &gzip(input.as_bytes()));
    let from_file = replay(&[path.to_str().unwrap()], b"");
    assert!(from_file.status.success(), "{}", text(&from_file.stderr));
    assert_eq!(spans_replayed(&from_file), spans_replayed(&plain));
    assert_eq!(from_file.stdout, plain.stdout);

    // Two gzip members one after the other, as `cat a.gz b.gz` makes, split inside a line.
    let (a, b) = input.as_bytes().split_at(input.len() / 2);
    let from_stdin = replay(&["-"], &[gzip(a), gzip(b)].concat());
    assert!(from_stdin.status.success(), "{}", text(&from_stdin.stderr));
    assert_eq!(spans_replayed(&from_stdin), spans_replayed(&plain));
    assert_eq!(from_stdin.stdout, plain.stdout);
}

#[test]
fn a_pretty_printed_document_is_still_one_document() {
    let spans: Vec<String> = (1..=3)
        .map(|n| span_json(n, T0 + n * 1_000, "198.51.100.1", 200))
        .collect();
    let document: serde_json::Value = serde_json::from_str(&traces_data(&spans)).unwrap();
    let pretty = serde_json::to_string_pretty(&document).unwrap();
    for args in [&["-"][..], &["--format", "otlp-json", "-"]] {
        let output = replay(args, pretty.as_bytes());
        assert!(output.status.success(), "{}", text(&output.stderr));
        assert_eq!(spans_replayed(&output), 3);
    }
    let output = replay(&["-"], &gzip(pretty.as_bytes()));
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(spans_replayed(&output), 3);
}

#[test]
fn a_truncated_or_corrupt_gzip_fails_with_a_clear_error() {
    let compressed = gzip(auth_burst_jsonl().as_bytes());
    let truncated = temp_file("truncated.jsonl.gz", &compressed[..compressed.len() / 2]);
    let mut corrupt = compressed.clone();
    let middle = corrupt.len() / 2;
    corrupt[middle..middle + 64].fill(0xff);
    let corrupt = temp_file("corrupt.jsonl.gz", &corrupt);
    for path in [truncated, corrupt] {
        let output = replay(&[path.to_str().unwrap()], b"");
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(
            stderr.contains("error: cannot read") && stderr.contains(path.to_str().unwrap()),
            "{stderr}"
        );
    }
}

#[test]
fn incidents_are_written_one_line_each_with_their_probable_origins() {
    let dir = std::env::temp_dir().join(format!("tracewatch-incidents-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let input = auth_burst_jsonl();
    let read = |name: &str| {
        let path = dir.join(name);
        let output = replay(
            &["-", "--incidents", path.to_str().unwrap()],
            input.as_bytes(),
        );
        assert!(output.status.success(), "{}", text(&output.stderr));
        assert!(
            text(&output.stderr).contains("incidents"),
            "counted in the summary"
        );
        std::fs::read_to_string(path).unwrap()
    };
    let written = read("a.jsonl");
    assert_eq!(
        written,
        read("b.jsonl"),
        "the same input gives the same incidents"
    );
    let incidents: Vec<serde_json::Value> = written
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    let burst = incidents
        .iter()
        .find(|i| i["client"] == "203.0.113.66")
        .unwrap_or_else(|| panic!("the burst's incident in {incidents:#?}"));
    assert_eq!(burst["started_at"], "2026-01-05T00:20:00.000Z");
    assert_eq!(burst["services"], serde_json::json!(["gateway"]));
    assert!(burst["anomaly_count"].as_u64().unwrap() >= 1);
    assert!(
        burst["ended_at"].is_string(),
        "closed at the end of the input"
    );
    let origin = &burst["probable_origins"][0];
    assert_eq!(origin["service_name"], "gateway");
    assert!(origin["score"].as_f64().unwrap() > 0.0);
    assert!(!origin["evidence"].as_str().unwrap().is_empty());
    assert!(burst["id"].as_str().is_some_and(|id| id.len() == 32));
}

#[test]
fn an_incidents_file_that_cannot_be_created_is_named_and_fails() {
    let input = temp_file("incidents-input.jsonl", auth_burst_jsonl().as_bytes());
    let output = replay(
        &[
            input.to_str().unwrap(),
            "--incidents",
            "/nonexistent-dir/incidents.jsonl",
        ],
        b"",
    );
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("cannot create /nonexistent-dir/incidents.jsonl"),
        "{stderr}"
    );
    assert!(output.stdout.is_empty(), "nothing replayed");
}
