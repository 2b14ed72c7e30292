//! The span model every detector reads: the few fields of an OpenTelemetry span that detection uses.
//!
//! Decoders (tempo-client) fill it from OTLP; detectors never see OTLP types. Attribute values are read
//! from both the old and the new OpenTelemetry HTTP/DB semantic conventions by [`SpanAttributes::from_pairs`].

use std::fmt;

/// A 16-byte trace id, shown as 32 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct TraceId(pub [u8; 16]);

/// An 8-byte span id, shown as 16 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct SpanId(pub [u8; 8]);

/// Nanoseconds since the Unix epoch, in event time (the span's own clock, never the wall clock).
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Default,
    Debug,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(transparent)]
pub struct UnixNanos(pub u64);

impl UnixNanos {
    pub const NANOS_PER_SEC: u64 = 1_000_000_000;

    pub fn from_secs(secs: u64) -> Self {
        UnixNanos(secs.saturating_mul(Self::NANOS_PER_SEC))
    }
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / Self::NANOS_PER_SEC as f64
    }
    pub fn saturating_add(self, nanos: u64) -> Self {
        UnixNanos(self.0.saturating_add(nanos))
    }
    pub fn saturating_sub(self, nanos: u64) -> Self {
        UnixNanos(self.0.saturating_sub(nanos))
    }
}

fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    for b in bytes {
        write!(f, "{b:02x}")?;
    }
    Ok(())
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}
impl TraceId {
    /// Reads 32 hex digits (either case).
    pub fn from_hex(text: &str) -> Option<TraceId> {
        if text.len() != 32 || !text.is_ascii() {
            return None;
        }
        let mut bytes = [0u8; 16];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(TraceId(bytes))
    }
}

// As its hex text, in saved state.
impl serde::Serialize for TraceId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}
impl<'de> serde::Deserialize<'de> for TraceId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        TraceId::from_hex(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("not a trace id: {text:?}")))
    }
}

impl fmt::Debug for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceId({self})")
    }
}
impl fmt::Display for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}
impl fmt::Debug for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SpanId({self})")
    }
}

impl TraceId {
    /// The all-zero id is invalid in OpenTelemetry.
    pub fn is_valid(&self) -> bool {
        self.0 != [0; 16]
    }
    /// Builds an id from up to 16 bytes, left-padding shorter input with zeros
    /// (Tempo's search drops leading zeros; some systems send 8-byte trace ids).
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        if bytes.len() > 16 {
            return None;
        }
        let mut id = [0u8; 16];
        id[16 - bytes.len()..].copy_from_slice(bytes);
        Some(TraceId(id))
    }
}

impl SpanId {
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        <[u8; 8]>::try_from(bytes).ok().map(SpanId)
    }
}

/// OpenTelemetry span kind.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub enum SpanKind {
    #[default]
    Unspecified,
    Internal,
    Server,
    Client,
    Producer,
    Consumer,
}

impl SpanKind {
    /// From the OTLP enum number (`SPAN_KIND_*`).
    pub fn from_otlp(code: i32) -> Self {
        match code {
            1 => SpanKind::Internal,
            2 => SpanKind::Server,
            3 => SpanKind::Client,
            4 => SpanKind::Producer,
            5 => SpanKind::Consumer,
            _ => SpanKind::Unspecified,
        }
    }
}

/// OpenTelemetry span status code.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub enum SpanStatus {
    #[default]
    Unset,
    Ok,
    Error,
}

impl SpanStatus {
    /// From the OTLP enum number (`STATUS_CODE_*`).
    pub fn from_otlp(code: i32) -> Self {
        match code {
            1 => SpanStatus::Ok,
            2 => SpanStatus::Error,
            _ => SpanStatus::Unset,
        }
    }
}

/// The span attributes detection uses, normalised across semantic-convention versions.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct SpanAttributes {
    /// `http.response.status_code` (new) or `http.status_code` (old).
    pub http_status_code: Option<u16>,
    /// `http.route`: the low-cardinality route template, such as `/users/{id}`.
    pub http_route: Option<String>,
    /// `url.path` (new) or `http.target` (old, may carry the query string; see [`SpanAttributes::path_only`]).
    pub url_path: Option<String>,
    /// `http.request.method` (new) or `http.method` (old).
    pub http_method: Option<String>,
    /// `client.address` (new), `http.client_ip` or `net.peer.ip` (old).
    pub client_address: Option<String>,
    /// `enduser.id`.
    pub enduser_id: Option<String>,
    /// `db.system` (or `db.system.name`).
    pub db_system: Option<String>,
    /// The *shape* of `db.query.text` / `db.statement`: literals replaced by `?`, so that it holds no data
    /// values. The raw statement is never kept.
    pub db_statement_shape: Option<String>,
    /// Whom an outgoing call is to: `peer.service`, else `server.address` (new) or `net.peer.name`
    /// (old). On a server span `server.address` is its own name; see [`Span::called_service`].
    pub peer_name: Option<String>,
}

