//! How many spans a body holds, counted before it is decoded, allocating nothing per span: an empty
//! span is two bytes of protobuf or three of JSON but a few hundred once decoded, so a 16 KiB gzip body
//! can decode into gigabytes. Intake refuses a body over its budget before decoding it.

use crate::decode::InputFormat;
use prost::encoding::decode_varint;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;

/// The intake's budget unless configured otherwise: 16 MiB of real spans (100 bytes and more each in
/// protobuf) stay under it, while decoded it bounds a body to about 100 MB.
pub const DEFAULT_MAX_SPANS_PER_BODY: usize = 200_000;

/// Whether `bytes`, as `format`, holds more than `max` spans. Malformed input counts what could be
/// read: the decoder then says what is wrong with it.
pub fn spans_over(bytes: &[u8], format: InputFormat, max: usize) -> bool {
    // A span takes two bytes at least (protobuf `12 00`, JSON `{}`): a body too short to hold more
    // than `max` is not read again, which spares ordinary batches the counting pass.
    if bytes.len() / 2 <= max {
        return false;
    }
    match format {
        InputFormat::OtlpProto => proto_spans(bytes) > max,
        InputFormat::OtlpJson => json_spans_over(bytes, max),
        InputFormat::OtlpJsonLines => {
            let mut left = max;
            bytes.split(|&b| b == b'\n').any(|line| {
                let mut count = Counter {
                    spans: 0,
                    max: left,
                    over: false,
                };
                let mut reader = serde_json::Deserializer::from_slice(line);
                let _ = Value(&mut count).deserialize(&mut reader);
                left = left.saturating_sub(count.spans);
                count.over
            })
        }
    }
}

/// The fields of one protobuf message: `(field number, bytes)` of each length-delimited one; other
/// wire types are skipped. Stops at the first malformed field.
fn each_message_field(mut buf: &[u8], mut field: impl FnMut(u64, &[u8])) {
    while !buf.is_empty() {
        let Ok(key) = decode_varint(&mut buf) else {
            return;
        };
        let skip = match key & 7 {
            0 => match decode_varint(&mut buf) {
                Ok(_) => 0,
                Err(_) => return,
            },
            1 => 8,
            5 => 4,
            2 => {
                let Ok(len) = decode_varint(&mut buf) else {
                    return;
                };
                let Some(len) = usize::try_from(len).ok().filter(|&l| l <= buf.len()) else {
                    return;
                };
                let (value, rest) = buf.split_at(len);
                field(key >> 3, value);
                buf = rest;
                0
            }
            _ => return,
        };
        let Some(rest) = buf.get(skip..) else { return };
        buf = rest;
    }
}

/// The spans at `path` (field numbers, outermost first) below `buf`.
fn spans_at(buf: &[u8], path: &[u64]) -> usize {
    let Some((&first, rest)) = path.split_first() else {
        return 1;
    };
    let mut n = 0;
    each_message_field(buf, |number, value| {
        if number == first {
            n += spans_at(value, rest);
        }
    });
    n
}

/// Spans in an OTLP `TracesData` / `ExportTraceServiceRequest` (resource_spans 1 → scope_spans 2 →
/// spans 2), or in Tempo's trace-by-id wrapper (trace 1 → resource_spans 1 → …), whichever holds more:
/// the decoder reads either.
fn proto_spans(bytes: &[u8]) -> usize {
    spans_at(bytes, &[1, 2, 2]).max(spans_at(bytes, &[1, 1, 2, 2]))
}

fn json_spans_over(bytes: &[u8], max: usize) -> bool {
    let mut count = Counter {
        spans: 0,
        max,
        over: false,
    };
    let mut reader = serde_json::Deserializer::from_slice(bytes);
    let _ = Value(&mut count).deserialize(&mut reader);
    count.over
}

/// The elements of every array under a `"spans"` key, at any depth: every JSON shape the decoder reads
/// keeps spans there (`scopeSpans`, the legacy `instrumentationLibrarySpans`, Tempo's `batches`).
struct Counter {
    spans: usize,
    max: usize,
    over: bool,
}

/// Any JSON value, walked without keeping it.
struct Value<'c>(&'c mut Counter);
/// The value of a `"spans"` key: its elements count.
struct Spans<'c>(&'c mut Counter);

impl<'de> DeserializeSeed<'de> for Value<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> DeserializeSeed<'de> for Spans<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

