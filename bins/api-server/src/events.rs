//! Live events for the alert panel: `GET /api/anomalies/stream` answers Server-Sent Events
//! (`event: new|updated|resolved`, `data:` the anomaly's API shape; `event:
//! incident_updated|incident_resolved` for an incident opened or changed, and ended, `data:` the
//! incident's), with a comment line as a keep-alive.
//!
//! Events come from this process: anomalies and incidents its in-process detection stored, and
//! resolutions made through it. A client that falls behind by more than the buffer gets an `event: lagged` and should
//! reload the list (the stream never blocks the detectors).

use crate::auth::{Caller, Permission};
use crate::error::ApiError;
use actix_web::{HttpResponse, web};
use futures_util::stream;
use serde::Serialize;
use std::time::Duration;
use store_pg::{AnomalyJson, IncidentRecord};
use tokio::sync::broadcast;

/// Events buffered per subscriber before it counts as lagging.
const BUFFER: usize = 1_024;
const KEEP_ALIVE: Duration = Duration::from_secs(15);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    New,
    Updated,
    Resolved,
}

#[derive(Clone, Debug, Serialize)]
pub struct AnomalyEvent {
    pub kind: EventKind,
    pub anomaly: AnomalyJson,
}

#[derive(Clone, Debug, Serialize)]
pub struct IncidentEvent {
    pub kind: EventKind,
    pub incident: IncidentRecord,
}

/// What the stream carries.
#[derive(Clone, Debug)]
pub enum LiveEvent {
    Anomaly(AnomalyEvent),
    Incident(IncidentEvent),
}

impl From<AnomalyEvent> for LiveEvent {
    fn from(e: AnomalyEvent) -> Self {
        LiveEvent::Anomaly(e)
    }
}

impl From<IncidentEvent> for LiveEvent {
    fn from(e: IncidentEvent) -> Self {
        LiveEvent::Incident(e)
    }
}

#[derive(Clone)]
pub struct EventHub {
    tx: broadcast::Sender<LiveEvent>,
    /// Set when the server stops, so that open streams end instead of holding the shutdown up.
    closed: tokio::sync::watch::Sender<bool>,
    /// Moves on with every event: what was read from the store before may be stale.
    generation: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Default for EventHub {
    fn default() -> Self {
        EventHub {
            tx: broadcast::channel(BUFFER).0,
            closed: tokio::sync::watch::channel(false).0,
            generation: Default::default(),
        }
    }
}

impl EventHub {
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Marks what was read from the store before as possibly stale.
    pub fn bump(&self) {
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    /// Ends every open stream.
    pub fn close(&self) {
        self.closed.send_replace(true);
    }

    pub fn publish(&self, event: impl Into<LiveEvent>) {
        self.bump();
        // No subscriber is not an error.
        let _ = self.tx.send(event.into());
    }

    pub fn subscribe(&self) -> broadcast::Receiver<LiveEvent> {
        self.tx.subscribe()
    }
}

fn frame(event: &LiveEvent) -> String {
    let word = |kind: EventKind| match kind {
        EventKind::New => "new",
        EventKind::Updated => "updated",
        EventKind::Resolved => "resolved",
    };
    // serde_json never writes a raw newline, so one `data:` line holds the whole object.
    let (kind, id, data) = match event {
        LiveEvent::Anomaly(e) => (
            word(e.kind).to_owned(),
            e.anomaly.id,
            serde_json::to_string(&e.anomaly),
        ),
        LiveEvent::Incident(e) => (
            format!("incident_{}", word(e.kind)),
            e.incident.id,
            serde_json::to_string(&e.incident),
        ),
    };
    let data = data.unwrap_or_else(|_| "{}".into());
    format!("event: {kind}\nid: {id}\ndata: {data}\n\n")
}

#[utoipa::path(get, path = "/api/anomalies/stream", tag = "anomalies",
    responses((status = 200, content_type = "text/event-stream",
        description = "Server-Sent Events: `new`, `updated` and `resolved`, each with an anomaly as data; `incident_updated` (opened or changed) and `incident_resolved`, each with an incident as data")),
    security(("bearer" = [])))]
pub async fn stream(hub: web::Data<EventHub>, caller: Caller) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::Read)?;
    let rx = hub.subscribe();
    let closed = hub.closed.subscribe();
    let body = stream::unfold(
        (rx, closed, true),
        |(mut rx, mut closed, first)| async move {
            if first {
                // Tells the client the stream is open (and proxies to flush their headers).
                return Some((
                    Ok::<_, actix_web::Error>(web::Bytes::from_static(b": connected\n\n")),
                    (rx, closed, false),
                ));
            }
            if *closed.borrow() {
                return None;
            }
            let next = tokio::select! {
                next = tokio::time::timeout(KEEP_ALIVE, rx.recv()) => next,
                _ = closed.changed() => return None,
            };
            let text = match next {
                Err(_) => ": keep-alive\n\n".to_owned(),
                Ok(Ok(event)) => frame(&event),
                Ok(Err(broadcast::error::RecvError::Lagged(n))) => {
                    format!("event: lagged\ndata: {{\"missed\": {n}}}\n\n")
                }
                Ok(Err(broadcast::error::RecvError::Closed)) => return None,
            };
            Some((Ok(web::Bytes::from(text)), (rx, closed, false)))
        },
    );
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(body))
}
