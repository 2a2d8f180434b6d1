//! The `Storage` trait over sled: writes run the rules in one sled
//! transaction across the trees, reads go to the trees directly.

use super::*;

impl Storage for SledStorage {
    fn commit_issuances(&self, batch: &[Issuance]) -> Vec<Result<(), StoreError>> {
        match self.write(|t| rules::issue_group(t, batch)) {
            Ok(r) => r,
            Err(e) => batch.iter().map(|_| Err(e.repeat())).collect(),
        }
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush().map_err(sled_error)?;
        Ok(())
    }

    fn device(&self, identity_key: &str) -> Result<Option<DeviceRecord>, StoreError> {
        self.get_sealed(&self.devices, Sealed::Device, identity_key.as_bytes())
    }

    fn trust_record(&self, identity_key: &str) -> Result<Option<TrustRecord>, StoreError> {
        self.get_sealed(&self.trust, Sealed::Trust, identity_key.as_bytes())
    }

    fn set_record_seal(&self, seal: Arc<RecordSeal>) {
        let _ = self.seal.set(seal);
        // Reads are checked from now on: nothing read before counts.
        self.changes
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    fn change_marker(&self) -> Option<u64> {
        Some(self.changes.load(std::sync::atomic::Ordering::Acquire))
    }

    fn history(&self, identity_key: &str) -> Result<Vec<HistoryEntry>, StoreError> {
        let mut prefix = identity_key.as_bytes().to_vec();
        prefix.push(0);
        self.history
            .scan_prefix(&prefix)
            .map(|kv| {
                let (k, v) = kv.map_err(sled_error)?;
                decode(&k, &v)
            })
            .collect()
    }

    fn certificate(&self, serial: &[u8]) -> Result<Option<CertificateRecord>, StoreError> {
        self.get_sealed(&self.certs, Sealed::Certificate, serial)
    }

    fn counts(&self) -> Result<(u64, u64), StoreError> {
        Ok((self.counter(COUNT_CERTS)?, self.counter(COUNT_DEVICES)?))
    }

    fn audit_entries(&self, from: u64, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        self.audit
            .range(from.to_be_bytes()..)
            .take(limit)
            .map(|kv| {
                let (k, v) = kv.map_err(sled_error)?;
                decode(&k, &v)
            })
            .collect()
    }

    fn size_on_disk(&self) -> Result<u64, StoreError> {
        self.db.size_on_disk().map_err(sled_error)
    }

    fn serial_by_fingerprint(&self, fingerprint: &[u8; 32]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .fingerprints
            .get(fingerprint)
            .map_err(sled_error)?
            .map(|v| v.to_vec()))
    }

    fn apply_trust_changes(
        &self,
        changes: &[TrustChange],
        at: i64,
    ) -> Result<Vec<TrustRecord>, StoreError> {
        self.write_durably(|t| rules::apply_trust_changes(t, changes, at))
    }

    fn transfer_trust(
        &self,
        from: &str,
        to: &str,
        actor: &str,
        reason: &str,
        at: i64,
    ) -> Result<TrustRecord, StoreError> {
        self.write_durably(|t| rules::transfer_trust(t, from, to, actor, reason, at))
    }

    fn audit_entries_raw(
        &self,
        from: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        self.audit
            .range(from.to_be_bytes()..)
            .take(limit)
            .map(|kv| {
                let (k, v) = kv.map_err(sled_error)?;
                let index =
                    u64::from_be_bytes(k.as_ref().try_into().map_err(|_| StoreError::Corrupt {
                        key: "audit".into(),
                        reason: "key is not an index".into(),
                    })?);
                Ok((index, v.to_vec()))
            })
            .collect()
    }

    fn audit_head(&self) -> Result<(u64, [u8; 32]), StoreError> {
        let frontier = match self.meta.get(AUDIT_FRONTIER).map_err(sled_error)? {
            Some(v) => {
                trustca_audit::MerkleFrontier::from_bytes(&v).map_err(|e| StoreError::Corrupt {
                    key: "audit.frontier".into(),
                    reason: e.to_string(),
                })?
            }
            None => trustca_audit::MerkleFrontier::new(),
        };
        Ok((frontier.size(), frontier.root()))
    }

    fn store_tree_head(&self, size: u64, signed_head: &[u8]) -> Result<(), StoreError> {
        self.heads
            .insert(size.to_be_bytes(), signed_head)
            .map_err(sled_error)?;
        self.heads.flush().map_err(sled_error)?;
        Ok(())
    }

