//! The root's trust list of foreign roots ([`trustca_model::trust_list`]):
//! issued offline by the root (`trustca root trust-list issue`), imported
//! into each sector's directory (`trustca sector import --trust-list`) and
//! read by the server, which then verifies a device chained to a listed
//! root against that root, for the foreign sectors the list names.
//!
//! Both sides keep the list as `ca/trust-list.der`: at the root it is the
//! last list issued (whose sequence number the next one exceeds), at a
//! sector the list in force.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use trustca_datadir::{CaFiles, DataDir};

use rcgen::{PublicKeyData, SigningKey};
use time::OffsetDateTime;
use trustca_model::trust_list::{
    CheckedTrustList, ListSignatureAlgorithm, PEM_LABEL, TrustList, TrustListEntry,
};
use trustca_model::{PolicySet, SectorName};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::CaError;
use crate::ca_keys::CaKeys;
use crate::ceremony::der_of;
use crate::hierarchy::CaHierarchy;
use crate::keystore::{Keystore, Passphrase};
use crate::pkcs11::Pkcs11Token;
use crate::root_crl::write_atomic;

/// `ca/trust-list.der`.
pub const TRUST_LIST_FILE: &str = "trust-list.der";

/// Longest a list may run before its `nextUpdate`.
pub const MAX_VALIDITY_DAYS: i64 = 366;

/// A foreign root to list: where it came from (for messages), its
/// certificate (PEM or DER) and the foreign sectors it may vouch for.
#[derive(Debug, Clone)]
pub struct ForeignRoot {
    /// The file it was read from.
    pub name: String,
    /// The certificate, PEM or DER.
    pub certificate: Vec<u8>,
    /// Foreign sector names.
    pub sectors: Vec<String>,
}

/// One entry of a list, described for operators.
#[derive(Debug, Clone)]
pub struct ListedRoot {
    /// The root's subject.
    pub subject: String,
    /// SHA-256 of its certificate, hex.
    pub sha256: String,
    /// The foreign sectors it may vouch for.
    pub sectors: Vec<SectorName>,
}

/// A list issued or imported.
#[derive(Debug)]
pub struct TrustListReport {
    /// Its sequence number.
    pub sequence: u64,
    /// Its `nextUpdate`.
    pub next_update: OffsetDateTime,
    /// What it lists.
    pub roots: Vec<ListedRoot>,
    /// Where it was kept.
    pub path: PathBuf,
    /// The list, PEM (issue only; what travels to the sectors).
    pub pem: String,
}

fn describe(list: &TrustList) -> Vec<ListedRoot> {
    list.entries
        .iter()
        .map(|e| ListedRoot {
            subject: X509Certificate::from_der(&e.certificate)
                .map(|(_, c)| c.subject().to_string())
                .unwrap_or_default(),
            sha256: trustca_model::hexfmt::encode(&e.fingerprint()),
            sectors: e.sectors.clone(),
        })
        .collect()
}

fn root_der(dir: &Path) -> Result<Vec<u8>, CaError> {
    let path = dir.root_cert();
    let bytes = std::fs::read(&path).map_err(|e| CaError::io(&path, e))?;
    der_of(&bytes, "CERTIFICATE", "the root certificate")
}

