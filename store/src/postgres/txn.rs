//! One PostgreSQL transaction as the rules see it (`RecordTxn`): typed
//! reads and writes of records, with what it read and wrote remembered so
//! the commit writes each changed record once.

use super::*;

/// One PostgreSQL transaction seen through [`RecordTxn`].
///
/// The records an issuance writes (certificates, devices, trust records,
/// history, audit entries, counters and the frontier) are buffered and
/// written at the end with one multi-row statement per table, and the
/// records a group of issuances reads are fetched up front with one query
/// per table ([`RecordTxn::prefetch_issuances`]): a commit group costs a
/// dozen round trips instead of ten per certificate. Reads see the
/// buffered writes first, so the rules observe their own changes.
pub(crate) struct PgTxn<'a> {
    tx: &'a deadpool_postgres::Transaction<'a>,
    h: &'a Handle,
    target: &'a str,
    seal: Option<&'a RecordSeal>,
    known: RefCell<Known>,
    dirty: RefCell<Dirty>,
}

/// Rows read or written in this transaction (`None`: known absent), as
/// encoded records.
#[derive(Default)]
struct Known {
    certificates: HashMap<Vec<u8>, Option<Vec<u8>>>,
    devices: HashMap<String, Option<Vec<u8>>>,
    trust: HashMap<String, Option<Vec<u8>>>,
    meta: HashMap<String, Option<Vec<u8>>>,
    blocked: HashMap<Vec<u8>, Option<Vec<u8>>>,
}

/// A new certificate's indexed columns: serial, fingerprint, sector,
/// identity key (its record is in [`Known::certificates`]).
type NewCertificate = (Vec<u8>, Vec<u8>, String, Option<String>);

/// Writes not yet sent.
#[derive(Default)]
struct Dirty {
    new_certificates: Vec<NewCertificate>,
    /// Certificates whose record changed (new or existing).
    certificates: Changed<Vec<u8>>,
    devices: Changed<String>,
    trust: Changed<String>,
    history: Vec<(String, i64, Vec<u8>)>,
    audit: Vec<(i64, Vec<u8>)>,
    meta: Changed<String>,
}

/// Keys changed in this transaction, each once, in the order first
/// changed: a group of 2,048 issuances changes 4,096 device and trust
/// records, too many to find again by scanning a list.
struct Changed<T> {
    order: Vec<T>,
    seen: std::collections::HashSet<T>,
}

impl<T> Default for Changed<T> {
    fn default() -> Self {
        Self {
            order: Vec::new(),
            seen: std::collections::HashSet::new(),
        }
    }
}

impl<T: Clone + Eq + std::hash::Hash> Changed<T> {
    fn push(&mut self, key: T) {
        if self.seen.insert(key.clone()) {
            self.order.push(key);
        }
    }
}

/// The two tables keyed by identity key, read and written alike.
#[derive(Clone, Copy)]
enum ByIdentity {
    Devices,
    Trust,
}

impl ByIdentity {
    fn sealed(self) -> Sealed {
        match self {
            Self::Devices => Sealed::Device,
            Self::Trust => Sealed::Trust,
        }
    }

    fn select(self) -> &'static str {
        match self {
            Self::Devices => "SELECT record FROM devices WHERE identity_key = $1",
            Self::Trust => "SELECT record FROM trust_records WHERE identity_key = $1",
        }
    }

    fn known(self, k: &mut Known) -> &mut HashMap<String, Option<Vec<u8>>> {
        match self {
            Self::Devices => &mut k.devices,
            Self::Trust => &mut k.trust,
        }
    }

    fn dirty(self, d: &mut Dirty) -> &mut Changed<String> {
        match self {
            Self::Devices => &mut d.devices,
            Self::Trust => &mut d.trust,
        }
    }
}

impl<'a> PgTxn<'a> {
    pub(super) fn sealed_certificate(
        &self,
        record: &CertificateRecord,
        stamp: Stamp,
    ) -> Result<(Vec<u8>, [u8; 32]), StoreError> {
        let key = trustca_model::hexfmt::encode(&record.serial);
        seal::sealed_record(self.seal, Sealed::Certificate, &key, record, stamp)
    }

