//! `GET /api/anomalies/stream`: the events of the hub, after those a reconnecting client missed.

use super::{EventHub, LiveEvent};
use crate::AppState;
use crate::auth::{Caller, Permission};
use crate::error::ApiError;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::stream;
use serde_json::json;
use std::collections::{HashSet, VecDeque};
use std::time::Duration;
use store_pg::Repository;
use tokio::sync::broadcast;

const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// The most events a reconnecting stream is sent from the journal; further behind, it is told to
/// reload (`event: lagged`).
pub const REPLAY_MAX: u32 = 1_000;

/// The number in `Last-Event-ID`, if the header is there.
fn last_event_id(req: &HttpRequest) -> Result<Option<i64>, ApiError> {
    let Some(value) = req.headers().get("Last-Event-ID") else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or("").trim();
    match text.parse::<i64>() {
        Ok(seq) if seq >= 0 => Ok(Some(seq)),
        _ => Err(ApiError::bad_request(
            "Last-Event-ID must be the id of an event of this stream (a whole number from 0)",
            json!({ "header": "Last-Event-ID", "value": text }),
        )),
    }
}

/// What a stream reconnecting after `seq` missed: the events, or `lagged` when the journal cannot
/// give them all.
enum Replay {
    Events(Vec<LiveEvent>),
    Lagged(i64),
}

async fn replay(state: &AppState, after: i64) -> Result<Replay, ApiError> {
    let bounds = state.store.live_event_bounds().await?;
    let missed = bounds.latest.saturating_sub(after);
    // Older than what the journal keeps, or more than one read gives.
    if after + 1 < bounds.oldest || missed > i64::from(REPLAY_MAX) {
        return Ok(Replay::Lagged(missed));
    }
    let events = state.store.live_events_after(after, REPLAY_MAX).await?;
    Ok(Replay::Events(
        events
            .into_iter()
            .filter_map(LiveEvent::from_stored)
            .collect(),
    ))
}

fn lagged(missed: i64) -> String {
    format!("event: lagged\ndata: {{\"missed\": {missed}}}\n\n")
}

#[utoipa::path(get, path = "/api/anomalies/stream", tag = "anomalies",
    params(("Last-Event-ID" = Option<String>, Header,
        description = "The `id:` of the last event received: the stream first sends the events after it (at most 1,000; further behind, an `event: lagged`)")),
    responses((status = 200, content_type = "text/event-stream",
        description = "Server-Sent Events: `new`, `updated` and `resolved`, each with an anomaly as data; `incident_updated` (opened or changed) and `incident_resolved`, each with an incident as data; `id:` the event's sequence number; `lagged` when events were missed (reload)"),
        (status = 400, description = "Last-Event-ID is not an event id", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn stream(
    hub: web::Data<EventHub>,
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::Read)?;
    let after = last_event_id(&req)?;
    // Subscribed before the journal is read: an event is in the replay, on the channel, or both.
    let rx = hub.subscribe();
    let mut first: VecDeque<String> = VecDeque::from([": connected\n\n".to_owned()]);
    let mut replayed = HashSet::new();
    match after {
        None => {}
        Some(after) => match replay(&state, after).await? {
            Replay::Lagged(missed) => first.push_back(lagged(missed)),
            Replay::Events(events) => {
                for event in events {
                    replayed.insert(event.seq);
                    first.push_back(event.frame());
                }
            }
        },
    }
    let closed = hub.closed.subscribe();
    let body = stream::unfold(
        (rx, closed, first, replayed),
        |(mut rx, mut closed, mut first, replayed)| async move {
            // The first frame tells the client the stream is open (and proxies to flush headers).
            if let Some(text) = first.pop_front() {
                return Some((
                    Ok::<_, actix_web::Error>(web::Bytes::from(text)),
                    (rx, closed, first, replayed),
                ));
            }
            let text = loop {
                if *closed.borrow() {
                    return None;
                }
                let next = tokio::select! {
                    next = tokio::time::timeout(KEEP_ALIVE, rx.recv()) => next,
                    _ = closed.changed() => return None,
                };
                match next {
                    Err(_) => break ": keep-alive\n\n".to_owned(),
                    Ok(Ok(event)) if replayed.contains(&event.seq) => continue,
                    Ok(Ok(event)) => break event.frame(),
                    Ok(Err(broadcast::error::RecvError::Lagged(n))) => {
                        break lagged(i64::try_from(n).unwrap_or(i64::MAX));
                    }
                    Ok(Err(broadcast::error::RecvError::Closed)) => return None,
                }
            };
            Some((Ok(web::Bytes::from(text)), (rx, closed, first, replayed)))
        },
    );
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(body))
}
