//! One fjall write transaction as the rules see it (`RecordTxn`): typed,
//! sealed reads and writes over the transaction's keyspaces, reads seeing
//! the transaction's own writes.

use std::cell::RefCell;

use fjall::SingleWriterWriteTx;

use super::{Spaces, fjall_error};
use crate::embedded::{self, AUDIT_FRONTIER, COUNT_CERTS, COUNT_DEVICES};
use crate::records::{decode, encode};
use crate::rules::RecordTxn;
use crate::seal::{self, RecordSeal, Sealed, Stamp};
use crate::vouched;
use crate::{
    AuditEntry, BlockedKey, CertificateRecord, DeviceRecord, HistoryEntry, StoreError, TrustRecord,
};

/// One fjall write transaction seen through [`RecordTxn`]. fjall's
/// transaction takes `&mut` for writes while the rules hold `&self`: the
/// cell lends it out for each single read or write.
pub(super) struct FjallTxn<'t, 'db> {
    pub(super) tx: &'t RefCell<SingleWriterWriteTx<'db>>,
    pub(super) spaces: &'t Spaces,
    pub(super) seal: Option<&'t RecordSeal>,
}

impl FjallTxn<'_, '_> {
    pub(super) fn read(
        &self,
        space: &fjall::SingleWriterTxKeyspace,
        key: &[u8],
    ) -> Result<Option<fjall::Slice>, StoreError> {
        use fjall::Readable;
        self.tx.borrow().get(space, key).map_err(fjall_error)
    }

    fn put(&self, space: &fjall::SingleWriterTxKeyspace, key: &[u8], value: &[u8]) {
        self.tx.borrow_mut().insert(space, key, value);
    }

    fn get<T: serde::de::DeserializeOwned>(
        &self,
        space: &fjall::SingleWriterTxKeyspace,
        key: &[u8],
    ) -> Result<Option<T>, StoreError> {
        self.read(space, key)?.map(|v| decode(key, &v)).transpose()
    }

    fn get_sealed<T: serde::de::DeserializeOwned>(
        &self,
        space: &fjall::SingleWriterTxKeyspace,
        table: Sealed,
        key: &[u8],
    ) -> Result<Option<T>, StoreError> {
        seal::sealed_value(self.read(space, key)?.as_deref(), self.seal, table, key)
    }

    fn put_sealed<T: serde::Serialize>(
        &self,
        space: &fjall::SingleWriterTxKeyspace,
        table: Sealed,
        key: &[u8],
        v: &T,
        stamp: Stamp,
    ) -> Result<[u8; 32], StoreError> {
        let (sealed, digest) =
            seal::sealed_record(self.seal, table, &seal::seal_key(table, key), v, stamp)?;
        self.put(space, key, &sealed);
        Ok(digest)
    }

    fn put_encoded<T: serde::Serialize>(
        &self,
        space: &fjall::SingleWriterTxKeyspace,
        key: &[u8],
        v: &T,
    ) -> Result<(), StoreError> {
        self.put(space, key, &encode(v)?);
        Ok(())
    }

    fn add(&self, key: &[u8], n: u64) -> Result<(), StoreError> {
        if n == 0 {
            return Ok(());
        }
        let old = embedded::counter_value(self.read(&self.spaces.meta, key)?.as_deref());
        self.put(&self.spaces.meta, key, &(old + n).to_be_bytes());
        Ok(())
    }
}

impl RecordTxn for FjallTxn<'_, '_> {
    // One writer at a time: nothing to retry, a failure is the refusal.
    type Fail = StoreError;

    fn fail(e: StoreError) -> StoreError {
        e
    }

    fn certificate(&self, serial: &[u8]) -> Result<Option<CertificateRecord>, StoreError> {
        self.get_sealed(&self.spaces.certs, Sealed::Certificate, serial)
    }

    fn insert_certificate(
        &self,
        record: &CertificateRecord,
        fingerprint: &[u8; 32],
        stamp: Stamp,
    ) -> Result<[u8; 32], StoreError> {
        let digest = self.update_certificate(record, stamp)?;
        self.put(&self.spaces.fingerprints, fingerprint, &record.serial);
        Ok(digest)
    }