    pub(super) fn exec(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, StoreError> {
        let e = |e| pg_error(self.target, e);
        let stmt = self.h.block_on(self.tx.prepare_cached(sql)).map_err(e)?;
        self.h.block_on(self.tx.execute(&stmt, params)).map_err(e)
    }

    pub(super) fn bytes(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let e = |e| pg_error(self.target, e);
        let stmt = self.h.block_on(self.tx.prepare_cached(sql)).map_err(e)?;
        Ok(self
            .h
            .block_on(self.tx.query_opt(&stmt, params))
            .map_err(e)?
            .map(|row| row.get::<_, Vec<u8>>(0)))
    }

    fn record<T: serde::de::DeserializeOwned>(
        &self,
        what: &str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<T>, StoreError> {
        match self.bytes(sql, params)? {
            Some(b) => decode(what.as_bytes(), &b).map(Some),
            None => Ok(None),
        }
    }

    pub(super) fn new(
        tx: &'a deadpool_postgres::Transaction<'a>,
        h: &'a Handle,
        target: &'a str,
        seal: Option<&'a RecordSeal>,
    ) -> Self {
        Self {
            tx,
            h,
            target,
            seal,
            known: RefCell::default(),
            dirty: RefCell::default(),
        }
    }

    /// Rows of `sql` (taking one array parameter) as (key, record).
    fn rows<K: for<'r> tokio_postgres::types::FromSql<'r>>(
        &self,
        sql: &str,
        keys: &(dyn ToSql + Sync),
    ) -> Result<Vec<(K, Vec<u8>)>, StoreError> {
        let e = |e| pg_error(self.target, e);
        let stmt = self.h.block_on(self.tx.prepare_cached(sql)).map_err(e)?;
        Ok(self
            .h
            .block_on(self.tx.query(&stmt, &[keys]))
            .map_err(e)?
            .iter()
            .map(|r| (r.get::<_, K>(0), r.get::<_, Vec<u8>>(1)))
            .collect())
    }

    /// Sends every buffered write, one statement per table.
    pub(super) fn flush_writes(&self) -> Result<(), StoreError> {
        let dirty = std::mem::take(&mut *self.dirty.borrow_mut());
        let known = self.known.borrow();
        let record_of = |map: &HashMap<String, Option<Vec<u8>>>, k: &String| {
            map.get(k).cloned().flatten().unwrap_or_default()
        };
        if !dirty.new_certificates.is_empty() {
            let (mut serials, mut fps, mut sectors, mut ids, mut records) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for (serial, fp, sector, id) in &dirty.new_certificates {
                records.push(
                    known
                        .certificates
                        .get(serial)
                        .cloned()
                        .flatten()
                        .unwrap_or_default(),
                );
                serials.push(serial.clone());
                fps.push(fp.clone());
                sectors.push(sector.clone());
                ids.push(id.clone());
            }
            self.exec(
                "INSERT INTO certificates (serial, fingerprint, sector, identity_key, record) \
                 SELECT * FROM UNNEST($1::BYTEA[], $2::BYTEA[], $3::TEXT[], $4::TEXT[], $5::BYTEA[])",
                &[&serials, &fps, &sectors, &ids, &records],
            )?;
        }
        let inserted: std::collections::HashSet<&Vec<u8>> =
            dirty.new_certificates.iter().map(|c| &c.0).collect();
        let (serials, records): (Vec<Vec<u8>>, Vec<Vec<u8>>) = dirty
            .certificates
            .order
            .iter()
            .filter(|s| !inserted.contains(s))
            .map(|s| {
                (
                    s.clone(),
                    known
                        .certificates
                        .get(s)
                        .cloned()
                        .flatten()
                        .unwrap_or_default(),
                )
            })
            .unzip();
        if !serials.is_empty() {
            self.exec(
                "UPDATE certificates AS c SET record = u.record \
                 FROM UNNEST($1::BYTEA[], $2::BYTEA[]) AS u(serial, record) \
                 WHERE c.serial = u.serial",
                &[&serials, &records],
            )?;
        }
        for (table, keys, map) in [
            ("devices", &dirty.devices.order, &known.devices),
            ("trust_records", &dirty.trust.order, &known.trust),
        ] {
            if keys.is_empty() {
                continue;
            }
            let records: Vec<Vec<u8>> = keys.iter().map(|k| record_of(map, k)).collect();
            self.exec(
                &format!(
                    "INSERT INTO {table} (identity_key, record) \
                     SELECT * FROM UNNEST($1::TEXT[], $2::BYTEA[]) \
                     ON CONFLICT (identity_key) DO UPDATE SET record = EXCLUDED.record"
                ),
                &[keys, &records],
            )?;
        }
        if !dirty.history.is_empty() {
            let (mut ids, mut versions, mut records) = (Vec::new(), Vec::new(), Vec::new());
            for (id, v, r) in dirty.history {
                ids.push(id);
                versions.push(v);
                records.push(r);
            }
            self.exec(
                "INSERT INTO history (identity_key, version, record) \
                 SELECT * FROM UNNEST($1::TEXT[], $2::BIGINT[], $3::BYTEA[])",
                &[&ids, &versions, &records],
            )?;
        }
        if !dirty.audit.is_empty() {
            let (seqs, records): (Vec<i64>, Vec<Vec<u8>>) = dirty.audit.into_iter().unzip();
            self.exec(
                "INSERT INTO audit_log (seq, record) SELECT * FROM UNNEST($1::BIGINT[], $2::BYTEA[])",
                &[&seqs, &records],
            )?;
        }
        if !dirty.meta.order.is_empty() {
            let values: Vec<Vec<u8>> = dirty
                .meta
                .order
                .iter()
                .map(|k| record_of(&known.meta, k))
                .collect();
            self.exec(
                "INSERT INTO meta (key, value) SELECT * FROM UNNEST($1::TEXT[], $2::BYTEA[]) \
                 ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                &[&dirty.meta.order, &values],
            )?;
        }
        Ok(())
    }

    /// A buffered table's row: from this transaction's view, else the
    /// database (remembered, also when absent).
    fn cached_row<K: Clone + Eq + std::hash::Hash>(
        &self,
        pick: impl Fn(&mut Known) -> &mut HashMap<K, Option<Vec<u8>>>,
        key: &K,
        load: impl FnOnce() -> Result<Option<Vec<u8>>, StoreError>,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(hit) = pick(&mut self.known.borrow_mut()).get(key) {
            return Ok(hit.clone());
        }
        let row = load()?;
        pick(&mut self.known.borrow_mut()).insert(key.clone(), row.clone());
        Ok(row)
    }

    pub(super) fn meta_value(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.cached_row(
            |k| &mut k.meta,
            &key.to_owned(),
            || self.bytes("SELECT value FROM meta WHERE key = $1", &[&key]),
        )
    }

    pub(super) fn set_meta(&self, key: &str, value: Vec<u8>) {
        self.known
            .borrow_mut()
            .meta
            .insert(key.to_owned(), Some(value));
        self.dirty.borrow_mut().meta.push(key.to_owned());
    }

    /// A device or trust record by identity key, checked against its seal.
    fn by_identity<T: serde::de::DeserializeOwned>(
        &self,
        table: ByIdentity,
        identity_key: &str,
    ) -> Result<Option<T>, StoreError> {
        let row = self.cached_row(
            |k| table.known(k),
            &identity_key.to_owned(),
            || self.bytes(table.select(), &[&identity_key]),
        )?;
        seal::sealed_value(
            row.as_deref(),
            self.seal,
            table.sealed(),
            identity_key.as_bytes(),
        )
    }

    /// Writes a device or trust record (sealed) at the commit.
    fn put_by_identity<T: serde::Serialize>(
        &self,
        table: ByIdentity,
        identity_key: &str,
        record: &T,
        stamp: Stamp,
    ) -> Result<[u8; 32], StoreError> {
        let (stored, digest) =
            seal::sealed_record(self.seal, table.sealed(), identity_key, record, stamp)?;
        table
            .known(&mut self.known.borrow_mut())
            .insert(identity_key.to_owned(), Some(stored));
        table
            .dirty(&mut self.dirty.borrow_mut())
            .push(identity_key.to_owned());
        Ok(digest)
    }
}

impl RecordTxn for PgTxn<'_> {
    type Fail = StoreError;

    fn fail(e: StoreError) -> StoreError {
        e
    }

    fn certificate(&self, serial: &[u8]) -> Result<Option<CertificateRecord>, StoreError> {
        let row = self.cached_row(
            |k| &mut k.certificates,
            &serial.to_vec(),
            || {
                self.bytes(
                    "SELECT record FROM certificates WHERE serial = $1",
                    &[&serial],
                )
            },
        )?;
        seal::sealed_value(row.as_deref(), self.seal, Sealed::Certificate, serial)
    }

    fn insert_certificate(
        &self,
        record: &CertificateRecord,
        fingerprint: &[u8; 32],
        stamp: Stamp,
    ) -> Result<[u8; 32], StoreError> {
        let (stored, digest) = self.sealed_certificate(record, stamp)?;
        self.known
            .borrow_mut()
            .certificates
            .insert(record.serial.clone(), Some(stored));
        self.dirty.borrow_mut().new_certificates.push((
            record.serial.clone(),
            fingerprint.to_vec(),
            record.sector.clone(),
            record.identity_key.clone(),
        ));
        Ok(digest)
    }

    fn update_certificate(
        &self,
        record: &CertificateRecord,
        stamp: Stamp,
    ) -> Result<[u8; 32], StoreError> {
        let (stored, digest) = self.sealed_certificate(record, stamp)?;
        self.known
            .borrow_mut()
            .certificates
            .insert(record.serial.clone(), Some(stored));
        self.dirty
            .borrow_mut()
            .certificates
            .push(record.serial.clone());
        Ok(digest)
    }

    fn device(&self, identity_key: &str) -> Result<Option<DeviceRecord>, StoreError> {
        self.by_identity(ByIdentity::Devices, identity_key)
    }

    fn put_device(&self, record: &DeviceRecord, stamp: Stamp) -> Result<[u8; 32], StoreError> {
        self.put_by_identity(ByIdentity::Devices, &record.identity_key, record, stamp)
    }

    fn trust(&self, identity_key: &str) -> Result<Option<TrustRecord>, StoreError> {
        self.by_identity(ByIdentity::Trust, identity_key)
    }

    fn put_trust(&self, record: &TrustRecord, stamp: Stamp) -> Result<[u8; 32], StoreError> {
        self.put_by_identity(ByIdentity::Trust, &record.identity_key, record, stamp)
    }

    fn history_entry(
        &self,
        identity_key: &str,
        version: u64,
    ) -> Result<Option<HistoryEntry>, StoreError> {
        let v = int(version)?;
        if let Some((_, _, r)) = self
            .dirty
            .borrow()
            .history
            .iter()
            .find(|(id, ver, _)| id == identity_key && *ver == v)
        {
            return decode(b"history", r).map(Some);
        }
        self.record(
            "history",
            "SELECT record FROM history WHERE identity_key = $1 AND version = $2",
            &[&identity_key, &v],
        )
    }

    fn put_history(&self, identity_key: &str, entry: &HistoryEntry) -> Result<(), StoreError> {
        // Versions only grow: a second entry for one version is a bug the
        // primary key turns into an aborted transaction.
        self.dirty.borrow_mut().history.push((
            identity_key.to_owned(),
            int(entry.version)?,
            encode(entry)?,
        ));
        Ok(())
    }

    fn blocked_key(&self, fingerprint: &[u8; 32]) -> Result<Option<BlockedKey>, StoreError> {
        let row = self.cached_row(
            |k| &mut k.blocked,
            &fingerprint.to_vec(),
            || {
                self.bytes(
                    "SELECT record FROM blocked_keys WHERE fingerprint = $1",
                    &[&fingerprint.as_slice()],
                )
            },
        )?;
        let block = row.map(|b| decode(b"blocked key", &b)).transpose()?;
        vouched::vouch_blocked(self.seal, fingerprint, block)
    }

    fn put_blocked_key(
        &self,
        fingerprint: &[u8; 32],
        block: &BlockedKey,
    ) -> Result<(), StoreError> {
        let record = encode(block)?;
        self.exec(
            "INSERT INTO blocked_keys (fingerprint, record) VALUES ($1, $2)",
            &[&fingerprint.as_slice(), &record],
        )?;
        self.known
            .borrow_mut()
            .blocked
            .insert(fingerprint.to_vec(), Some(record));
        Ok(())
    }

    fn put_revoked(
        &self,
        sector: &str,
        serial: &[u8],
        at: i64,
        reason: u8,
    ) -> Result<(), StoreError> {
        self.exec(
            "INSERT INTO revoked (sector, serial, at, reason) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (sector, serial) DO NOTHING",
            &[&sector, &serial, &at, &i16::from(reason)],
        )?;
        Ok(())
    }

    fn audit_frontier(&self) -> Result<trustca_audit::MerkleFrontier, StoreError> {
        match self.meta_value(AUDIT_FRONTIER)? {
            Some(v) => {
                trustca_audit::MerkleFrontier::from_bytes(&v).map_err(|e| StoreError::Corrupt {
                    key: AUDIT_FRONTIER.into(),
                    reason: e.to_string(),
                })
            }
            None => Ok(trustca_audit::MerkleFrontier::new()),
        }
    }

    fn put_audit_entry(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        self.dirty
            .borrow_mut()
            .audit
            .push((int(entry.seq)?, encode(entry)?));
        Ok(())
    }

    fn put_audit_frontier(
        &self,
        frontier: &trustca_audit::MerkleFrontier,
    ) -> Result<(), StoreError> {
        self.set_meta(AUDIT_FRONTIER, frontier.to_bytes());
        Ok(())
    }

    fn add_counts(&self, certificates: u64, devices: u64) -> Result<(), StoreError> {
        for (key, n) in [(COUNT_CERTS, certificates), (COUNT_DEVICES, devices)] {
            if n == 0 {
                continue;
            }
            let old = self.meta_value(key)?.map(|b| u64_of(&b)).unwrap_or(0);
            self.set_meta(key, (old + n).to_be_bytes().to_vec());
        }
        Ok(())
    }

    fn prefetch_issuances(
        &self,
        batch: &[Issuance],
        certificate_keys: &[Option<[u8; 32]>],
    ) -> Result<(), StoreError> {
        let serials: Vec<Vec<u8>> = batch.iter().map(|i| i.certificate.serial.clone()).collect();
        let keys: Vec<String> = batch
            .iter()
            .filter_map(|i| i.device.as_ref().map(|d| d.identity_key.clone()))
            .collect();
        let certs: Vec<(Vec<u8>, Vec<u8>)> = self.rows(
            "SELECT serial, record FROM certificates WHERE serial = ANY($1)",
            &serials,
        )?;
        let devices: Vec<(String, Vec<u8>)> = self.rows(
            "SELECT identity_key, record FROM devices WHERE identity_key = ANY($1)",
            &keys,
        )?;
        let renewals: Vec<String> = batch
            .iter()
            .filter(|i| i.renewal)
            .filter_map(|i| i.device.as_ref().map(|d| d.identity_key.clone()))
            .collect();
        let trust: Vec<(String, Vec<u8>)> = if renewals.is_empty() {
            Vec::new()
        } else {
            self.rows(
                "SELECT identity_key, record FROM trust_records WHERE identity_key = ANY($1)",
                &renewals,
            )?
        };
        let key_fps: Vec<Vec<u8>> = certificate_keys
            .iter()
            .flatten()
            .map(|fp| fp.to_vec())
            .collect();
        let blocked: Vec<(Vec<u8>, Vec<u8>)> = if key_fps.is_empty() {
            Vec::new()
        } else {
            self.rows(
                "SELECT fingerprint, record FROM blocked_keys WHERE fingerprint = ANY($1)",
                &key_fps,
            )?
        };
        let mut known = self.known.borrow_mut();
        for k in key_fps {
            known.blocked.entry(k).or_insert(None);
        }
        for (k, r) in blocked {
            known.blocked.insert(k, Some(r));
        }
        for s in serials {
            known.certificates.entry(s).or_insert(None);
        }
        for (s, r) in certs {
            known.certificates.insert(s, Some(r));
        }
        for k in keys {
            known.devices.entry(k).or_insert(None);
        }
        for (k, r) in devices {
            known.devices.insert(k, Some(r));
        }
        for (k, r) in trust {
            known.trust.insert(k, Some(r));
        }
        Ok(())
    }

    fn blob(&self, space: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.bytes(
            "SELECT value FROM blobs WHERE space = $1 AND key = $2",
            &[&space, &key],
        )
    }

    fn put_blob(&self, space: &str, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.exec(
            "INSERT INTO blobs (space, key, value) VALUES ($1, $2, $3) \
             ON CONFLICT (space, key) DO UPDATE SET value = EXCLUDED.value",
            &[&space, &key, &value],
        )?;
        Ok(())
    }

    fn record_seal(&self) -> Option<&RecordSeal> {
        self.seal
    }

    fn put_tree_head(&self, size: u64, head: &[u8]) -> Result<(), StoreError> {
        self.put_tree_head_row(size, head)
    }

    fn set_crl_number(&self, sector: &str, number: u64) -> Result<(), StoreError> {
        self.exec(
            "INSERT INTO crl_numbers (sector, number) VALUES ($1, $2) \
             ON CONFLICT (sector) DO UPDATE SET number = EXCLUDED.number",
            &[&sector, &int(number)?],
        )?;
        Ok(())
    }
}

impl PgTxn<'_> {
    pub(super) fn put_tree_head_row(&self, size: u64, head: &[u8]) -> Result<(), StoreError> {
        self.exec(
            "INSERT INTO tree_heads (size, head) VALUES ($1, $2) \
             ON CONFLICT (size) DO UPDATE SET head = EXCLUDED.head",
            &[&int(size)?, &head],
        )?;
        Ok(())
    }
}
