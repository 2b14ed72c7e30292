//! The follower: reads the store's live-event journal after the last event it has served and
//! publishes what it finds on this process's [`EventHub`].
//!
//! Sequence numbers are allocated when a row is written, not when its transaction commits: an event
//! can appear after one with a higher number. So the follower keeps a floor (every event up to it is
//! served) and the numbers it has served above it, reads from the floor, serves only what is new, and
//! waits up to [`GAP_GRACE`] for a missing number before it counts it lost (a rolled-back
//! transaction's number never comes).

use super::{EventHub, LiveEvent, Subject};
use crate::telemetry::Metrics;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use store_pg::{LiveListener, Repository, Store};
use tracing::{info, warn};

/// Events read at once.
const BATCH: u32 = 500;
/// How long a missing sequence number is waited for.
pub const GAP_GRACE: Duration = Duration::from_secs(10);
/// Reads without being woken: often while no listener serves (the embedded store, whose other
/// writing processes cannot notify; a lost connection) or a gap is waited for, rarely otherwise.
const TICK_UNNOTIFIED: Duration = Duration::from_secs(1);
const TICK_NOTIFIED: Duration = Duration::from_secs(5);
/// A lost listener is replaced after this pause.
const RELISTEN: Duration = Duration::from_secs(2);

/// Where the follower is in the journal.
#[derive(Debug)]
struct Position {
    /// Every event up to here is served (or counted lost).
    floor: i64,
    /// Served events above the floor.
    served: BTreeSet<i64>,
    /// Since when the number after the floor is missing.
    missing_since: Option<Instant>,
}

impl Position {
    fn at(latest: i64) -> Self {
        Position {
            floor: latest,
            served: BTreeSet::new(),
            missing_since: None,
        }
    }

    /// Of `seqs` (read after the floor, ascending), those not served yet; they count as served.
    fn take(&mut self, seqs: impl IntoIterator<Item = i64>, now: Instant) -> Vec<i64> {
        let fresh: Vec<i64> = seqs
            .into_iter()
            .filter(|&seq| seq > self.floor && self.served.insert(seq))
            .collect();
        self.advance(now);
        fresh
    }

    /// Raises the floor over what is served, and over a missing number waited for long enough.
    fn advance(&mut self, now: Instant) {
        loop {
            while self.served.first() == Some(&(self.floor + 1)) {
                self.served.pop_first();
                self.floor += 1;
            }
            let Some(&next) = self.served.first() else {
                self.missing_since = None;
                return;
            };
            let since = *self.missing_since.get_or_insert(now);
            if now.duration_since(since) < GAP_GRACE {
                return;
            }
            // Given up: the numbers before `next` are not coming.
            self.floor = next - 1;
            self.missing_since = None;
        }
    }

    fn waiting_for_a_gap(&self) -> bool {
        !self.served.is_empty()
    }
}

/// Follows the journal until the hub closes. Starts at its current end: what was written before
/// this process started is in the lists, and a reconnecting stream asks for it by `Last-Event-ID`.
pub async fn follow(store: Store, hub: EventHub, metrics: Arc<Metrics>) {
    let mut closed = hub.closed.subscribe();
    let mut position = loop {
        match store.live_event_bounds().await {
            Ok(bounds) => break Position::at(bounds.latest),
            Err(error) => warn!(%error, "live events: cannot read the journal yet"),
        }
        tokio::select! {
            _ = tokio::time::sleep(RELISTEN) => {}
            _ = closed.changed() => return,
        }
    };
    let mut listener: Option<LiveListener> = None;
    let mut relisten_at = Instant::now();
    let mut listens = matches!(store, Store::Postgres(_));
    loop {
        if *closed.borrow() {
            return;
        }
        // Read until a short batch: everything written so far is served.
        loop {
            match store.live_events_after(position.floor, BATCH).await {
                Ok(events) => {
                    let full = events.len() == BATCH as usize;
                    let seqs: Vec<i64> = events.iter().map(|e| e.seq).collect();
                    let fresh: BTreeSet<i64> =
                        position.take(seqs, Instant::now()).into_iter().collect();
                    for event in events {
                        if fresh.contains(&event.seq)
                            && let Some(event) = LiveEvent::from_stored(event)
                        {
                            metrics.live_event(match event.subject {
                                Subject::Anomaly(_) => "anomaly",
                                Subject::Incident(_) => "incident",
                            });
                            hub.publish(event);
                        }
                    }
                    if !full || position.waiting_for_a_gap() {
                        break;
                    }
                }
                Err(error) => {
                    warn!(%error, "live events: cannot read the journal");
                    break;
                }
            }
        }
        if listens && listener.is_none() && Instant::now() >= relisten_at {
            match store.live_listener().await {
                Ok(Some(l)) => {
                    info!("live events: listening for other processes' writes");
                    metrics.live_listener(true);
                    listener = Some(l);
                    // What was written while no one listened.
                    continue;
                }
                Ok(None) => listens = false,
                Err(error) => {
                    warn!(%error, "live events: cannot listen; reading every second meanwhile");
                    relisten_at = Instant::now() + RELISTEN;
                }
            }
        }
        let tick = if listener.is_some() && !position.waiting_for_a_gap() {
            TICK_NOTIFIED
        } else {
            TICK_UNNOTIFIED
        };
        let notified = async {
            match listener.as_mut() {
                Some(l) => l.wait(tick).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = hub.written.notified() => {}
            _ = tokio::time::sleep(tick) => {}
            _ = closed.changed() => return,
            result = notified => {
                if let Err(error) = result {
                    warn!(%error, "live events: the listener is lost; listening again");
                    metrics.live_listener(false);
                    listener = None;
                    relisten_at = Instant::now() + RELISTEN;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_each_number_once_in_any_order() {
        let t = Instant::now();
        let mut p = Position::at(10);
        assert_eq!(p.take([11, 12, 14], t), vec![11, 12, 14]);
        assert_eq!(p.floor, 12, "13 is missing");
        // Read again from the floor: 14 is not served twice; 13 came late.
        assert_eq!(p.take([13, 14, 15], t), vec![13, 15]);
        assert_eq!(p.floor, 15);
        assert!(!p.waiting_for_a_gap());
        // Numbers at or below the floor are old.
        assert!(p.take([3, 15], t).is_empty());
    }

    #[test]
    fn a_missing_number_is_given_up_after_the_grace() {
        let t = Instant::now();
        let mut p = Position::at(0);
        assert_eq!(p.take([2, 3], t), vec![2, 3]);
        assert_eq!(p.floor, 0);
        assert!(p.waiting_for_a_gap());
        p.take([2, 3], t + GAP_GRACE / 2);
        assert_eq!(p.floor, 0, "still waited for");
        p.take([2, 3, 6], t + GAP_GRACE);
        assert_eq!(p.floor, 3, "1 given up; 4 and 5 are waited for from now");
        assert!(p.waiting_for_a_gap());
        p.take([6], t + GAP_GRACE * 2);
        assert_eq!(p.floor, 6);
        assert!(!p.waiting_for_a_gap());
    }
}
