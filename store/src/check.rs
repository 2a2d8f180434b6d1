//! Integrity checks of a store against what it committed, on any backend.
//!
//! The audit log commits to every change: each entry's leaf hash is
//! recomputed from its fields, the leaves are folded into the Merkle tree
//! and its root is compared with the stored frontier and with every kept
//! tree head at its size ([`check_audit_log`], the start-up check).
//! [`check_store`] goes on to every record: each must decode and agree
//! with the records that point at it and with the log — a certificate with
//! the SHA-256 its issuance entry committed (`der_sha256`) and its
//! fingerprint index entry; a device with its certificates and trust
//! record; a trust record with its newest history entry. Damage is
//! reported per record (serial, identity, sequence number), never by
//! stopping at the first.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};

use trustca_model::hexfmt;

use crate::STORE_PAGE;
use crate::records::decode;
use crate::seal::{self, Sealed};
use crate::vouched::{LogIndex, Scope, Span, blob_differences, revocation_differences};
use crate::{
    AuditEntry, CertificateRecord, DeviceRecord, HistoryEntry, RecordTable, Storage, StoreError,
    TrustRecord,
};

/// Records read per round trip.
const PAGE: usize = 4096;

/// One damaged record.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Damage {
    /// What the record is: `certificate`, `device`, `trust`, `history`,
    /// `revoked` (a CRL index entry), `blocked key`, a vouched space's name
    /// (`registry.models`, `systems`, `v2x.hash-crl`), `audit` or `store`.
    pub kind: &'static str,
    /// Which one: serial (hex), identity key, audit sequence number.
    pub key: String,
    /// What is wrong, in words.
    pub reason: String,
}

/// What the audit-log check found.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct AuditCheck {
    /// Entries read.
    pub entries: u64,
    /// Kept signed tree heads compared.
    pub tree_heads: u64,
    /// Damage found.
    pub damaged: Vec<Damage>,
}

/// What a full check found.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CheckReport {
    /// Audit entries read.
    pub audit_entries: u64,
    /// Kept tree heads compared.
    pub tree_heads: u64,
    /// Certificates read.
    pub certificates: u64,
    /// Device records read.
    pub devices: u64,
    /// Trust records read.
    pub trust_records: u64,
    /// History entries read.
    pub history_entries: u64,
    /// Damage found, every damaged record once per reason.
    pub damaged: Vec<Damage>,
    /// Certificate, device and trust records still in the format of builds
    /// before record seals, which no audit entry binds: not damage, but
    /// not served until `trustca store seal` has sealed them.
    pub unsealed: u64,
}

impl CheckReport {
    /// Records read, of every kind.
    pub fn records(&self) -> u64 {
        self.audit_entries
            + self.certificates
            + self.devices
            + self.trust_records
            + self.history_entries
    }
}

/// The words of a decoding failure, without the (binary) key it names.
fn undecodable(e: StoreError) -> String {
    match e {
        StoreError::Corrupt { reason, .. } => format!("does not decode: {reason}"),
        other => other.to_string(),
    }
}

fn damage(kind: &'static str, key: impl Into<String>, reason: impl Into<String>) -> Damage {
    Damage {
        kind,
        key: key.into(),
        reason: reason.into(),
    }
}

/// What the log says about records, gathered while it is read.
#[derive(Default)]
struct Committed {
    /// Serial (hex) → SHA-256 of the DER (hex), from issuance entries.
    der_sha256: HashMap<String, String>,
    /// Floors, revocations and blocked keys (`vouched.rs`).
    log: LogIndex,
    /// Device and trust records → the newest entry that wrote each and
    /// the digest of what it wrote (`binds`); taken out as records are
    /// met, so what is left was written and is gone.
    binds: RefCell<HashMap<(Sealed, String), Written>>,
    /// Records met in the format before seals that no entry binds.
    unsealed: std::cell::Cell<u64>,
}

