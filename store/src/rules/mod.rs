//! The store's rules, written once for every backend: what an issuance, a
//! trust change, a transfer, a revocation and an opaque-record write read
//! and write, and which audit entries they append.
//!
//! A backend provides [`RecordTxn`] — typed reads and writes inside one of
//! its transactions — and runs one of the functions here inside that
//! transaction. It decides nothing itself, so sled and PostgreSQL cannot
//! drift apart on renewal superseding, record versions, history copying,
//! key blocking or the Merkle frontier.

use trustca_audit::MerkleFrontier;
use trustca_model::hexfmt;
use trustca_model::revocation::{KEY_COMPROMISE, reason_name};

use crate::seal::{self, Sealed, Stamp};
use crate::{
    AuditEntry, BlobAudit, BlockedKey, CertificateRecord, CertificateStatus, DeviceChange,
    DeviceRecord, HistoryEntry, Issuance, KeyValue, StoreError, StoredRecord, TrustChange,
    TrustRecord, TrustStatus,
};

/// Typed reads and writes inside one backend transaction. `Fail` is the
/// backend's way of aborting (sled also retries conflicts through it).
pub(crate) trait RecordTxn {
    /// Aborts the transaction.
    type Fail;
    /// Turns a rule's refusal into an abort.
    fn fail(e: StoreError) -> Self::Fail;

    fn certificate(&self, serial: &[u8]) -> Result<Option<CertificateRecord>, Self::Fail>;
    /// Stores a new certificate, sealed as `stamp` says, and its
    /// fingerprint index entry. Returns the SHA-256 of the record's
    /// encoding, as every sealed write does: what the audit entry that
    /// wrote it commits to.
    fn insert_certificate(
        &self,
        record: &CertificateRecord,
        fingerprint: &[u8; 32],
        stamp: Stamp,
    ) -> Result<[u8; 32], Self::Fail>;
    /// Rewrites a stored certificate (status changes only).
    fn update_certificate(
        &self,
        record: &CertificateRecord,
        stamp: Stamp,
    ) -> Result<[u8; 32], Self::Fail>;
    fn device(&self, identity_key: &str) -> Result<Option<DeviceRecord>, Self::Fail>;
    /// Writes a device record sealed as `stamp` says: to the audit entry
    /// that commits to its digest, or as copied (`seal.rs`).
    fn put_device(&self, record: &DeviceRecord, stamp: Stamp) -> Result<[u8; 32], Self::Fail>;
    fn trust(&self, identity_key: &str) -> Result<Option<TrustRecord>, Self::Fail>;
    /// Writes a trust record sealed as `stamp` says.
    fn put_trust(&self, record: &TrustRecord, stamp: Stamp) -> Result<[u8; 32], Self::Fail>;
    fn history_entry(
        &self,
        identity_key: &str,
        version: u64,
    ) -> Result<Option<HistoryEntry>, Self::Fail>;
    fn put_history(&self, identity_key: &str, entry: &HistoryEntry) -> Result<(), Self::Fail>;
    fn blocked_key(&self, fingerprint: &[u8; 32]) -> Result<Option<BlockedKey>, Self::Fail>;
    fn put_blocked_key(&self, fingerprint: &[u8; 32], block: &BlockedKey)
    -> Result<(), Self::Fail>;
    /// Indexes a revocation for the sector's CRL.
    fn put_revoked(
        &self,
        sector: &str,
        serial: &[u8],
        at: i64,
        reason: u8,
    ) -> Result<(), Self::Fail>;
    /// The Merkle frontier of the audit log as committed.
    fn audit_frontier(&self) -> Result<MerkleFrontier, Self::Fail>;
    fn put_audit_entry(&self, entry: &AuditEntry) -> Result<(), Self::Fail>;
    fn put_audit_frontier(&self, frontier: &MerkleFrontier) -> Result<(), Self::Fail>;
    /// Adds to the certificate and device counters.
    fn add_counts(&self, certificates: u64, devices: u64) -> Result<(), Self::Fail>;
    fn blob(&self, space: &str, key: &[u8]) -> Result<Option<Vec<u8>>, Self::Fail>;
    /// Stores an opaque record's bytes as given (sealed already, or a copy).
    fn put_blob(&self, space: &str, key: &[u8], value: &[u8]) -> Result<(), Self::Fail>;
    /// The seal records are written under, if the store has one.
    fn record_seal(&self) -> Option<&crate::RecordSeal>;
    fn put_tree_head(&self, size: u64, head: &[u8]) -> Result<(), Self::Fail>;
    /// Sets the last CRL number of a sector (copying a store only).
    fn set_crl_number(&self, sector: &str, number: u64) -> Result<(), Self::Fail>;
    /// Reads ahead what [`issue_group`] will read about `batch` (whose
    /// certificates carry the keys `keys`, in order), for backends where
    /// each read is a round trip.
    fn prefetch_issuances(
        &self,
        batch: &[Issuance],
        keys: &[Option<[u8; 32]>],
    ) -> Result<(), Self::Fail> {
        let _ = (batch, keys);
        Ok(())
    }
}

