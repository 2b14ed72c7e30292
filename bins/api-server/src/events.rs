//! Live events for the alert panel: `GET /api/anomalies/stream` answers Server-Sent Events
//! (`event: new|updated|resolved`, `data:` the anomaly's API shape; `event:
//! incident_updated|incident_resolved` for an incident opened or changed, and ended, `data:` the
//! incident's), with a comment line as a keep-alive. Each event's `id:` is its sequence number in the
//! store's live-event journal.
//!
//! Events come from the store, whichever process wrote them: every write of an anomaly or incident
//! adds a row to the journal (store-pg's `live`), and [`follow`] reads the rows after the last one it
//! has served and publishes them here. It reads when woken: by a write of this process
//! ([`EventHub::wake`]), by PostgreSQL's notification of another's, or by a short tick (what reaches
//! the embedded store from another process, and a safety net for a lost listener).
//!
//! A stream opened with `Last-Event-ID: <seq>` first gets the events after it from the journal (at
//! most [`REPLAY_MAX`]). A client that falls behind by more than the buffer, or asks for more than the
//! journal can replay, gets an `event: lagged` and should reload the list (the stream never blocks the
//! detectors).

mod follow;
pub mod stream;

pub use follow::follow;
pub use stream::REPLAY_MAX;

use serde::Serialize;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use store_pg::{AnomalyJson, IncidentRecord, LiveEventKind, LiveSubject};
use tokio::sync::{Notify, broadcast};

/// Events buffered per subscriber before it counts as lagging.
const BUFFER: usize = 1_024;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    New,
    Updated,
    Resolved,
}

impl From<LiveEventKind> for EventKind {
    fn from(kind: LiveEventKind) -> Self {
        match kind {
            LiveEventKind::New => EventKind::New,
            LiveEventKind::Updated => EventKind::Updated,
            LiveEventKind::Resolved => EventKind::Resolved,
        }
    }
}

/// What an event is about, as it stood when the event was read from the store.
#[derive(Clone, Debug)]
pub enum Subject {
    Anomaly(AnomalyJson),
    Incident(IncidentRecord),
}

/// One event of the stream.
#[derive(Clone, Debug)]
pub struct LiveEvent {
    /// The journal's sequence number: the SSE `id:`.
    pub seq: i64,
    pub kind: EventKind,
    pub subject: Subject,
}

impl LiveEvent {
    /// The stream's event, unless its subject is gone from the store.
    pub fn from_stored(event: store_pg::LiveEvent) -> Option<Self> {
        let subject = match event.subject {
            LiveSubject::Anomaly(a) => Subject::Anomaly(a),
            LiveSubject::Incident(i) => Subject::Incident(i),
            LiveSubject::Gone(_) => return None,
        };
        Some(LiveEvent {
            seq: event.seq,
            kind: event.kind.into(),
            subject,
        })
    }

    /// The SSE frame: `event:`, `id:` and one `data:` line.
    pub fn frame(&self) -> String {
        let word = match self.kind {
            EventKind::New => "new",
            EventKind::Updated => "updated",
            EventKind::Resolved => "resolved",
        };
        // serde_json never writes a raw newline, so one `data:` line holds the whole object.
        let (kind, data) = match &self.subject {
            Subject::Anomaly(a) => (word.to_owned(), serde_json::to_string(a)),
            Subject::Incident(i) => (format!("incident_{word}"), serde_json::to_string(i)),
        };
        let data = data.unwrap_or_else(|_| "{}".into());
        format!("event: {kind}\nid: {}\ndata: {data}\n\n", self.seq)
    }
}

#[derive(Clone)]
pub struct EventHub {
    tx: broadcast::Sender<Arc<LiveEvent>>,
    /// Set when the server stops, so that open streams end instead of holding the shutdown up.
    closed: tokio::sync::watch::Sender<bool>,
    /// Moves on with every event: what was read from the store before may be stale.
    generation: Arc<AtomicU64>,
    /// Rung by this process's writes: the journal has something new.
    written: Arc<Notify>,
}

impl Default for EventHub {
    fn default() -> Self {
        EventHub {
            tx: broadcast::channel(BUFFER).0,
            closed: tokio::sync::watch::channel(false).0,
            generation: Default::default(),
            written: Default::default(),
        }
    }
}

impl EventHub {
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Marks what was read from the store before as possibly stale.
    pub fn bump(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Says that this process wrote anomalies or incidents: the follower reads the journal now.
    pub fn wake(&self) {
        self.bump();
        self.written.notify_one();
    }

    /// Ends every open stream, and the follower.
    pub fn close(&self) {
        self.closed.send_replace(true);
    }

    /// Puts an event on every open stream (the follower's job).
    pub fn publish(&self, event: LiveEvent) {
        self.bump();
        // No subscriber is not an error.
        let _ = self.tx.send(Arc::new(event));
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<LiveEvent>> {
        self.tx.subscribe()
    }
}
