//! Protobuf decoding: OTLP `TracesData` / `ExportTraceServiceRequest`, and Grafana Tempo's trace-by-id
//! answers (v1 `Trace`, v2 `TraceByIDResponse`).

use detect_core::span::Span;
use opentelemetry_proto::tonic::trace::v1::TracesData;
use prost::Message;

use crate::decode::convert::{ConvertedSpans, convert_traces_data};
use crate::error::{DecodeError, Result};

const TRACES_DATA: &str = "opentelemetry.proto.trace.v1.TracesData";
const TRACE_BY_ID_RESPONSE: &str = "tempopb.TraceByIDResponse";

/// Which Tempo HTTP API version a trace-by-id answer comes from.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum TempoApiVersion {
    /// `GET /api/traces/<id>`: a `tempopb.Trace`, laid out like OTLP `TracesData`.
    V1,
    /// `GET /api/v2/traces/<id>`: a `tempopb.TraceByIDResponse` whose field 1 is the `Trace`.
    V2,
}

/// Tempo's v2 trace-by-id answer. Only the trace is read; prost skips the other fields (2 `metrics`,
/// 3 `status` and 4 `message` of a partial answer).
#[derive(Clone, PartialEq, Message)]
struct TraceByIdResponse {
    /// `tempopb.Trace`, whose field 1 is `repeated ResourceSpans`: the same layout as `TracesData`.
    #[prost(message, optional, tag = "1")]
    trace: Option<TracesData>,
}

/// Reads OTLP `TracesData`, which has the same wire layout as `ExportTraceServiceRequest` and as
/// Tempo's v1 `Trace` (field 1: repeated `ResourceSpans`). Empty input is a valid, empty message.
pub fn traces_data_from_proto(bytes: &[u8]) -> Result<TracesData> {
    TracesData::decode(bytes).map_err(|source| DecodeError::Protobuf {
        message: TRACES_DATA,
        source,
    })
}

/// Reads a Tempo trace-by-id protobuf answer into `TracesData`. An answer without a trace (unknown id)
/// is empty trace data.
pub fn traces_data_from_tempo_proto(bytes: &[u8], version: TempoApiVersion) -> Result<TracesData> {
    match version {
        TempoApiVersion::V1 => traces_data_from_proto(bytes),
        TempoApiVersion::V2 => TraceByIdResponse::decode(bytes)
            .map(|answer| answer.trace.unwrap_or_default())
            .map_err(|source| DecodeError::Protobuf {
                message: TRACE_BY_ID_RESPONSE,
                source,
            }),
    }
}

/// Decodes OTLP protobuf `TracesData` / `ExportTraceServiceRequest` into spans, leaving out spans with
/// unusable ids.
pub fn decode_proto(bytes: &[u8]) -> Result<Vec<Span>> {
    traces_data_from_proto(bytes).map(|data| convert_traces_data(&data).spans)
}

/// Decodes a Tempo trace-by-id protobuf answer (`Accept: application/protobuf`) into spans.
pub fn decode_tempo_trace_proto(bytes: &[u8], version: TempoApiVersion) -> Result<Vec<Span>> {
    traces_data_from_tempo_proto(bytes, version).map(|data| convert_traces_data(&data).spans)
}

/// What [`crate::decode()`] does with protobuf of unknown origin: OTLP `TracesData` first and, when that
/// fails, Tempo's v2 wrapper. The two cannot be confused in practice: read as `TracesData`, a v2 answer
/// with spans puts `ScopeSpans` (length-delimited) where `Resource` has a varint field 2, which prost
/// rejects. When both fail, the `TracesData` error is the one reported.
pub(crate) fn convert_any_proto(bytes: &[u8]) -> Result<ConvertedSpans> {
    match traces_data_from_proto(bytes) {
        Ok(data) => Ok(convert_traces_data(&data)),
        Err(otlp_error) => traces_data_from_tempo_proto(bytes, TempoApiVersion::V2)
            .map(|data| convert_traces_data(&data))
            .map_err(|_| otlp_error),
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span as OtlpSpan};

    use super::*;

    fn one_span_data() -> TracesData {
        TracesData {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: vec![OtlpSpan {
                        trace_id: vec![1; 16],
                        span_id: vec![2; 8],
                        name: "op".to_owned(),
                        ..OtlpSpan::default()
                    }],
                    ..ScopeSpans::default()
                }],
                ..ResourceSpans::default()
            }],
        }
    }

    #[test]
    fn export_request_and_traces_data_share_a_layout() {
        let request = ExportTraceServiceRequest {
            resource_spans: one_span_data().resource_spans,
        };
        let spans = decode_proto(&request.encode_to_vec()).unwrap();
        assert_eq!(spans.len(), 1);
        assert_eq!(spans[0].operation, "op");
    }

    #[test]
    fn v2_wrapper_is_unwrapped_and_an_empty_answer_is_no_spans() {
        let answer = TraceByIdResponse {
            trace: Some(one_span_data()),
        };
        let bytes = answer.encode_to_vec();
        assert_eq!(
            decode_tempo_trace_proto(&bytes, TempoApiVersion::V2)
                .unwrap()
                .len(),
            1
        );
        assert!(
            decode_tempo_trace_proto(&[], TempoApiVersion::V2)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn unknown_origin_falls_back_to_the_v2_wrapper() {
        let v1 = one_span_data().encode_to_vec();
        assert_eq!(convert_any_proto(&v1).unwrap().spans.len(), 1);
        let v2 = TraceByIdResponse {
            trace: Some(one_span_data()),
        }
        .encode_to_vec();
        assert!(traces_data_from_proto(&v2).is_err());
        assert_eq!(convert_any_proto(&v2).unwrap().spans.len(), 1);
    }

    #[test]
    fn truncated_input_is_an_error() {
        let bytes = one_span_data().encode_to_vec();
        for len in 1..bytes.len() {
            let Some(prefix) = bytes.get(..len) else {
                continue;
            };
            let err = traces_data_from_proto(prefix).unwrap_err();
            assert!(
                matches!(
                    err,
                    DecodeError::Protobuf {
                        message: TRACES_DATA,
                        ..
                    }
                ),
                "{err}"
            );
        }
    }
}
