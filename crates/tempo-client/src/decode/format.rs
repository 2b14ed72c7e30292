//! The three input formats, their command-line names, and sniffing which one a byte buffer holds.

use std::fmt;
use std::str::FromStr;

use crate::error::DecodeError;

/// How trace data is encoded.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum InputFormat {
    /// One OTLP/JSON document (`TracesData`, `ExportTraceServiceRequest`, or a Tempo trace-by-id answer).
    OtlpJson,
    /// One OTLP/JSON document per line, as the OpenTelemetry Collector's file exporter writes.
    OtlpJsonLines,
    /// OTLP protobuf (`TracesData` / `ExportTraceServiceRequest`, or a Tempo trace-by-id answer).
    OtlpProto,
}

impl InputFormat {
    /// The command-line name, which [`FromStr`] reads back.
    pub fn name(self) -> &'static str {
        match self {
            InputFormat::OtlpJson => "otlp-json",
            InputFormat::OtlpJsonLines => "otlp-jsonl",
            InputFormat::OtlpProto => "otlp-proto",
        }
    }
}

impl fmt::Display for InputFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for InputFormat {
    type Err = DecodeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "otlp-json" => Ok(InputFormat::OtlpJson),
            "otlp-jsonl" => Ok(InputFormat::OtlpJsonLines),
            "otlp-proto" => Ok(InputFormat::OtlpProto),
            _ => Err(DecodeError::UnknownFormat {
                given: s.to_owned(),
            }),
        }
    }
}

/// Guesses the format of `bytes`.
///
/// Input whose first non-whitespace byte is `{` is JSON (a protobuf `TracesData` starts with the tag byte
/// `0x0a`); anything else, the empty input included, is protobuf. JSON is JSON lines when it holds more
/// than one non-blank line and either its first non-blank line is a complete JSON value on its own, or
/// every non-blank line starts with `{` (so a broken first line does not hide the others). A
/// pretty-printed document fails both tests: its first line is a lone `{` and its other lines start with
/// `"key":`, `}` or `]`.
///
/// `bytes` may be only the start of the input, as long as it holds the first non-blank line whole (a
/// line cut short is not a complete JSON value) and then the start of what follows, if anything does.
pub fn detect(bytes: &[u8]) -> InputFormat {
    let mut lines = bytes
        .split(|&b| b == b'\n')
        .map(|line| line.trim_ascii())
        .filter(|line| !line.is_empty());
    let Some(first) = lines.next() else {
        return InputFormat::OtlpProto;
    };
    if first.first() != Some(&b'{') {
        return InputFormat::OtlpProto;
    }
    let mut rest = lines.peekable();
    if rest.peek().is_none() {
        return InputFormat::OtlpJson;
    }
    if serde_json::from_slice::<serde::de::IgnoredAny>(first).is_ok()
        || rest.all(|line| line.first() == Some(&b'{'))
    {
        InputFormat::OtlpJsonLines
    } else {
        InputFormat::OtlpJson
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_errors() {
        for format in [
            InputFormat::OtlpJson,
            InputFormat::OtlpJsonLines,
            InputFormat::OtlpProto,
        ] {
            assert_eq!(format.name().parse::<InputFormat>().ok(), Some(format));
        }
        let err = "json".parse::<InputFormat>().unwrap_err();
        assert!(matches!(err, DecodeError::UnknownFormat { ref given } if given == "json"));
    }

    #[test]
    fn sniffs_json_json_lines_and_protobuf() {
        let check = |input: &[u8], expected: InputFormat| {
            assert_eq!(
                detect(input),
                expected,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        };
        check(b"", InputFormat::OtlpProto);
        check(b"  \n\t", InputFormat::OtlpProto);
        check(&[0x0a, 0x05, 0x0a, 0x03], InputFormat::OtlpProto);
        check(b"[1]", InputFormat::OtlpProto);
        check(b"{}", InputFormat::OtlpJson);
        check(b"  {\"resourceSpans\":[]}\n\n", InputFormat::OtlpJson);
        check(
            b"{\n  \"resourceSpans\": [\n    {}\n  ]\n}\n",
            InputFormat::OtlpJson,
        );
        check(b"{\n}\n", InputFormat::OtlpJson);
        check(
            b"{\"resourceSpans\":[]}\n{\"resourceSpans\":[]}\n",
            InputFormat::OtlpJsonLines,
        );
        check(
            b"{\"resourceSpans\":[]}\r\n\r\nnot json\r\n",
            InputFormat::OtlpJsonLines,
        );
        check(
            b"{\"resourceSp\n{\"resourceSpans\":[]}\n",
            InputFormat::OtlpJsonLines,
        );
    }

    #[test]
    fn a_whole_first_line_and_the_start_of_the_next_are_enough() {
        let long_line = format!("{{\"resourceSpans\":[{}{{}}]}}\n", "{},".repeat(100_000));
        let mut head = long_line.clone().into_bytes();
        head.extend_from_slice(b"{\"resourceSp");
        assert_eq!(detect(&head), InputFormat::OtlpJsonLines);
        assert_eq!(detect(long_line.as_bytes()), InputFormat::OtlpJson);
        assert_eq!(
            detect(&long_line.as_bytes()[..1000]),
            InputFormat::OtlpJson,
            "a first line cut short reads as one document: why the caller must give it whole"
        );
    }
}
