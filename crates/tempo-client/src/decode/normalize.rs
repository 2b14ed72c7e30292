//! Rewrites OTLP/JSON as exporters and Tempo really send it into the strict OTLP/JSON that
//! opentelemetry-proto's serde support reads, walking the known shape of `ResourceSpans`.
//!
//! opentelemetry-proto 0.33 (`with-serde`) reads: ids as hex strings only; enums (`kind`, `status.code`)
//! as numbers only; 64-bit times and `intValue` as numbers or strings; `u32` fields (`flags`, dropped
//! counts) as numbers only; `doubleValue` as a number only; `bytesValue` as padded standard base64; it
//! rejects `null` for strings and ids, and requires `TracesData.resourceSpans`, `KeyValue.key` and the
//! `values` of `arrayValue` / `kvlistValue`. It ignores unknown fields. What this module changes:
//!
//! - Tempo's wrappers: v1 `{"batches":[...]}`, v2 `{"trace":{"resourceSpans":[...]}}` (an unknown id is
//!   `{"trace":{}}`, which is no spans); the legacy `instrumentationLibrarySpans` / `instrumentationLibrary`
//!   keys become `scopeSpans` / `scope`.
//! - ids ([`scalar::normalize_id`]): hex stays, base64 (Tempo) becomes hex, anything undecodable becomes
//!   empty so that the converter skips the span (or reads "no parent").
//! - enums as names (`SPAN_KIND_SERVER`, `STATUS_CODE_ERROR`) or numeric strings become numbers.
//! - integral floats (`1.5e9`) and numeric strings in integer fields become integers.
//! - `null` members are dropped (proto3 JSON reads `null` as the default value).

mod scalar;

use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use serde_json::{Map, Value};

use scalar::{IdKind, normalize_enum, normalize_id, normalize_u32, normalize_u64};

/// A `resourceSpans` (or `batches`) member that is not an array.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct NotAnArray(pub &'static str);

/// Takes the `ResourceSpans` list out of a top-level document: OTLP `resourceSpans`, Tempo v1 `batches`,
/// or Tempo v2 `trace.resourceSpans`. A document with none of these holds no spans (proto3 JSON leaves
/// empty lists out), as does Tempo v2's answer for an unknown id. Other members (Tempo v2's `metrics`,
/// `status`, `message`) are ignored.
pub(crate) fn take_resource_spans(root: &mut Map<String, Value>) -> Result<Vec<Value>, NotAnArray> {
    for key in ["resourceSpans", "batches"] {
        match root.remove(key) {
            Some(Value::Array(list)) => return Ok(list),
            Some(Value::Null) | None => {}
            Some(_) => return Err(NotAnArray(key)),
        }
    }
    match root.get_mut("trace") {
        Some(Value::Object(trace)) => take_resource_spans(trace),
        _ => Ok(Vec::new()),
    }
}

/// Normalizes one `ResourceSpans` in place. Values of the wrong JSON type are left as they are, for
/// serde to report.
pub(crate) fn normalize_resource_spans(value: &mut Value) {
    let Some(rs) = object(value) else { return };
    if let Some(resource) = rs.get_mut("resource").and_then(object) {
        normalize_u32(resource, "droppedAttributesCount");
        normalize_key_values(resource.get_mut("attributes"));
    }
    merge_legacy(rs, "instrumentationLibrarySpans", "scopeSpans");
    for scope_spans in objects(rs.get_mut("scopeSpans")) {
        merge_legacy(scope_spans, "instrumentationLibrary", "scope");
        if let Some(scope) = scope_spans.get_mut("scope").and_then(object) {
            normalize_u32(scope, "droppedAttributesCount");
            normalize_key_values(scope.get_mut("attributes"));
        }
        for span in objects(scope_spans.get_mut("spans")) {
            normalize_span(span);
        }
    }
}