/// One attribute value as decoders see it, before normalisation.
#[derive(Clone, Copy, Debug)]
pub enum AttrValue<'a> {
    Str(&'a str),
    Int(i64),
    Other,
}

impl SpanAttributes {
    /// Reads the detection attributes from `(key, value)` pairs. Where both an old and a new convention
    /// name are present, the new one wins.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, AttrValue<'a>)>) -> Self {
        let mut attrs = SpanAttributes::default();
        let mut status_is_new = false;
        let mut path_is_new = false;
        let mut method_is_new = false;
        let mut client_rank = 0u8;
        let mut statement_is_new = false;
        let mut peer_rank = 0u8;
        for (key, value) in pairs {
            match key {
                "http.response.status_code" => {
                    if let Some(code) = as_status(value) {
                        attrs.http_status_code = Some(code);
                        status_is_new = true;
                    }
                }
                "http.status_code" if !status_is_new => attrs.http_status_code = as_status(value),
                "http.route" => attrs.http_route = as_string(value),
                "url.path" => {
                    attrs.url_path = as_string(value);
                    path_is_new = true;
                }
                "http.target" if !path_is_new => attrs.url_path = as_string(value),
                "http.request.method" => {
                    attrs.http_method = as_string(value);
                    method_is_new = true;
                }
                "http.method" if !method_is_new => attrs.http_method = as_string(value),
                "client.address" => {
                    set_ranked(&mut attrs.client_address, &mut client_rank, 3, value)
                }
                "http.client_ip" => {
                    set_ranked(&mut attrs.client_address, &mut client_rank, 2, value)
                }
                "net.peer.ip" => set_ranked(&mut attrs.client_address, &mut client_rank, 1, value),
                "enduser.id" => attrs.enduser_id = as_string(value),
                "peer.service" => set_ranked(&mut attrs.peer_name, &mut peer_rank, 3, value),
                "server.address" => set_ranked(&mut attrs.peer_name, &mut peer_rank, 2, value),
                "net.peer.name" => set_ranked(&mut attrs.peer_name, &mut peer_rank, 1, value),
                "db.system" | "db.system.name" => attrs.db_system = as_string(value),
                "db.query.text" => {
                    attrs.db_statement_shape = as_str(value).map(crate::sql_shape::statement_shape);
                    statement_is_new = true;
                }
                "db.statement" if !statement_is_new => {
                    attrs.db_statement_shape = as_str(value).map(crate::sql_shape::statement_shape);
                }
                _ => {}
            }
        }
        attrs
    }

    /// The path without its query string or fragment, which may hold tokens or personal data.
    pub fn path_only(&self) -> Option<&str> {
        self.url_path
            .as_deref()
            .map(|p| p.split(['?', '#']).next().unwrap_or(p))
    }
}

fn as_str(value: AttrValue<'_>) -> Option<&str> {
    match value {
        AttrValue::Str(s) => Some(s),
        _ => None,
    }
}

/// Sets `slot` from `value` unless a name of a higher `rank` (a newer convention) already set it.
fn set_ranked(slot: &mut Option<String>, best: &mut u8, rank: u8, value: AttrValue<'_>) {
    if rank >= *best {
        *slot = as_string(value);
        *best = rank;
    }
}

fn as_string(value: AttrValue<'_>) -> Option<String> {
    match value {
        AttrValue::Str(s) => Some(s.to_owned()),
        AttrValue::Int(i) => Some(i.to_string()),
        AttrValue::Other => None,
    }
}

fn as_status(value: AttrValue<'_>) -> Option<u16> {
    match value {
        AttrValue::Int(i) => u16::try_from(i).ok(),
        AttrValue::Str(s) => s.trim().parse().ok(),
        AttrValue::Other => None,
    }
}

/// One span, as the detectors see it.
#[derive(Clone, PartialEq, Debug, Default)]
pub struct Span {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    /// `None` for a root span.
    pub parent_span_id: Option<SpanId>,
    /// The resource's `service.name` (`unknown_service` when missing, as the SDKs do).
    pub service: String,
    /// The span name.
    pub operation: String,
    pub kind: SpanKind,
    pub start: UnixNanos,
    pub duration_nanos: u64,
    pub status: SpanStatus,
    pub attributes: SpanAttributes,
}

impl Span {
    pub fn end(&self) -> UnixNanos {
        self.start.saturating_add(self.duration_nanos)
    }
    pub fn duration_ms(&self) -> f64 {
        self.duration_nanos as f64 / 1e6
    }
    pub fn is_root(&self) -> bool {
        self.parent_span_id.is_none()
    }
    /// The service an outgoing call (a client or producer span) names as its peer: the host of
    /// `peer.service`, `server.address` or `net.peer.name` up to its first dot or colon
    /// (`catalog.shop.svc:8080` → `catalog`); not an IP address, not the span's own service. Whether a
    /// service of that name exists is the caller's to check.
    pub fn called_service(&self) -> Option<&str> {
        if !matches!(self.kind, SpanKind::Client | SpanKind::Producer) {
            return None;
        }
        let name = self.attributes.peer_name.as_deref()?.trim();
        if name.parse::<std::net::IpAddr>().is_ok() {
            return None;
        }
        let host = name.split([':', '.']).next()?;
        let numeric = host.bytes().all(|b| b.is_ascii_digit());
        (!host.is_empty() && !numeric && host != self.service).then_some(host)
    }

