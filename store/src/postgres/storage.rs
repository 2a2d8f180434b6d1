//! The `Storage` trait over PostgreSQL: every write runs the rules in one
//! transaction under the write lock, every read is one query.

use super::*;

impl Storage for PgStorage {
    fn commit_issuances(&self, batch: &[Issuance]) -> Vec<Result<(), StoreError>> {
        match self.write(|t| rules::issue_group(t, batch)) {
            Ok(r) => r,
            // The transaction rolled back: nothing of the group is stored.
            // Each item keeps the failure's kind: a full disk must stay
            // `Full` (RESOURCE_EXHAUSTED, and the guard's refusing state),
            // not become a backend error (INTERNAL).
            Err(e) => batch.iter().map(|_| Err(e.repeat())).collect(),
        }
    }

    fn flush(&self) -> Result<(), StoreError> {
        // Every write committed synchronously before it returned.
        Ok(())
    }

    fn device(&self, identity_key: &str) -> Result<Option<DeviceRecord>, StoreError> {
        // What the log vouches for is read first: a newer version written
        // by another replica after the row was read is not a rollback.
        let seal = self.fresh_seal()?;
        let row = self.read_one(
            "SELECT record FROM devices WHERE identity_key = $1",
            &[&identity_key],
            |r| Ok(r.get::<_, Vec<u8>>(0)),
        )?;
        seal::sealed_value(
            row.as_deref(),
            seal,
            Sealed::Device,
            identity_key.as_bytes(),
        )
    }

    fn trust_record(&self, identity_key: &str) -> Result<Option<TrustRecord>, StoreError> {
        // What the log vouches for is read first: a newer version written
        // by another replica after the row was read is not a rollback.
        let seal = self.fresh_seal()?;
        let row = self.read_one(
            "SELECT record FROM trust_records WHERE identity_key = $1",
            &[&identity_key],
            |r| Ok(r.get::<_, Vec<u8>>(0)),
        )?;
        seal::sealed_value(row.as_deref(), seal, Sealed::Trust, identity_key.as_bytes())
    }

    fn set_record_seal(&self, seal: std::sync::Arc<RecordSeal>) {
        let _ = self.seal.set(seal);
    }

    fn history(&self, identity_key: &str) -> Result<Vec<HistoryEntry>, StoreError> {
        self.read(
            "SELECT record FROM history WHERE identity_key = $1 ORDER BY version",
            &[&identity_key],
            |r| decoded("history", r),
        )
    }

    fn certificate(&self, serial: &[u8]) -> Result<Option<CertificateRecord>, StoreError> {
        // What the log vouches for is read first: a newer version written
        // by another replica after the row was read is not a rollback.
        let seal = self.fresh_seal()?;
        let row = self.read_one(
            "SELECT record FROM certificates WHERE serial = $1",
            &[&serial],
            |r| Ok(r.get::<_, Vec<u8>>(0)),
        )?;
        seal::sealed_value(row.as_deref(), seal, Sealed::Certificate, serial)
    }

    fn counts(&self) -> Result<(u64, u64), StoreError> {
        Ok((self.meta_u64(COUNT_CERTS)?, self.meta_u64(COUNT_DEVICES)?))
    }

    fn audit_entries(&self, from: u64, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        self.read(
            "SELECT record FROM audit_log WHERE seq >= $1 ORDER BY seq LIMIT $2",
            &[&int(from)?, &limit_of(limit)],
            |r| decoded("audit", r),
        )
    }

    fn size_on_disk(&self) -> Result<u64, StoreError> {
        Ok(self
            .read_one(
                "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::BIGINT \
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = current_schema() AND c.relkind = 'r'",
                &[],
                |r| Ok(r.get::<_, i64>(0)),
            )?
            .unwrap_or(0)
            .max(0) as u64)
    }

    fn serial_by_fingerprint(&self, fingerprint: &[u8; 32]) -> Result<Option<Vec<u8>>, StoreError> {
        self.read_one(
            "SELECT serial FROM certificates WHERE fingerprint = $1",
            &[&fingerprint.as_slice()],
            |r| Ok(r.get::<_, Vec<u8>>(0)),
        )
    }