    fn tree_heads_page(&self, from: u64, limit: usize) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        self.heads
            .range(from.to_be_bytes()..)
            .take(limit)
            .map(|kv| {
                let (k, v) = kv.map_err(sled_error)?;
                Ok((be_u64(&k, "tree head size")?, v.to_vec()))
            })
            .collect()
    }

    fn latest_tree_heads(&self, n: usize) -> Result<Vec<Vec<u8>>, StoreError> {
        self.heads
            .iter()
            .values()
            .rev()
            .take(n)
            .map(|v| Ok(v.map_err(sled_error)?.to_vec()))
            .collect()
    }

    fn revoke(
        &self,
        serials: &[Vec<u8>],
        reason: u8,
        actor: &str,
        note: &str,
        at: i64,
    ) -> Result<Vec<CertificateRecord>, StoreError> {
        self.write_durably(|t| rules::revoke(t, serials, reason, actor, note, at))
    }

    fn blocked_key(&self, key_fingerprint: &[u8; 32]) -> Result<Option<BlockedKey>, StoreError> {
        vouched::vouch_blocked(
            self.seal.get().map(|s| &**s),
            key_fingerprint,
            Self::get(&self.blocked_keys, key_fingerprint)?,
        )
    }

    fn revoked_page(
        &self,
        sector: &str,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, i64, u8)>, StoreError> {
        let mut prefix = sector.as_bytes().to_vec();
        prefix.push(0);
        let after_key = after.map(|a| [prefix.as_slice(), a].concat());
        let stored = page_after(&self.revoked, &prefix, after_key.as_deref(), limit)
            .map(|kv| {
                let (k, v) = kv?;
                if v.len() != 9 {
                    return Err(StoreError::Corrupt {
                        key: "revoked".into(),
                        reason: "bad value length".into(),
                    });
                }
                let at = i64::from_be_bytes(v[..8].try_into().unwrap_or([0; 8]));
                Ok((k[prefix.len()..].to_vec(), at, v[8]))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let seal = self.seal.get().map(|s| &**s);
        vouched::vouch_revoked_page(seal, self, sector, (after, limit), &stored)?;
        Ok(stored)
    }

    fn next_crl_number(&self, sector: &str) -> Result<u64, StoreError> {
        let key = crl_number_key(sector);
        let next = self
            .meta
            .update_and_fetch(key.as_bytes(), |old| {
                let n = old
                    .and_then(|v| v.try_into().ok())
                    .map(u64::from_be_bytes)
                    .unwrap_or(0);
                Some((n + 1).to_be_bytes().to_vec())
            })
            .map_err(sled_error)?;
        self.meta.flush().map_err(sled_error)?;
        Ok(next
            .and_then(|v| v.as_ref().try_into().ok())
            .map(u64::from_be_bytes)
            .unwrap_or(1))
    }

    fn blob_put(
        &self,
        space: &str,
        records: &[crate::KeyValue],
        create_only: bool,
        audit: Option<&crate::BlobAudit>,
    ) -> Result<(), StoreError> {
        self.write_durably(|t| rules::put_blobs(t, space, records, create_only, audit))
    }

    fn commit_model_change(
        &self,
        space: &str,
        records: &[crate::KeyValue],
        audit: &crate::BlobAudit,
        changes: &[TrustChange],
    ) -> Result<Vec<TrustRecord>, StoreError> {
        self.write_durably(|t| rules::commit_model_change(t, space, records, audit, changes))
    }

    fn blob_get(&self, space: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let value = self
            .blobs
            .get(blob_key(space, key))
            .map_err(sled_error)?
            .map(|v| seal::open_blob(self.seal.get().map(|s| &**s), space, key, v.to_vec()))
            .transpose()?;
        vouched::vouch_blob(self.seal.get().map(|s| &**s), self, space, key, value)
    }

    fn blob_scan_page(
        &self,
        space: &str,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<crate::KeyValue>, StoreError> {
        let skip = space.len() + 1;
        let full = blob_key(space, prefix);
        let after_key = after.map(|a| blob_key(space, a));
        let stored = page_after(&self.blobs, &full, after_key.as_deref(), limit)
            .map(|kv| {
                let (k, v) = kv?;
                let key = k[skip..].to_vec();
                let value =
                    seal::open_blob(self.seal.get().map(|s| &**s), space, &key, v.to_vec())?;
                Ok((key, value))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let seal = self.seal.get().map(|s| &**s);
        vouched::vouch_blob_page(seal, self, space, (prefix, after, limit), &stored)?;
        Ok(stored)
    }

    fn challenge_put(
        &self,
        id: &[u8],
        record: &[u8],
        expires_at: i64,
        now: i64,
        max_open: usize,
    ) -> Result<bool, StoreError> {
        let _one_at_a_time = self
            .challenge_lock
            .lock()
            .map_err(|_| StoreError::Backend("the challenge lock is poisoned".into()))?;
        if self.challenges.len() >= max_open {
            for kv in self.challenges.iter() {
                let (k, v) = kv.map_err(sled_error)?;
                if challenge_expiry(&v).is_none_or(|at| at <= now) {
                    self.challenges.remove(k).map_err(sled_error)?;
                }
            }
            if self.challenges.len() >= max_open {
                return Ok(false);
            }
        }
        let mut value = expires_at.to_be_bytes().to_vec();
        value.extend_from_slice(record);
        self.challenges.insert(id, value).map_err(sled_error)?;
        self.db.flush().map_err(sled_error)?;
        Ok(true)
    }

    fn challenge_take(&self, id: &[u8]) -> Result<Option<(Vec<u8>, i64)>, StoreError> {
        // One atomic remove: of concurrent takes, one gets the value. It
        // is made durable by the next flush, at the latest the one that
        // commits the enrollment answering it.
        let Some(v) = self.challenges.remove(id).map_err(sled_error)? else {
            return Ok(None);
        };
        let at = challenge_expiry(&v).ok_or_else(|| StoreError::Corrupt {
            key: "attestation_challenges".into(),
            reason: "a challenge record shorter than its expiry".into(),
        })?;
        Ok(Some((v[8..].to_vec(), at)))
    }

    fn export(
        &self,
        each: &mut dyn FnMut(StoredRecord) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let s = self.seal.get().map(|s| &**s);
        for kv in self.certs.iter() {
            let (k, v) = kv.map_err(sled_error)?;
            let (record, seal) = seal::decode_sealed(s, Sealed::Certificate, &k, &v)?;
            each(StoredRecord::Certificate(record, seal))?;
        }
        for kv in self.devices.iter() {
            let (k, v) = kv.map_err(sled_error)?;
            let (record, seq) = seal::decode_sealed(s, Sealed::Device, &k, &v)?;
            each(StoredRecord::Device(record, seq))?;
        }
        for kv in self.trust.iter() {
            let (k, v) = kv.map_err(sled_error)?;
            let (record, seq) = seal::decode_sealed(s, Sealed::Trust, &k, &v)?;
            each(StoredRecord::Trust(record, seq))?;
        }
        for kv in self.history.iter() {
            let (k, v) = kv.map_err(sled_error)?;
            let identity = k
                .len()
                .checked_sub(9)
                .and_then(|n| std::str::from_utf8(&k[..n]).ok())
                .ok_or_else(|| StoreError::Corrupt {
                    key: "history".into(),
                    reason: "key is not identity, 0, version".into(),
                })?;
            each(StoredRecord::History(identity.to_owned(), decode(&k, &v)?))?;
        }
        for kv in self.audit.iter() {
            let (k, v) = kv.map_err(sled_error)?;
            each(StoredRecord::Audit(decode(&k, &v)?))?;
        }
        for kv in self.heads.iter() {
            let (k, v) = kv.map_err(sled_error)?;
            each(StoredRecord::TreeHead(be_u64(&k, "tree head")?, v.to_vec()))?;
        }
        for kv in self.revoked.iter() {
            let (k, v) = kv.map_err(sled_error)?;
            let corrupt = || StoreError::Corrupt {
                key: "revoked".into(),
                reason: "bad key or value".into(),
            };
            let split = k.iter().position(|b| *b == 0).ok_or_else(corrupt)?;
            let sector = std::str::from_utf8(&k[..split]).map_err(|_| corrupt())?;
            if v.len() != 9 {
                return Err(corrupt());
            }
            each(StoredRecord::Revoked(
                sector.to_owned(),
                k[split + 1..].to_vec(),
                i64::from_be_bytes(v[..8].try_into().map_err(|_| corrupt())?),
                v[8],
            ))?;
        }
        for kv in self.blocked_keys.iter() {
            let (k, v) = kv.map_err(sled_error)?;
            let fp: [u8; 32] = k.as_ref().try_into().map_err(|_| StoreError::Corrupt {
                key: "blocked key".into(),
                reason: "key is not a SHA-256".into(),
            })?;
            each(StoredRecord::BlockedKey(fp, decode(&k, &v)?))?;
        }
        for kv in self.blobs.iter() {
            let (k, v) = kv.map_err(sled_error)?;
            let corrupt = || StoreError::Corrupt {
                key: "blob".into(),
                reason: "key is not space, 0, key".into(),
            };
            let split = k.iter().position(|b| *b == 0).ok_or_else(corrupt)?;
            let space = std::str::from_utf8(&k[..split]).map_err(|_| corrupt())?;
            each(StoredRecord::Blob(
                space.to_owned(),
                k[split + 1..].to_vec(),
                v.to_vec(),
            ))?;
        }
        for kv in self.meta.scan_prefix(CRL_NUMBER_PREFIX.as_bytes()) {
            let (k, v) = kv.map_err(sled_error)?;
            let sector = String::from_utf8_lossy(&k[CRL_NUMBER_PREFIX.len()..]).into_owned();
            each(StoredRecord::CrlNumber(sector, be_u64(&v, "crl number")?))?;
        }
        let (certificates, devices) = self.counts()?;
        each(StoredRecord::Counts(certificates, devices))
    }

    fn raw_records(
        &self,
        table: crate::RecordTable,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<crate::KeyValue>, StoreError> {
        use std::ops::Bound;
        let tree = match table {
            crate::RecordTable::Certificates => &self.certs,
            crate::RecordTable::Devices => &self.devices,
            crate::RecordTable::Trust => &self.trust,
            crate::RecordTable::History => &self.history,
        };
        let start = match after {
            Some(k) => Bound::Excluded(k.to_vec()),
            None => Bound::Unbounded,
        };
        tree.range::<Vec<u8>, _>((start, Bound::Unbounded))
            .take(limit)
            .map(|kv| {
                let (k, v) = kv.map_err(sled_error)?;
                Ok((k.to_vec(), v.to_vec()))
            })
            .collect()
    }

    fn import(&self, records: &[StoredRecord]) -> Result<(), StoreError> {
        self.write_durably(|t| rules::import(t, records))
    }

    fn seal_legacy_records(
        &self,
        entry: &AuditEntry,
        records: &[StoredRecord],
    ) -> Result<(), StoreError> {
        self.write_durably(|t| rules::seal_legacy(t, entry, records))
    }

    fn devices_with_prefix(&self, prefix: &str) -> Result<Vec<DeviceRecord>, StoreError> {
        let s = self.seal.get().map(|s| &**s);
        self.devices
            .scan_prefix(prefix.as_bytes())
            .map(|kv| {
                let (k, v) = kv.map_err(sled_error)?;
                Ok(seal::decode_sealed(s, Sealed::Device, &k, &v)?.0)
            })
            .collect()
    }

    fn devices_page(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<DeviceRecord>, StoreError> {
        let s = self.seal.get().map(|s| &**s);
        let start = match after {
            // The smallest key after `after`: itself with a 0 byte added.
            Some(a) if a >= prefix => {
                let mut k = a.as_bytes().to_vec();
                k.push(0);
                k
            }
            _ => prefix.as_bytes().to_vec(),
        };
        self.devices
            .range(start..)
            .take_while(|kv| {
                kv.as_ref()
                    .map_or(true, |(k, _)| k.starts_with(prefix.as_bytes()))
            })
            .take(limit)
            .map(|kv| {
                let (k, v) = kv.map_err(sled_error)?;
                Ok(seal::decode_sealed(s, Sealed::Device, &k, &v)?.0)
            })
            .collect()
    }
}

/// The expiry a stored challenge starts with.
fn challenge_expiry(v: &[u8]) -> Option<i64> {
    Some(i64::from_be_bytes(v.get(..8)?.try_into().ok()?))
}

/// Up to `limit` records of `tree` under `prefix` whose key comes after
/// `after` (a whole key, prefix included; from the first when `None`), in
/// key order.
fn page_after<'a>(
    tree: &'a sled::Tree,
    prefix: &'a [u8],
    after: Option<&[u8]>,
    limit: usize,
) -> impl Iterator<Item = Result<(sled::IVec, sled::IVec), StoreError>> + 'a {
    use std::ops::Bound;
    let start = match after {
        Some(a) if a >= prefix => Bound::Excluded(a.to_vec()),
        _ => Bound::Included(prefix.to_vec()),
    };
    tree.range::<Vec<u8>, _>((start, Bound::Unbounded))
        .map(|kv| kv.map_err(sled_error))
        .take_while(move |kv| kv.as_ref().map_or(true, |(k, _)| k.starts_with(prefix)))
        .take(limit)
}
