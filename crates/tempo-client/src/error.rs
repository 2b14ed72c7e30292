//! Decoding errors: what went wrong decoding an OTLP or Tempo answer, and where (`http.rs` has the
//! errors of talking to Tempo).

use std::fmt;

use crate::decode::InputFormat;

/// Decoding failed. Each variant says which format was being read, where (the 1-based line for JSON
/// lines) and what was wrong.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// An input format name that is none of `otlp-json`, `otlp-jsonl`, `otlp-proto`.
    #[error("unknown input format {given:?}: expected otlp-json, otlp-jsonl or otlp-proto")]
    UnknownFormat { given: String },

    /// A JSON document with nothing but whitespace in it.
    #[error("{format}: empty input")]
    EmptyInput { format: InputFormat },

    /// Not JSON at all (syntax error, invalid UTF-8, nesting too deep).
    #[error("{}: invalid JSON: {source}", JsonAt(*.line))]
    JsonSyntax {
        /// The 1-based line in JSON lines input, `None` for a single document.
        line: Option<usize>,
        source: serde_json::Error,
    },

    /// Valid JSON whose top level is not an object, so it cannot be OTLP trace data.
    #[error("{}: expected a JSON object at the top level, found {found}", JsonAt(*.line))]
    JsonNotAnObject {
        line: Option<usize>,
        /// The JSON type found instead (`array`, `string`, ...).
        found: &'static str,
    },

    /// A `resourceSpans` entry (after normalization) that does not have the OTLP shape.
    #[error("{}: resourceSpans[{index}] is not OTLP trace data: {source}", JsonAt(*.line))]
    JsonNotOtlp {
        line: Option<usize>,
        /// The 0-based position of the entry in `resourceSpans` (or Tempo's `batches`).
        index: usize,
        source: serde_json::Error,
    },

    /// `resourceSpans` (or `batches`) is there but is not an array.
    #[error("{}: {key} is not an array", JsonAt(*.line))]
    JsonResourceSpansNotArray {
        line: Option<usize>,
        key: &'static str,
    },

    /// Bytes that are not the protobuf message they were read as (truncated, wrong message, garbage).
    #[error("otlp-proto: cannot decode {message}: {source}")]
    Protobuf {
        /// The protobuf message type that was expected.
        message: &'static str,
        source: prost::DecodeError,
    },
}

/// `Result` with [`DecodeError`].
pub type Result<T> = std::result::Result<T, DecodeError>;

/// Shows where in JSON input an error is: `otlp-json` or `otlp-jsonl line 7`.
struct JsonAt(Option<usize>);

impl fmt::Display for JsonAt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(line) => write!(f, "{} line {line}", InputFormat::OtlpJsonLines),
            None => write!(f, "{}", InputFormat::OtlpJson),
        }
    }
}

impl DecodeError {
    /// The 1-based JSON lines line number the error is about, if any.
    pub fn line(&self) -> Option<usize> {
        match self {
            DecodeError::JsonSyntax { line, .. }
            | DecodeError::JsonNotAnObject { line, .. }
            | DecodeError::JsonNotOtlp { line, .. }
            | DecodeError::JsonResourceSpansNotArray { line, .. } => *line,
            DecodeError::UnknownFormat { .. }
            | DecodeError::EmptyInput { .. }
            | DecodeError::Protobuf { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_format_and_the_line() {
        let syntax = serde_json::from_str::<serde_json::Value>("{").unwrap_err();
        let err = DecodeError::JsonSyntax {
            line: Some(2),
            source: syntax,
        };
        assert!(
            err.to_string()
                .starts_with("otlp-jsonl line 2: invalid JSON: "),
            "{err}"
        );
        assert_eq!(err.line(), Some(2));

        let err = DecodeError::JsonNotAnObject {
            line: None,
            found: "array",
        };
        assert_eq!(
            err.to_string(),
            "otlp-json: expected a JSON object at the top level, found array"
        );
        assert_eq!(err.line(), None);
    }
}
