//! One worker's copy of one stick table: a map from key to entry, entries
//! in least-recently-used order, bounded by `size`, emptied of entries not
//! touched for `expire`.
//!
//! Every entry's expiry is its last touch plus the table's one `expire`,
//! so the least recently used entry is also the first to expire: both
//! eviction and expiry take entries from the tail of one list.

use super::key::Key;
use crate::model::table::{Data, Delta};
use std::collections::HashMap;
use std::hash::BuildHasherDefault;

/// No slot (end of the LRU list).
const NIL: u32 = u32::MAX;

/// An entry and its place in the LRU list.
#[derive(Debug)]
pub(crate) struct Slot {
    pub key: Key,
    /// The owner's committed data (on the owner: the truth).
    pub data: Data,
    /// Changes made here and not yet folded into the owner (non-owners).
    pub pending: Delta,
    /// Last touch (milliseconds on the process clock).
    pub touched: u64,
    /// Queued for the next flush (fold or commit).
    pub dirty: bool,
    /// The data came from a peer node and was not changed here since
    /// (such entries are not pushed back to peer nodes).
    pub remote: bool,
    prev: u32,
    next: u32,
}

/// A hasher for keys: the fixed FNV/murmur mix of `hash.rs` (keys are
/// short; no per-process seed is needed since the table is never exposed
/// to hash flooding beyond its `size`).
#[derive(Default)]
pub(crate) struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0 = crate::base::hash::combine(self.0, crate::base::hash::hash_bytes(bytes));
    }
}

/// One worker's copy of a table.
pub(crate) struct Table {
    map: HashMap<Key, u32, BuildHasherDefault<KeyHasher>>,
    slots: Vec<Slot>,
    free: Vec<u32>,
    /// Most recently touched.
    head: u32,
    /// Least recently touched: the next to expire or be evicted.
    tail: u32,
    /// `size`: the most entries held.
    size: usize,
    /// `expire` in milliseconds.
    expire: u64,
}

impl Table {
    pub(crate) fn new(size: usize, expire: u64) -> Table {
        Table {
            map: HashMap::default(),
            slots: Vec::new(),
            free: Vec::new(),
            head: NIL,
            tail: NIL,
            size: size.max(1),
            expire,
        }
    }

