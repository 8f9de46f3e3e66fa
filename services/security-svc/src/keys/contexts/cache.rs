//! A bounded least-recently-used map of unwrapped context data keys, each with the sealing keys
//! derived from it so far. Each is wiped when the last holder drops it: on eviction here, once
//! no request still uses it.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use zeroize::Zeroizing;

use super::ContextHash;
use super::sealing::ContextDataKey;
use crate::keys::material::KEY_LEN;

/// A context's plain data key, wiped when the last reference goes.
pub type ContextKey = Arc<Zeroizing<[u8; KEY_LEN]>>;

struct Entry {
    key: Arc<ContextDataKey>,
    /// The key ring's generation when the entry was read from storage.
    generation: i64,
    /// When it was last used.
    used: u64,
    /// Its place in the queue of use: when it was last used as of its queueing.
    queued_at: u64,
}

/// Recency is kept lazily: a hit only stamps its entry, and the queue of use is put right when
/// an eviction meets an entry used since it was queued, so a hit costs a map lookup and an
/// eviction still takes the least recently used key.
#[derive(Default)]
struct Lru {
    tick: u64,
    /// How many destructions this cache has been told of.
    destroyed: u64,
    entries: HashMap<ContextHash, Entry>,
    /// Every entry, by its `queued_at`.
    queue: BTreeMap<u64, ContextHash>,
}

impl Lru {
    fn touch(&mut self, hash: ContextHash) -> Option<&Entry> {
        self.tick += 1;
        let tick = self.tick;
        let entry = self.entries.get_mut(&hash)?;
        entry.used = tick;
        Some(entry)
    }

    fn insert(&mut self, hash: ContextHash, key: Arc<ContextDataKey>, generation: i64) {
        self.remove(&hash);
        self.tick += 1;
        let used = self.tick;
        self.queue.insert(used, hash);
        let entry = Entry {
            key,
            generation,
            used,
            queued_at: used,
        };
        self.entries.insert(hash, entry);
    }

    fn remove(&mut self, hash: &ContextHash) {
        if let Some(entry) = self.entries.remove(hash) {
            self.queue.remove(&entry.queued_at);
        }
    }

    /// Evicts the least recently used entry: the first in the queue that was not used since it
    /// was queued. Those used since are queued again as of their last use.
    fn evict_oldest(&mut self) {
        while let Some((_, hash)) = self.queue.pop_first() {
            let Some(entry) = self.entries.get_mut(&hash) else {
                continue;
            };
            if entry.used == entry.queued_at {
                self.entries.remove(&hash);
                return;
            }
            entry.queued_at = entry.used;
            self.queue.insert(entry.used, hash);
        }
    }
}

/// How many destructions a cache had been told of when a read from storage began: a key read
/// before a destruction is not cached after it (see [`ContextKeyCache::put`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Destructions(u64);

/// The unwrapped context keys of one instance, at most `capacity` of them.
pub struct ContextKeyCache {
    capacity: usize,
    lru: Mutex<Lru>,
}