/// The newest audit entry that wrote a record, and the digest it wrote.
type Written = (u64, [u8; 32]);

impl Committed {
    fn learn(&mut self, entry: &AuditEntry) {
        if let Some(d) = committed_digest(&entry.detail) {
            self.der_sha256.insert(entry.subject.clone(), d);
        }
        self.log.learn(entry);
        let binds = self.binds.get_mut();
        for (table, key, digest) in seal::bindings(&entry.detail) {
            binds.insert((table, key), (entry.seq, digest));
        }
    }

    /// Compares a stored device or trust record with what the log wrote
    /// last for it; the error says how they differ.
    fn compare(&self, table: Sealed, key: &str, stored: &[u8]) -> Result<(), String> {
        if crate::reseal::is_legacy(table, stored) {
            // Written by a build before seals, and sealed by nothing since;
            // one the log bound was replaced by a bare copy.
            return match self.binds.borrow_mut().remove(&(table, key.to_owned())) {
                Some((seq, _)) => Err(format!(
                    "it is stored without its seal, but audit entry {seq} wrote it sealed (replaced outside trustca)"
                )),
                None => {
                    self.unsealed.set(self.unsealed.get() + 1);
                    Ok(())
                }
            };
        }
        let Some((body, seq)) = seal::split(stored) else {
            return Err("too short to carry its seal".into());
        };
        let Some((newest, digest)) = self.binds.borrow_mut().remove(&(table, key.to_owned()))
        else {
            return Err("no audit entry wrote it: it was added outside trustca".into());
        };
        if seq != newest {
            return Err(format!(
                "it is the version of audit entry {seq}, but the log's newest for it is entry {newest} (an older copy restored?)"
            ));
        }
        if seal::digest(body) != digest {
            return Err(format!(
                "its content differs from what audit entry {newest} wrote (changed outside trustca)"
            ));
        }
        Ok(())
    }
}

/// A stored record's encoding: all of it when it predates seals, else
/// what precedes its trailer.
fn body_of(table: Sealed, stored: &[u8]) -> &[u8] {
    if crate::reseal::is_legacy(table, stored) {
        return stored;
    }
    seal::split(stored).map_or(stored, |(body, _)| body)
}

/// What is wrong with a decoded certificate record: its revocation as the
/// log has it, its DER as issued, its fingerprint index entry.
fn certificate_problems(
    storage: &dyn Storage,
    committed: &Committed,
    serial: &str,
    cert: &CertificateRecord,
) -> Vec<String> {
    let mut problems = Vec::new();
    let revoked = match cert.status {
        crate::CertificateStatus::Revoked { reason, at } => Some((reason, at)),
        _ => None,
    };
    let agrees = match (
        revoked,
        committed.log.revocation(&cert.sector, &cert.serial),
    ) {
        (None, None) | (Some(_), Some(None)) => true,
        (Some((reason, at)), Some(Some(r))) => r.reason == reason && r.at == at,
        _ => false,
    };
    if !agrees {
        problems.push(match revoked {
            Some(_) => "it is revoked, but the audit log does not say so".into(),
            None => "the audit log revoked it, but it is not revoked".into(),
        });
    }
    let digest = crate::rules::fingerprint(&cert.der);
    if let Some(expected) = committed.der_sha256.get(serial)
        && !expected.eq_ignore_ascii_case(&hexfmt::encode(&digest))
    {
        problems.push("its DER differs from what the audit log committed".into());
        return problems;
    }
    match storage.serial_by_fingerprint(&digest) {
        Ok(Some(s)) if s == cert.serial => {}
        Ok(_) => problems
            .push("its DER does not match the fingerprint index (altered DER or index)".into()),
        Err(e) => problems.push(e.to_string()),
    }
    problems
}

