//! The root's own CRL, an authority revocation list (ARL): the CAs and
//! service certificates the root issued and an operator revoked.
//!
//! The root key is kept offline from day-to-day work, so revoking a CA is
//! an offline command on the data directory with the passphrase (like
//! `manufacturer add`), and it works while a server runs. The durable
//! record is `DIR/ca/revoked-cas.toml` (entries and the last CRL number);
//! the signed list is `DIR/crl/root.crl` (RFC 5280 v2 CRL, CRL number,
//! AKI, reason codes). A server reads the record at start and on every
//! check, refuses issuance by a revoked CA from then on, records each
//! revocation in the audit log, and reissues the list when it is due.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::RwLock;
use trustca_datadir::{CaFiles, DataDir};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use trustca_model::SectorName;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::CaError;
use crate::crl::{RevokedEntry, build_crl};
use crate::issuer::SigningCa;

/// The `GetCrl` name and file stem of the root's CRL.
pub const ROOT_CRL_NAME: &str = "root";
/// How long a root CRL is valid. The root signs rarely; a server reissues
/// it when less than half of this is left.
pub const ROOT_CRL_VALIDITY_DAYS: i64 = 30;
const STATE_FILE: &str = "revoked-cas.toml";

/// One CA (or service certificate) the root revoked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokedCa {
    /// Its name in `DIR/ca/` (`automotive`, `automotive-pseudonym`).
    pub name: String,
    /// Serial, lower-case hex.
    pub serial: String,
    /// Subject, as text.
    pub subject: String,
    /// RFC 5280 reason code.
    pub reason: u8,
    /// Unix time of revocation.
    pub at: i64,
    /// Why, in the operator's words.
    #[serde(default)]
    pub note: String,
}

