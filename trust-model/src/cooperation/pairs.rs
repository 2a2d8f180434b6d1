//! Rules and tables keyed by a pair of sector names, looked up by `&str`.
//!
//! A map keyed by an owned `(String, String)` tuple needs an owned tuple to
//! look up, so every lookup allocated both names; `Decide` looks up to
//! eight rules and a recognition table per call. Two levels of maps keyed
//! by `String` are looked up with borrowed names.

use std::collections::HashMap;

/// `(first, second) -> V`.
#[derive(Debug, Clone)]
pub(crate) struct PairMap<V>(HashMap<String, HashMap<String, V>>);

impl<V> Default for PairMap<V> {
    fn default() -> Self {
        Self(HashMap::new())
    }
}

impl<V> PairMap<V> {
    /// The value for `(first, second)`.
    pub(crate) fn get(&self, first: &str, second: &str) -> Option<&V> {
        self.0.get(first)?.get(second)
    }

    /// Whether `(first, second)` has a value.
    pub(crate) fn contains(&self, first: &str, second: &str) -> bool {
        self.get(first, second).is_some()
    }

    /// Sets the value for `(first, second)`; the one it replaced.
    pub(crate) fn insert(&mut self, first: &str, second: &str, value: V) -> Option<V> {
        self.0
            .entry(first.to_owned())
            .or_default()
            .insert(second.to_owned(), value)
    }

    /// The value for `(first, second)`, made empty if there is none.
    pub(crate) fn entry(&mut self, first: &str, second: &str) -> &mut V
    where
        V: Default,
    {
        self.0
            .entry(first.to_owned())
            .or_default()
            .entry(second.to_owned())
            .or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_ordered_and_replaced() {
        let mut m = PairMap::default();
        assert_eq!(m.insert("a", "b", 1), None);
        assert_eq!(m.insert("b", "a", 2), None);
        assert_eq!(m.get("a", "b"), Some(&1));
        assert_eq!(m.get("b", "a"), Some(&2));
        assert!(!m.contains("a", "a"));
        assert_eq!(m.insert("a", "b", 3), Some(1));
        *m.entry("c", "d") += 5;
        assert_eq!(m.get("c", "d"), Some(&5));
    }
}
