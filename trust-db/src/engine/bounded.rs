//! A map bounded in entries and in bytes, emptied when an insert would pass
//! either bound: the engine's caches hold answers that are cheap to
//! recompute, so no eviction order is kept (an empty cache refills with
//! what is asked next), and a fleet of a million devices never makes one
//! grow past its documented size (`docs/operations.md`, "Bounded memory").

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;

/// A map of at most `max_entries` entries and `max_bytes` bytes.
#[derive(Debug)]
pub(crate) struct Bounded<K, V> {
    map: HashMap<K, (V, usize)>,
    bytes: usize,
    max_entries: usize,
    max_bytes: usize,
}

impl<K: Eq + Hash, V> Bounded<K, V> {
    /// An empty map with these bounds.
    pub(crate) fn new(max_entries: usize, max_bytes: usize) -> Self {
        Self {
            map: HashMap::new(),
            bytes: 0,
            max_entries: max_entries.max(1),
            max_bytes,
        }
    }

    /// The value held for `key`.
    pub(crate) fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        self.map.get(key).map(|(v, _)| v)
    }

    /// Holds `value` for `key`; `heap_bytes` is what the key and value own
    /// beyond their inline size (strings, vectors, boxed parts), counted
    /// with a map slot's own size. Empties the map first when the entry
    /// would pass a bound.
    pub(crate) fn insert(&mut self, key: K, value: V, heap_bytes: usize) {
        let bytes = heap_bytes + Self::SLOT;
        if let Some((_, old)) = self.map.remove(&key) {
            self.bytes -= old;
        }
        if self.map.len() >= self.max_entries || self.bytes + bytes > self.max_bytes {
            self.map = HashMap::new();
            self.bytes = 0;
        }
        self.bytes += bytes;
        self.map.insert(key, (value, bytes));
    }

    /// A map slot: key, value, the byte count and one control byte.
    const SLOT: usize = size_of::<(K, V, usize)>() + 1;

    /// Entries held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// Bytes held, as counted.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_insert_past_the_entry_bound_empties_the_map() {
        let mut m = Bounded::new(3, usize::MAX);
        for k in 0..3u32 {
            m.insert(k, k, 0);
        }
        assert_eq!(m.len(), 3);
        // Replacing a held key is not a new entry.
        m.insert(1, 10, 0);
        assert_eq!((m.len(), m.get(&1)), (3, Some(&10)));
        m.insert(3, 3, 0);
        assert_eq!(m.len(), 1);
        assert_eq!((m.get(&0), m.get(&3)), (None, Some(&3)));
    }

    #[test]
    fn an_insert_past_the_byte_bound_empties_the_map() {
        let slot = Bounded::<u32, u32>::SLOT;
        let mut m = Bounded::new(1_000, 3 * (100 + slot));
        m.insert(1, 1, 100);
        m.insert(2, 2, 100);
        m.insert(3, 3, 100);
        assert_eq!((m.len(), m.bytes()), (3, 3 * (100 + slot)));
        m.insert(4, 4, 1);
        assert_eq!((m.len(), m.bytes()), (1, 1 + slot));
        assert_eq!((m.get(&1), m.get(&4)), (None, Some(&4)));
        // An entry larger than the bound alone is still held (the next
        // insert empties the map again).
        m.insert(5, 5, 10_000);
        assert_eq!(m.get(&5), Some(&5));
        m.insert(6, 6, 0);
        assert_eq!((m.len(), m.get(&5)), (1, None));
    }

    #[test]
    fn replacing_an_entry_counts_its_new_size_only() {
        let mut m = Bounded::new(10, usize::MAX);
        m.insert("a", 1, 500);
        m.insert("a", 2, 20);
        assert_eq!(m.bytes(), 20 + Bounded::<&str, i32>::SLOT);
    }
}
