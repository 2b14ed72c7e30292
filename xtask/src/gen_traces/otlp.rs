//! Writing traces as OTLP JSON lines, as the OpenTelemetry Collector's file exporter does: one
//! `TracesData` object per line, each holding the spans that *ended* in one second of event time,
//! grouped by service (resource) and instrumentation scope; lines in event-time order.
//!
//! The objects are opentelemetry-proto's own types serialized by its serde support, which writes
//! OTLP/JSON: lowerCamelCase names, ids as lowercase hex, 64-bit times and `intValue` as decimal
//! strings, enums as numbers.

use super::topology::{Conv, OpKind, SvcId, Topology};
use super::trace::{Role, SpanRec, Trace};
use super::traffic::NANOS_PER_SEC;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, TracesData};
use std::collections::BTreeMap;
use std::io::Write;

const PUBLIC_HOST: &str = "shop.example.com";
const INTERNAL_PORT: i64 = 8080;

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        ..KeyValue::default()
    }
}

fn s(key: &str, value: impl Into<String>) -> KeyValue {
    kv(key, any_value::Value::StringValue(value.into()))
}

fn i(key: &str, value: i64) -> KeyValue {
    kv(key, any_value::Value::IntValue(value))
}

/// The address of a pod of `service` (which replica is read off the span id, so no randomness).
fn pod_ip(service: SvcId, span_id: &[u8; 8]) -> String {
    format!("10.42.{}.{}", service + 1, 11 + span_id[7] % 3)
}

/// The OTLP attributes of one span, in the semantic conventions of its service.
fn attributes(topo: &Topology, trace: &Trace, span: &SpanRec) -> Vec<KeyValue> {
    let def = &topo.ops[span.op];
    let conv = topo.services[span.service].conv;
    let new = conv == Conv::New;
    let mut attrs = Vec::with_capacity(9);
    match (&def.kind, span.role) {
        (OpKind::Server { method, route, .. }, Role::Server) => {
            attrs.push(s(
                if new {
                    "http.request.method"
                } else {
                    "http.method"
                },
                *method,
            ));
            attrs.push(s(
                if new { "url.path" } else { "http.target" },
                span.text.as_str(),
            ));
            if let Some(route) = route {
                attrs.push(s("http.route", *route));
            }
            if let Some(code) = span.code {
                let key = if new {
                    "http.response.status_code"
                } else {
                    "http.status_code"
                };
                attrs.push(i(key, i64::from(code)));
            }
            match span.peer {
                None => {
                    // The entry span: the only one that knows the end user.
                    attrs.push(s("url.scheme", "https"));
                    attrs.push(s("server.address", PUBLIC_HOST));
                    attrs.push(s("client.address", trace.caller.ip.as_str()));
                    attrs.push(s("user_agent.original", trace.caller.user_agent));
                    if let Some(user) = &trace.caller.user {
                        attrs.push(s("enduser.id", user.as_str()));
                    }
                }
                Some(caller) => {
                    let peer = pod_ip(caller, &span.span_id);
                    if new {
                        attrs.push(s("network.peer.address", peer));
                        attrs.push(s("server.address", topo.service_name(span.service)));
                    } else {
                        attrs.push(s("net.peer.ip", peer));
                        attrs.push(s("net.host.name", topo.service_name(span.service)));
                    }
                }
            }
        }
        (OpKind::Server { method, .. }, Role::Client) => {
            let callee = topo.service_name(span.peer.unwrap_or(def.service));
            let url = format!("http://{callee}:{INTERNAL_PORT}{}", span.text);
            if new {
                attrs.push(s("http.request.method", *method));
                attrs.push(s("url.full", url));
                attrs.push(s("server.address", callee));
                attrs.push(i("server.port", INTERNAL_PORT));
            } else {
                attrs.push(s("http.method", *method));
                attrs.push(s("http.url", url));
                attrs.push(s("net.peer.name", callee));
            }
            if let Some(code) = span.code {
                let key = if new {
                    "http.response.status_code"
                } else {
                    "http.status_code"
                };
                attrs.push(i(key, i64::from(code)));
            }
            if new && span.error.is_some() {
                let kind = match span.code {
                    Some(code) => code.to_string(),
                    None => "connection_refused".to_owned(),
                };
                attrs.push(s("error.type", kind));
            }
        }
        (OpKind::Db { operation, table }, _) => {
            let server = format!("pg-{}", topo.service_name(span.service));
            attrs.push(s("db.system", "postgresql"));
            if new {
                attrs.push(s("db.namespace", "shop"));
                attrs.push(s("db.query.text", span.text.as_str()));
                attrs.push(s("db.operation.name", *operation));
                attrs.push(s("db.collection.name", *table));
                attrs.push(s("server.address", server));
            } else {
                attrs.push(s("db.name", "shop"));
                attrs.push(s("db.statement", span.text.as_str()));
                attrs.push(s("db.operation", *operation));
                attrs.push(s("db.sql.table", *table));
                attrs.push(s("net.peer.name", server));
            }
        }
        (OpKind::External { method, url }, _) => {
            let host = url.split('/').nth(2).unwrap_or("");
            attrs.push(s(
                if new {
                    "http.request.method"
                } else {
                    "http.method"
                },
                *method,
            ));
            attrs.push(s(if new { "url.full" } else { "http.url" }, *url));
            attrs.push(s(
                if new {
                    "server.address"
                } else {
                    "net.peer.name"
                },
                host,
            ));
            if let Some(code) = span.code {
                let key = if new {
                    "http.response.status_code"
                } else {
                    "http.status_code"
                };
                attrs.push(i(key, i64::from(code)));
            }
        }
        (OpKind::Internal, _) => {
            attrs.push(s("code.namespace", topo.service_name(span.service)));
        }
        (OpKind::Server { .. }, _) => unreachable!("server operations are server or client spans"),
    }
    attrs
}

