//! Live events: the journal (`live_events`) that every write of an anomaly or an incident adds to, by
//! a trigger in the same transaction, whichever process writes. On PostgreSQL each row is also
//! announced on the channel [`LIVE_CHANNEL`] when its transaction commits ([`crate::PgStore::listen`]).
//! Readers follow the journal by sequence number ([`crate::Repository::live_events_after`]): the
//! api-servers' live streams, and a stream reconnecting with `Last-Event-ID`.

use crate::incidents::IncidentRecord;
use crate::model::AnomalyRecord;
use uuid::Uuid;

/// The PostgreSQL notification channel the journal's triggers notify.
pub const LIVE_CHANNEL: &str = "tracewatch_live";

/// The most events one read returns.
pub const MAX_LIVE_EVENTS: u32 = 1_000;

/// What happened to the subject.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LiveEventKind {
    /// An anomaly stored for the first time.
    New,
    /// An anomaly repeated (more occurrences), changed severity or was reopened; an incident opened
    /// or changed.
    Updated,
    /// An anomaly resolved; an incident resolved or merged into another.
    Resolved,
}

impl LiveEventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LiveEventKind::New => "new",
            LiveEventKind::Updated => "updated",
            LiveEventKind::Resolved => "resolved",
        }
    }

    pub fn parse(word: &str) -> Option<Self> {
        [Self::New, Self::Updated, Self::Resolved]
            .into_iter()
            .find(|k| k.as_str() == word)
    }
}

/// The subject of an event, as it stands when the event is read (not as it stood when written).
#[derive(Clone, Debug, PartialEq)]
pub enum LiveSubject {
    Anomaly(AnomalyRecord),
    Incident(IncidentRecord),
    /// Deleted since (by the retention job): the event is skipped, its sequence number is not.
    Gone(Uuid),
}

/// One row of the journal.
#[derive(Clone, Debug, PartialEq)]
pub struct LiveEvent {
    /// Increases with every event; the live stream's event id. Allocated when the row is written, so
    /// a transaction that commits late can make a lower number appear after a higher one.
    pub seq: i64,
    pub kind: LiveEventKind,
    pub subject: LiveSubject,
}

/// The journal's extent: its oldest and newest sequence numbers, both 0 when it is empty.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LiveEventBounds {
    pub oldest: i64,
    pub latest: i64,
}
