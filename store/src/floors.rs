//! Each sealed record's floor (the newest audit entry that wrote it, see
//! `seal.rs`), held in 16 bytes a record: a server holds three per device,
//! so this is the one structure of the store that grows with the fleet.
//!
//! A record is named by the first 12 octets of the SHA-256 of its table and
//! key (a collision among three million records has a probability of about
//! 10^-16) and its entry by 32 bits; the rare entry past 2^32 is kept aside
//! with its full number. What was learned up to the last merge is a sorted
//! list, what was learned since a small map. A hash map of all of them would
//! take about 35 bytes a record, and twice that while it grows; the
//! 24-byte entries before this layout (16-byte name, 64-bit entry) took
//! 72 MB at a million devices, these take 48 MB (`BENCHMARKS.md`, "Where
//! the memory goes").

use std::collections::HashMap;

use crate::seal::Sealed;

/// A record's name in the floors.
pub(crate) type FloorKey = [u8; 12];

/// Entries learned before they are merged into the sorted list: at least
/// this many, and at least a sixteenth of the list (so merging costs O(1)
/// per entry, amortised, and the map of recent entries stays small beside
/// the list).
pub(crate) const FLOOR_MERGE_MIN: usize = 1 << 16;

/// Every sealed record's floor.
#[derive(Debug, Default)]
pub(crate) struct Floors {
    /// Sorted by key, one entry per key; entries that fit 32 bits.
    merged: Vec<(FloorKey, u32)>,
    /// Merged entries past 32 bits (a log of more than 4 billion entries):
    /// newer than any of `merged` for the same key.
    wide: HashMap<FloorKey, u64>,
    /// Learned since the last merge; newer than `merged` and `wide`.
    recent: HashMap<FloorKey, u64>,
}

impl Floors {
    /// Records that entry `seq` wrote the record `key`; entries come in
    /// sequence order.
    pub(crate) fn learn(&mut self, key: FloorKey, seq: u64) {
        self.recent.insert(key, seq);
        if self.recent.len() >= FLOOR_MERGE_MIN.max(self.merged.len() / 16) {
            self.merge();
        }
    }

    /// The newest entry that wrote `key`, if any did.
    pub(crate) fn get(&self, key: &FloorKey) -> Option<u64> {
        if let Some(seq) = self.recent.get(key).or_else(|| self.wide.get(key)) {
            return Some(*seq);
        }
        let at = self.merged.binary_search_by(|(k, _)| k.cmp(key)).ok()?;
        Some(u64::from(self.merged[at].1))
    }

    /// Records with a floor.
    pub(crate) fn len(&self) -> usize {
        let merged = |k: &FloorKey| self.merged.binary_search_by(|(m, _)| m.cmp(k)).is_ok();
        let wide_only = self.wide.keys().filter(|k| !merged(k)).count();
        let recent_only = self
            .recent
            .keys()
            .filter(|k| !merged(k) && !self.wide.contains_key(*k))
            .count();
        self.merged.len() + wide_only + recent_only
    }

    /// Bytes the floors hold (their vectors' and maps' capacity).
    pub(crate) fn heap_bytes(&self) -> usize {
        // A hash map slot: the pair and one control byte.
        let slot = size_of::<(FloorKey, u64)>() + 1;
        self.merged.capacity() * size_of::<(FloorKey, u32)>()
            + (self.wide.capacity() + self.recent.capacity()) * slot
    }

    /// Merges everything learned and frees the map of recent entries
    /// (after the whole log was read at start; writes refill it).
    pub(crate) fn settle(&mut self) {
        self.merge();
        self.recent = HashMap::new();
    }

    /// Moves `recent` into the sorted list (or, past 32 bits, into `wide`);
    /// a key in both keeps the newer entry (sequence numbers only grow).
    /// The two sorted runs are merged in place from the back, so a merge
    /// needs no scratch copy of the list (a stable sort would take half
    /// the list again: 24 MB at a million devices).
    pub(crate) fn merge(&mut self) {
        let mut narrow = Vec::with_capacity(self.recent.len());
        for (key, seq) in self.recent.drain() {
            match u32::try_from(seq) {
                Ok(seq) => narrow.push((key, seq)),
                Err(_) => {
                    self.wide.insert(key, seq);
                }
            }
        }
        // Keys are unique in `narrow` (they came from a map).
        narrow.sort_unstable_by_key(|e| e.0);
        let old = self.merged.len();
        self.merged.reserve_exact(narrow.len());
        self.merged.resize(old + narrow.len(), ([0; 12], 0));
        let (mut i, mut j) = (old, narrow.len());
        while j > 0 {
            let k = i + j - 1;
            if i > 0 && self.merged[i - 1].0 > narrow[j - 1].0 {
                self.merged[k] = self.merged[i - 1];
                i -= 1;
            } else {
                self.merged[k] = narrow[j - 1];
                j -= 1;
            }
        }
        // A key merged before and learned again sits twice, the older
        // first: `dedup_by` keeps the first of equal keys, so give it the
        // newer entry.
        self.merged.dedup_by(|later, kept| {
            let same = later.0 == kept.0;
            if same {
                kept.1 = kept.1.max(later.1);
            }
            same
        });
        self.recent.shrink_to(FLOOR_MERGE_MIN);
    }
}