fn normalize_span(span: &mut Map<String, Value>) {
    normalize_id(span, "traceId", IdKind::Trace);
    normalize_id(span, "spanId", IdKind::Span);
    normalize_id(span, "parentSpanId", IdKind::Span);
    normalize_enum(span, "kind", |name| {
        SpanKind::from_str_name(name).map(|kind| kind as i32)
    });
    if let Some(status) = span.get_mut("status").and_then(object) {
        normalize_enum(status, "code", |name| {
            StatusCode::from_str_name(name).map(|code| code as i32)
        });
    }
    normalize_u64(span, "startTimeUnixNano");
    normalize_u64(span, "endTimeUnixNano");
    for key in [
        "flags",
        "droppedAttributesCount",
        "droppedEventsCount",
        "droppedLinksCount",
    ] {
        normalize_u32(span, key);
    }
    normalize_key_values(span.get_mut("attributes"));
    for event in objects(span.get_mut("events")) {
        normalize_u64(event, "timeUnixNano");
        normalize_u32(event, "droppedAttributesCount");
        normalize_key_values(event.get_mut("attributes"));
    }
    for link in objects(span.get_mut("links")) {
        normalize_id(link, "traceId", IdKind::Trace);
        normalize_id(link, "spanId", IdKind::Span);
        normalize_u32(link, "flags");
        normalize_u32(link, "droppedAttributesCount");
        normalize_key_values(link.get_mut("attributes"));
    }
}

/// A list of `KeyValue`: a missing key becomes `""`, values are normalized.
fn normalize_key_values(list: Option<&mut Value>) {
    for kv in objects(list) {
        kv.entry("key")
            .or_insert_with(|| Value::String(String::new()));
        if let Some(value) = kv.get_mut("value") {
            normalize_any_value(value);
        }
    }
}

/// An `AnyValue`, recursively through arrays and key-value lists (serde_json's parser has already
/// bounded the depth).
fn normalize_any_value(value: &mut Value) {
    let Some(any) = object(value) else { return };
    scalar::normalize_i64(any, "intValue");
    scalar::normalize_double(any, "doubleValue");
    scalar::normalize_bytes(any, "bytesValue");
    if let Some(array) = any.get_mut("arrayValue").and_then(object) {
        let values = array
            .entry("values")
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(values) = values {
            values.iter_mut().for_each(normalize_any_value);
        }
    }
    if let Some(kvlist) = any.get_mut("kvlistValue").and_then(object) {
        let values = kvlist
            .entry("values")
            .or_insert_with(|| Value::Array(Vec::new()));
        normalize_key_values(Some(values));
    }
}

/// The value as an object with its `null` members dropped, or `None` when it is not an object.
fn object(value: &mut Value) -> Option<&mut Map<String, Value>> {
    let Value::Object(map) = value else {
        return None;
    };
    map.retain(|_, v| !v.is_null());
    Some(map)
}

/// The object elements of an array member (others are left for serde to report).
fn objects(list: Option<&mut Value>) -> impl Iterator<Item = &mut Map<String, Value>> {
    let elements = match list {
        Some(Value::Array(elements)) => elements.as_mut_slice(),
        _ => &mut [],
    };
    elements.iter_mut().filter_map(object)
}

