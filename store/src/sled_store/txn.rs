//! One sled write as the rules see it (`RecordTxn`): typed, sealed reads
//! and writes over the write trees, whichever way they are reached — a
//! sled transaction's view, or a staging of the writes outside sled's lock
//! (`staged.rs`).

use super::*;

/// The trees a write touches, named.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum TreeId {
    Certs,
    Devices,
    Trust,
    History,
    Audit,
    Meta,
    Fingerprints,
    Revoked,
    Blobs,
    BlockedKeys,
    Heads,
}

/// Raw reads and writes of the write trees: a transaction's view, or a
/// staging that reads the trees and keeps its writes in memory.
pub(super) trait Trees {
    fn get(&self, tree: TreeId, key: &[u8]) -> Result<Option<sled::IVec>, Abort>;
    fn insert(&self, tree: TreeId, key: &[u8], value: Vec<u8>) -> Result<(), Abort>;
}

impl Trees for WriteView {
    fn get(&self, tree: TreeId, key: &[u8]) -> Result<Option<sled::IVec>, Abort> {
        Ok(view_tree(self, tree).get(key)?)
    }

    fn insert(&self, tree: TreeId, key: &[u8], value: Vec<u8>) -> Result<(), Abort> {
        view_tree(self, tree).insert(key, value)?;
        Ok(())
    }
}

/// One tree of a transaction's view, in the order of [`SledStorage::write_view`].
fn view_tree(v: &WriteView, tree: TreeId) -> &TransactionalTree {
    match tree {
        TreeId::Certs => &v.0,
        TreeId::Devices => &v.1,
        TreeId::Trust => &v.2,
        TreeId::History => &v.3,
        TreeId::Audit => &v.4,
        TreeId::Meta => &v.5,
        TreeId::Fingerprints => &v.6,
        TreeId::Revoked => &v.7,
        TreeId::Blobs => &v.8,
        TreeId::BlockedKeys => &v.9,
        TreeId::Heads => &v.10,
    }
}

fn get_record<T: serde::de::DeserializeOwned>(
    trees: &impl Trees,
    tree: TreeId,
    key: &[u8],
) -> Result<Option<T>, Abort> {
    match trees.get(tree, key)? {
        Some(v) => decode(key, &v).map(Some).map_err(abort),
        None => Ok(None),
    }
}

/// Reads a sealed record (see `seal.rs`): rules never build on a record
/// the log does not vouch for.
fn get_sealed<T: serde::de::DeserializeOwned>(
    trees: &impl Trees,
    tree: TreeId,
    s: Option<&RecordSeal>,
    table: Sealed,
    key: &[u8],
) -> Result<Option<T>, Abort> {
    seal::sealed_value(trees.get(tree, key)?.as_deref(), s, table, key).map_err(abort)
}

/// Writes a sealed record and returns the SHA-256 of its encoding.
fn put_sealed<T: serde::Serialize>(
    trees: &impl Trees,
    tree: TreeId,
    s: Option<&RecordSeal>,
    (table, key): (Sealed, &[u8]),
    v: &T,
    stamp: Stamp,
) -> Result<[u8; 32], Abort> {
    let (sealed, digest) =
        seal::sealed_record(s, table, &seal::seal_key(table, key), v, stamp).map_err(abort)?;
    trees.insert(tree, key, sealed)?;
    Ok(digest)
}

fn put_record<T: serde::Serialize>(
    trees: &impl Trees,
    tree: TreeId,
    key: &[u8],
    v: &T,
) -> Result<(), Abort> {
    trees.insert(tree, key, encode(v).map_err(abort)?)
}

/// One sled write seen through [`RecordTxn`]: the rules run on it.
pub(super) struct SledTxn<'a, V: Trees> {
    trees: &'a V,
    seal: Option<&'a RecordSeal>,
}

impl<'a, V: Trees> SledTxn<'a, V> {
    pub(super) fn new(trees: &'a V, seal: Option<&'a RecordSeal>) -> Self {
        Self { trees, seal }
    }

    fn add(&self, key: &[u8], n: u64) -> Result<(), Abort> {
        if n == 0 {
            return Ok(());
        }
        let old = embedded::counter_value(self.trees.get(TreeId::Meta, key)?.as_deref());
        self.trees
            .insert(TreeId::Meta, key, (old + n).to_be_bytes().to_vec())
    }
}

