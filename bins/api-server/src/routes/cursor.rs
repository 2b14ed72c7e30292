//! The store's list position as the API writes it: an opaque `next_cursor` text,
//! `<microseconds since epoch>_<uuid>` of the last row of the previous page.

use chrono::DateTime;
use store_pg::Cursor;
use uuid::Uuid;

pub fn encode(c: &Cursor) -> String {
    format!("{}_{}", c.detected_at.timestamp_micros(), c.id.simple())
}

/// `None` for anything `encode` did not write.
pub fn decode(text: &str) -> Option<Cursor> {
    let (micros, id) = text.split_once('_')?;
    Some(Cursor {
        detected_at: DateTime::from_timestamp_micros(micros.parse().ok()?)?,
        id: Uuid::parse_str(id).ok()?,
    })
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
