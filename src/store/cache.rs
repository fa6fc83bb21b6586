//! Rows as last read, for what is read on every request: an object with its attributes
//! (KMIP Encrypt, Sign, MAC, Get), an ACME order and its authorizations (each of an
//! issuance's requests). Each read is one or two queries whose rows cross to SQLite's
//! worker thread and back, which cost the server more than the work itself.
//!
//! On a store this process serves alone (SQLite), a write this process makes drops what
//! it changes once its transaction is over (the one order, or all objects at once), and a
//! read that a write overlapped is not kept. Entries also expire after [`TTL`], the bound
//! on how long a change another process makes to the same file (`strongroom tde`, run
//! beside the server) goes unseen.
//!
//! On a store replicas share (PostgreSQL), only objects are cached, and each use checks
//! first that the object's version and Fresh flag are still those read (one single-row
//! query in place of two, one of them a row per attribute): every change to an object or
//! its attributes moves its version, whichever replica makes it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kmip::attributes::Attribute;

use super::{AuthzRow, ObjectRow, OrderRow};

/// How long an entry serves at most.
pub(super) const TTL: Duration = Duration::from_secs(1);
/// Most entries a cache keeps; past that, expired ones go, then all.
const CAPACITY: usize = 4096;

/// A store's caches.
pub(super) struct Caches {
    pub(super) objects: Cache<(ObjectRow, Vec<Attribute>)>,
    /// Whether an object must be checked against the store before each use (replicas).
    pub(super) validate_objects: bool,
    /// ACME orders by id; none on a shared store.
    pub(super) orders: Option<Cache<OrderRow>>,
    /// ACME authorizations by their order's id; none on a shared store.
    pub(super) authorizations: Option<Cache<Vec<AuthzRow>>>,
}

/// How long a checked entry serves at most (it is checked at each use anyway).
const CHECKED_TTL: Duration = Duration::from_secs(60);

impl Caches {
    /// For a store this process serves alone.
    pub(super) fn sole() -> Caches {
        Caches {
            objects: Cache::new(TTL),
            validate_objects: false,
            orders: Some(Cache::new(TTL)),
            authorizations: Some(Cache::new(TTL)),
        }
    }

    /// For a store replicas share.
    pub(super) fn shared() -> Caches {
        Caches {
            objects: Cache::new(CHECKED_TTL),
            validate_objects: true,
            orders: None,
            authorizations: None,
        }
    }
}

struct Inner<V> {
    /// Moves with every change, so that a read begun before it is not kept.
    generation: u64,
    entries: HashMap<String, (Instant, V)>,
}

pub(super) struct Cache<V> {
    inner: Mutex<Inner<V>>,
    ttl: Duration,
}

impl<V: Clone> Cache<V> {
    pub(super) fn new(ttl: Duration) -> Cache<V> {
        Cache { inner: Mutex::new(Inner { generation: 0, entries: HashMap::new() }), ttl }
    }

    /// What was read for `key` since it last changed, if it is here.
    pub(super) fn get(&self, key: &str) -> Option<V> {
        let inner = self.inner.lock().ok()?;
        let (read, value) = inner.entries.get(key)?;
        (read.elapsed() < self.ttl).then(|| value.clone())
    }

    /// The generation to pass to [`Cache::put`]: taken before reading the store.
    pub(super) fn generation(&self) -> u64 {
        self.inner.lock().map_or(u64::MAX, |i| i.generation)
    }

    /// Keeps what was read at `generation`, unless something changed since.
    pub(super) fn put(&self, generation: u64, key: &str, value: V) {
        let Ok(mut inner) = self.inner.lock() else { return };
        if generation != inner.generation {
            return;
        }
        if inner.entries.len() >= CAPACITY {
            let ttl = self.ttl;
            inner.entries.retain(|_, (read, _)| read.elapsed() < ttl);
            if inner.entries.len() >= CAPACITY {
                inner.entries.clear();
            }
        }
        inner.entries.insert(key.to_owned(), (Instant::now(), value));
    }

    /// Drops `key`, after a write changed it.
    pub(super) fn forget(&self, key: &str) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.generation += 1;
            inner.entries.remove(key);
        }
    }

    /// Drops every entry, after a write changed some.
    pub(super) fn clear(&self) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.generation += 1;
            inner.entries.clear();
        }
    }

    /// A guard that drops every entry when it goes: held by a write for its whole length,
    /// so whichever way it ends (committed, failed, returned early), the entries go after
    /// its transaction is over.
    pub(super) fn writing(&self) -> Writing<'_, V> {
        Writing(self)
    }
}

pub(super) struct Writing<'a, V: Clone>(&'a Cache<V>);

impl<V: Clone> Drop for Writing<'_, V> {
    fn drop(&mut self) {
        self.0.clear();
    }
}

/// `read`'s result for `key`, from `cache` when it has it (and kept there when found).
pub(super) async fn read_through<V: Clone>(
    cache: Option<&Cache<V>>,
    key: &str,
    read: impl std::future::Future<Output = Result<Option<V>, super::StoreError>>,
) -> Result<Option<V>, super::StoreError> {
    let Some(cache) = cache else { return read.await };
    if let Some(hit) = cache.get(key) {
        return Ok(Some(hit));
    }
    let generation = cache.generation();
    let value = read.await?;
    if let Some(v) = &value {
        cache.put(generation, key, v.clone());
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_serve_until_a_change_or_their_time_is_up() {
        let cache = Cache::new(Duration::from_millis(50));
        assert!(cache.get("a").is_none());
        let g = cache.generation();
        cache.put(g, "a", 1);
        cache.put(g, "b", 2);
        assert_eq!(cache.get("a"), Some(1));

        // A write drops what it changed, and a read begun before any write is not kept.
        cache.forget("a");
        assert_eq!((cache.get("a"), cache.get("b")), (None, Some(2)));
        cache.put(g, "a", 1);
        assert!(cache.get("a").is_none());
        drop(cache.writing());
        assert!(cache.get("b").is_none());

        let g = cache.generation();
        cache.put(g, "a", 3);
        assert_eq!(cache.get("a"), Some(3));
        std::thread::sleep(Duration::from_millis(60));
        assert!(cache.get("a").is_none());
    }

    #[test]
    fn a_full_cache_makes_room() {
        let cache = Cache::new(TTL);
        let g = cache.generation();
        for i in 0..CAPACITY + 10 {
            cache.put(g, &i.to_string(), i);
        }
        let kept = cache.inner.lock().map(|i| i.entries.len()).unwrap_or(0);
        assert!(kept <= CAPACITY, "{kept}");
        assert_eq!(cache.get(&(CAPACITY + 9).to_string()), Some(CAPACITY + 9));
    }
}