    fn update_certificate(
        &self,
        record: &CertificateRecord,
        stamp: Stamp,
    ) -> Result<[u8; 32], StoreError> {
        let key = &record.serial;
        self.put_sealed(&self.spaces.certs, Sealed::Certificate, key, record, stamp)
    }

    fn device(&self, identity_key: &str) -> Result<Option<DeviceRecord>, StoreError> {
        self.get_sealed(
            &self.spaces.devices,
            Sealed::Device,
            identity_key.as_bytes(),
        )
    }

    fn put_device(&self, record: &DeviceRecord, stamp: Stamp) -> Result<[u8; 32], StoreError> {
        let key = record.identity_key.as_bytes();
        self.put_sealed(&self.spaces.devices, Sealed::Device, key, record, stamp)
    }

    fn trust(&self, identity_key: &str) -> Result<Option<TrustRecord>, StoreError> {
        self.get_sealed(&self.spaces.trust, Sealed::Trust, identity_key.as_bytes())
    }

    fn put_trust(&self, record: &TrustRecord, stamp: Stamp) -> Result<[u8; 32], StoreError> {
        let key = record.identity_key.as_bytes();
        self.put_sealed(&self.spaces.trust, Sealed::Trust, key, record, stamp)
    }

    fn history_entry(
        &self,
        identity_key: &str,
        version: u64,
    ) -> Result<Option<HistoryEntry>, StoreError> {
        let key = embedded::history_key(identity_key, version);
        self.get(&self.spaces.history, &key)
    }

    fn put_history(&self, identity_key: &str, entry: &HistoryEntry) -> Result<(), StoreError> {
        let key = embedded::history_key(identity_key, entry.version);
        self.put_encoded(&self.spaces.history, &key, entry)
    }

    fn blocked_key(&self, fingerprint: &[u8; 32]) -> Result<Option<BlockedKey>, StoreError> {
        let stored = self.get(&self.spaces.blocked_keys, fingerprint)?;
        vouched::vouch_blocked(self.seal, fingerprint, stored)
    }

    fn put_blocked_key(
        &self,
        fingerprint: &[u8; 32],
        block: &BlockedKey,
    ) -> Result<(), StoreError> {
        self.put_encoded(&self.spaces.blocked_keys, fingerprint, block)
    }

    fn put_revoked(
        &self,
        sector: &str,
        serial: &[u8],
        at: i64,
        reason: u8,
    ) -> Result<(), StoreError> {
        let (key, value) = embedded::revoked_entry(sector, serial, at, reason);
        self.put(&self.spaces.revoked, &key, &value);
        Ok(())
    }

    fn audit_frontier(&self) -> Result<trustca_audit::MerkleFrontier, StoreError> {
        embedded::frontier(self.read(&self.spaces.meta, AUDIT_FRONTIER)?.as_deref())
    }

    fn put_audit_entry(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        self.put_encoded(&self.spaces.audit, &entry.seq.to_be_bytes(), entry)
    }

    fn put_audit_frontier(
        &self,
        frontier: &trustca_audit::MerkleFrontier,
    ) -> Result<(), StoreError> {
        self.put(&self.spaces.meta, AUDIT_FRONTIER, &frontier.to_bytes());
        Ok(())
    }

    fn add_counts(&self, certificates: u64, devices: u64) -> Result<(), StoreError> {
        self.add(COUNT_CERTS, certificates)?;
        self.add(COUNT_DEVICES, devices)
    }

    fn blob(&self, space: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let stored = self.read(&self.spaces.blobs, &embedded::blob_key(space, key))?;
        Ok(stored.map(|v| v.to_vec()))
    }

    fn put_blob(&self, space: &str, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.put(&self.spaces.blobs, &embedded::blob_key(space, key), value);
        Ok(())
    }

    fn record_seal(&self) -> Option<&RecordSeal> {
        self.seal
    }

    fn put_tree_head(&self, size: u64, head: &[u8]) -> Result<(), StoreError> {
        self.put(&self.spaces.heads, &size.to_be_bytes(), head);
        Ok(())
    }

    fn set_crl_number(&self, sector: &str, number: u64) -> Result<(), StoreError> {
        let key = embedded::crl_number_key(sector);
        self.put(&self.spaces.meta, key.as_bytes(), &number.to_be_bytes());
        Ok(())
    }
}
