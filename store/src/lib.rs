//! Durable records of trustca: certificates by serial, device records,
//! live trust records with their history, and the append-only audit log.
//!
//! Every issuance is one atomic commit across all of them ([`Issuance`]),
//! and the [`GroupCommitter`] makes commits durable (fsync) in groups, so a
//! certificate is only handed out after its records are on disk while many
//! concurrent enrollments share one flush. sled is the embedded default
//! behind the [`Storage`] trait.
#![forbid(unsafe_code)]

mod committer;
mod error;
mod records;
mod sled_store;

pub use committer::GroupCommitter;
pub use error::StoreError;
pub use records::{
    AuditEntry, CertificateRecord, CertificateStatus, DeviceRecord, HistoryEntry, Issuance,
    TrustRecord, TrustStatus,
};
pub use sled_store::{CloseWaiter, SledStorage};

/// What every storage backend provides. Commits are atomic per
/// [`Issuance`]; [`Storage::flush`] makes everything committed so far durable.
pub trait Storage: Send + Sync + std::fmt::Debug + 'static {
    /// Applies each issuance atomically and independently: one failing
    /// (duplicate identity, reused serial) does not affect the others.
    fn commit_issuances(&self, batch: &[Issuance]) -> Vec<Result<(), StoreError>>;
    /// Waits until every committed change is on stable storage.
    fn flush(&self) -> Result<(), StoreError>;
    /// The device record of an identity key, if enrolled.
    fn device(&self, identity_key: &str) -> Result<Option<DeviceRecord>, StoreError>;
    /// The live trust record of an identity key.
    fn trust_record(&self, identity_key: &str) -> Result<Option<TrustRecord>, StoreError>;
    /// The history of an identity key, oldest first.
    fn history(&self, identity_key: &str) -> Result<Vec<HistoryEntry>, StoreError>;
    /// A certificate by serial.
    fn certificate(&self, serial: &[u8]) -> Result<Option<CertificateRecord>, StoreError>;
    /// Number of certificates and devices stored.
    fn counts(&self) -> Result<(u64, u64), StoreError>;
    /// Audit entries with sequence numbers in `from..`, at most `limit`.
    fn audit_entries(&self, from: u64, limit: usize) -> Result<Vec<AuditEntry>, StoreError>;
    /// Bytes the backend occupies on disk.
    fn size_on_disk(&self) -> Result<u64, StoreError>;
}
