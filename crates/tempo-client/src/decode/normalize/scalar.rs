//! Normalization of single OTLP/JSON values: ids (hex or base64), enums (numbers or names) and numbers
//! (strings, integral floats) into what opentelemetry-proto's serde reads.

use base64::Engine;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde_json::{Map, Number, Value};

/// Standard base64 with or without padding (Tempo pads; some exporters do not).
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);
/// URL-safe base64 with or without padding.
const BASE64_URL: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);
/// What opentelemetry-proto decodes `bytesValue` with: standard, padded.
const BASE64_CANONICAL: GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Which id a field holds, which decides when a string is read as hex.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum IdKind {
    /// 16 bytes: 32 hex digits. 16 hex digits are also read as hex (a 64-bit trace id, which the
    /// converter left-pads), since base64 of a 16-byte id is never 16 characters long.
    Trace,
    /// 8 bytes: 16 hex digits.
    Span,
}

impl IdKind {
    fn is_hex_length(self, len: usize) -> bool {
        match self {
            IdKind::Trace => len == 32 || len == 16,
            IdKind::Span => len == 16,
        }
    }
}

/// Rewrites an id member as the hex string opentelemetry-proto reads. An all-hex string of the id's
/// hex length is hex (as the OTLP/JSON spec says); anything else is base64 (as Tempo and protobuf's
/// canonical JSON send it), then hex of another even length. An empty string stays empty (no parent);
/// an id that decodes as neither, or is not a string, becomes empty, so that the span is skipped (or,
/// for a parent, has none) rather than the whole document failing.
pub(super) fn normalize_id(map: &mut Map<String, Value>, key: &str, kind: IdKind) {
    let Some(value) = map.get_mut(key) else {
        return;
    };
    let hex = match value {
        Value::String(s) if s.is_empty() || (kind.is_hex_length(s.len()) && is_hex(s)) => return,
        Value::String(s) => id_bytes(s).map(hex::encode).unwrap_or_default(),
        _ => String::new(),
    };
    *value = Value::String(hex);
}