/// Moves a legacy member to its current name; two lists are concatenated, the current one first.
fn merge_legacy(map: &mut Map<String, Value>, legacy: &str, current: &str) {
    let Some(old) = map.remove(legacy) else {
        return;
    };
    match (map.get_mut(current), old) {
        (None, old) => {
            map.insert(current.to_owned(), old);
        }
        (Some(Value::Array(now)), Value::Array(old)) => now.extend(old),
        (Some(_), _) => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn root(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    #[test]
    fn unwraps_tempo_v1_and_v2_and_reads_unknown_ids_as_empty() {
        let rs = json!([{ "scopeSpans": [] }]);
        let checks = [
            (json!({ "resourceSpans": rs.clone() }), Ok(1)),
            (json!({ "batches": rs.clone() }), Ok(1)),
            (
                json!({ "trace": { "resourceSpans": rs.clone() }, "metrics": {}, "status": "partial" }),
                Ok(1),
            ),
            (json!({ "trace": {}, "metrics": {} }), Ok(0)),
            (json!({ "resourceSpans": null }), Ok(0)),
            (json!({}), Ok(0)),
            (json!({ "batches": {} }), Err(NotAnArray("batches"))),
        ];
        for (input, expected) in checks {
            let got = take_resource_spans(&mut root(input.clone())).map(|list| list.len());
            assert_eq!(got, expected, "{input}");
        }
    }

    #[test]
    fn legacy_keys_become_current_ones() {
        let mut rs = json!({
            "instrumentationLibrarySpans": [{
                "instrumentationLibrary": { "name": "old-lib" },
                "spans": [{ "name": "a" }]
            }]
        });
        normalize_resource_spans(&mut rs);
        assert_eq!(
            rs,
            json!({ "scopeSpans": [{ "scope": { "name": "old-lib" }, "spans": [{ "name": "a" }] }] })
        );

        let mut both = json!({ "scopeSpans": [{ "spans": [] }], "instrumentationLibrarySpans": [{ "spans": [] }] });
        normalize_resource_spans(&mut both);
        assert_eq!(
            both,
            json!({ "scopeSpans": [{ "spans": [] }, { "spans": [] }] })
        );
    }

    #[test]
    fn span_fields_are_made_strict() {
        let mut rs = json!({
            "resource": { "attributes": [{ "key": "service.name", "value": { "stringValue": "svc" } }], "droppedAttributesCount": "1" },
            "scopeSpans": [{ "spans": [{
                "traceId": "ScQQG7tAX3MTSaVaJDlfKw==",
                "spanId": "ERERERERERE=",
                "parentSpanId": "",
                "traceState": null,
                "kind": "SPAN_KIND_SERVER",
                "status": { "code": "STATUS_CODE_ERROR", "message": null },
                "startTimeUnixNano": 1.5e9,
                "endTimeUnixNano": "2000000000",
                "flags": "256",
                "attributes": [
                    { "key": "n", "value": { "intValue": 7.0 } },
                    { "key": "d", "value": { "doubleValue": "NaN" } },
                    { "value": { "arrayValue": {} } },
                    { "key": "kv", "value": { "kvlistValue": { "values": [{ "value": { "doubleValue": "2.5" } }] } } }
                ],
                "links": [{ "traceId": "not an id!", "spanId": "IiIiIiIiIiI" }]
            }] }]
        });
        normalize_resource_spans(&mut rs);
        let expected = json!({
            "resource": { "attributes": [{ "key": "service.name", "value": { "stringValue": "svc" } }], "droppedAttributesCount": 1 },
            "scopeSpans": [{ "spans": [{
                "traceId": "49c4101bbb405f731349a55a24395f2b",
                "spanId": "1111111111111111",
                "parentSpanId": "",
                "kind": 2,
                "status": { "code": 2 },
                "startTimeUnixNano": 1_500_000_000u64,
                "endTimeUnixNano": "2000000000",
                "flags": 256,
                "attributes": [
                    { "key": "n", "value": { "intValue": 7 } },
                    { "key": "d", "value": {} },
                    { "key": "", "value": { "arrayValue": { "values": [] } } },
                    { "key": "kv", "value": { "kvlistValue": { "values": [{ "key": "", "value": { "doubleValue": 2.5 } }] } } }
                ],
                "links": [{ "traceId": "", "spanId": "2222222222222222" }]
            }] }]
        });
        assert_eq!(rs, expected);
    }

    #[test]
    fn wrong_types_are_left_for_serde() {
        let mut rs = json!({ "resource": 5, "scopeSpans": [7, { "spans": "x" }] });
        let before = rs.clone();
        normalize_resource_spans(&mut rs);
        assert_eq!(rs, before);
    }
}