    /// An error by the span's status, or a 5xx answer on a server span (the HTTP conventions say a 4xx
    /// is not a server error).
    pub fn is_error(&self) -> bool {
        if self.status == SpanStatus::Error {
            return true;
        }
        matches!(
            (self.kind, self.attributes.http_status_code),
            (SpanKind::Server, Some(500..=599))
        )
    }
    pub fn is_database_call(&self) -> bool {
        self.attributes.db_system.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_conventions_win_over_old_in_any_order() {
        let attrs = SpanAttributes::from_pairs([
            ("http.response.status_code", AttrValue::Int(503)),
            ("http.status_code", AttrValue::Int(200)),
            ("http.target", AttrValue::Str("/old?x=1")),
            ("url.path", AttrValue::Str("/new")),
            ("net.peer.ip", AttrValue::Str("10.0.0.1")),
            ("client.address", AttrValue::Str("203.0.113.9")),
            ("http.method", AttrValue::Str("GET")),
        ]);
        assert_eq!(attrs.http_status_code, Some(503));
        assert_eq!(attrs.url_path.as_deref(), Some("/new"));
        assert_eq!(attrs.client_address.as_deref(), Some("203.0.113.9"));
        assert_eq!(attrs.http_method.as_deref(), Some("GET"));
    }

    #[test]
    fn old_conventions_are_read_and_status_may_be_a_string() {
        let attrs = SpanAttributes::from_pairs([
            ("http.status_code", AttrValue::Str("404")),
            ("http.target", AttrValue::Str("/a/b?token=secret")),
            ("http.client_ip", AttrValue::Str("198.51.100.7")),
            ("net.peer.ip", AttrValue::Str("10.0.0.1")),
        ]);
        assert_eq!(attrs.http_status_code, Some(404));
        assert_eq!(attrs.path_only(), Some("/a/b"));
        assert_eq!(attrs.client_address.as_deref(), Some("198.51.100.7"));
    }

    #[test]
    fn statements_are_kept_as_shapes_only() {
        let attrs = SpanAttributes::from_pairs([
            ("db.system", AttrValue::Str("postgresql")),
            (
                "db.statement",
                AttrValue::Str("SELECT * FROM users WHERE email = 'a@b.c'"),
            ),
        ]);
        assert_eq!(
            attrs.db_statement_shape.as_deref(),
            Some("SELECT * FROM users WHERE email = ?")
        );
    }

    #[test]
    fn ids_display_as_lowercase_hex_and_short_ids_are_left_padded() {
        let id = TraceId::from_slice(&[0xab, 0x01]).unwrap();
        assert_eq!(id.to_string(), "0000000000000000000000000000ab01");
        assert!(TraceId::from_slice(&[0; 17]).is_none());
        assert_eq!(
            SpanId([1, 2, 3, 4, 5, 6, 7, 0xff]).to_string(),
            "01020304050607ff"
        );
    }

    #[test]
    fn server_5xx_is_an_error_but_client_4xx_is_not() {
        let mut span = Span {
            kind: SpanKind::Server,
            ..Span::default()
        };
        span.attributes.http_status_code = Some(502);
        assert!(span.is_error());
        span.attributes.http_status_code = Some(404);
        assert!(!span.is_error());
        span.status = SpanStatus::Error;
        assert!(span.is_error());
    }

    #[test]
    fn an_outgoing_call_names_its_peer_by_host() {
        let call = |kind, pairs: &[(&'static str, &'static str)]| Span {
            service: "gateway".to_owned(),
            kind,
            attributes: SpanAttributes::from_pairs(
                pairs.iter().map(|&(k, v)| (k, AttrValue::Str(v))),
            ),
            ..Span::default()
        };
        let client = SpanKind::Client;
        let named = |kind, pairs| call(kind, pairs).called_service().map(str::to_owned);
        assert_eq!(
            named(client, &[("server.address", "catalog.shop.svc:8080")]).as_deref(),
            Some("catalog")
        );
        // peer.service wins over the address, whatever the order.
        let both = [("net.peer.name", "10-1-2-3"), ("peer.service", "cart")];
        assert_eq!(named(client, &both).as_deref(), Some("cart"));
        assert_eq!(named(client, &[("server.address", "10.42.1.7")]), None);
        assert_eq!(named(client, &[("server.address", "::1")]), None);
        // A server span's server.address is itself; a call to itself names no peer.
        assert_eq!(
            named(SpanKind::Server, &[("server.address", "catalog")]),
            None
        );
        assert_eq!(named(client, &[("server.address", "gateway")]), None);
    }
}
