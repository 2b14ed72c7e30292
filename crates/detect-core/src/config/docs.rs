//! The table as documentation: one row per (dotted) key with its default, for the API's schema and
//! the table in docs/DETECTION.md.

use super::DetectionConfig;
use super::table::{Field, KEYS, Kind};
use serde_json::Value;
use std::fmt::Write as _;

/// One key as the docs and the API describe it.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeySchema {
    /// Dotted for a nested key; `<service>` stands for a service name.
    pub key: String,
    /// The JSON type: boolean, number, integer, array of strings or object.
    #[serde(rename = "type")]
    pub type_name: &'static str,
    pub allowed: String,
    /// Null for an object of keys (each has its own) and for a per-service key (unset by default).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Value>))]
    pub default: Option<Value>,
    pub description: &'static str,
}

/// Every key, nested ones right after their object's row.
pub fn schema() -> Vec<KeySchema> {
    let mut rows = Vec::new();
    flatten(
        KEYS,
        Some(&DetectionConfig::default().to_json()),
        "",
        &mut rows,
    );
    rows
}

fn flatten(fields: &[Field], defaults: Option<&Value>, prefix: &str, rows: &mut Vec<KeySchema>) {
    for field in fields {
        let key = format!("{prefix}{}", field.key);
        let default = defaults.and_then(|d| d.get(field.key));
        rows.push(KeySchema {
            key: key.clone(),
            type_name: field.kind.type_name(),
            allowed: field.kind.allowed(),
            default: match field.kind {
                Kind::Object(_) => None,
                _ => default.cloned(),
            },
            description: field.description,
        });
        match field.kind {
            Kind::Object(nested) => flatten(nested, default, &format!("{key}."), rows),
            Kind::PerService(nested) => flatten(nested, None, &format!("{key}.<service>."), rows),
            _ => {}
        }
    }
}

/// The Markdown table of every key, as docs/DETECTION.md shows it.
pub fn markdown_table() -> String {
    let mut table =
        String::from("| key | type | default | allowed | description |\n|---|---|---|---|---|\n");
    for row in schema() {
        let default = row.default.map_or("—".into(), |d| format!("`{d}`"));
        // Writing into a String cannot fail.
        let _ = writeln!(
            table,
            "| `{}` | {} | {default} | {} | {} |",
            row.key,
            row.type_name,
            cell(&row.allowed),
            cell(row.description)
        );
    }
    table
}

/// A `|` inside a cell would end it.
fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}