/// A record's name in the floors: the first 12 octets of the SHA-256 of its
/// table and key.
pub(crate) fn floor_key(table: Sealed, key: &str) -> FloorKey {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(table.name().as_bytes());
    ctx.update(&[0]);
    ctx.update(key.as_bytes());
    let mut out = [0; 12];
    out.copy_from_slice(&ctx.finish().as_ref()[..12]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u32) -> FloorKey {
        let mut k = [0u8; 12];
        k[..4].copy_from_slice(&n.wrapping_mul(2_654_435_761).to_be_bytes());
        k[4..8].copy_from_slice(&n.to_be_bytes());
        k
    }

    /// Floors of records 0..n, record i written by entry i.
    fn learned(n: u32) -> Floors {
        let mut floors = Floors::default();
        for i in 0..n {
            floors.learn(key(i), u64::from(i));
        }
        floors
    }

    #[test]
    fn floors_keep_the_newest_entry_across_merges() {
        let n = 3 * FLOOR_MERGE_MIN as u32;
        let mut floors = learned(n);
        // Every third record written again, later.
        for i in (0..n).step_by(3) {
            floors.learn(key(i), u64::from(n + i));
        }
        assert!(!floors.merged.is_empty(), "never merged");
        assert_eq!(floors.len(), n as usize);
        for i in 0..n {
            let want = if i % 3 == 0 { n + i } else { i };
            assert_eq!(floors.get(&key(i)), Some(u64::from(want)), "record {i}");
        }
        assert_eq!(floors.get(&key(n + 1)), None);
        floors.merge();
        assert!(floors.recent.is_empty());
        assert_eq!(floors.merged.len(), n as usize);
        assert_eq!(floors.get(&key(3)), Some(u64::from(n + 3)));
    }

    #[test]
    fn entries_past_32_bits_keep_their_full_number() {
        let mut floors = Floors::default();
        let big = u64::from(u32::MAX) + 7;
        floors.learn(key(1), 5);
        floors.learn(key(2), 6);
        floors.merge();
        // Record 1 written again by an entry past 2^32, then merged.
        floors.learn(key(1), big);
        floors.merge();
        assert_eq!(floors.get(&key(1)), Some(big));
        assert_eq!(floors.get(&key(2)), Some(6));
        // Newer still, not merged yet: `recent` wins over `wide`.
        floors.learn(key(1), big + 1);
        assert_eq!(floors.get(&key(1)), Some(big + 1));
        assert_eq!(floors.len(), 2);
    }

    #[test]
    fn merges_agree_with_a_map_of_every_write() {
        // Writes to 5,000 records in a scrambled order, merged after
        // every 700: each record's floor is its newest write.
        let mut floors = Floors::default();
        let mut model = HashMap::new();
        let mut x = 0x2545_f491_u32;
        for seq in 0..20_000u64 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let k = key(x % 5_000);
            floors.learn(k, seq);
            model.insert(k, seq);
            if seq % 700 == 699 {
                floors.merge();
                assert!(floors.merged.windows(2).all(|w| w[0].0 < w[1].0));
            }
        }
        floors.merge();
        assert_eq!(floors.len(), model.len());
        for (k, seq) in &model {
            assert_eq!(floors.get(k), Some(*seq));
        }
    }

    #[test]
    fn a_record_takes_16_bytes_once_merged() {
        let n = 4 * FLOOR_MERGE_MIN as u32;
        let mut floors = learned(n);
        floors.settle();
        assert_eq!(size_of::<(FloorKey, u32)>(), 16);
        let per = floors.heap_bytes() as f64 / f64::from(n);
        assert!(per <= 16.5, "{per} bytes a record");
    }

    #[test]
    fn names_differ_by_table_and_key() {
        let a = floor_key(Sealed::Device, "k");
        assert_ne!(a, floor_key(Sealed::Trust, "k"));
        assert_ne!(a, floor_key(Sealed::Device, "k2"));
        assert_eq!(a, floor_key(Sealed::Device, "k"));
    }
}
