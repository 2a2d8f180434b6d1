//! fjall's own settings: its block cache, how much journal it keeps, and
//! how a new store's tables are laid out (lz4 blocks of 4 KiB on every
//! level).
//!
//! The layout choices (block size, compression) are written into each
//! keyspace when it is created, so an existing store keeps what it was
//! created with; the cache and journal bounds apply at every opening.
//! Figures behind the defaults: `BENCHMARKS.md`, "fjall beside sled".

use std::path::Path;

use fjall::config::{BlockSizePolicy, CompressionPolicy};
use fjall::{CompressionType, KeyspaceCreateOptions, SingleWriterTxDatabase};

/// Bytes of table blocks fjall keeps in memory by default (32 MiB): point
/// reads of a hot fleet hit it; a cold read costs one 4 KiB block read
/// and an lz4 decompression.
pub const DEFAULT_FJALL_CACHE_BYTES: u64 = 32 << 20;
/// The journal bound by default: fjall's smallest (64 MiB; its own
/// default is 512 MiB). Memtables are flushed to tables before the
/// journals grow past it, so it also bounds the memory they hold and the
/// replay at start-up; it is a fixed cost on disk, not one per device.
pub const DEFAULT_JOURNAL_BYTES: u64 = 64 << 20;
/// Data block size by default: 4 KiB, for point reads (Decide reads one
/// device and one trust record); 32 KiB blocks made the tables about a
/// fifth smaller and point reads about a fifth slower.
pub const DEFAULT_BLOCK_BYTES: u32 = 4 << 10;
/// The largest memtable of one keyspace by default (16 MiB; fjall's
/// default is 64 MiB, times a dozen keyspaces).
pub const DEFAULT_MEMTABLE_BYTES: u64 = 16 << 20;

/// How a fjall store is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct FjallSettings {
    /// The most memory fjall's block cache may hold, in bytes.
    pub cache_bytes: u64,
    /// The most journal kept on disk before memtables are flushed
    /// (at least 64 MiB, fjall's floor).
    pub journal_bytes: u64,
    /// Data block size of a new store's tables (1 KiB – 1 MiB).
    pub block_bytes: u32,
    /// The largest memtable of one keyspace before it is flushed.
    pub memtable_bytes: u64,
}

impl Default for FjallSettings {
    fn default() -> Self {
        Self {
            cache_bytes: DEFAULT_FJALL_CACHE_BYTES,
            journal_bytes: DEFAULT_JOURNAL_BYTES,
            block_bytes: DEFAULT_BLOCK_BYTES,
            memtable_bytes: DEFAULT_MEMTABLE_BYTES,
        }
    }
}

impl FjallSettings {
    /// These settings with a block cache of `bytes`.
    pub fn with_cache_bytes(mut self, bytes: u64) -> Self {
        self.cache_bytes = bytes;
        self
    }

    /// These settings with data blocks of `bytes` for a new store.
    pub fn with_block_bytes(mut self, bytes: u32) -> Self {
        self.block_bytes = bytes;
        self
    }

    /// The database as these settings open it. Bounds fjall would panic
    /// on are clamped into its range.
    pub(super) fn open(&self, dir: &Path) -> fjall::Result<SingleWriterTxDatabase> {
        SingleWriterTxDatabase::builder(dir)
            .cache_size(self.cache_bytes)
            .max_journaling_size(self.journal_bytes.max(DEFAULT_JOURNAL_BYTES))
            // Every write transaction hands its journal entry to the
            // operating system when it commits (a process crash loses
            // nothing committed); the group committer's flush makes it
            // durable with one fsync per group.
            .manual_journal_persist(false)
            .open()
    }

    /// How a keyspace is created: lz4 data blocks on every level (fjall's
    /// default leaves the first levels uncompressed, where a young store's
    /// records all are), blocks of `block_bytes`.
    pub(super) fn keyspace(&self) -> KeyspaceCreateOptions {
        KeyspaceCreateOptions::default()
            .data_block_compression_policy(CompressionPolicy::all(CompressionType::Lz4))
            .data_block_size_policy(BlockSizePolicy::all(
                self.block_bytes.clamp(1 << 10, 1 << 20),
            ))
            .max_memtable_size(self.memtable_bytes)
    }
}
