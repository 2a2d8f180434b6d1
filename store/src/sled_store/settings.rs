//! sled's own settings: how much memory its page cache may use and
//! whether a new store's pages are compressed.
//!
//! sled persists the compression choice and the segment size in the
//! store's `conf` file and refuses to open a store with other values, so an
//! existing store is always opened with what it was created with; only a
//! new store takes [`SledSettings::compression`]. Figures behind the
//! defaults: `BENCHMARKS.md`, "Store size and memory (issue 23)".

use std::path::Path;

/// zstd level used when compression is asked for without a level (an
/// existing compressed store opened with compression off in its settings).
pub const DEFAULT_COMPRESSION_LEVEL: i32 = 3;
/// Bytes of pages sled keeps in memory by default (256 MiB). A 64 MiB
/// cache left a server over 100k devices only 20 MiB smaller (204 against
/// 224 MiB after start) but made commits about 3.8 times slower
/// (`BENCHMARKS.md`, issue 23), so the default stays.
pub const DEFAULT_CACHE_BYTES: u64 = 256 << 20;

/// How a sled store is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SledSettings {
    /// The most memory sled's page cache may hold, in bytes (sled's
    /// `cache_capacity`; its own bookkeeping comes on top).
    pub cache_bytes: u64,
    /// zstd level for a new store's pages (1–22), `None` for none. An
    /// existing store keeps the choice it was created with.
    pub compression: Option<i32>,
}

impl Default for SledSettings {
    fn default() -> Self {
        Self {
            cache_bytes: DEFAULT_CACHE_BYTES,
            // Off by default: at 100k devices zstd level 3 made the store
            // 3.6x smaller but its commits several times slower
            // (`BENCHMARKS.md`, issue 23); enrollment throughput comes first.
            compression: None,
        }
    }
}

impl SledSettings {
    /// These settings with a page cache of `bytes`.
    pub fn with_cache_bytes(mut self, bytes: u64) -> Self {
        self.cache_bytes = bytes;
        self
    }

    /// These settings with compression at `level` for a new store (`None`:
    /// none).
    pub fn with_compression(mut self, level: Option<i32>) -> Self {
        self.compression = level;
        self
    }

    /// sled's configuration for the store in `dir`: the cache as set, and
    /// compression as the store was created with if it exists.
    pub(super) fn config(&self, dir: &Path) -> sled::Config {
        let compression = match created_compressed(dir) {
            Some(true) => Some(self.compression.unwrap_or(DEFAULT_COMPRESSION_LEVEL)),
            Some(false) => None,
            None => self.compression,
        };
        let config = sled::Config::new()
            .path(dir)
            .cache_capacity(self.cache_bytes)
            .mode(sled::Mode::HighThroughput)
            // Every write path flushes explicitly (group commit, operator
            // changes); a background flusher would only add work.
            .flush_every_ms(None);
        match compression {
            Some(level) => config
                .use_compression(true)
                .compression_factor(level.clamp(1, 22)),
            None => config,
        }
    }
}

/// sled's configuration for opening the store in `dir` directly, behind
/// trustca's back (fault-injection tests, repair tools): sled refuses a
/// store opened with another compression choice than it was created with.
pub fn raw_sled_config(dir: &Path) -> sled::Config {
    SledSettings::default().config(dir)
}

/// Whether the store in `dir` was created with compression: `None` when
/// there is no store yet (or its `conf` file cannot be read, which sled
/// itself then reports).
fn created_compressed(dir: &Path) -> Option<bool> {
    let conf = std::fs::read(dir.join("conf")).ok()?;
    String::from_utf8_lossy(&conf)
        .lines()
        .find_map(|line| line.strip_prefix("use_compression: "))
        .map(|v| v.trim() == "true")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_existing_store_keeps_its_compression_choice() {
        let plain = tempfile::tempdir().unwrap();
        let off = SledSettings::default().with_compression(None);
        drop(off.config(plain.path()).open().unwrap());
        assert_eq!(created_compressed(plain.path()), Some(false));
        // Opened with compression asked for: still opens, uncompressed.
        let on = SledSettings::default().with_compression(Some(3));
        let db = on.config(plain.path()).open().unwrap();
        db.insert(b"k", b"v").unwrap();
        drop(db);

        let packed = tempfile::tempdir().unwrap();
        assert_eq!(created_compressed(packed.path()), None);
        drop(on.config(packed.path()).open().unwrap());
        assert_eq!(created_compressed(packed.path()), Some(true));
        let db = off.config(packed.path()).open().unwrap();
        db.insert(b"k", b"v").unwrap();
    }
}