impl RevokedCa {
    /// The revocation time as RFC 3339 text.
    pub fn date(&self) -> String {
        OffsetDateTime::from_unix_timestamp(self.at)
            .ok()
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .unwrap_or_default()
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    /// The last root CRL number issued (never reused).
    crl_number: u64,
    #[serde(default)]
    revoked: Vec<RevokedCa>,
}

fn state_path(data: &Path) -> PathBuf {
    DataDir::new(data).ca().join(STATE_FILE)
}

/// Where the root CRL is published.
pub fn root_crl_path(data: &Path) -> PathBuf {
    DataDir::new(data).crl(ROOT_CRL_NAME)
}

fn read_state(data: &Path) -> Result<State, CaError> {
    let path = state_path(data);
    match std::fs::read_to_string(&path) {
        Ok(text) => toml::from_str(&text).map_err(|e| {
            CaError::Keystore(format!(
                "{} is not a valid revocation record: {}",
                path.display(),
                e.message()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
        Err(e) => Err(CaError::io(&path, e)),
    }
}

/// Writes `bytes` to `path` through a temporary file and a rename, so a
/// reader never sees half a file.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), CaError> {
    let dir = path
        .parent()
        .ok_or_else(|| CaError::InvalidRequest(format!("{} has no parent", path.display())))?;
    std::fs::create_dir_all(dir).map_err(|e| CaError::io(dir, e))?;
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file")
    ));
    std::fs::write(&tmp, bytes).map_err(|e| CaError::io(&tmp, e))?;
    if let Ok(f) = std::fs::File::open(&tmp) {
        let _ = f.sync_all();
    }
    std::fs::rename(&tmp, path).map_err(|e| CaError::io(path, e))
}

fn write_state(data: &Path, state: &State) -> Result<(), CaError> {
    let text = toml::to_string(state)
        .map_err(|e| CaError::Keystore(format!("cannot encode the revocation record: {e}")))?;
    write_atomic(&state_path(data), text.as_bytes())
}

/// Signs and publishes a new root CRL from the record, with the next CRL
/// number; the record is written first, so a number is never reused.
fn publish(data: &Path, root: &SigningCa, state: &mut State) -> Result<u64, CaError> {
    state.crl_number += 1;
    write_state(data, state)?;
    let entries: Vec<RevokedEntry> = state
        .revoked
        .iter()
        .map(|r| RevokedEntry {
            serial: trustca_model::hexfmt::decode(&r.serial).unwrap_or_default(),
            at: OffsetDateTime::from_unix_timestamp(r.at).unwrap_or(OffsetDateTime::UNIX_EPOCH),
            reason: r.reason,
        })
        .collect();
    let now = OffsetDateTime::now_utc();
    let der = build_crl(
        root,
        state.crl_number,
        now,
        now + time::Duration::days(ROOT_CRL_VALIDITY_DAYS),
        &entries,
    )?;
    write_atomic(&root_crl_path(data), &der)?;
    tracing::info!(
        crl_number = state.crl_number,
        entries = entries.len(),
        "root CRL published"
    );
    Ok(state.crl_number)
}

/// `(CRL number, nextUpdate)` of the published root CRL, if readable.
pub fn published(data: &Path) -> Option<(u64, OffsetDateTime)> {
    let der = std::fs::read(root_crl_path(data)).ok()?;
    let (_, crl) = x509_parser::revocation_list::CertificateRevocationList::from_der(&der).ok()?;
    let number = crl.crl_number().and_then(|n| u64::try_from(n).ok())?;
    Some((number, crl.next_update()?.to_datetime()))
}

/// Whether the root CRL must be (re)issued: missing, behind the record
/// (a crash between the two writes), or past half its validity.
pub fn root_crl_due(data: &Path) -> Result<bool, CaError> {
    let state = read_state(data)?;
    Ok(match published(data) {
        None => true,
        Some((number, next_update)) => {
            number < state.crl_number
                || next_update - OffsetDateTime::now_utc()
                    < time::Duration::days(ROOT_CRL_VALIDITY_DAYS / 2)
        }
    })
}

/// Reissues the root CRL when [`root_crl_due`]; returns the new number.
pub fn publish_root_crl_if_due(data: &Path, root: &SigningCa) -> Result<Option<u64>, CaError> {
    if !root_crl_due(data)? {
        return Ok(None);
    }
    let mut state = read_state(data)?;
    publish(data, root, &mut state).map(Some)
}

/// Re-issues the root CRL now, whatever its `nextUpdate` (the offline
/// root's `root arl`, and after it issued a sector CA); returns the number.
pub fn publish_root_crl_now(data: &Path, root: &SigningCa) -> Result<u64, CaError> {
    let mut state = read_state(data)?;
    publish(data, root, &mut state)
}

/// An ARL from the offline root, checked and ready to be written into a
/// sector directory ([`prepare_import`]).
#[derive(Debug)]
pub struct PreparedArl {
    der: Vec<u8>,
    state: State,
}

impl PreparedArl {
    /// The names of the CAs it revokes (sector names where the certificate
    /// is known here, else `serial-<hex>`).
    pub fn revoked_names(&self) -> Vec<String> {
        self.state.revoked.iter().map(|r| r.name.clone()).collect()
    }

    /// Writes the record first and the list second (as the root does), so
    /// a server that re-reads the record never misses a revocation.
    pub fn commit(self, data: &Path) -> Result<u64, CaError> {
        write_state(data, &self.state)?;
        write_atomic(&root_crl_path(data), &self.der)?;
        Ok(self.state.crl_number)
    }
}

/// Checks an ARL brought from the offline root into a directory that does
/// not hold the root key: signed by `root_der`, not past its `nextUpdate`,
/// and (with `require_newer`) newer than the one held. Its entries become the directory's record
/// of revoked CAs, named by the sector certificates in `known`
/// (`(sector, DER)`), which is what a server consults.
pub fn prepare_import(
    data: &Path,
    root_der: &[u8],
    der: &[u8],
    known: &[(String, Vec<u8>)],
    now: OffsetDateTime,
    require_newer: bool,
) -> Result<PreparedArl, CaError> {
    let refuse = |why: String| CaError::InvalidRequest(format!("the ARL {why}; nothing imported"));
    let (rest, crl) = x509_parser::revocation_list::CertificateRevocationList::from_der(der)
        .map_err(|_| refuse("is not a DER X.509 CRL".into()))?;
    if !rest.is_empty() {
        return Err(refuse("has trailing bytes".into()));
    }
    let (_, root) = X509Certificate::from_der(root_der)
        .map_err(|_| CaError::Signing("root certificate does not parse".into()))?;
    if crl.issuer().as_raw() != root.subject().as_raw() {
        return Err(refuse(format!(
            "is issued by {}, not by this root",
            crl.issuer()
        )));
    }
    crate::ceremony::check_signed(
        root.public_key(),
        crl.signature_algorithm.algorithm.as_bytes(),
        crl.tbs_cert_list.as_ref(),
        &crl.signature_value,
        "the ARL",
    )?;
    let next_update = crl
        .next_update()
        .map(|t| t.to_datetime())
        .ok_or_else(|| refuse("has no nextUpdate".into()))?;
    if now > next_update {
        return Err(refuse(format!(
            "is past its nextUpdate ({next_update}); have the root re-issue it (`trustca root arl`)"
        )));
    }
    let number = crl
        .crl_number()
        .and_then(|n| u64::try_from(n).ok())
        .ok_or_else(|| refuse("has no CRL number".into()))?;
    let held = read_state(data)?;
    if require_newer && number <= held.crl_number {
        return Err(refuse(format!(
            "is #{number}, not newer than the one held (#{})",
            held.crl_number
        )));
    }
    let mut revoked = Vec::new();
    for entry in crl.iter_revoked_certificates() {
        let serial = trustca_model::hexfmt::encode(entry.raw_serial());
        let named = known.iter().find_map(|(name, cert)| {
            let (_, c) = X509Certificate::from_der(cert).ok()?;
            (trustca_model::hexfmt::encode(c.raw_serial()) == serial)
                .then(|| (name.clone(), c.subject().to_string()))
        });
        let (name, subject) = named.unwrap_or_else(|| (format!("serial-{serial}"), String::new()));
        let reason = entry.reason_code().map(|(_, r)| r.0).unwrap_or(0);
        revoked.push(RevokedCa {
            name,
            serial,
            subject,
            reason,
            at: entry.revocation_date.to_datetime().unix_timestamp(),
            note: String::new(),
        });
    }
    Ok(PreparedArl {
        der: der.to_vec(),
        state: State {
            crl_number: number,
            revoked,
        },
    })
}

/// The published root CRL, DER.
pub fn read_root_crl(data: &Path) -> Result<Vec<u8>, CaError> {
    let path = root_crl_path(data);
    std::fs::read(&path).map_err(|e| CaError::io(&path, e))
}

/// Revokes the root-issued certificate `DIR/ca/<name>.pem` (a sector CA,
/// a service certificate, or an X.509 pseudonym CA left by an older
/// `init`) and publishes the root CRL.
/// `root` is the root signer (the caller opened the keystore).
pub fn revoke_ca(
    data: &Path,
    root: &SigningCa,
    name: &str,
    reason: u8,
    note: &str,
) -> Result<(RevokedCa, u64), CaError> {
    let valid_name = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && !name.starts_with('.')
        && !name.contains("..");
    if !valid_name || name == ROOT_CRL_NAME {
        return Err(CaError::InvalidRequest(format!(
            "{name:?} is not a CA the root issued; name a sector (automotive), a service (responder, audit, server) or an old X.509 pseudonym CA (automotive-pseudonym)"
        )));
    }
    if note.len() > 512 {
        return Err(CaError::InvalidRequest(
            "note is limited to 512 bytes".into(),
        ));
    }
    let path = DataDir::new(data).ca().cert(name);
    if !path.exists() {
        return Err(CaError::InvalidRequest(format!(
            "there is no CA named {name:?} ({} does not exist)",
            path.display()
        )));
    }
    let text = std::fs::read_to_string(&path).map_err(|e| CaError::io(&path, e))?;
    let der = pem::parse_many(&text)
        .ok()
        .and_then(|items| items.into_iter().find(|p| p.tag() == "CERTIFICATE"))
        .map(|p| p.into_contents())
        .ok_or_else(|| CaError::Keystore(format!("{} holds no certificate", path.display())))?;
    let (_, cert) = X509Certificate::from_der(&der)
        .map_err(|_| CaError::Signing(format!("{} does not parse", path.display())))?;
    let (_, root_cert) = X509Certificate::from_der(&root.cert_der)
        .map_err(|_| CaError::Signing("root certificate does not parse".into()))?;
    if cert.issuer().as_raw() != root_cert.subject().as_raw() {
        return Err(CaError::InvalidRequest(format!(
            "{name} is not issued by the root"
        )));
    }
    let serial = trustca_model::hexfmt::encode(cert.raw_serial());
    let mut state = read_state(data)?;
    if let Some(done) = state.revoked.iter().find(|r| r.serial == serial) {
        return Err(CaError::InvalidRequest(format!(
            "{name} was already revoked on {}",
            done.date()
        )));
    }
    let entry = RevokedCa {
        name: name.to_owned(),
        serial,
        subject: cert.subject().to_string(),
        reason,
        at: OffsetDateTime::now_utc().unix_timestamp(),
        note: note.to_owned(),
    };
    state.revoked.push(entry.clone());
    let number = publish(data, root, &mut state)?;
    Ok((entry, number))
}

/// The root's revocations as a server knows them: refreshed from the
/// record at start and on every check, consulted before every issuance.
#[derive(Debug)]
pub struct RevokedCas {
    data: PathBuf,
    by_name: RwLock<BTreeMap<String, RevokedCa>>,
    /// The CA names of each sector's generations (`rollover.rs`), when the
    /// hierarchy told them.
    generations: RwLock<BTreeMap<String, Vec<String>>>,
}

impl RevokedCas {
    /// Reads the record of `data`.
    pub fn load(data: &Path) -> Result<Self, CaError> {
        let this = Self {
            data: data.to_path_buf(),
            by_name: RwLock::new(BTreeMap::new()),
            generations: RwLock::new(BTreeMap::new()),
        };
        this.refresh()?;
        Ok(this)
    }

    /// Re-reads the record; returns the revocations not seen before.
    pub fn refresh(&self) -> Result<Vec<RevokedCa>, CaError> {
        let state = read_state(&self.data)?;
        let mut map = self.by_name.write().unwrap_or_else(|e| e.into_inner());
        let mut fresh = Vec::new();
        for r in state.revoked {
            if !map.contains_key(&r.name) {
                fresh.push(r.clone());
                map.insert(r.name.clone(), r);
            }
        }
        Ok(fresh)
    }

    /// Every revocation known.
    pub fn all(&self) -> Vec<RevokedCa> {
        self.by_name
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Tells which CA names (generations) each sector has.
    pub fn set_generations(&self, cas: impl IntoIterator<Item = (SectorName, String)>) {
        let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (sector, name) in cas {
            map.entry(sector.to_string()).or_default().push(name);
        }
        *self.generations.write().unwrap_or_else(|e| e.into_inner()) = map;
    }

    /// The root's revocation of the CA named `name`, if it revoked it. For
    /// a sector with several generations (a rollover in progress), `name`
    /// the sector stands for all of them: revoked only when every one is
    /// (the newest's revocation is returned); a single generation is
    /// looked up by its own name (`automotive.2`), and its certificates
    /// are revoked in the store one by one (`ca_revocation.rs`).
    pub fn revoked(&self, name: &str) -> Option<RevokedCa> {
        let by_name = self.by_name.read().unwrap_or_else(|e| e.into_inner());
        let generations = self.generations.read().unwrap_or_else(|e| e.into_inner());
        match generations.get(name) {
            Some(names) if names.len() > 1 => names
                .iter()
                .map(|n| by_name.get(n).cloned())
                .collect::<Option<Vec<_>>>()
                .and_then(|all| all.into_iter().last()),
            _ => by_name.get(name).cloned(),
        }
    }

    /// Refuses issuance by the CA named `name` when the root revoked it.
    pub fn check_issuing(&self, name: &str) -> Result<(), CaError> {
        match self
            .by_name
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
        {
            Some(r) => Err(CaError::CaRevoked {
                name: name.to_owned(),
                on: r.date(),
                reason: trustca_model::revocation::reason_name(r.reason).to_owned(),
            }),
            None => Ok(()),
        }
    }
}
