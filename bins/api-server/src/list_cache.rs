//! A short-lived cache of first pages of `GET /api/anomalies`, for dashboards that many people keep
//! open: the same first page is asked for again and again, and serialising 50 anomalies costs far more
//! than sending bytes. An entry is served only while it is younger than the TTL (1 s by default) and
//! nothing has changed since as far as this instance knows (its own writes and every live event it
//! reads from the store bump [`EventHub::generation`]); other processes' changes show within the TTL at
//! the latest.

use crate::events::EventHub;
use actix_web::web::Bytes;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Distinct first pages kept at once; past it the cache starts again empty.
const MAX_ENTRIES: usize = 256;

pub struct ListCache {
    ttl: Duration,
    entries: Mutex<HashMap<String, Entry>>,
}

struct Entry {
    made: Instant,
    generation: u64,
    body: Bytes,
}

impl ListCache {
    /// A zero TTL turns the cache off.
    pub fn new(ttl: Duration) -> Self {
        ListCache {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    pub fn get(&self, key: &str, events: &EventHub) -> Option<Bytes> {
        if self.ttl.is_zero() {
            return None;
        }
        let entries = self.entries.lock().ok()?;
        let entry = entries.get(key)?;
        (entry.made.elapsed() < self.ttl && entry.generation == events.generation())
            .then(|| entry.body.clone())
    }

    /// Keeps `body` for `key`, as of `generation` (read before the store was asked).
    pub fn put(&self, key: String, generation: u64, body: Bytes) {
        if self.ttl.is_zero() {
            return;
        }
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
            entries.insert(
                key,
                Entry {
                    made: Instant::now(),
                    generation,
                    body,
                },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_local_changes_invalidate_them() {
        let events = EventHub::default();
        let cache = ListCache::new(Duration::from_millis(200));
        cache.put("a".into(), events.generation(), Bytes::from_static(b"page"));
        assert_eq!(cache.get("a", &events).as_deref(), Some(&b"page"[..]));
        assert_eq!(cache.get("b", &events), None);
        events.bump();
        assert_eq!(cache.get("a", &events), None, "a change since");
        cache.put("a".into(), events.generation(), Bytes::from_static(b"page"));
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(cache.get("a", &events), None, "expired");
        let off = ListCache::new(Duration::ZERO);
        off.put("a".into(), events.generation(), Bytes::from_static(b"page"));
        assert_eq!(off.get("a", &events), None);
    }
}