impl ContextKeyCache {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            lru: Mutex::new(Lru::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Lru> {
        self.lru.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The cached key, if it was read from storage no earlier than ring generation `generation`
    /// (a key deleted and made again under the same name has a new generation).
    pub fn get(&self, hash: ContextHash, generation: i64) -> Option<Arc<ContextDataKey>> {
        let mut lru = self.lock();
        let entry = lru.touch(hash)?;
        (entry.generation >= generation).then(|| entry.key.clone())
    }

    /// The destructions told so far, taken before reading keys from storage.
    pub fn destructions(&self) -> Destructions {
        Destructions(self.lock().destroyed)
    }

    /// Remembers a key read from storage when the cache had been told of `read_after`
    /// destructions, evicting the least recently used key when full. Nothing is remembered
    /// when a destruction was told since: the key may be one of the destroyed.
    pub fn put(
        &self,
        hash: ContextHash,
        key: Arc<ContextDataKey>,
        generation: i64,
        read_after: Destructions,
    ) {
        if self.capacity == 0 {
            return;
        }
        let mut lru = self.lock();
        if lru.destroyed != read_after.0 {
            return;
        }
        lru.remove(&hash);
        while lru.entries.len() >= self.capacity {
            lru.evict_oldest();
        }
        lru.insert(hash, key, generation);
    }

    /// Forgets the keys of destroyed contexts.
    pub fn destroyed(&self, hashes: impl IntoIterator<Item = ContextHash>) {
        let mut lru = self.lock();
        for hash in hashes {
            lru.destroyed += 1;
            lru.remove(&hash);
        }
    }

    /// How many keys are held.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> Arc<ContextDataKey> {
        ContextDataKey::new(Arc::new(Zeroizing::new([byte; KEY_LEN])))
    }

    fn hash(byte: u8) -> ContextHash {
        ContextHash([byte; 32])
    }

    #[test]
    fn the_least_recently_used_key_is_evicted_first() {
        let cache = ContextKeyCache::new(2);
        let now = cache.destructions();
        cache.put(hash(1), key(1), 1, now);
        cache.put(hash(2), key(2), 1, now);
        assert!(cache.get(hash(1), 1).is_some());
        cache.put(hash(3), key(3), 1, now);
        assert_eq!(cache.len(), 2);
        assert!(cache.get(hash(2), 1).is_none());
        assert!(cache.get(hash(1), 1).is_some() && cache.get(hash(3), 1).is_some());
    }

    #[test]
    fn evictions_follow_the_order_of_last_use() {
        let cache = ContextKeyCache::new(3);
        let now = cache.destructions();
        for byte in 1..=3 {
            cache.put(hash(byte), key(byte), 1, now);
        }
        // Used in the order 1, 2 after they were put: 3 is the least recently used.
        assert!(cache.get(hash(1), 1).is_some() && cache.get(hash(2), 1).is_some());
        cache.put(hash(4), key(4), 1, now);
        assert!(cache.get(hash(3), 1).is_none());
        // Now 1 again, then 4: 2 is the least recently used.
        assert!(cache.get(hash(1), 1).is_some() && cache.get(hash(4), 1).is_some());
        cache.put(hash(5), key(5), 1, now);
        assert!(cache.get(hash(2), 1).is_none());
        // Put again, 1 counts as used: 4 goes next, then 5.
        cache.put(hash(1), key(1), 1, now);
        cache.put(hash(6), key(6), 1, now);
        assert_eq!(cache.len(), 3);
        assert!(cache.get(hash(4), 1).is_none());
        assert!(cache.get(hash(1), 1).is_some() && cache.get(hash(6), 1).is_some());
        let lru = cache.lock();
        assert_eq!(lru.queue.len(), lru.entries.len());
    }

    #[test]
    fn entries_older_than_the_ring_are_not_served() {
        let cache = ContextKeyCache::new(4);
        cache.put(hash(1), key(1), 5, cache.destructions());
        assert!(cache.get(hash(1), 5).is_some());
        assert!(cache.get(hash(1), 6).is_none());
        let none = ContextKeyCache::new(0);
        none.put(hash(1), key(1), 1, none.destructions());
        assert!(none.is_empty());
    }

    #[test]
    fn a_destruction_evicts_only_its_context_and_keys_read_before_it_are_not_cached() {
        let cache = ContextKeyCache::new(4);
        let before = cache.destructions();
        cache.put(hash(1), key(1), 1, before);
        cache.put(hash(2), key(2), 1, before);
        cache.destroyed([hash(1)]);
        assert!(cache.get(hash(1), 1).is_none());
        assert!(cache.get(hash(2), 1).is_some());
        // A read that began before the destruction ends after it: its key is not kept.
        cache.put(hash(1), key(1), 1, before);
        assert!(cache.get(hash(1), 1).is_none());
        cache.put(hash(3), key(3), 1, cache.destructions());
        assert!(cache.get(hash(3), 1).is_some());
    }
}