/// The list held in `dir` (`ca/`), decoded but not checked again.
fn held(dir: &Path) -> Result<Option<TrustList>, CaError> {
    let path = dir.join(TRUST_LIST_FILE);
    match std::fs::read(&path) {
        Ok(der) => Ok(Some(TrustList::decode_unchecked(&der).map_err(|e| {
            CaError::InvalidRequest(format!("{}: {e}", path.display()))
        })?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(CaError::io(&path, e)),
    }
}

/// Refuses a foreign root with our root's subject: chains, CRLs and lists
/// name their issuer by subject, so two roots of one name could be told
/// apart by their keys alone (and an operator reading a list could not).
fn named_apart(foreign: &X509Certificate<'_>, own_root: &[u8]) -> Result<(), String> {
    let (_, own) = X509Certificate::from_der(own_root)
        .map_err(|_| "our root certificate does not parse".to_owned())?;
    if foreign.subject().as_raw() == own.subject().as_raw() {
        return Err(format!(
            "its subject ({}) is our own root's: two roots of one name cannot be told apart; \
             its operator must make a root with a distinct name (`trustca root init --name`)",
            foreign.subject()
        ));
    }
    Ok(())
}

/// Checks one foreign root for the list: an X.509 CA certificate, valid
/// now, not this root, for sectors that `recognition.toml` declares
/// foreign (so its rules can count their levels).
fn entry(
    root: &ForeignRoot,
    own_root: &[u8],
    policies: &PolicySet,
    now: OffsetDateTime,
) -> Result<TrustListEntry, CaError> {
    let name = &root.name;
    let refuse = |why: String| CaError::InvalidRequest(format!("{name}: {why}"));
    let der = der_of(&root.certificate, "CERTIFICATE", name)?;
    let (rest, cert) =
        X509Certificate::from_der(&der).map_err(|_| refuse("not an X.509 certificate".into()))?;
    if !rest.is_empty() {
        return Err(refuse("trailing bytes after the certificate".into()));
    }
    if !cert.is_ca() {
        return Err(refuse("not a CA certificate (basicConstraints cA)".into()));
    }
    if !cert.validity().is_valid_at(
        x509_parser::time::ASN1Time::from_timestamp(now.unix_timestamp())
            .map_err(|_| refuse("time out of range".into()))?,
    ) {
        return Err(refuse("the certificate is not valid now".into()));
    }
    if der == own_root {
        return Err(refuse(
            "this is our own root: its sectors need no trust list".into(),
        ));
    }
    named_apart(&cert, own_root).map_err(refuse)?;
    if root.sectors.is_empty() {
        return Err(refuse(
            "name the foreign sector(s) it may vouch for (--sector)".into(),
        ));
    }
    let mut sectors = Vec::new();
    for s in &root.sectors {
        let sector = SectorName::new(s)?;
        if policies.sectors.contains_key(&sector) {
            return Err(refuse(format!(
                "{sector} is one of this root's own sectors; a foreign root may not vouch for it"
            )));
        }
        if !policies.trust.foreign_sectors().contains(&sector) {
            return Err(refuse(format!(
                "recognition.toml does not declare {sector} foreign (foreign = [...]): \
                 no recognition rule could count its levels"
            )));
        }
        sectors.push(sector);
    }
    Ok(TrustListEntry {
        certificate: der,
        sectors,
    })
}

/// `trustca root trust-list issue`: signs, with the root key, a list of
/// `roots` in force until `next_update`, numbered one above the last list
/// this root issued, and keeps it as `ca/trust-list.der`.
pub fn issue(
    data: &Path,
    policies: &PolicySet,
    passphrase: &Passphrase,
    token: Option<Arc<Pkcs11Token>>,
    roots: &[ForeignRoot],
    next_update: OffsetDateTime,
) -> Result<TrustListReport, CaError> {
    let dir = DataDir::new(data).ca();
    if !dir.root_cert().exists() {
        return Err(CaError::NotInitialized(data.to_path_buf()));
    }
    let now = OffsetDateTime::from_unix_timestamp(OffsetDateTime::now_utc().unix_timestamp())
        .map_err(|_| CaError::InvalidRequest("clock out of range".into()))?;
    if next_update <= now || next_update > now + time::Duration::days(MAX_VALIDITY_DAYS) {
        return Err(CaError::InvalidRequest(format!(
            "nextUpdate must be after now and at most {MAX_VALIDITY_DAYS} days ahead"
        )));
    }
    let own = root_der(&dir)?;
    let mut entries: Vec<TrustListEntry> = Vec::new();
    for r in roots {
        let e = entry(r, &own, policies, now)?;
        if entries.iter().any(|x| x.certificate == e.certificate) {
            return Err(CaError::InvalidRequest(format!("{}: listed twice", r.name)));
        }
        if let Some(s) = e
            .sectors
            .iter()
            .find(|s| entries.iter().any(|x| x.sectors.contains(s)))
        {
            return Err(CaError::InvalidRequest(format!(
                "{}: sector {s} is already vouched for by another listed root",
                r.name
            )));
        }
        entries.push(e);
    }
    let sequence = held(&dir)?.map_or(1, |l| l.sequence + 1);
    let (_, root_cert) = X509Certificate::from_der(&own)
        .map_err(|_| CaError::InvalidRequest("the root certificate does not parse".into()))?;
    let list = TrustList {
        issuer: root_cert.subject().as_raw().to_vec(),
        sequence,
        this_update: now,
        next_update,
        entries,
    };
    let keys = CaKeys::new(Keystore::open(&dir, passphrase)?, token, &policies.pki);
    let root = CaHierarchy::root_signer(&dir, &keys)?;
    let key = root.issuer.key();
    let alg = match PublicKeyData::algorithm(key) {
        a if a == &rcgen::PKCS_ECDSA_P256_SHA256 => ListSignatureAlgorithm::EcdsaSha256,
        a if a == &rcgen::PKCS_ECDSA_P384_SHA384 => ListSignatureAlgorithm::EcdsaSha384,
        a if a == &rcgen::PKCS_ED25519 => ListSignatureAlgorithm::Ed25519,
        _ => {
            return Err(CaError::InvalidRequest(
                "the root key's algorithm cannot sign a trust list".into(),
            ));
        }
    };
    let tbs = list.tbs_der()?;
    let sig = SigningKey::sign(key, &tbs)?;
    let der = TrustList::assemble(&tbs, alg, &sig)?;
    // What was signed must verify as a sector will check it.
    TrustList::verify(&der, &own, now)?;
    let path = dir.join(TRUST_LIST_FILE);
    write_atomic(&path, &der)?;
    Ok(TrustListReport {
        sequence,
        next_update,
        roots: describe(&list),
        path,
        pem: pem::encode(&pem::Pem::new(PEM_LABEL, der)),
    })
}

/// `trustca sector import --trust-list`: checks the list (signed by this
/// directory's root, not past its `nextUpdate`, newer than the one held,
/// naming only sectors `recognition.toml` declares foreign) and makes it
/// the list in force. Nothing is written if any check fails.
pub fn import(data: &Path, policies: &PolicySet, bytes: &[u8]) -> Result<TrustListReport, CaError> {
    let dir = DataDir::new(data).ca();
    if !dir.root_cert().exists() {
        return Err(CaError::InvalidRequest(format!(
            "{} holds no root certificate yet: install this sector's CA first (`trustca sector install`)",
            data.display()
        )));
    }
    let der = der_of(bytes, PEM_LABEL, "the trust list")?;
    let own = root_der(&dir)?;
    let list = TrustList::verify(&der, &own, OffsetDateTime::now_utc())?;
    if let Some(h) = held(&dir)?
        && h.sequence >= list.sequence
    {
        return Err(CaError::InvalidRequest(format!(
            "trust list {} is not newer than the one held (number {}); nothing changed",
            list.sequence, h.sequence
        )));
    }
    for e in &list.entries {
        let (_, cert) = X509Certificate::from_der(&e.certificate).map_err(|_| {
            CaError::InvalidRequest("the list holds an entry that is not a certificate".into())
        })?;
        named_apart(&cert, &own).map_err(|why| {
            CaError::InvalidRequest(format!(
                "the list's root {}: {why}; nothing changed",
                cert.subject()
            ))
        })?;
        for s in &e.sectors {
            if policies.sectors.contains_key(s) || !policies.trust.foreign_sectors().contains(s) {
                return Err(CaError::InvalidRequest(format!(
                    "the list names sector {s}, which this directory's recognition.toml does \
                     not declare foreign; update the policies first; nothing changed"
                )));
            }
        }
    }
    let path = dir.join(TRUST_LIST_FILE);
    write_atomic(&path, &der)?;
    Ok(TrustListReport {
        sequence: list.sequence,
        next_update: list.next_update,
        roots: describe(&list),
        path,
        pem: String::new(),
    })
}

/// The list in force in `data` at `now`, checked against the directory's
/// root; `None` without one. A stale or damaged list is an error: the
/// caller recognises no foreign root then.
pub fn in_force(data: &Path, now: OffsetDateTime) -> Result<Option<CheckedTrustList>, CaError> {
    let dir = DataDir::new(data).ca();
    let path = dir.join(TRUST_LIST_FILE);
    let der = match std::fs::read(&path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(CaError::io(&path, e)),
    };
    let list = TrustList::verify(&der, &root_der(&dir)?, now)?;
    Ok(Some(CheckedTrustList { list, der }))
}

#[cfg(test)]
#[path = "trust_list_tests.rs"]
mod tests;