fn is_hex(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn id_bytes(s: &str) -> Option<Vec<u8>> {
    BASE64
        .decode(s)
        .or_else(|_| BASE64_URL.decode(s))
        .ok()
        .or_else(|| is_hex(s).then(|| hex::decode(s).ok()).flatten())
}

/// Rewrites an enum member as its number: a name (`SPAN_KIND_SERVER`) through `from_name`, a numeric
/// string, or an integral number. A name or number the enum does not know becomes 0 (unspecified); a
/// value of another JSON type is left for serde to report.
pub(super) fn normalize_enum(
    map: &mut Map<String, Value>,
    key: &str,
    from_name: impl Fn(&str) -> Option<i32>,
) {
    let Some(value) = map.get_mut(key) else {
        return;
    };
    let code = match value {
        Value::Number(n) => as_i64(n).and_then(|i| i32::try_from(i).ok()),
        Value::String(s) => from_name(s).or_else(|| s.trim().parse().ok()),
        _ => return,
    };
    *value = Value::from(code.unwrap_or(0));
}

/// A `fixed64` time: numbers and numeric strings are read by opentelemetry-proto, integral floats
/// (`1.7e18`) are made integers here.
pub(super) fn normalize_u64(map: &mut Map<String, Value>, key: &str) {
    if let Some(Value::Number(n)) = map.get_mut(key)
        && !n.is_u64()
        && let Some(u) = as_u64(n)
    {
        *n = Number::from(u);
    }
}

/// A `uint32`/`fixed32` (flags, dropped counts), which opentelemetry-proto reads as a number only.
pub(super) fn normalize_u32(map: &mut Map<String, Value>, key: &str) {
    let Some(value) = map.get_mut(key) else {
        return;
    };
    let parsed = match value {
        Value::Number(n) if !n.is_u64() => as_u64(n),
        Value::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    };
    if let Some(u) = parsed {
        *value = Value::from(u);
    }
}

/// An `intValue`: numbers and numeric strings are read by opentelemetry-proto, integral floats are made
/// integers here.
pub(super) fn normalize_i64(map: &mut Map<String, Value>, key: &str) {
    if let Some(Value::Number(n)) = map.get_mut(key)
        && !n.is_i64()
        && let Some(i) = as_i64(n)
    {
        *n = Number::from(i);
    }
}

/// A `doubleValue`, which opentelemetry-proto reads as a number only: a numeric string becomes a
/// number; `"NaN"`, `"Infinity"` (which JSON numbers cannot hold) and other strings drop the member,
/// leaving an empty value.
pub(super) fn normalize_double(map: &mut Map<String, Value>, key: &str) {
    let Some(Value::String(s)) = map.get(key) else {
        return;
    };
    match s.trim().parse::<f64>().ok().and_then(Number::from_f64) {
        Some(n) => {
            map.insert(key.to_owned(), Value::Number(n));
        }
        None => {
            map.remove(key);
        }
    }
}

/// A `bytesValue`, which opentelemetry-proto decodes as padded standard base64 only: unpadded or
/// URL-safe base64 is re-encoded; anything else drops the member.
pub(super) fn normalize_bytes(map: &mut Map<String, Value>, key: &str) {
    let Some(Value::String(s)) = map.get(key) else {
        return;
    };
    if BASE64_CANONICAL.decode(s).is_ok() {
        return;
    }
    match BASE64.decode(s).or_else(|_| BASE64_URL.decode(s)) {
        Ok(bytes) => {
            map.insert(
                key.to_owned(),
                Value::String(BASE64_CANONICAL.encode(bytes)),
            );
        }
        Err(_) => {
            map.remove(key);
        }
    }
}

fn as_u64(n: &Number) -> Option<u64> {
    n.as_u64().or_else(|| {
        n.as_f64()
            .filter(|f| f.fract() == 0.0 && (0.0..=u64::MAX as f64).contains(f))
            .map(|f| f as u64)
    })
}

fn as_i64(n: &Number) -> Option<i64> {
    n.as_i64().or_else(|| {
        n.as_f64()
            .filter(|f| f.fract() == 0.0 && (i64::MIN as f64..=i64::MAX as f64).contains(f))
            .map(|f| f as i64)
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn with(key: &str, value: Value) -> Map<String, Value> {
        let mut map = Map::new();
        map.insert(key.to_owned(), value);
        map
    }

    fn id(value: Value, kind: IdKind) -> Value {
        let mut map = with("id", value);
        normalize_id(&mut map, "id", kind);
        map.remove("id").unwrap_or(Value::Null)
    }

    #[test]
    fn ids_are_hex_or_base64_decided_per_field() {
        let checks = [
            (
                json!("5B8EFFF798038103D269B633813FC60C"),
                IdKind::Trace,
                "5B8EFFF798038103D269B633813FC60C",
            ),
            (
                json!("ScQQG7tAX3MTSaVaJDlfKw=="),
                IdKind::Trace,
                "49c4101bbb405f731349a55a24395f2b",
            ),
            (
                json!("ScQQG7tAX3MTSaVaJDlfKw"),
                IdKind::Trace,
                "49c4101bbb405f731349a55a24395f2b",
            ),
            (json!("abababababababab"), IdKind::Trace, "abababababababab"),
            (json!("EEE19B7EC3C1B174"), IdKind::Span, "EEE19B7EC3C1B174"),
            (json!("ERERERERERE="), IdKind::Span, "1111111111111111"),
            (json!("-_-_-_-_-_8"), IdKind::Span, "fbffbffbffbffbff"),
            (json!(""), IdKind::Span, ""),
            (json!("!!not an id!!"), IdKind::Span, ""),
            (json!(42), IdKind::Trace, ""),
        ];
        for (input, kind, expected) in checks {
            assert_eq!(
                id(input.clone(), kind),
                json!(expected),
                "{input} as {kind:?}"
            );
        }
    }

    fn enum_code(value: Value) -> Value {
        let mut map = with("kind", value);
        normalize_enum(&mut map, "kind", |name| {
            (name == "SPAN_KIND_SERVER").then_some(2)
        });
        map.remove("kind").unwrap_or(Value::Null)
    }

    #[test]
    fn enums_become_numbers() {
        assert_eq!(enum_code(json!("SPAN_KIND_SERVER")), json!(2));
        assert_eq!(enum_code(json!("3")), json!(3));
        assert_eq!(enum_code(json!("SPAN_KIND_NONSENSE")), json!(0));
        assert_eq!(enum_code(json!(4)), json!(4));
        assert_eq!(enum_code(json!(5.0)), json!(5));
        assert_eq!(enum_code(json!(1_u64 << 40)), json!(0));
        assert_eq!(enum_code(json!(true)), json!(true));
    }

    #[test]
    fn numbers_are_made_what_serde_reads() {
        let mut map = with("t", json!(1.7e18));
        normalize_u64(&mut map, "t");
        assert_eq!(map["t"], json!(1_700_000_000_000_000_000_u64));

        let mut map = with("t", json!(-1));
        normalize_u64(&mut map, "t");
        assert_eq!(map["t"], json!(-1), "left for serde to refuse");

        let mut map = with("c", json!(" 12 "));
        normalize_u32(&mut map, "c");
        assert_eq!(map["c"], json!(12));

        let mut map = with("i", json!(-3.0));
        normalize_i64(&mut map, "i");
        assert_eq!(map["i"], json!(-3));

        let mut map = with("d", json!("1e3"));
        normalize_double(&mut map, "d");
        assert_eq!(map["d"], json!(1000.0));

        let mut map = with("d", json!("Infinity"));
        normalize_double(&mut map, "d");
        assert!(map.is_empty());
    }

    #[test]
    fn bytes_are_made_padded_standard_base64() {
        let mut map = with("b", json!("AQID"));
        normalize_bytes(&mut map, "b");
        assert_eq!(map["b"], json!("AQID"));

        let mut map = with("b", json!("_-8"));
        normalize_bytes(&mut map, "b");
        assert_eq!(map["b"], json!("/+8="));

        let mut map = with("b", json!("***"));
        normalize_bytes(&mut map, "b");
        assert!(map.is_empty());
    }
}
