//! What a slice of enrollments reads from the store before signing, read
//! for the slice at once: the device records (is the identity enrolled?),
//! the blocks on the requests' keys and the model registry's ranges of the
//! models named.
//!
//! Over PostgreSQL every read is a round trip and a statement the database
//! runs on the same cores: three per enrollment made EnrollBatch on
//! PostgreSQL a third of sled's rate. Here the first two are asked for the
//! whole slice in one [`Storage::issuance_reads`] (stores that read each
//! as cheaply answer `None` and are read one by one as before), and a
//! model's ranges are read once per slice, not once per device. These are
//! read-aheads for the checks before signing; the commit checks enrolment
//! and blocked keys again inside its transaction, so a change that lands
//! between the two is still refused there.

use std::cell::RefCell;
use std::collections::HashMap;

use trustca_model::{DeviceIdentity, ModelRecord, SectorName};
use trustca_store::{BlockedKey, IssuanceReads, Storage, StoreError, registry};

use super::EnrollmentRequest;

/// One worker's reads for its slice of a request group.
pub(super) struct GroupReads<'a> {
    storage: &'a dyn Storage,
    /// What was read ahead; a key not in it is read alone.
    ahead: IssuanceReads,
    /// A model's registered firmware ranges, by (sector, manufacturer, model).
    models: RefCell<HashMap<(String, String, String), Vec<ModelRecord>>>,
}

impl<'a> GroupReads<'a> {
    /// Reads ahead what checking `requests` will ask. A request whose
    /// identity or CSR does not parse is left out: its checks refuse it
    /// before any read. A store that cannot answer now is read one by one
    /// later, which gives each request its own refusal.
    pub(super) fn new(storage: &'a dyn Storage, requests: &[EnrollmentRequest]) -> Self {
        let mut keys = Vec::with_capacity(requests.len());
        let mut fingerprints = Vec::with_capacity(requests.len());
        for r in requests {
            let d = &r.device;
            if let Ok(id) = SectorName::new(&d.sector)
                .and_then(|s| DeviceIdentity::new(s, &d.manufacturer, &d.model, &d.serial))
            {
                keys.push(id.key());
            }
            if let Some(spki) = crate::csr::csr_public_key(&r.csr_der) {
                fingerprints.push(trustca_model::key_fingerprint(&spki));
            }
        }
        let ahead = if requests.len() > 1 {
            storage
                .issuance_reads(&keys, &fingerprints)
                .ok()
                .flatten()
                .unwrap_or_default()
        } else {
            IssuanceReads::default()
        };
        Self {
            storage,
            ahead,
            models: RefCell::default(),
        }
    }

    /// Whether `identity_key` is enrolled ([`Storage::device`]).
    pub(super) fn enrolled(&self, identity_key: &str) -> Result<bool, StoreError> {
        match self.ahead.devices.get(identity_key) {
            Some(record) => Ok(record.is_some()),
            None => Ok(self.storage.device(identity_key)?.is_some()),
        }
    }

    /// The block on a key, by its fingerprint ([`Storage::blocked_key`]).
    pub(super) fn blocked_key(
        &self,
        fingerprint: &[u8; 32],
    ) -> Result<Option<BlockedKey>, StoreError> {
        match self.ahead.blocked.get(fingerprint) {
            Some(block) => Ok(block.clone()),
            None => self.storage.blocked_key(fingerprint),
        }
    }

    /// The registered record whose firmware range holds `firmware`
    /// ([`trustca_store::registry::model_for_firmware`]), the model's
    /// ranges read once for the slice.
    pub(super) fn model_for_firmware(
        &self,
        identity: &DeviceIdentity,
        firmware: &str,
    ) -> Result<Option<ModelRecord>, StoreError> {
        let key = (
            identity.sector.to_string(),
            identity.manufacturer.clone(),
            identity.model.clone(),
        );
        let pick = |ranges: &[ModelRecord]| registry::range_for_firmware(ranges, firmware).cloned();
        if let Some(ranges) = self.models.borrow().get(&key) {
            return Ok(pick(ranges));
        }
        let ranges = registry::model_ranges(self.storage, &key.0, &key.1, &key.2)?;
        let found = pick(&ranges);
        self.models.borrow_mut().insert(key, ranges);
        Ok(found)
    }
}
