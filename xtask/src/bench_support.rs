//! What the benches that load a real binary share: building it in release, and OTLP attributes.

use anyhow::{Context, Result, bail};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use std::path::PathBuf;
use std::process::Command;

/// Builds `package` in release and returns the path of its binary (of the same name).
pub fn release_binary(package: &str) -> Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(&cargo)
        .args(["build", "--release", "--locked", "--quiet", "-p", package])
        .status()
        .context("cannot run cargo")?;
    if !status.success() {
        bail!("building {package} failed");
    }
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    Ok(PathBuf::from(target).join("release").join(package))
}

/// A string attribute.
pub fn str_attr(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..KeyValue::default()
    }
}

/// The spans of service `svc-<n>`, as one resource.
pub fn service_spans(n: impl std::fmt::Display, spans: Vec<Span>) -> ResourceSpans {
    ResourceSpans {
        resource: Some(Resource {
            attributes: vec![str_attr("service.name", &format!("svc-{n}"))],
            ..Resource::default()
        }),
        scope_spans: vec![ScopeSpans {
            spans,
            ..ScopeSpans::default()
        }],
        ..ResourceSpans::default()
    }
}