    fn apply_trust_changes(
        &self,
        changes: &[TrustChange],
        at: i64,
    ) -> Result<Vec<TrustRecord>, StoreError> {
        self.write(|t| rules::apply_trust_changes(t, changes, at))
    }

    fn transfer_trust(
        &self,
        from: &str,
        to: &str,
        actor: &str,
        reason: &str,
        at: i64,
    ) -> Result<TrustRecord, StoreError> {
        self.write(|t| rules::transfer_trust(t, from, to, actor, reason, at))
    }

    fn devices_with_prefix(&self, prefix: &str) -> Result<Vec<DeviceRecord>, StoreError> {
        let s = self.seal();
        self.read(
            "SELECT identity_key, record FROM devices \
             WHERE substr(identity_key, 1, char_length($1)) = $1 ORDER BY identity_key",
            &[&prefix],
            |r| {
                let key: &str = r.get(0);
                Ok(seal::decode_sealed(s, Sealed::Device, key.as_bytes(), r.get(1))?.0)
            },
        )
    }

    fn devices_page(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<DeviceRecord>, StoreError> {
        let s = self.seal();
        // "" sorts before every key, so no `after` starts at the first.
        let after = after.unwrap_or("");
        self.read(
            "SELECT identity_key, record FROM devices \
             WHERE substr(identity_key, 1, char_length($1)) = $1 AND identity_key > $2 \
             ORDER BY identity_key LIMIT $3",
            &[&prefix, &after, &limit_of(limit)],
            |r| {
                let key: &str = r.get(0);
                Ok(seal::decode_sealed(s, Sealed::Device, key.as_bytes(), r.get(1))?.0)
            },
        )
    }

    fn raw_records(
        &self,
        table: crate::RecordTable,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<KeyValue>, StoreError> {
        use crate::RecordTable;
        let limit = limit_of(limit);
        let text_key = |after: Option<&[u8]>| -> Result<String, StoreError> {
            Ok(match after {
                Some(k) => String::from_utf8(k.to_vec()).map_err(|_| {
                    StoreError::Backend("an identity key continuation is not UTF-8".into())
                })?,
                None => String::new(),
            })
        };
        match table {
            RecordTable::Certificates => self.read(
                "SELECT serial, record FROM certificates WHERE serial > $1 ORDER BY serial LIMIT $2",
                &[&after.unwrap_or_default().to_vec(), &limit],
                |r| Ok((r.get::<_, Vec<u8>>(0), r.get::<_, Vec<u8>>(1))),
            ),
            RecordTable::Devices | RecordTable::Trust => {
                let sql = if table == RecordTable::Devices {
                    "SELECT identity_key, record FROM devices WHERE identity_key > $1 ORDER BY identity_key LIMIT $2"
                } else {
                    "SELECT identity_key, record FROM trust_records WHERE identity_key > $1 ORDER BY identity_key LIMIT $2"
                };
                self.read(sql, &[&text_key(after)?, &limit], |r| {
                    Ok((r.get::<_, String>(0).into_bytes(), r.get::<_, Vec<u8>>(1)))
                })
            }
            RecordTable::History => {
                // The continuation key is `identity, 0, version`.
                let (identity, version) = match after {
                    Some(k) if k.len() >= 9 => (
                        text_key(Some(&k[..k.len() - 9]))?,
                        i64::from_be_bytes(k[k.len() - 8..].try_into().unwrap_or([0; 8])),
                    ),
                    _ => (String::new(), -1),
                };
                self.read(
                    "SELECT identity_key, version, record FROM history WHERE (identity_key, version) > ($1, $2) ORDER BY identity_key, version LIMIT $3",
                    &[&identity, &version, &limit],
                    |r| {
                        let mut key = r.get::<_, String>(0).into_bytes();
                        key.push(0);
                        key.extend_from_slice(&r.get::<_, i64>(1).to_be_bytes());
                        Ok((key, r.get::<_, Vec<u8>>(2)))
                    },
                )
            }
        }
    }

    fn audit_entries_raw(
        &self,
        from: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        self.read(
            "SELECT seq, record FROM audit_log WHERE seq >= $1 ORDER BY seq LIMIT $2",
            &[&int(from)?, &limit_of(limit)],
            |r| Ok((r.get::<_, i64>(0).max(0) as u64, r.get::<_, Vec<u8>>(1))),
        )
    }

    fn audit_head(&self) -> Result<(u64, [u8; 32]), StoreError> {
        let frontier = match self.read_one(
            "SELECT value FROM meta WHERE key = $1",
            &[&AUDIT_FRONTIER],
            |r| Ok(r.get::<_, Vec<u8>>(0)),
        )? {
            Some(v) => {
                trustca_audit::MerkleFrontier::from_bytes(&v).map_err(|e| StoreError::Corrupt {
                    key: AUDIT_FRONTIER.into(),
                    reason: e.to_string(),
                })?
            }
            None => trustca_audit::MerkleFrontier::new(),
        };
        Ok((frontier.size(), frontier.root()))
    }

    fn store_tree_head(&self, size: u64, signed_head: &[u8]) -> Result<(), StoreError> {
        self.write(|t| t.put_tree_head_row(size, signed_head))
    }

    fn tree_heads_page(&self, from: u64, limit: usize) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let from = i64::try_from(from).unwrap_or(i64::MAX);
        self.read(
            "SELECT size, head FROM tree_heads WHERE size >= $1 ORDER BY size LIMIT $2",
            &[&from, &limit_of(limit)],
            |r| Ok((r.get::<_, i64>(0).max(0) as u64, r.get::<_, Vec<u8>>(1))),
        )
    }

    fn latest_tree_heads(&self, n: usize) -> Result<Vec<Vec<u8>>, StoreError> {
        self.read(
            "SELECT head FROM tree_heads ORDER BY size DESC LIMIT $1",
            &[&limit_of(n)],
            |r| Ok(r.get::<_, Vec<u8>>(0)),
        )
    }

    fn revoke(
        &self,
        serials: &[Vec<u8>],
        reason: u8,
        actor: &str,
        note: &str,
        at: i64,
    ) -> Result<Vec<CertificateRecord>, StoreError> {
        self.write(|t| rules::revoke(t, serials, reason, actor, note, at))
    }

    fn blocked_key(&self, key_fingerprint: &[u8; 32]) -> Result<Option<BlockedKey>, StoreError> {
        let seal = self.fresh_seal()?;
        let block = self.read_one(
            "SELECT record FROM blocked_keys WHERE fingerprint = $1",
            &[&key_fingerprint.as_slice()],
            |r| decoded("blocked key", r),
        )?;
        vouched::vouch_blocked(seal, key_fingerprint, block)
    }

    fn issuance_reads(
        &self,
        identity_keys: &[String],
        key_fingerprints: &[[u8; 32]],
    ) -> Result<Option<IssuanceReads>, StoreError> {
        let seal = self.fresh_seal()?;
        let pair = |r: &tokio_postgres::Row| Ok((r.get::<_, Vec<u8>>(0), r.get::<_, Vec<u8>>(1)));
        let mut devices: HashMap<Vec<u8>, Vec<u8>> = self
            .read(
                "SELECT convert_to(identity_key, 'UTF8'), record FROM devices \
                 WHERE identity_key = ANY($1)",
                &[&identity_keys],
                pair,
            )?
            .into_iter()
            .collect();
        let fingerprints: Vec<&[u8]> = key_fingerprints.iter().map(|f| f.as_slice()).collect();
        let mut blocked: HashMap<Vec<u8>, Vec<u8>> = self
            .read(
                "SELECT fingerprint, record FROM blocked_keys WHERE fingerprint = ANY($1)",
                &[&fingerprints],
                pair,
            )?
            .into_iter()
            .collect();
        // A record that fails its check is left out: the caller reads it
        // alone and gets the refusal for that enrollment only.
        let mut reads = IssuanceReads::default();
        for key in identity_keys {
            let row = devices.remove(key.as_bytes());
            if let Ok(record) =
                seal::sealed_value(row.as_deref(), seal, Sealed::Device, key.as_bytes())
            {
                reads.devices.insert(key.clone(), record);
            }
        }
        for fp in key_fingerprints {
            let block = blocked
                .remove(fp.as_slice())
                .map(|b| decode(b"blocked key", &b))
                .transpose();
            if let Ok(block) = block.and_then(|b| vouched::vouch_blocked(seal, fp, b)) {
                reads.blocked.insert(*fp, block);
            }
        }
        Ok(Some(reads))
    }

    fn revoked_page(
        &self,
        sector: &str,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, i64, u8)>, StoreError> {
        let row = |r: &tokio_postgres::Row| {
            let reason = u8::try_from(r.get::<_, i16>(2)).map_err(|_| StoreError::Corrupt {
                key: "revoked".into(),
                reason: "reason code out of range".into(),
            })?;
            Ok((r.get::<_, Vec<u8>>(0), r.get::<_, i64>(1), reason))
        };
        let limit_sql = limit_of(limit);
        let stored = match after {
            Some(after) => self.read(
                "SELECT serial, at, reason FROM revoked WHERE sector = $1 AND serial > $2 \
                 ORDER BY serial LIMIT $3",
                &[&sector, &after, &limit_sql],
                row,
            ),
            None => self.read(
                "SELECT serial, at, reason FROM revoked WHERE sector = $1 \
                 ORDER BY serial LIMIT $2",
                &[&sector, &limit_sql],
                row,
            ),
        }?;
        vouched::vouch_revoked_page(self.seal(), self, sector, (after, limit), &stored)?;
        Ok(stored)
    }

    fn next_crl_number(&self, sector: &str) -> Result<u64, StoreError> {
        // One statement, atomic across replicas: numbers are never reused.
        let n = self.read_one(
            "INSERT INTO crl_numbers (sector, number) VALUES ($1, 1) \
             ON CONFLICT (sector) DO UPDATE SET number = crl_numbers.number + 1 \
             RETURNING number",
            &[&sector],
            |r| Ok(r.get::<_, i64>(0)),
        )?;
        n.map(|n| n.max(1) as u64)
            .ok_or_else(|| StoreError::Backend("no CRL number was returned".into()))
    }

    fn blob_put(
        &self,
        space: &str,
        records: &[KeyValue],
        create_only: bool,
        audit: Option<&BlobAudit>,
    ) -> Result<(), StoreError> {
        self.write(|t| rules::put_blobs(t, space, records, create_only, audit))
    }

    fn commit_model_change(
        &self,
        space: &str,
        records: &[KeyValue],
        audit: &BlobAudit,
        changes: &[TrustChange],
    ) -> Result<Vec<TrustRecord>, StoreError> {
        self.write(|t| rules::commit_model_change(t, space, records, audit, changes))
    }

    fn blob_get(&self, space: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let value = self.read_one(
            "SELECT value FROM blobs WHERE space = $1 AND key = $2",
            &[&space, &key],
            |r| Ok(r.get::<_, Vec<u8>>(0)),
        )?;
        let value = value
            .map(|v| seal::open_blob(self.seal(), space, key, v))
            .transpose()?;
        vouched::vouch_blob(self.fresh_seal()?, self, space, key, value)
    }

    fn blob_scan_page(
        &self,
        space: &str,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<KeyValue>, StoreError> {
        // A key range rather than substr(), so the primary key's index
        // serves it: enrollment scans one model's records among many.
        let row = |r: &tokio_postgres::Row| Ok((r.get::<_, Vec<u8>>(0), r.get::<_, Vec<u8>>(1)));
        let end = prefix_successor(prefix);
        let limit_sql = limit_of(limit);
        let mut sql = String::from("SELECT key, value FROM blobs WHERE space = $1 AND key >= $2");
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&space, &prefix];
        if let Some(after) = &after {
            params.push(after);
            sql.push_str(&format!(" AND key > ${}", params.len()));
        }
        if let Some(end) = &end {
            params.push(end);
            sql.push_str(&format!(" AND key < ${}", params.len()));
        }
        params.push(&limit_sql);
        sql.push_str(&format!(" ORDER BY key LIMIT ${}", params.len()));
        let stored = self
            .read(&sql, &params, row)?
            .into_iter()
            .map(|(k, v)| {
                let v = seal::open_blob(self.seal(), space, &k, v)?;
                Ok((k, v))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let seal = self.fresh_seal()?;
        vouched::vouch_blob_page(seal, self, space, (prefix, after, limit), &stored)?;
        Ok(stored)
    }

    fn export(
        &self,
        each: &mut dyn FnMut(StoredRecord) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        // Page through each table in key order so memory stays bounded.
        const PAGE: i64 = 2000;
        let mut after: Vec<u8> = Vec::new();
        loop {
            let rows = self.read(
                "SELECT serial, record FROM certificates WHERE serial > $1 ORDER BY serial LIMIT $2",
                &[&after, &PAGE],
                |r| Ok((r.get::<_, Vec<u8>>(0), r.get::<_, Vec<u8>>(1))),
            )?;
            let Some((last, _)) = rows.last() else { break };
            after = last.clone();
            for (k, v) in rows {
                let (record, seal) = seal::decode_sealed(self.seal(), Sealed::Certificate, &k, &v)?;
                each(StoredRecord::Certificate(record, seal))?;
            }
        }
        for (table, make) in [("devices", 0u8), ("trust_records", 1u8)] {
            let mut after = String::new();
            loop {
                let rows = self.read(
                    &format!(
                        "SELECT identity_key, record FROM {table} WHERE identity_key > $1 \
                         ORDER BY identity_key LIMIT $2"
                    ),
                    &[&after, &PAGE],
                    |r| Ok((r.get::<_, String>(0), r.get::<_, Vec<u8>>(1))),
                )?;
                let Some((last, _)) = rows.last() else { break };
                after = last.clone();
                for (k, v) in rows {
                    let s = self.seal();
                    each(if make == 0 {
                        let (r, seq) = seal::decode_sealed(s, Sealed::Device, k.as_bytes(), &v)?;
                        StoredRecord::Device(r, seq)
                    } else {
                        let (r, seq) = seal::decode_sealed(s, Sealed::Trust, k.as_bytes(), &v)?;
                        StoredRecord::Trust(r, seq)
                    })?;
                }
            }
        }
        let mut after = (String::new(), -1i64);
        loop {
            let rows = self.read(
                "SELECT identity_key, version, record FROM history \
                 WHERE (identity_key, version) > ($1, $2) ORDER BY identity_key, version LIMIT $3",
                &[&after.0, &after.1, &PAGE],
                |r| {
                    Ok((
                        r.get::<_, String>(0),
                        r.get::<_, i64>(1),
                        r.get::<_, Vec<u8>>(2),
                    ))
                },
            )?;
            let Some((k, v, _)) = rows.last() else { break };
            after = (k.clone(), *v);
            for (k, _, record) in rows {
                let entry = decode(k.as_bytes(), &record)?;
                each(StoredRecord::History(k, entry))?;
            }
        }
        let mut from = 0u64;
        loop {
            let entries = self.audit_entries(from, PAGE as usize)?;
            let Some(last) = entries.last() else { break };
            from = last.seq + 1;
            for e in entries {
                each(StoredRecord::Audit(e))?;
            }
        }
        for (size, head) in self.read(
            "SELECT size, head FROM tree_heads ORDER BY size",
            &[],
            |r| Ok((r.get::<_, i64>(0), r.get::<_, Vec<u8>>(1))),
        )? {
            each(StoredRecord::TreeHead(size.max(0) as u64, head))?;
        }
        for (sector, serial, at, reason) in self.read(
            "SELECT sector, serial, at, reason FROM revoked ORDER BY sector, serial",
            &[],
            |r| {
                Ok((
                    r.get::<_, String>(0),
                    r.get::<_, Vec<u8>>(1),
                    r.get::<_, i64>(2),
                    r.get::<_, i16>(3),
                ))
            },
        )? {
            let reason = u8::try_from(reason).map_err(|_| StoreError::Corrupt {
                key: "revoked".into(),
                reason: "reason code out of range".into(),
            })?;
            each(StoredRecord::Revoked(sector, serial, at, reason))?;
        }
        for (fp, record) in self.read(
            "SELECT fingerprint, record FROM blocked_keys ORDER BY fingerprint",
            &[],
            |r| Ok((r.get::<_, Vec<u8>>(0), r.get::<_, Vec<u8>>(1))),
        )? {
            let key: [u8; 32] = fp.as_slice().try_into().map_err(|_| StoreError::Corrupt {
                key: "blocked key".into(),
                reason: "key is not a SHA-256".into(),
            })?;
            each(StoredRecord::BlockedKey(key, decode(&fp, &record)?))?;
        }
        for (space, key, value) in self.read(
            "SELECT space, key, value FROM blobs ORDER BY space, key",
            &[],
            |r| {
                Ok((
                    r.get::<_, String>(0),
                    r.get::<_, Vec<u8>>(1),
                    r.get::<_, Vec<u8>>(2),
                ))
            },
        )? {
            each(StoredRecord::Blob(space, key, value))?;
        }
        for (sector, n) in self.read(
            "SELECT sector, number FROM crl_numbers ORDER BY sector",
            &[],
            |r| Ok((r.get::<_, String>(0), r.get::<_, i64>(1))),
        )? {
            each(StoredRecord::CrlNumber(sector, n.max(0) as u64))?;
        }
        let (certificates, devices) = self.counts()?;
        each(StoredRecord::Counts(certificates, devices))
    }

    fn import(&self, records: &[StoredRecord]) -> Result<(), StoreError> {
        self.write(|t| rules::import(t, records))
    }

    fn seal_legacy_records(
        &self,
        entry: &AuditEntry,
        records: &[StoredRecord],
    ) -> Result<(), StoreError> {
        self.write(|t| rules::seal_legacy(t, entry, records))
    }

    fn challenge_put(
        &self,
        id: &[u8],
        record: &[u8],
        expires_at: i64,
        now: i64,
        max_open: usize,
    ) -> Result<bool, StoreError> {
        let max = i64::try_from(max_open).unwrap_or(i64::MAX);
        self.run(|h| {
            let mut client = self.client(h)?;
            let e = |e| pg_error(&self.target, e);
            let tx = h.block_on(client.transaction()).map_err(e)?;
            // Replicas count and insert one at a time, so the limit holds
            // across them.
            h.block_on(tx.execute("SELECT pg_advisory_xact_lock($1)", &[&CHALLENGE_LOCK]))
                .map_err(e)?;
            h.block_on(tx.execute(
                "DELETE FROM attestation_challenges WHERE expires_at <= $1",
                &[&now],
            ))
            .map_err(e)?;
            let open: i64 = h
                .block_on(tx.query_one("SELECT count(*) FROM attestation_challenges", &[]))
                .map_err(e)?
                .get(0);
            if open >= max {
                return Ok(false);
            }
            h.block_on(tx.execute(
                "INSERT INTO attestation_challenges (id, record, expires_at) VALUES ($1, $2, $3)",
                &[&id, &record, &expires_at],
            ))
            .map_err(e)?;
            h.block_on(tx.commit()).map_err(e)?;
            Ok(true)
        })
    }

    fn challenge_take(&self, id: &[u8]) -> Result<Option<(Vec<u8>, i64)>, StoreError> {
        // One statement: of concurrent takes on any replica, one deletes
        // the row and gets it back.
        self.read_one(
            "DELETE FROM attestation_challenges WHERE id = $1 RETURNING record, expires_at",
            &[&id],
            |r| Ok((r.get::<_, Vec<u8>>(0), r.get::<_, i64>(1))),
        )
    }

    fn hold_lease(&self, name: &str, holder: &str, ttl_secs: u64) -> Result<bool, StoreError> {
        // Taken when free or expired, renewed by its holder; the database's
        // clock decides, so replicas' clocks need not agree.
        let held = self.read_one(
            "INSERT INTO leases (name, holder, expires_at) \
             VALUES ($1, $2, now() + $3::BIGINT * interval '1 second') \
             ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, \
                 expires_at = EXCLUDED.expires_at \
             WHERE leases.holder = EXCLUDED.holder OR leases.expires_at < now() \
             RETURNING holder",
            &[&name, &holder, &int(ttl_secs)?],
            |r| Ok(r.get::<_, String>(0)),
        )?;
        Ok(held.as_deref() == Some(holder))
    }
}