/// The audit log as one transaction sees it: entries are numbered from the
/// committed frontier, and the frontier is written once at the end.
pub(crate) struct AuditAppend {
    frontier: MerkleFrontier,
}

impl AuditAppend {
    pub(crate) fn load<T: RecordTxn>(t: &T) -> Result<Self, T::Fail> {
        Ok(Self {
            frontier: t.audit_frontier()?,
        })
    }

    /// The sequence number the next appended entry gets.
    pub(crate) fn next_seq(&self) -> u64 {
        self.frontier.size()
    }

    pub(crate) fn append<T: RecordTxn>(
        &mut self,
        t: &T,
        at: i64,
        actor: &str,
        kind: &str,
        subject: &str,
        detail: &str,
    ) -> Result<(), T::Fail> {
        let mut entry = AuditEntry {
            seq: self.frontier.size(),
            at,
            actor: actor.to_owned(),
            kind: kind.to_owned(),
            subject: subject.to_owned(),
            detail: detail.to_owned(),
            leaf_hash: [0; 32],
        };
        let (_, leaf) = self
            .frontier
            .push_entry(&entry.leaf_bytes())
            .map_err(|e| T::fail(StoreError::Backend(format!("audit log: {e}"))))?;
        entry.leaf_hash = leaf;
        t.put_audit_entry(&entry)
    }

    pub(crate) fn save<T: RecordTxn>(self, t: &T) -> Result<(), T::Fail> {
        t.put_audit_frontier(&self.frontier)
    }
}

/// The key fingerprint of a stored certificate; `None` for DER that does
/// not parse (only hand-made test records), which carries no key to block.
fn key_of(der: &[u8]) -> Option<[u8; 32]> {
    trustca_model::certificate_key_fingerprint(der).ok()
}

/// SHA-256 of a certificate's DER: the fingerprint index key.
pub(crate) fn fingerprint(der: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, der);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// What an audit entry commits to about a record it writes: table, key
/// and the SHA-256 of the record's encoding (the `binds` member), as the
/// sealed write returned it.
type Binding = (Sealed, String, [u8; 32]);

/// `detail` with the `binds` member naming the records this entry wrote.
fn with_binds(detail: &str, binds: &[Binding]) -> String {
    with_member(detail, "binds", &seal::binds_json(binds))
}

mod blobs;
mod issuance;
mod revocation;
mod trust;

pub(crate) use blobs::{import, put_blobs, seal_legacy};
pub(crate) use issuance::issue_group;
pub(crate) use revocation::revoke;
pub(crate) use trust::{apply_trust_changes, commit_model_change, transfer_trust};

/// `detail` (a JSON object) with `"der_sha256"` added as its last member.
fn with_der_digest(detail: &str, digest: &[u8; 32]) -> String {
    with_member(
        detail,
        "der_sha256",
        &format!("\"{}\"", hexfmt::encode(digest)),
    )
}

/// `detail` (a JSON object) with `"name":value` added as its last member.
fn with_member(detail: &str, name: &str, value: &str) -> String {
    let member = format!("\"{name}\":{value}");
    let body = detail.trim_end();
    match body.strip_suffix('}') {
        Some(open) if open.trim_end().ends_with('{') => format!("{open}{member}}}"),
        Some(open) => format!("{open},{member}}}"),
        // Not an object: keep the caller's text and the digest side by side.
        None => format!("{{\"detail\":{},{member}}}", json_str(detail)),
    }
}

/// A JSON string literal (audit details are JSON; Rust's `{:?}` escapes
/// differently from JSON for control characters and non-ASCII).
pub(crate) fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::json_str;

    #[test]
    fn json_strings_escape_like_json() {
        assert_eq!(json_str("a\"b\\c\n\u{1}é"), "\"a\\\"b\\\\c\\n\\u0001é\"");
        let parsed: String = serde_json::from_str(&json_str("x\u{7}\"y\u{2028}")).unwrap();
        assert_eq!(parsed, "x\u{7}\"y\u{2028}");
    }
}
