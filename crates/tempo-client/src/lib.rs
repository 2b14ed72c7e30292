//! Grafana Tempo client side of tracewatch: Tempo's HTTP API ([`TempoClient`]: search, trace by id,
//! tags, TraceQL metrics) and decoding OTLP trace data (JSON, JSON lines, protobuf) and Tempo's
//! trace-by-id answers into detect-core spans. Behind the feature `test-support`, `testing` is a
//! fake Tempo for tests.

pub mod decode;
pub mod error;
pub mod http;
#[cfg(feature = "test-support")]
pub mod testing;

pub use decode::{
    ConvertedSpans, DEFAULT_MAX_SPANS_PER_BODY, DecodeOutcome, GzipError, InputFormat,
    TempoApiVersion, convert_traces_data, decode, decode_gzip, decode_json, decode_json_line,
    decode_proto, decode_tempo_trace_proto, detect, spans_over,
};
pub use error::{DecodeError, Result};
pub use http::{
    ENTRY_SPANS_QUERY, FetchedTrace, MetricsSample, MetricsSeries, SearchRequest, SpanCount,
    TempoClient, TempoConfig, TempoError, TempoResult, TempoUsage, TraceSummary,
    WHOLE_TRACES_QUERY, WholeTrace, install_tls_provider,
};
