//! The store's list positions as the API writes them: an opaque `next_cursor` text,
//! `<microseconds since epoch>_<uuid>` of the last row of the previous page (its time in the list's
//! order: an anomaly's detection, an incident's start).

use chrono::{DateTime, Utc};
use store_pg::{Cursor, IncidentCursor};
use uuid::Uuid;

fn write(at: DateTime<Utc>, id: Uuid) -> String {
    format!("{}_{}", at.timestamp_micros(), id.simple())
}

fn read(text: &str) -> Option<(DateTime<Utc>, Uuid)> {
    let (micros, id) = text.split_once('_')?;
    Some((
        DateTime::from_timestamp_micros(micros.parse().ok()?)?,
        Uuid::parse_str(id).ok()?,
    ))
}

pub fn encode(c: &Cursor) -> String {
    write(c.detected_at, c.id)
}

/// `None` for anything `encode` did not write.
pub fn decode(text: &str) -> Option<Cursor> {
    read(text).map(|(detected_at, id)| Cursor { detected_at, id })
}

pub fn encode_incident(c: &IncidentCursor) -> String {
    write(c.started_at, c.id)
}

pub fn decode_incident(text: &str) -> Option<IncidentCursor> {
    read(text).map(|(started_at, id)| IncidentCursor { started_at, id })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let c = Cursor {
            detected_at: DateTime::from_timestamp_micros(1_767_571_200_123_456).unwrap(),
            id: Uuid::from_u128(42),
        };
        assert_eq!(decode(&encode(&c)), Some(c));
        for bad in ["", "x", "1_", "_abc", "12_not-a-uuid"] {
            assert_eq!(decode(bad), None, "{bad}");
        }
    }
}
