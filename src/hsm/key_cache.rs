//! Sealed secret keys kept open in the HSM between operations. Opening a sealed key costs a
//! C_Decrypt under the KEK and a C_CreateObject, several times the cost of the AES
//! operation itself; a key used again finds its session object here instead. Entries are
//! found by the object's identifier and checked against the sealed bytes they were opened
//! from, so changed material is never served from an old copy. The copies are sensitive
//! and not extractable, owned by the connection's anchor session, and gone with the
//! connection. At most [`CAPACITY`] are kept (oldest out first); an evicted or forgotten
//! copy is destroyed once no operation still holds it.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// How many opened keys a connection keeps.
pub(super) const CAPACITY: usize = 1024;

/// An opened key's session object (its handle `H`); destroyed only when no caller holds it.
pub(super) struct OpenKey<H> {
    pub(super) handle: H,
}

struct Entry<H> {
    sealed: Vec<u8>,
    key: Arc<OpenKey<H>>,
}

pub(super) struct KeyCache<H> {
    entries: HashMap<Vec<u8>, Entry<H>>,
    /// Insertion order, for eviction; may name entries already removed.
    order: VecDeque<Vec<u8>>,
    /// Copies taken out of the cache, waiting until their last user lets go.
    retired: Vec<Arc<OpenKey<H>>>,
}

impl<H> Default for KeyCache<H> {
    fn default() -> Self {
        KeyCache { entries: HashMap::new(), order: VecDeque::new(), retired: Vec::new() }
    }
}

impl<H: Copy> KeyCache<H> {
    /// The open copy of the key `id` sealed as `sealed`, if there is one.
    pub(super) fn get(&self, id: &[u8], sealed: &[u8]) -> Option<Arc<OpenKey<H>>> {
        self.entries.get(id).filter(|e| e.sealed == sealed).map(|e| e.key.clone())
    }

    /// Keeps `key` as the open copy of `id`, evicting the oldest entries beyond the
    /// capacity. Returns the handles now safe to destroy.
    pub(super) fn insert(&mut self, id: &[u8], sealed: &[u8], key: Arc<OpenKey<H>>) -> Vec<H> {
        let entry = Entry { sealed: sealed.to_vec(), key };
        if let Some(old) = self.entries.insert(id.to_vec(), entry) {
            self.retired.push(old.key);
        } else {
            self.order.push_back(id.to_vec());
        }
        while self.entries.len() > CAPACITY {
            let Some(oldest) = self.order.pop_front() else { break };
            if let Some(old) = self.entries.remove(&oldest) {
                self.retired.push(old.key);
            }
        }
        self.sweep()
    }

    /// Drops the copy of `id` (its object was destroyed). Returns the handles now safe to
    /// destroy.
    pub(super) fn forget(&mut self, id: &[u8]) -> Vec<H> {
        if let Some(old) = self.entries.remove(id) {
            self.order.retain(|k| k.as_slice() != id);
            self.retired.push(old.key);
        }
        self.sweep()
    }

    /// Retired copies no caller holds any more.
    fn sweep(&mut self) -> Vec<H> {
        let mut free = Vec::new();
        self.retired.retain(|k| {
            let unused = Arc::strong_count(k) == 1;
            if unused {
                free.push(k.handle);
            }
            !unused
        });
        free
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u64) -> Arc<OpenKey<u64>> {
        Arc::new(OpenKey { handle: n })
    }

    #[test]
    fn a_copy_serves_only_the_material_it_was_opened_from() {
        let mut c = KeyCache::<u64>::default();
        assert!(c.insert(b"k1", b"sealed-a", key(1)).is_empty());
        assert_eq!(c.get(b"k1", b"sealed-a").map(|k| k.handle), Some(1));
        assert!(c.get(b"k1", b"sealed-b").is_none());
        assert!(c.get(b"k2", b"sealed-a").is_none());
        // New material for the same object replaces the copy; the old one is freed.
        assert_eq!(c.insert(b"k1", b"sealed-b", key(2)), vec![1]);
        assert!(c.get(b"k1", b"sealed-a").is_none());
    }

    #[test]
    fn copies_in_use_are_destroyed_only_once_released() {
        let mut c = KeyCache::<u64>::default();
        c.insert(b"k1", b"s", key(1));
        let held = c.get(b"k1", b"s").unwrap();
        assert!(c.forget(b"k1").is_empty(), "still held by an operation");
        assert!(c.get(b"k1", b"s").is_none());
        drop(held);
        assert_eq!(c.forget(b"other"), vec![1]);
    }

    #[test]
    fn the_oldest_copies_go_beyond_the_capacity() {
        let mut c = KeyCache::<u64>::default();
        let mut freed = Vec::new();
        for n in 0..(CAPACITY as u64 + 2) {
            freed.extend(c.insert(&n.to_be_bytes(), b"s", key(n)));
        }
        assert_eq!(freed, vec![0, 1]);
        assert!(c.get(&0u64.to_be_bytes(), b"s").is_none());
        assert!(c.get(&2u64.to_be_bytes(), b"s").is_some());
        assert_eq!(c.entries.len(), CAPACITY);
    }
}
