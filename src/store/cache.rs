//! Objects with their attributes as last read, for the operations that read them on every
//! request (Encrypt, Sign, MAC, Get): each read is two queries whose rows cross to
//! SQLite's worker thread and back, which cost the server more than the HSM call itself.
//!
//! Only for a store this process serves alone (SQLite). Every write this process makes to
//! objects or attributes moves a generation counter that outdates all entries at once;
//! an entry also expires after [`TTL`], the bound on how long a change another process
//! makes to the same file (`strongroom tde`, run beside the server) goes unseen.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kmip::attributes::Attribute;

use super::ObjectRow;

/// How long an entry serves at most.
pub(super) const TTL: Duration = Duration::from_secs(1);
/// Most entries kept; past that, outdated ones go, then all.
const CAPACITY: usize = 4096;

struct Entry {
    generation: u64,
    read: Instant,
    row: ObjectRow,
    attributes: Vec<Attribute>,
}

pub(super) struct ObjectCache {
    generation: AtomicU64,
    entries: Mutex<HashMap<String, Entry>>,
    ttl: Duration,
}

impl ObjectCache {
    pub(super) fn new(ttl: Duration) -> ObjectCache {
        ObjectCache { generation: AtomicU64::new(0), entries: Mutex::default(), ttl }
    }

    /// The object `id` as read since the last change, if it is here.
    pub(super) fn get(&self, id: &str) -> Option<(ObjectRow, Vec<Attribute>)> {
        let generation = self.generation.load(Ordering::Acquire);
        let entries = self.entries.lock().ok()?;
        let e = entries.get(id)?;
        (e.generation == generation && e.read.elapsed() < self.ttl)
            .then(|| (e.row.clone(), e.attributes.clone()))
    }

    /// The generation to pass to [`ObjectCache::put`]: taken before reading the store, so
    /// that a change committed during the read outdates what it read.
    pub(super) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Keeps what was read at `generation`, unless something changed since.
    pub(super) fn put(&self, generation: u64, row: &ObjectRow, attributes: &[Attribute]) {
        let Ok(mut entries) = self.entries.lock() else { return };
        if generation != self.generation.load(Ordering::Acquire) {
            return;
        }
        if entries.len() >= CAPACITY {
            let ttl = self.ttl;
            entries.retain(|_, e| e.generation == generation && e.read.elapsed() < ttl);
            if entries.len() >= CAPACITY {
                entries.clear();
            }
        }
        let entry = Entry {
            generation,
            read: Instant::now(),
            row: row.clone(),
            attributes: attributes.to_vec(),
        };
        entries.insert(row.id.clone(), entry);
    }

    /// Outdates every entry: called after each write to objects or attributes.
    pub(super) fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// A guard that outdates every entry when dropped: held by a write for its whole
    /// length, so whichever way it ends (committed, failed, returned early), entries are
    /// outdated after its transaction is over.
    pub(super) fn writing(&self) -> Writing<'_> {
        Writing(self)
    }
}

pub(super) struct Writing<'a>(&'a ObjectCache);

impl Drop for Writing<'_> {
    fn drop(&mut self) {
        self.0.invalidate();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str) -> ObjectRow {
        ObjectRow::for_test(id, "alice", 1)
    }

    #[test]
    fn entries_serve_until_a_change_or_their_time_is_up() {
        let cache = ObjectCache::new(Duration::from_millis(50));
        assert!(cache.get("a").is_none());
        let g = cache.generation();
        cache.put(g, &row("a"), &[]);
        assert_eq!(cache.get("a").map(|(r, _)| r.id), Some("a".to_owned()));

        // A write outdates it, and a read begun before the write is not kept.
        drop(cache.writing());
        assert!(cache.get("a").is_none());
        cache.put(g, &row("a"), &[]);
        assert!(cache.get("a").is_none());

        let g = cache.generation();
        cache.put(g, &row("a"), &[]);
        assert!(cache.get("a").is_some());
        std::thread::sleep(Duration::from_millis(60));
        assert!(cache.get("a").is_none());
    }

    #[test]
    fn a_full_cache_makes_room() {
        let cache = ObjectCache::new(TTL);
        let g = cache.generation();
        for i in 0..CAPACITY + 10 {
            cache.put(g, &row(&i.to_string()), &[]);
        }
        let kept = cache.entries.lock().map(|e| e.len()).unwrap_or(0);
        assert!(kept <= CAPACITY, "{kept}");
        assert!(cache.get(&(CAPACITY + 9).to_string()).is_some());
    }
}