/// The `der_sha256` member of an issuance entry's detail. The rules write
/// it last, as 64 hex digits; a plain search finds it without parsing the
/// JSON of every entry.
fn committed_digest(detail: &str) -> Option<String> {
    const MEMBER: &str = "\"der_sha256\":\"";
    let at = detail.rfind(MEMBER)? + MEMBER.len();
    let hex = detail.get(at..at + 64)?;
    hex.bytes()
        .all(|b| b.is_ascii_hexdigit())
        .then(|| hex.to_owned())
}

/// Recomputes the audit log's Merkle tree from its entries and compares it
/// with the stored frontier and with every kept tree head.
pub fn check_audit_log(storage: &dyn Storage) -> Result<AuditCheck, StoreError> {
    Ok(audit_pass(storage, false, &mut |_| {})?.0)
}

fn audit_pass(
    storage: &dyn Storage,
    digests: bool,
    progress: &mut dyn FnMut(u64),
) -> Result<(AuditCheck, Committed), StoreError> {
    let mut report = AuditCheck::default();
    let mut committed = Committed::default();
    // Roots the kept heads claim, by size.
    let mut heads: HashMap<u64, [u8; 32]> = HashMap::new();
    for (i, bytes) in storage.tree_heads()?.iter().enumerate() {
        match trustca_audit::SignedTreeHead::from_bytes(bytes) {
            Ok(sth) => {
                heads.insert(sth.head.size, sth.head.root);
            }
            Err(e) => report.damaged.push(damage(
                "audit",
                format!("tree head #{i}"),
                format!("does not decode: {e}"),
            )),
        }
    }
    let (stored_size, stored_root) = match storage.audit_head() {
        Ok(h) => (Some(h.0), Some(h.1)),
        Err(e) => {
            report.damaged.push(damage(
                "audit",
                "frontier",
                format!("the stored Merkle frontier cannot be read: {e}"),
            ));
            (None, None)
        }
    };
    let mut frontier = trustca_audit::MerkleFrontier::new();
    let mut next = 0u64;
    loop {
        let page = storage.audit_entries_raw(next, PAGE)?;
        if page.is_empty() {
            break;
        }
        for (index, bytes) in page {
            if index != next {
                report.damaged.push(damage(
                    "audit",
                    next.to_string(),
                    format!("missing: the log jumps from {next} to {index}"),
                ));
                next = index;
            }
            let leaf = match AuditEntry::decode(&bytes) {
                Ok(entry) => {
                    let leaf = trustca_audit::leaf_hash(&entry.leaf_bytes());
                    if entry.seq != index {
                        report.damaged.push(damage(
                            "audit",
                            index.to_string(),
                            format!("stored at {index} but numbered {}", entry.seq),
                        ));
                    }
                    if leaf != entry.leaf_hash {
                        report.damaged.push(damage(
                            "audit",
                            index.to_string(),
                            "its fields do not hash to its leaf hash (the entry was altered)",
                        ));
                    }
                    if digests {
                        committed.learn(&entry);
                    }
                    leaf
                }
                Err(e) => {
                    report.damaged.push(damage(
                        "audit",
                        index.to_string(),
                        format!("does not decode: {e}"),
                    ));
                    [0; 32]
                }
            };
            frontier
                .push(leaf)
                .map_err(|e| StoreError::Backend(format!("audit log: {e}")))?;
            report.entries += 1;
            next += 1;
            if let Some(root) = heads.get(&frontier.size()) {
                report.tree_heads += 1;
                if *root != frontier.root() {
                    report.damaged.push(damage(
                        "audit",
                        format!("tree head at {}", frontier.size()),
                        "the signed tree head's root differs from the log's entries",
                    ));
                }
            }
        }
        progress(report.entries);
    }
    if let (Some(size), Some(root)) = (stored_size, stored_root) {
        if size != frontier.size() {
            report.damaged.push(damage(
                "audit",
                "frontier",
                format!(
                    "the stored frontier counts {size} entries, the log holds {}",
                    frontier.size()
                ),
            ));
        } else if root != frontier.root() {
            report.damaged.push(damage(
                "audit",
                "frontier",
                "the stored Merkle root differs from the log's entries",
            ));
        }
    }
    if let Some(max) = heads.keys().max()
        && *max > frontier.size()
    {
        report.damaged.push(damage(
            "audit",
            format!("tree head at {max}"),
            format!(
                "signed for {max} entries, the log holds {}",
                frontier.size()
            ),
        ));
    }
    Ok((report, committed))
}

