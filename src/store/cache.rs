//! Rows as last read, for what is read on every request: an object with its attributes
//! (KMIP Encrypt, Sign, MAC, Get), and what an ACME issuance's requests read (the order,
//! its authorizations and challenges, the account's EAB binding, the certificate to
//! download). Each read is one or two queries whose rows cross to SQLite's worker thread
//! and back, which cost the server more than the work itself.
//!
//! On a store this process serves alone (SQLite), a write this process makes drops what
//! it changes once its transaction is over (the one order, or all objects at once), and a
//! read that a write overlapped is not kept. What ACME writes (a new order with its
//! authorizations and challenges, an issued certificate) is kept as written, while the
//! write still holds SQLite's one write connection, so that writes to one entry reach the
//! cache in the order they were committed. Entries also expire after [`TTL`], the bound
//! on how long a change another process makes to the same file (`strongroom tde`, run
//! beside the server) goes unseen.
//!
//! On a store replicas share (PostgreSQL), objects are cached, and each use checks first
//! that the object's version and Fresh flag are still those read (one single-row query in
//! place of two, one of them a row per attribute): every change to an object or its
//! attributes moves its version, whichever replica makes it. Of ACME's rows, only those
//! that never change once written are kept there: an issued certificate as downloaded,
//! and the EAB key an account was bound with (bound in the transaction that made it).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kmip::attributes::Attribute;

use super::{AcmeCertificate, AuthzRow, ChallengeRow, EabKeyRow, ObjectRow, OrderRow};

/// How long an entry serves at most.
pub(super) const TTL: Duration = Duration::from_secs(1);
/// Most entries a cache keeps; past that, expired ones go, then all.
const CAPACITY: usize = 4096;

/// A store's caches.
pub(super) struct Caches {
    pub(super) objects: Cache<(ObjectRow, Vec<Attribute>)>,
    /// Whether an object must be checked against the store before each use (replicas).
    pub(super) validate_objects: bool,
    /// None on a shared store.
    pub(super) acme: Option<AcmeCaches>,
    /// Issued ACME certificates by serial, as downloaded (which never changes).
    pub(super) certificates: Cache<AcmeCertificate>,
    /// The EAB key each ACME account was bound with, or none (fixed when the account is
    /// made).
    pub(super) eab: Cache<Option<EabKeyRow>>,
}

/// What an ACME issuance reads, on a store one process serves.
pub(super) struct AcmeCaches {
    /// Orders by id.
    pub(super) orders: Cache<OrderRow>,
    /// Authorizations by their order's id.
    pub(super) authorizations: Cache<Vec<AuthzRow>>,
    /// Authorizations by id.
    pub(super) authorization: Cache<AuthzRow>,
    /// Challenges by their authorization's id.
    pub(super) challenges: Cache<Vec<ChallengeRow>>,
}

impl AcmeCaches {
    /// Drops authorizations and challenges, after a write changed one.
    pub(super) fn authorizations_changed(&self) {
        self.authorizations.clear();
        self.authorization.clear();
        self.challenges.clear();
    }
}

/// How long a checked entry serves at most (it is checked at each use anyway).
const CHECKED_TTL: Duration = Duration::from_secs(60);

impl Caches {
    /// For a store this process serves alone.
    pub(super) fn sole() -> Caches {
        Caches {
            objects: Cache::new(TTL),
            validate_objects: false,
            acme: Some(AcmeCaches {
                orders: Cache::new(TTL),
                authorizations: Cache::new(TTL),
                authorization: Cache::new(TTL),
                challenges: Cache::new(TTL),
            }),
            certificates: Cache::new(TTL),
            eab: Cache::new(TTL),
        }
    }

    /// For a store replicas share.
    pub(super) fn shared() -> Caches {
        Caches {
            objects: Cache::new(CHECKED_TTL),
            validate_objects: true,
            acme: None,
            certificates: Cache::new(TTL),
            eab: Cache::new(TTL),
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
        self.insert(&mut inner, key, value);
    }

    fn insert(&self, inner: &mut Inner<V>, key: &str, value: V) {
        if inner.entries.len() >= CAPACITY {
            let ttl = self.ttl;
            inner.entries.retain(|_, (read, _)| read.elapsed() < ttl);
            if inner.entries.len() >= CAPACITY {
                inner.entries.clear();
            }
        }
        inner.entries.insert(key.to_owned(), (Instant::now(), value));
    }

    /// Keeps `value` as `key`'s, just written by this process (a read begun before is not
    /// kept). Called while the write still holds the store's write connection.
    pub(super) fn write(&self, key: &str, value: V) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.generation += 1;
            self.insert(&mut inner, key, value);
        }
    }

    /// Applies a write this process just made to `key`'s entry, if there is one (it keeps
    /// its age). Called while the write still holds the store's write connection.
    pub(super) fn update(&self, key: &str, change: impl FnOnce(&mut V)) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.generation += 1;
            if let Some((_, value)) = inner.entries.get_mut(key) {
                change(value);
            }
        }
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
    fn writes_are_kept_as_written_and_reads_begun_before_are_not() {
        let cache = Cache::new(Duration::from_millis(50));
        let g = cache.generation();
        cache.write("a", 1);
        cache.put(g, "a", 0);
        assert_eq!(cache.get("a"), Some(1));

        let g = cache.generation();
        cache.update("a", |v| *v += 1);
        cache.update("b", |v| *v += 1);
        cache.put(g, "a", 0);
        assert_eq!((cache.get("a"), cache.get("b")), (Some(2), None));

        // An update keeps the entry's age: it expires when the written entry would.
        std::thread::sleep(Duration::from_millis(30));
        cache.update("a", |v| *v += 1);
        std::thread::sleep(Duration::from_millis(30));
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
