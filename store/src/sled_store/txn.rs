//! One sled transaction as the rules see it (`RecordTxn`): typed, sealed
//! reads and writes over the transaction's trees.

use super::*;

/// One sled transaction seen through [`RecordTxn`]: the rules run on it
/// and sled retries them on conflicts.
pub(super) struct SledTxn<'a> {
    certs: &'a TransactionalTree,
    devices: &'a TransactionalTree,
    trust: &'a TransactionalTree,
    history: &'a TransactionalTree,
    audit: &'a TransactionalTree,
    meta: &'a TransactionalTree,
    fingerprints: &'a TransactionalTree,
    revoked: &'a TransactionalTree,
    blobs: &'a TransactionalTree,
    blocked_keys: &'a TransactionalTree,
    heads: &'a TransactionalTree,
    seal: Option<&'a RecordSeal>,
}

impl<'a> SledTxn<'a> {
    pub(super) fn new(v: &'a WriteView, seal: Option<&'a RecordSeal>) -> Self {
        Self {
            seal,
            certs: &v.0,
            devices: &v.1,
            trust: &v.2,
            history: &v.3,
            audit: &v.4,
            meta: &v.5,
            fingerprints: &v.6,
            revoked: &v.7,
            blobs: &v.8,
            blocked_keys: &v.9,
            heads: &v.10,
        }
    }

    fn add(&self, key: &[u8], n: u64) -> Result<(), Abort> {
        if n == 0 {
            return Ok(());
        }
        let old = embedded::counter_value(self.meta.get(key)?.as_deref());
        self.meta.insert(key, &(old + n).to_be_bytes())?;
        Ok(())
    }
}

impl RecordTxn for SledTxn<'_> {
    type Fail = Abort;

    fn fail(e: StoreError) -> Abort {
        abort(e)
    }

    fn certificate(&self, serial: &[u8]) -> Result<Option<CertificateRecord>, Abort> {
        tx_get_sealed(self.certs, self.seal, Sealed::Certificate, serial)
    }

    fn insert_certificate(
        &self,
        record: &CertificateRecord,
        fingerprint: &[u8; 32],
        stamp: Stamp,
    ) -> Result<(), Abort> {
        self.update_certificate(record, stamp)?;
        self.fingerprints
            .insert(fingerprint.as_slice(), record.serial.as_slice())?;
        Ok(())
    }

    fn update_certificate(&self, record: &CertificateRecord, stamp: Stamp) -> Result<(), Abort> {
        let key = &record.serial;
        tx_put_sealed(
            self.certs,
            self.seal,
            Sealed::Certificate,
            key,
            record,
            stamp,
        )
    }

    fn device(&self, identity_key: &str) -> Result<Option<DeviceRecord>, Abort> {
        let key = identity_key.as_bytes();
        tx_get_sealed(self.devices, self.seal, Sealed::Device, key)
    }

    fn put_device(&self, record: &DeviceRecord, stamp: Stamp) -> Result<(), Abort> {
        let key = record.identity_key.as_bytes();
        tx_put_sealed(self.devices, self.seal, Sealed::Device, key, record, stamp)
    }

    fn trust(&self, identity_key: &str) -> Result<Option<TrustRecord>, Abort> {
        let key = identity_key.as_bytes();
        tx_get_sealed(self.trust, self.seal, Sealed::Trust, key)
    }

    fn put_trust(&self, record: &TrustRecord, stamp: Stamp) -> Result<(), Abort> {
        let key = record.identity_key.as_bytes();
        tx_put_sealed(self.trust, self.seal, Sealed::Trust, key, record, stamp)
    }

    fn history_entry(
        &self,
        identity_key: &str,
        version: u64,
    ) -> Result<Option<HistoryEntry>, Abort> {
        tx_get(self.history, &history_key(identity_key, version))
    }

    fn put_history(&self, identity_key: &str, entry: &HistoryEntry) -> Result<(), Abort> {
        tx_put(
            self.history,
            &history_key(identity_key, entry.version),
            entry,
        )
    }

    fn blocked_key(&self, fingerprint: &[u8; 32]) -> Result<Option<BlockedKey>, Abort> {
        vouched::vouch_blocked(
            self.seal,
            fingerprint,
            tx_get(self.blocked_keys, fingerprint)?,
        )
        .map_err(abort)
    }

    fn put_blocked_key(&self, fingerprint: &[u8; 32], block: &BlockedKey) -> Result<(), Abort> {
        tx_put(self.blocked_keys, fingerprint, block)
    }

    fn put_revoked(&self, sector: &str, serial: &[u8], at: i64, reason: u8) -> Result<(), Abort> {
        let (key, value) = embedded::revoked_entry(sector, serial, at, reason);
        self.revoked.insert(key, value)?;
        Ok(())
    }

    fn audit_frontier(&self) -> Result<trustca_audit::MerkleFrontier, Abort> {
        embedded::frontier(self.meta.get(AUDIT_FRONTIER)?.as_deref()).map_err(abort)
    }

    fn put_audit_entry(&self, entry: &AuditEntry) -> Result<(), Abort> {
        tx_put(self.audit, &entry.seq.to_be_bytes(), entry)
    }

    fn put_audit_frontier(&self, frontier: &trustca_audit::MerkleFrontier) -> Result<(), Abort> {
        self.meta.insert(AUDIT_FRONTIER, frontier.to_bytes())?;
        Ok(())
    }

    fn add_counts(&self, certificates: u64, devices: u64) -> Result<(), Abort> {
        self.add(COUNT_CERTS, certificates)?;
        self.add(COUNT_DEVICES, devices)
    }

    fn blob(&self, space: &str, key: &[u8]) -> Result<Option<Vec<u8>>, Abort> {
        Ok(self.blobs.get(blob_key(space, key))?.map(|v| v.to_vec()))
    }

    fn put_blob(&self, space: &str, key: &[u8], value: &[u8]) -> Result<(), Abort> {
        self.blobs.insert(blob_key(space, key), value)?;
        Ok(())
    }

    fn record_seal(&self) -> Option<&RecordSeal> {
        self.seal
    }

    fn put_tree_head(&self, size: u64, head: &[u8]) -> Result<(), Abort> {
        self.heads.insert(&size.to_be_bytes(), head)?;
        Ok(())
    }

    fn set_crl_number(&self, sector: &str, number: u64) -> Result<(), Abort> {
        self.meta
            .insert(crl_number_key(sector).as_bytes(), &number.to_be_bytes())?;
        Ok(())
    }
}