    /// `expire` in milliseconds.
    pub(crate) fn expire_ms(&self) -> u64 {
        self.expire
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The entry for `key`, if present and not expired at `now`.
    pub(crate) fn get(&self, key: &Key, now: u64) -> Option<&Slot> {
        let &i = self.map.get(key)?;
        let s = &self.slots[i as usize];
        (!self.expired(s, now)).then_some(s)
    }

    /// The slot index of `key`, if present and not expired.
    pub(crate) fn find(&self, key: &Key, now: u64) -> Option<u32> {
        let &i = self.map.get(key)?;
        (!self.expired(&self.slots[i as usize], now)).then_some(i)
    }

    #[cfg(test)]
    pub(crate) fn slot(&self, i: u32) -> &Slot {
        &self.slots[i as usize]
    }

    pub(crate) fn slot_mut(&mut self, i: u32) -> &mut Slot {
        &mut self.slots[i as usize]
    }

    fn expired(&self, s: &Slot, now: u64) -> bool {
        s.touched + self.expire <= now
    }

    /// The entry for `key`, created empty if absent; touched (moved to the
    /// front, expiry refreshed) at `now` either way. When the table is
    /// full, the least recently used entry makes room and its key is
    /// returned.
    pub(crate) fn upsert(&mut self, key: &Key, now: u64) -> (u32, Option<Key>) {
        if let Some(&i) = self.map.get(key) {
            if self.expired(&self.slots[i as usize], now) {
                // Expired but not swept yet: it starts over as a new entry.
                let s = &mut self.slots[i as usize];
                s.data = Data::default();
                s.pending = Delta::default();
            }
            self.touch(i, now);
            return (i, None);
        }
        let evicted = if self.map.len() >= self.size {
            let t = self.tail;
            Some(self.remove_slot(t))
        } else {
            None
        };
        let slot = Slot {
            key: key.clone(),
            data: Data::default(),
            pending: Delta::default(),
            touched: now,
            dirty: false,
            remote: false,
            prev: NIL,
            next: NIL,
        };
        let i = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = slot;
                i
            }
            None => {
                self.slots.push(slot);
                (self.slots.len() - 1) as u32
            }
        };
        self.map.insert(key.clone(), i);
        self.link_front(i);
        (i, evicted)
    }

    /// Refreshes entry `i`'s expiry and moves it to the front. A touch
    /// older than the entry's own (a replicated one) changes nothing.
    pub(crate) fn touch(&mut self, i: u32, now: u64) {
        if now < self.slots[i as usize].touched {
            return;
        }
        self.slots[i as usize].touched = now;
        if self.head != i {
            self.unlink(i);
            self.link_front(i);
        }
    }

    /// Removes `key`; returns whether it was there.
    pub(crate) fn remove(&mut self, key: &Key) -> bool {
        match self.map.get(key) {
            Some(&i) => {
                self.remove_slot(i);
                true
            }
            None => false,
        }
    }

    /// Removes the entries expired at `now` (at most `max`), calling `f`
    /// with each removed key.
    pub(crate) fn expire(&mut self, now: u64, max: usize, mut f: impl FnMut(Key)) {
        for _ in 0..max {
            let t = self.tail;
            if t == NIL || !self.expired(&self.slots[t as usize], now) {
                return;
            }
            f(self.remove_slot(t));
        }
    }

    /// Every live entry, most recently used first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Slot> {
        let mut i = self.head;
        std::iter::from_fn(move || {
            if i == NIL {
                return None;
            }
            let s = &self.slots[i as usize];
            i = s.next;
            Some(s)
        })
    }

    fn remove_slot(&mut self, i: u32) -> Key {
        self.unlink(i);
        let key = std::mem::replace(&mut self.slots[i as usize].key, Key::Int(0));
        self.map.remove(&key);
        self.slots[i as usize].dirty = false;
        self.free.push(i);
        key
    }

    fn unlink(&mut self, i: u32) {
        let (p, n) = {
            let s = &self.slots[i as usize];
            (s.prev, s.next)
        };
        if p == NIL {
            self.head = n;
        } else {
            self.slots[p as usize].next = n;
        }
        if n == NIL {
            self.tail = p;
        } else {
            self.slots[n as usize].prev = p;
        }
        let s = &mut self.slots[i as usize];
        s.prev = NIL;
        s.next = NIL;
    }

    fn link_front(&mut self, i: u32) {
        let old = self.head;
        {
            let s = &mut self.slots[i as usize];
            s.prev = NIL;
            s.next = old;
        }
        if old == NIL {
            self.tail = i;
        } else {
            self.slots[old as usize].prev = i;
        }
        self.head = i;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(i: u8) -> Key {
        Key::V4([10, 0, 0, i])
    }

    #[test]
    fn full_table_evicts_the_least_recently_used() {
        let mut t = Table::new(3, 1_000);
        t.upsert(&k(1), 1);
        t.upsert(&k(2), 2);
        t.upsert(&k(3), 3);
        // Using 1 again makes 2 the least recently used.
        t.upsert(&k(1), 4);
        let (_, evicted) = t.upsert(&k(4), 5);
        assert_eq!(evicted, Some(k(2)));
        assert_eq!(t.len(), 3);
        let order: Vec<Key> = t.iter().map(|s| s.key.clone()).collect();
        assert_eq!(order, vec![k(4), k(1), k(3)]);
    }

    #[test]
    fn entries_expire_from_their_last_touch() {
        let mut t = Table::new(10, 100);
        t.upsert(&k(1), 0);
        t.upsert(&k(2), 50);
        assert!(t.get(&k(1), 99).is_some());
        assert!(
            t.get(&k(1), 100).is_none(),
            "expired exactly at touch + expire"
        );
        let mut gone = Vec::new();
        t.expire(120, 10, |key| gone.push(key));
        assert_eq!(gone, vec![k(1)]);
        assert!(t.get(&k(2), 120).is_some());
        t.upsert(&k(2), 140);
        t.expire(200, 10, |key| gone.push(key));
        assert_eq!(gone.len(), 1, "touched at 140, lives until 240");
        t.expire(240, 10, |key| gone.push(key));
        assert_eq!(gone, vec![k(1), k(2)]);
        assert!(t.is_empty());
        // An expired entry not swept yet starts over when used again.
        let (i, _) = t.upsert(&k(5), 250);
        t.slot_mut(i).data.conn_cur = 3;
        let (j, _) = t.upsert(&k(5), 400);
        assert_eq!((i, t.slot(j).data.conn_cur), (j, 0));
        t.remove(&k(5));
        // Slots are reused.
        t.upsert(&k(3), 300);
        assert_eq!(t.slots.len(), 2);
    }

    #[test]
    fn an_older_touch_does_not_move_an_entry_back() {
        let mut t = Table::new(10, 100);
        let (i, _) = t.upsert(&k(1), 50);
        t.touch(i, 10);
        assert_eq!(t.slot(i).touched, 50);
        assert!(t.remove(&k(1)));
        assert!(!t.remove(&k(1)));
    }
}
