//! What both backends share beyond the repository API: reading the stored configuration, escaping
//! search text for LIKE, cutting a page, the severities at or above a floor.

use crate::error::Result;
use crate::model::{AnomalyRecord, Cursor, Page};
use crate::repository::StoredConfigEntry;
use chrono::{DateTime, Utc};
use detect_core::{DetectionConfig, Severity};
use serde_json::Value;

/// The error of a stream run left running by a worker that died or lost its lease.
pub(crate) const ABANDONED: &str = "abandoned: the worker stopped holding the stream before finishing this window; the window is done again by the next holder";

/// A run's window must end after it starts.
pub(crate) fn check_window(window: Option<(DateTime<Utc>, DateTime<Utc>)>) -> Result<()> {
    if window.is_some_and(|(start, end)| end <= start) {
        return Err(crate::StoreError::Invalid(
            "a run's window must end after it starts".into(),
        ));
    }
    Ok(())
}

/// The stored key → value rows over the defaults, validated. A stored value the current code refuses
/// is reported, not silently replaced by a default.
pub(crate) fn config_from_entries(entries: &[StoredConfigEntry]) -> Result<DetectionConfig> {
    let values: Vec<(&str, &Value)> = entries
        .iter()
        .filter_map(|e| e.value.as_ref().map(|v| (e.key.as_str(), v)))
        .collect();
    Ok(DetectionConfig::from_entries(values)?)
}

/// `%` and `_` are wildcards in LIKE; a search for them means the characters themselves. The escape
/// character is `\` (PostgreSQL's default; SQLite's queries say `ESCAPE '\'`).
pub(crate) fn escape_like(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// The page and the cursor of its last row, from `limit + 1` rows.
pub(crate) fn page(mut rows: Vec<AnomalyRecord>, limit: u32) -> Page<AnomalyRecord> {
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next_cursor = more.then(|| rows.last()).flatten().and_then(|r| {
        r.detected_at.map(|detected_at| Cursor {
            detected_at,
            id: r.id,
        })
    });
    Page {
        items: rows,
        next_cursor,
    }
}

/// The severities at or above `min`, as stored.
pub(crate) fn severities_at_least(min: Severity) -> Vec<&'static str> {
    Severity::ALL
        .into_iter()
        .filter(|s| *s >= min)
        .map(Severity::as_str)
        .collect()
}