/// Reads every record of `table`, page by page; a page that cannot be read
/// is reported and ends the table (what follows is unreachable).
fn scan(
    storage: &dyn Storage,
    table: RecordTable,
    kind: &'static str,
    damaged: &mut Vec<Damage>,
    each: &mut dyn FnMut(&[u8], &[u8]),
) -> u64 {
    let mut after: Option<Vec<u8>> = None;
    let mut n = 0u64;
    loop {
        let page = match storage.raw_records(table, after.as_deref(), PAGE) {
            Ok(p) => p,
            Err(e) => {
                damaged.push(damage(
                    kind,
                    after
                        .as_deref()
                        .map(|k| format!("after {}", printable(k)))
                        .unwrap_or_else(|| "first".into()),
                    format!(
                        "a page cannot be read ({e}); records past it are read one by one where other records name them"
                    ),
                ));
                return n;
            }
        };
        let Some((last, _)) = page.last() else {
            return n;
        };
        let last = last.clone();
        for (k, v) in &page {
            each(k, v);
            n += 1;
        }
        after = Some(last);
    }
}

fn printable(key: &[u8]) -> String {
    match std::str::from_utf8(key) {
        Ok(s) if !s.contains('\0') => s.to_owned(),
        _ => hexfmt::encode(key),
    }
}

/// How the CRL index of each sector, the records of the vouched spaces
/// and the blocked keys differ from what the log committed (`vouched.rs`).
fn index_damage(storage: &dyn Storage, log: &LogIndex, sectors: HashSet<String>) -> Vec<Damage> {
    let mut found = Vec::new();
    let mut sectors: Vec<String> = sectors.into_iter().collect();
    sectors.sort();
    // Page by page (a sector can revoke a million certificates): each
    // page is compared with the log for the keys it covers.
    for sector in sectors {
        let mut after: Option<Vec<u8>> = None;
        loop {
            let page = match storage.revoked_page(&sector, after.as_deref(), STORE_PAGE) {
                Ok(page) => page,
                Err(e) => {
                    found.push(damage(
                        "revoked",
                        sector.clone(),
                        format!("the CRL index cannot be read: {e}"),
                    ));
                    break;
                }
            };
            let last = page.last().map(|(serial, _, _)| serial.as_slice());
            let span = Span::of_page(after.as_deref(), STORE_PAGE, page.len(), last);
            for (serial, reason) in revocation_differences(log, &sector, span, &page) {
                let key = format!("{sector} {}", hexfmt::encode(&serial));
                found.push(damage("revoked", key, reason));
            }
            if page.len() < STORE_PAGE {
                break;
            }
            after = page.last().map(|(serial, _, _)| serial.clone());
        }
    }
    for space in crate::VOUCHED_SPACES {
        let mut after: Option<Vec<u8>> = None;
        loop {
            let page = match storage.blob_scan_page(space, b"", after.as_deref(), STORE_PAGE) {
                Ok(page) => page,
                Err(e) => {
                    found.push(damage(
                        space,
                        "",
                        format!("the records cannot be read: {e}"),
                    ));
                    break;
                }
            };
            let last = page.last().map(|(key, _)| key.as_slice());
            let span = Span::of_page(after.as_deref(), STORE_PAGE, page.len(), last);
            for (key, reason) in blob_differences(log, space, Scope::Page(b"", span), &page) {
                found.push(damage(space, String::from_utf8_lossy(&key), reason));
            }
            if page.len() < STORE_PAGE {
                break;
            }
            after = page.last().map(|(key, _)| key.clone());
        }
    }
    let mut blocked: Vec<_> = log.blocked().collect();
    blocked.sort();
    for (fp, seq) in blocked {
        match storage.blocked_key(fp) {
            Ok(Some(_)) => {}
            Ok(None) => found.push(damage(
                "blocked key",
                hexfmt::encode(fp),
                format!(
                    "audit entry {seq} blocked it for compromise, but the block is gone (deleted)"
                ),
            )),
            Err(e) => found.push(damage("blocked key", hexfmt::encode(fp), e.to_string())),
        }
    }
    found
}