/// Scalars are nothing to count.
macro_rules! ignore_scalars {
    () => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
            Ok(())
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
            Ok(())
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
            Ok(())
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
            Ok(())
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
            Ok(())
        }
        fn visit_unit<E: de::Error>(self) -> Result<(), E> {
            Ok(())
        }
    };
}

impl<'de> Visitor<'de> for Value<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    ignore_scalars!();
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Value(self.0))?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            if key == "spans" {
                map.next_value_seed(Spans(self.0))?;
            } else {
                map.next_value_seed(Value(self.0))?;
            }
        }
        Ok(())
    }
}

impl<'de> Visitor<'de> for Spans<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of spans")
    }
    ignore_scalars!();
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        loop {
            if self.0.spans >= self.0.max {
                // One more element is one too many: stop reading here.
                if seq.next_element::<de::IgnoredAny>()?.is_some() {
                    self.0.over = true;
                    return Err(de::Error::custom("over the span budget"));
                }
                return Ok(());
            }
            if seq.next_element_seed(Value(self.0))?.is_none() {
                return Ok(());
            }
            self.0.spans += 1;
        }
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        Value(self.0).visit_map(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    fn proto_of_empty_spans(n: usize) -> Vec<u8> {
        use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, TracesData};
        TracesData {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: vec![Span::default(); n],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
        .encode_to_vec()
    }

    #[test]
    fn protobuf_spans_are_counted_without_decoding() {
        let body = proto_of_empty_spans(1_000);
        assert!(!spans_over(&body, InputFormat::OtlpProto, 1_000));
        assert!(spans_over(&body, InputFormat::OtlpProto, 999));
        // Cut short: what can be read is counted; garbage counts nothing.
        assert!(!spans_over(
            &body[..body.len() / 2],
            InputFormat::OtlpProto,
            600
        ));
        assert!(!spans_over(b"\xff\xff\xff", InputFormat::OtlpProto, 0));
    }

    #[test]
    fn json_spans_are_counted_in_every_shape_the_decoder_reads() {
        let spans = |n: usize| vec!["{}"; n].join(",");
        let shapes = [
            format!(
                r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{}]}}]}}]}}"#,
                spans(5)
            ),
            format!(
                r#"{{"resourceSpans":[{{"instrumentationLibrarySpans":[{{"spans":[{}]}}]}}]}}"#,
                spans(5)
            ),
            format!(
                r#"{{"batches":[{{"scopeSpans":[{{"spans":[{}]}}]}}]}}"#,
                spans(5)
            ),
            format!(
                r#"{{"trace":{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{}]}},{{"spans":[{}]}}]}}]}}}}"#,
                spans(2),
                spans(3)
            ),
            format!(
                r#"{{"resourceSpans":[{{"scopeSpans":[{{"sp\u0061ns":[{}]}}]}}]}}"#,
                spans(5)
            ),
        ];
        for body in &shapes {
            assert!(
                !spans_over(body.as_bytes(), InputFormat::OtlpJson, 5),
                "{body}"
            );
            assert!(
                spans_over(body.as_bytes(), InputFormat::OtlpJson, 4),
                "{body}"
            );
        }
        let lines = format!("{}\n{}", shapes[0], shapes[2]);
        assert!(!spans_over(
            lines.as_bytes(),
            InputFormat::OtlpJsonLines,
            10
        ));
        assert!(spans_over(lines.as_bytes(), InputFormat::OtlpJsonLines, 9));
    }

    /// `TracesData` with `n` empty spans, written by hand (decoded, they would take gigabytes).
    fn raw_empty_spans(n: usize) -> Vec<u8> {
        let wrap = |field: u8, inner: Vec<u8>| {
            let mut out = vec![field];
            prost::encoding::encode_varint(inner.len() as u64, &mut out);
            out.extend(inner);
            out
        };
        let spans: Vec<u8> = [0x12, 0x00].repeat(n);
        wrap(0x0a, wrap(0x12, spans))
    }

    #[test]
    fn sixteen_mebibytes_of_empty_spans_are_over_the_budget_uncounted_beyond_it() {
        let body = raw_empty_spans(8 << 20);
        assert_eq!(proto_spans(&body), 8 << 20);
        assert!(spans_over(&body, InputFormat::OtlpProto, 200_000));
        // Written as prost writes it.
        assert_eq!(raw_empty_spans(3), proto_of_empty_spans(3));
    }
}