/// One span as an OTLP `Span`.
pub fn to_otlp(topo: &Topology, trace: &Trace, span: &SpanRec) -> Span {
    let kind = match span.role {
        Role::Server => 2,
        Role::Client | Role::Db | Role::External => 3,
        Role::Internal => 1,
    };
    let status = match span.error {
        Some(message) => Status {
            message: message.to_owned(),
            code: 2,
        },
        None => Status::default(),
    };
    Span {
        trace_id: trace.trace_id.to_vec(),
        span_id: span.span_id.to_vec(),
        parent_span_id: span
            .parent
            .map(|p| trace.spans[p].span_id.to_vec())
            .unwrap_or_default(),
        flags: 0x100 | 1,
        name: topo.ops[span.op].name.clone(),
        kind,
        start_time_unix_nano: span.start,
        end_time_unix_nano: span.end(),
        attributes: attributes(topo, trace, span),
        status: Some(status),
        ..Span::default()
    }
}

fn resource(topo: &Topology, service: SvcId) -> Resource {
    let def = &topo.services[service];
    let env_key = match def.conv {
        Conv::New => "deployment.environment.name",
        Conv::Old => "deployment.environment",
    };
    Resource {
        attributes: vec![
            s("service.name", def.name),
            s("service.namespace", "shop"),
            s("service.version", def.version),
            s(env_key, "production"),
            s("telemetry.sdk.name", "opentelemetry"),
            s("telemetry.sdk.language", def.language),
        ],
        ..Resource::default()
    }
}

/// Buffers spans by the second they ended in and writes each second as one line once no more spans
/// can end in it.
pub struct LineWriter<W: Write> {
    out: W,
    /// second → (service → spans, in arrival order)
    pending: BTreeMap<u64, BTreeMap<SvcId, Vec<Span>>>,
    pub lines: u64,
    pub spans: u64,
    /// The earliest second still open; a span ending before it is a bug.
    flushed_until: u64,
}

impl<W: Write> LineWriter<W> {
    pub fn new(out: W) -> Self {
        LineWriter {
            out,
            pending: BTreeMap::new(),
            lines: 0,
            spans: 0,
            flushed_until: 0,
        }
    }

    pub fn add(&mut self, topo: &Topology, trace: &Trace) {
        for span in &trace.spans {
            let second = span.end() / NANOS_PER_SEC;
            assert!(
                second >= self.flushed_until,
                "span ending at second {second} after that second was written; traces are too long"
            );
            self.pending
                .entry(second)
                .or_default()
                .entry(span.service)
                .or_default()
                .push(to_otlp(topo, trace, span));
        }
    }

    /// Writes every second before `second` (Unix seconds).
    pub fn flush_before(&mut self, topo: &Topology, second: u64) -> std::io::Result<()> {
        while let Some(entry) = self.pending.first_entry() {
            if *entry.key() >= second {
                break;
            }
            let services = entry.remove();
            self.write_line(topo, services)?;
        }
        self.flushed_until = self.flushed_until.max(second);
        Ok(())
    }

    fn write_line(
        &mut self,
        topo: &Topology,
        services: BTreeMap<SvcId, Vec<Span>>,
    ) -> std::io::Result<()> {
        let mut resource_spans = Vec::with_capacity(services.len());
        for (service, mut spans) in services {
            spans.sort_by(|a, b| {
                (a.end_time_unix_nano, &a.span_id).cmp(&(b.end_time_unix_nano, &b.span_id))
            });
            self.spans += spans.len() as u64;
            let def = &topo.services[service];
            resource_spans.push(ResourceSpans {
                resource: Some(resource(topo, service)),
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: def.scope.to_owned(),
                        version: def.scope_version.to_owned(),
                        ..InstrumentationScope::default()
                    }),
                    spans,
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            });
        }
        serde_json::to_writer(&mut self.out, &TracesData { resource_spans })?;
        self.out.write_all(b"\n")?;
        self.lines += 1;
        Ok(())
    }

    /// Writes what is left; returns (lines, spans) written.
    pub fn finish(mut self, topo: &Topology) -> std::io::Result<(u64, u64)> {
        self.flush_before(topo, u64::MAX)?;
        self.out.flush()?;
        Ok((self.lines, self.spans))
    }
}