/// Checks the audit log ([`check_audit_log`]) and then every certificate,
/// device, trust record and history entry. `progress` gets the phase and
/// the records read so far.
pub fn check_store(
    storage: &dyn Storage,
    progress: &mut dyn FnMut(&str, u64),
) -> Result<CheckReport, StoreError> {
    let (audit, committed) = audit_pass(storage, true, &mut |n| progress("audit log", n))?;
    let mut report = CheckReport {
        audit_entries: audit.entries,
        tree_heads: audit.tree_heads,
        damaged: audit.damaged,
        ..CheckReport::default()
    };
    let mut damaged = std::mem::take(&mut report.damaged);
    // The per-record callbacks note damage here; it joins the list after
    // each table.
    let found: RefCell<Vec<Damage>> = RefCell::new(Vec::new());
    let note = |key: &str, kind: &'static str, reason: String| {
        found.borrow_mut().push(damage(kind, key, reason))
    };

    // Certificates: decode, digest as committed, fingerprint index.
    let mut serials: HashSet<String> = HashSet::new();
    let mut sectors: HashSet<String> = HashSet::new();
    report.certificates = scan(
        storage,
        RecordTable::Certificates,
        "certificate",
        &mut damaged,
        &mut |k, v| {
            let serial = hexfmt::encode(k);
            if let Err(reason) = committed.compare(Sealed::Certificate, &serial, v) {
                note(&serial, "certificate", reason);
            }
            let v = body_of(Sealed::Certificate, v);
            let cert: CertificateRecord = match decode(k, v) {
                Ok(c) => c,
                Err(e) => {
                    note(&serial, "certificate", undecodable(e));
                    return;
                }
            };
            if cert.serial != k {
                note(&serial, "certificate", "stored under another serial".into());
                return;
            }
            serials.insert(serial.clone());
            sectors.insert(cert.sector.clone());
            for reason in certificate_problems(storage, &committed, &serial, &cert) {
                note(&serial, "certificate", reason);
            }
        },
    );
    damaged.extend(found.take());
    progress("certificates", report.certificates);

    // History: the newest version per identity.
    let mut newest: HashMap<String, u64> = HashMap::new();
    report.history_entries = scan(
        storage,
        RecordTable::History,
        "history",
        &mut damaged,
        &mut |k, v| {
            let identity = k
                .len()
                .checked_sub(9)
                .and_then(|n| std::str::from_utf8(&k[..n]).ok())
                .map(str::to_owned);
            let Some(identity) = identity else {
                note(
                    &printable(k),
                    "history",
                    "key is not identity, 0, version".into(),
                );
                return;
            };
            match decode::<HistoryEntry>(k, v) {
                Ok(h) => {
                    let slot = newest.entry(identity).or_default();
                    *slot = (*slot).max(h.version);
                }
                Err(e) => note(&identity, "history", undecodable(e)),
            }
        },
    );
    damaged.extend(found.take());
    progress("history", report.history_entries);

    // Trust records: decode, key, newest history version.
    let mut trusted: HashSet<String> = HashSet::new();
    report.trust_records = scan(
        storage,
        RecordTable::Trust,
        "trust",
        &mut damaged,
        &mut |k, v| {
            let key = printable(k);
            if let Err(reason) = committed.compare(Sealed::Trust, &key, v) {
                note(&key, "trust", reason);
            }
            let v = body_of(Sealed::Trust, v);
            match decode::<TrustRecord>(k, v) {
                Ok(t) if t.identity_key.as_bytes() != k => {
                    note(&key, "trust", "stored under another identity".into())
                }
                Ok(t) => {
                    trusted.insert(key.clone());
                    match newest.get(&key) {
                        Some(v) if *v == t.version => {}
                        Some(v) => note(
                            &key,
                            "trust",
                            format!("version {} but its history ends at {v}", t.version),
                        ),
                        None => note(&key, "trust", "no history entry".into()),
                    }
                }
                Err(e) => note(&key, "trust", undecodable(e)),
            }
        },
    );
    damaged.extend(found.take());
    progress("trust records", report.trust_records);

    // Devices: decode, key, certificates, trust record. Certificates the
    // scan did not meet (a page it could not read ends it) are read one
    // by one afterwards, so what is reported is what cannot be read.
    let unseen: RefCell<Vec<(String, String)>> = RefCell::new(Vec::new());
    report.devices = scan(
        storage,
        RecordTable::Devices,
        "device",
        &mut damaged,
        &mut |k, v| {
            let key = printable(k);
            if let Err(reason) = committed.compare(Sealed::Device, &key, v) {
                note(&key, "device", reason);
            }
            let v = body_of(Sealed::Device, v);
            match decode::<DeviceRecord>(k, v) {
                Ok(d) if d.identity_key.as_bytes() != k => {
                    note(&key, "device", "stored under another identity".into())
                }
                Ok(d) => {
                    if !trusted.contains(&key) {
                        note(
                            &key,
                            "device",
                            "its trust record is missing or damaged".into(),
                        );
                    }
                    for serial in &d.certificates {
                        if !serials.contains(serial) {
                            unseen.borrow_mut().push((key.clone(), serial.clone()));
                        }
                    }
                }
                Err(e) => note(&key, "device", undecodable(e)),
            }
        },
    );
    damaged.extend(found.take());
    progress("devices", report.devices);
    // Each certificate is reported once: not again after the scan named it.
    let mut reported: HashSet<String> = damaged
        .iter()
        .filter(|d| d.kind == "certificate")
        .map(|d| d.key.clone())
        .collect();
    for (device, serial) in unseen.take() {
        if serials.contains(&serial) || reported.contains(&serial) {
            continue;
        }
        let read = hexfmt::decode(&serial)
            .ok_or_else(|| StoreError::Backend("not a hex serial".into()))
            .and_then(|bytes| storage.certificate(&bytes));
        match read {
            Ok(Some(cert)) => {
                report.certificates += 1;
                serials.insert(serial.clone());
                for reason in certificate_problems(storage, &committed, &serial, &cert) {
                    damaged.push(damage("certificate", &serial, reason));
                }
            }
            Ok(None) => damaged.push(damage(
                "device",
                device,
                format!("its certificate {serial} is missing"),
            )),
            Err(e) => {
                reported.insert(serial.clone());
                damaged.push(damage(
                    "certificate",
                    &serial,
                    format!("cannot be read: {}", undecodable(e)),
                ));
            }
        }
    }
    sectors.extend(committed.log.revoking_sectors().map(str::to_owned));
    damaged.extend(index_damage(storage, &committed.log, sectors));
    // What the log wrote and no table holds any more.
    let mut gone: Vec<_> = committed.binds.take().into_iter().collect();
    gone.sort();
    for ((table, key), (seq, _)) in gone {
        damaged.push(damage(
            table.name(),
            key,
            format!("missing: audit entry {seq} wrote it and it is gone (deleted)"),
        ));
    }
    report.damaged = damaged;
    report.unsealed = committed.unsealed.get();
    Ok(report)
}