impl<V: Trees> RecordTxn for SledTxn<'_, V> {
    type Fail = Abort;

    fn fail(e: StoreError) -> Abort {
        abort(e)
    }

    fn certificate(&self, serial: &[u8]) -> Result<Option<CertificateRecord>, Abort> {
        get_sealed(
            self.trees,
            TreeId::Certs,
            self.seal,
            Sealed::Certificate,
            serial,
        )
    }

    fn insert_certificate(
        &self,
        record: &CertificateRecord,
        fingerprint: &[u8; 32],
        stamp: Stamp,
    ) -> Result<[u8; 32], Abort> {
        let digest = self.update_certificate(record, stamp)?;
        self.trees.insert(
            TreeId::Fingerprints,
            fingerprint.as_slice(),
            record.serial.clone(),
        )?;
        Ok(digest)
    }

    fn update_certificate(
        &self,
        record: &CertificateRecord,
        stamp: Stamp,
    ) -> Result<[u8; 32], Abort> {
        put_sealed(
            self.trees,
            TreeId::Certs,
            self.seal,
            (Sealed::Certificate, &record.serial),
            record,
            stamp,
        )
    }

    fn device(&self, identity_key: &str) -> Result<Option<DeviceRecord>, Abort> {
        let key = identity_key.as_bytes();
        get_sealed(self.trees, TreeId::Devices, self.seal, Sealed::Device, key)
    }

    fn put_device(&self, record: &DeviceRecord, stamp: Stamp) -> Result<[u8; 32], Abort> {
        let key = record.identity_key.as_bytes();
        put_sealed(
            self.trees,
            TreeId::Devices,
            self.seal,
            (Sealed::Device, key),
            record,
            stamp,
        )
    }

    fn trust(&self, identity_key: &str) -> Result<Option<TrustRecord>, Abort> {
        let key = identity_key.as_bytes();
        get_sealed(self.trees, TreeId::Trust, self.seal, Sealed::Trust, key)
    }

    fn put_trust(&self, record: &TrustRecord, stamp: Stamp) -> Result<[u8; 32], Abort> {
        let key = record.identity_key.as_bytes();
        put_sealed(
            self.trees,
            TreeId::Trust,
            self.seal,
            (Sealed::Trust, key),
            record,
            stamp,
        )
    }

    fn history_entry(
        &self,
        identity_key: &str,
        version: u64,
    ) -> Result<Option<HistoryEntry>, Abort> {
        get_record(
            self.trees,
            TreeId::History,
            &history_key(identity_key, version),
        )
    }

    fn put_history(&self, identity_key: &str, entry: &HistoryEntry) -> Result<(), Abort> {
        put_record(
            self.trees,
            TreeId::History,
            &history_key(identity_key, entry.version),
            entry,
        )
    }

    fn blocked_key(&self, fingerprint: &[u8; 32]) -> Result<Option<BlockedKey>, Abort> {
        vouched::vouch_blocked(
            self.seal,
            fingerprint,
            get_record(self.trees, TreeId::BlockedKeys, fingerprint)?,
        )
        .map_err(abort)
    }

    fn put_blocked_key(&self, fingerprint: &[u8; 32], block: &BlockedKey) -> Result<(), Abort> {
        put_record(self.trees, TreeId::BlockedKeys, fingerprint, block)
    }

    fn put_revoked(&self, sector: &str, serial: &[u8], at: i64, reason: u8) -> Result<(), Abort> {
        let (key, value) = embedded::revoked_entry(sector, serial, at, reason);
        self.trees.insert(TreeId::Revoked, &key, value)
    }

    fn audit_frontier(&self) -> Result<trustca_audit::MerkleFrontier, Abort> {
        embedded::frontier(self.trees.get(TreeId::Meta, AUDIT_FRONTIER)?.as_deref()).map_err(abort)
    }

    fn put_audit_entry(&self, entry: &AuditEntry) -> Result<(), Abort> {
        put_record(self.trees, TreeId::Audit, &entry.seq.to_be_bytes(), entry)
    }

    fn put_audit_frontier(&self, frontier: &trustca_audit::MerkleFrontier) -> Result<(), Abort> {
        self.trees
            .insert(TreeId::Meta, AUDIT_FRONTIER, frontier.to_bytes())
    }

    fn add_counts(&self, certificates: u64, devices: u64) -> Result<(), Abort> {
        self.add(COUNT_CERTS, certificates)?;
        self.add(COUNT_DEVICES, devices)
    }

    fn blob(&self, space: &str, key: &[u8]) -> Result<Option<Vec<u8>>, Abort> {
        Ok(self
            .trees
            .get(TreeId::Blobs, &blob_key(space, key))?
            .map(|v| v.to_vec()))
    }

    fn put_blob(&self, space: &str, key: &[u8], value: &[u8]) -> Result<(), Abort> {
        self.trees
            .insert(TreeId::Blobs, &blob_key(space, key), value.to_vec())
    }

    fn record_seal(&self) -> Option<&RecordSeal> {
        self.seal
    }

    fn put_tree_head(&self, size: u64, head: &[u8]) -> Result<(), Abort> {
        self.trees
            .insert(TreeId::Heads, &size.to_be_bytes(), head.to_vec())
    }

    fn set_crl_number(&self, sector: &str, number: u64) -> Result<(), Abort> {
        self.trees.insert(
            TreeId::Meta,
            crl_number_key(sector).as_bytes(),
            number.to_be_bytes().to_vec(),
        )
    }
}
