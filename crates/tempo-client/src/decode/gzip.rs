//! The gzip path of OTLP/HTTP intake (`POST /v1/traces` with `Content-Encoding: gzip`): decompression
//! bounded by the body limit, then [`crate::decode()`]. It lives here rather than in the api-server so
//! that the fuzz targets (the `fuzz/` workspace member) reach the handler's exact code without building
//! the server.

use std::io::Read;

use crate::decode::{DecodeOutcome, InputFormat, decode, spans_over};

/// Why a gzip body was not decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GzipError {
    /// Larger than the limit once decompressed.
    TooLarge,
    /// Not a gzip stream (or a truncated one); the message says why.
    Corrupt(String),
    /// More spans than the budget once decompressed (see [`spans_over`]); not decoded.
    TooManySpans,
}

/// Decompresses gzip without ever holding more than `limit` bytes (a small bomb stays small).
pub fn gunzip(body: &[u8], limit: usize) -> Result<Vec<u8>, GzipError> {
    let mut out = Vec::new();
    let mut decoder = flate2::read::GzDecoder::new(body).take(limit as u64 + 1);
    match decoder.read_to_end(&mut out) {
        Err(e) => Err(GzipError::Corrupt(format!(
            "the gzip body cannot be decompressed: {e}"
        ))),
        Ok(_) if out.len() > limit => Err(GzipError::TooLarge),
        Ok(_) => Ok(out),
    }
}

/// What `POST /v1/traces` does with a gzip body: [`gunzip`] within `limit`, the spans counted within
/// `max_spans`, then [`decode()`] in the request's format.
pub fn decode_gzip(
    body: &[u8],
    limit: usize,
    format: InputFormat,
    max_spans: usize,
) -> Result<DecodeOutcome, GzipError> {
    let inflated = gunzip(body, limit)?;
    if spans_over(&inflated, format, max_spans) {
        return Err(GzipError::TooManySpans);
    }
    Ok(decode(&inflated, format))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn a_bomb_past_the_limit_is_too_large_and_the_limit_itself_fits() {
        let zeros = gzip(&vec![0; 1 << 20]);
        assert!(zeros.len() < 10_000);
        assert_eq!(gunzip(&zeros, (1 << 20) - 1), Err(GzipError::TooLarge));
        assert_eq!(gunzip(&zeros, 1 << 19), Err(GzipError::TooLarge));
        assert_eq!(gunzip(&zeros, 1 << 20).unwrap().len(), 1 << 20);
    }

    #[test]
    fn corrupt_gzip_is_an_error_and_empty_protobuf_is_no_spans() {
        assert!(matches!(
            decode_gzip(b"not gzip", 1024, InputFormat::OtlpProto, 10),
            Err(GzipError::Corrupt(_))
        ));
        let outcome = decode_gzip(&gzip(b""), 1024, InputFormat::OtlpProto, 10).unwrap();
        assert!(outcome.spans.is_empty() && outcome.errors.is_empty());
    }
}
