//! The ETSI key ceremony (`docs/v2x-etsi.md`, "Separated authorities"):
//! an offline root and one directory per authority, each key made in the
//! directory that uses it.
//!
//! ```text
//! etsi-authority.toml  which role (root, ea, aa, dc), its name, its URL
//! keys/                keystore under the directory's passphrase: the
//!                      root's "root"; the EA's "ea" and "ea-encryption";
//!                      the AA's "aa" and "aa-encryption"; none in a DC
//! request.toml         (EA, AA) the public keys and URL the root certifies
//! root.oer             the ETSI root certificate (the root's own; installed elsewhere)
//! cert.oer             (EA, AA) its own certificate, installed from the root
//! ctl.oer crl.oer      (AA, DC) the root's signed lists, installed
//! issued/<name>.toml   (root) every EA and AA it certified, and whether revoked
//! tlm.oer ectl.oer     (TLM) its certificate; (DC) the TLM's, and its ECTL, installed
//! ```
//!
//! `root init` → `ea init` / `aa init` (request) → `root sign` (certificate)
//! → `install` in the authority's directory → `root sign-ctl` / `sign-crl`
//! → `install` in the distribution centre's (and the AA's) directory. A
//! `serve --etsi-role` process opens its directory only after
//! [`EtsiDir::check_own_keys_only`].

use std::path::{Path, PathBuf};

use ring::rand::SystemRandom;
use serde::{Deserialize, Serialize};
use trustca_ca::{Keystore, Passphrase};
use trustca_etsi::{profile, trust_lists};
use trustca_scms::TicketProfile;
use trustca_v2x::trust_lists::CtlEntry;
use trustca_v2x::{
    CertProfile, Certificate, Duration, PublicKeyP256, SubjectAssurance, Time32, ValidityPeriod,
};

use super::deploy::{etsi_err, new_encryption_secret, new_signing_key, public, signing_key};
use super::http::{AUTHORIZATION_PATH, CRL_PREFIX, CTL_PREFIX, ENROLMENT_PATH, VALIDATION_PATH};
use crate::error::{Result, ServerError, io};

/// `etsi-authority.toml`'s name and format marker.
const AUTHORITY_FILE: &str = "etsi-authority.toml";
const AUTHORITY_FORMAT: &str = "trustca-etsi-authority-1";
/// The request an EA or AA hands to the root.
pub const REQUEST_FILE: &str = "request.toml";
/// Certificates and lists in an authority's directory.
pub const ROOT_FILE: &str = "root.oer";
/// The authority's own certificate.
pub const CERT_FILE: &str = "cert.oer";
/// The installed CTL.
pub const CTL_FILE: &str = "ctl.oer";
/// The installed CRL.
pub const CRL_FILE: &str = "crl.oer";
/// The root's register of certified authorities.
const ISSUED_DIR: &str = "issued";
/// The root's and the authorities' certificates: three years.
const CERT_YEARS: u16 = 3;

/// The four kinds of ETSI directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EtsiRole {
    /// The root CA (offline: signs certificates and the lists).
    Root,
    /// The enrolment authority.
    Ea,
    /// The authorization authority.
    Aa,
    /// The distribution centre of the root's CTL and CRL (and a trust
    /// list manager's ECTL).
    Dc,
    /// A trust list manager (offline: signs the European CTL of the root
    /// CAs it recognises; `super::tlm`).
    Tlm,
}

impl EtsiRole {
    /// The name on the command line and in `etsi-authority.toml`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Root => "root",
            Self::Ea => "ea",
            Self::Aa => "aa",
            Self::Dc => "dc",
            Self::Tlm => "tlm",
        }
    }

    /// Parses [`EtsiRole::as_str`].
    pub fn parse(s: &str) -> Result<Self> {
        [Self::Root, Self::Ea, Self::Aa, Self::Dc, Self::Tlm]
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                ServerError::Config(format!("unknown ETSI role {s:?}: root, ea, aa, dc or tlm"))
            })
    }

    /// The keystore entries a directory of this role holds.
    fn own_keys(self) -> &'static [&'static str] {
        match self {
            Self::Root => &["root"],
            Self::Ea => &["ea", "ea-encryption"],
            Self::Aa => &["aa", "aa-encryption"],
            Self::Dc => &[],
            Self::Tlm => &["tlm"],
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct AuthorityFile {
    format: String,
    role: String,
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    url: Option<String>,
}

/// What an EA or AA asks the root to certify (`request.toml`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthorityRequest {
    /// `ea` or `aa`.
    pub role: String,
    /// The certificate's `id` name.
    pub name: String,
    /// Its public base URL (`http://HOST:PORT`), for the CTL's access points.
    pub url: String,
    /// The signing key, compressed SEC1 hex.
    pub verification_key: String,
    /// The encryption key, compressed SEC1 hex.
    pub encryption_key: String,
}

/// An entry of the root's register (`issued/<name>.toml`).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct IssuedRecord {
    role: String,
    name: String,
    url: String,
    /// The certificate's COER, hex.
    certificate: String,
    revoked: bool,
}

/// An ETSI authority's directory.
#[derive(Debug, Clone)]
pub struct EtsiDir {
    dir: PathBuf,
    role: EtsiRole,
    name: String,
    url: Option<String>,
}

pub(super) fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| io(format_args!("cannot write {}", path.display()), e))
}

pub(super) fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| io(format_args!("cannot read {}", path.display()), e))
}

pub(super) fn cert_of(bytes: &[u8], what: &str) -> Result<Certificate> {
    Certificate::from_coer_in(CertProfile::EtsiTs103097, bytes)
        .map_err(|e| ServerError::Config(format!("{what} is not a TS 103 097 certificate: {e}")))
}

pub(super) fn validity(now: i64) -> Result<ValidityPeriod> {
    Ok(ValidityPeriod {
        start: Time32::from_unix(now - 3600).map_err(etsi_err)?,
        duration: Duration::Years(CERT_YEARS),
    })
}

/// Software keys encrypted at rest: level 4, as the V2X CA certificates.
pub(super) fn assurance() -> Result<SubjectAssurance> {
    SubjectAssurance::from_trust_level(4).map_err(etsi_err)
}

/// Makes `dir` for `role`: refuses a directory that holds anything.
pub(super) fn create(dir: &Path, role: EtsiRole, name: &str, url: Option<&str>) -> Result<EtsiDir> {
    let busy = std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some());
    if busy {
        return Err(ServerError::Config(format!(
            "{} is not empty: an ETSI authority is made in a new directory",
            dir.display()
        )));
    }
    std::fs::create_dir_all(dir.join("keys"))
        .map_err(|e| io(format_args!("cannot create {}", dir.display()), e))?;
    let file = AuthorityFile {
        format: AUTHORITY_FORMAT.into(),
        role: role.as_str().into(),
        name: name.into(),
        url: url.map(str::to_owned),
    };
    let text = toml::to_string(&file).map_err(etsi_err)?;
    write_file(&dir.join(AUTHORITY_FILE), text.as_bytes())?;
    EtsiDir::open(dir)
}

impl EtsiDir {
    /// Opens an ETSI directory made by one of the `init` functions.
    pub fn open(dir: &Path) -> Result<Self> {
        let path = dir.join(AUTHORITY_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            io(
                format_args!("{} is not an ETSI authority directory", dir.display()),
                e,
            )
        })?;
        let file: AuthorityFile = toml::from_str(&text)
            .map_err(|e| ServerError::Config(format!("{}: {}", path.display(), e.message())))?;
        crate::v2x_role::check_format(&path, &file.format, AUTHORITY_FORMAT)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            role: EtsiRole::parse(&file.role)?,
            name: file.name,
            url: file.url,
        })
    }

    /// The authority's name (its certificate's `id`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The role this directory was made for.
    pub fn role(&self) -> EtsiRole {
        self.role
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The authority's base URL, as certified (EA, AA).
    pub fn url(&self) -> Option<&str> {
        self.url.as_deref()
    }

    /// Refuses a directory whose keystore holds a key that is not its
    /// role's (a root key in an online directory above all).
    pub fn check_own_keys_only(&self) -> Result<()> {
        let keys = self.dir.join("keys");
        for entry in std::fs::read_dir(&keys).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(stem) = name.strip_suffix(".key") else {
                continue;
            };
            if !self.role.own_keys().contains(&stem) {
                return Err(ServerError::Config(format!(
                    "{} holds the key {stem:?}, which is not the {}'s: an ETSI {} directory holds its own keys only{}",
                    keys.display(),
                    self.role.as_str(),
                    self.role.as_str(),
                    if stem == "root" {
                        " (the root key belongs offline)"
                    } else {
                        ""
                    }
                )));
            }
        }
        Ok(())
    }

    /// The directory's keystore.
    pub fn keystore(&self, passphrase: &Passphrase) -> Result<Keystore> {
        Ok(Keystore::open(&self.dir.join("keys"), passphrase)?)
    }

    /// The installed root certificate.
    pub fn root(&self) -> Result<Certificate> {
        read_cert_file(&self.dir.join(ROOT_FILE), "the root certificate")
    }

    /// The authority's own installed certificate (EA, AA).
    pub fn certificate(&self) -> Result<Certificate> {
        read_cert_file(&self.dir.join(CERT_FILE), "its certificate")
    }

    /// The installed list `file` ([`CTL_FILE`], [`CRL_FILE`]).
    pub fn list(&self, file: &str) -> Result<Vec<u8>> {
        read_file(&self.dir.join(file)).map_err(|_| {
            ServerError::Config(format!(
                "{} has no {file}: install the root's lists (trustca etsi install)",
                self.dir.display()
            ))
        })
    }

    pub(super) fn expect(&self, role: EtsiRole) -> Result<()> {
        if self.role != role {
            return Err(ServerError::Config(format!(
                "{} is an ETSI {} directory, not {}",
                self.dir.display(),
                self.role.as_str(),
                role.as_str()
            )));
        }
        Ok(())
    }
}

fn read_cert_file(path: &Path, what: &str) -> Result<Certificate> {
    let bytes = read_file(path).map_err(|_| {
        ServerError::Config(format!(
            "{} is missing: install {what} (trustca etsi install)",
            path.display()
        ))
    })?;
    cert_of(&bytes, &path.display().to_string())
}

/// `trustca etsi root init`: the root's key (encrypted under `passphrase`)
/// and self-signed certificate in the new directory `dir`.
pub fn root_init(dir: &Path, name: &str, passphrase: &Passphrase, now: i64) -> Result<Certificate> {
    let d = create(dir, EtsiRole::Root, name, None)?;
    let keys = Keystore::create(&d.dir.join("keys"), passphrase)?;
    let pkcs8 = new_signing_key(&SystemRandom::new())?;
    let key = signing_key(&pkcs8)?;
    let tbs = profile::root_ca(name, public(&key)?, validity(now)?, assurance()?);
    let root = Certificate::sign_root(tbs, &key).map_err(etsi_err)?;
    keys.store("root", &pkcs8)?;
    write_file(&d.dir.join(ROOT_FILE), root.as_coer())?;
    Ok(root)
}

/// `trustca etsi ea|aa init`: the authority's signing key and encryption
/// secret made here, and `request.toml` for the root. Returns the request's
/// path and its SHA-256 (to compare out of band).
pub fn authority_init(
    dir: &Path,
    role: EtsiRole,
    name: &str,
    url: &str,
    passphrase: &Passphrase,
) -> Result<(PathBuf, String)> {
    if !matches!(role, EtsiRole::Ea | EtsiRole::Aa) {
        return Err(ServerError::Config(
            "only an EA or an AA has a request".into(),
        ));
    }
    check_base_url(url)?;
    let d = create(dir, role, name, Some(url))?;
    let keys = Keystore::create(&d.dir.join("keys"), passphrase)?;
    let rng = SystemRandom::new();
    let pkcs8 = new_signing_key(&rng)?;
    let verification = public(&signing_key(&pkcs8)?)?;
    let (secret, encryption) = new_encryption_secret(&rng)?;
    keys.store(role.as_str(), &pkcs8)?;
    keys.store(&format!("{}-encryption", role.as_str()), &secret)?;
    let request = AuthorityRequest {
        role: role.as_str().into(),
        name: name.into(),
        url: url.trim_end_matches('/').into(),
        verification_key: hex::encode(verification.compressed()),
        encryption_key: hex::encode(encryption.compressed()),
    };
    let text = toml::to_string(&request).map_err(etsi_err)?;
    let path = d.dir.join(REQUEST_FILE);
    write_file(&path, text.as_bytes())?;
    Ok((path, crate::v2x_role::sha256_hex(text.as_bytes())))
}

/// `trustca etsi dc init`: a distribution centre's directory (no keys).
pub fn dc_init(dir: &Path, name: &str) -> Result<()> {
    create(dir, EtsiRole::Dc, name, None).map(drop)
}

/// An access point's base: `http://` or `https://`, a host, no path.
pub fn check_base_url(url: &str) -> Result<()> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    match rest.map(|r| r.trim_end_matches('/')) {
        Some(host) if !host.is_empty() && !host.contains('/') && url.len() <= 200 => Ok(()),
        _ => Err(ServerError::Config(format!(
            "{url:?} is not a base URL (http://HOST[:PORT], no path)"
        ))),
    }
}

fn key_of(hex_text: &str, what: &str) -> Result<PublicKeyP256> {
    hex::decode(hex_text)
        .ok()
        .and_then(|b| PublicKeyP256::from_sec1(&b).ok())
        .ok_or_else(|| ServerError::Config(format!("the request's {what} is not a P-256 key")))
}

/// The open root: its directory, certificate and key.
struct OpenRoot {
    dir: EtsiDir,
    cert: Certificate,
    key: ring::signature::EcdsaKeyPair,
}

fn open_root(dir: &Path, passphrase: &Passphrase) -> Result<OpenRoot> {
    let d = EtsiDir::open(dir)?;
    d.expect(EtsiRole::Root)?;
    let keys = d.keystore(passphrase)?;
    Ok(OpenRoot {
        cert: d.root()?,
        key: signing_key(&keys.load("root")?)?,
        dir: d,
    })
}

fn issued_path(root: &EtsiDir, name: &str) -> Result<PathBuf> {
    let safe = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && !name.starts_with('.');
    if !safe {
        return Err(ServerError::Config(format!(
            "{name:?} is not an authority name (letters, digits, - _ . up to 64)"
        )));
    }
    Ok(root.dir.join(ISSUED_DIR).join(format!("{name}.toml")))
}

fn issued(root: &EtsiDir) -> Result<Vec<IssuedRecord>> {
    let mut out = Vec::new();
    let dir = root.dir.join(ISSUED_DIR);
    for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "toml") {
            let text = String::from_utf8(read_file(&path)?)
                .map_err(|_| ServerError::Config(format!("{} is not UTF-8", path.display())))?;
            out.push(toml::from_str(&text).map_err(|e| {
                ServerError::Config(format!("{}: {}", path.display(), e.message()))
            })?);
        }
    }
    out.sort_by(|a: &IssuedRecord, b| a.name.cmp(&b.name));
    Ok(out)
}

fn save_issued(root: &EtsiDir, record: &IssuedRecord) -> Result<()> {
    let path = issued_path(root, &record.name)?;
    std::fs::create_dir_all(root.dir.join(ISSUED_DIR))
        .map_err(|e| io(format_args!("cannot create {}", root.dir.display()), e))?;
    write_file(&path, toml::to_string(record).map_err(etsi_err)?.as_bytes())
}

/// `trustca etsi root sign`: certifies an EA's or AA's request (the AA's
/// issuing permissions from `tickets`), registers it, returns the
/// certificate. A name is certified once.
pub fn root_sign(
    dir: &Path,
    passphrase: &Passphrase,
    request: &[u8],
    tickets: &TicketProfile,
    now: i64,
) -> Result<Certificate> {
    let root = open_root(dir, passphrase)?;
    let text = std::str::from_utf8(request)
        .map_err(|_| ServerError::Config("the request is not UTF-8 TOML".into()))?;
    let req: AuthorityRequest = toml::from_str(text)
        .map_err(|e| ServerError::Config(format!("the request: {}", e.message())))?;
    check_base_url(&req.url)?;
    let path = issued_path(&root.dir, &req.name)?;
    if path.exists() {
        return Err(ServerError::Config(format!(
            "an authority named {:?} is already certified (a name is certified once)",
            req.name
        )));
    }
    let verification = key_of(&req.verification_key, "verification_key")?;
    let encryption = key_of(&req.encryption_key, "encryption_key")?;
    let valid = validity(now)?;
    let tbs = match EtsiRole::parse(&req.role)? {
        EtsiRole::Ea => {
            profile::enrolment_authority(&req.name, verification, encryption, valid, assurance()?)
        }
        EtsiRole::Aa => profile::authorization_authority(
            &req.name,
            verification,
            encryption,
            valid,
            assurance()?,
            tickets,
        ),
        other => {
            return Err(ServerError::Config(format!(
                "the root certifies EAs and AAs, not a {}",
                other.as_str()
            )));
        }
    };
    let cert = Certificate::issue(tbs, &root.cert, &root.key).map_err(etsi_err)?;
    let record = IssuedRecord {
        role: req.role,
        name: req.name,
        url: req.url,
        certificate: hex::encode(cert.as_coer()),
        revoked: false,
    };
    save_issued(&root.dir, &record)?;
    Ok(cert)
}

/// `trustca etsi root revoke`: marks the authority `name` revoked; the
/// next CRL lists it and the next CTL leaves it out. Returns its HashedId8.
pub fn root_revoke(dir: &Path, name: &str) -> Result<[u8; 8]> {
    let root = EtsiDir::open(dir)?;
    root.expect(EtsiRole::Root)?;
    let mut record = issued(&root)?
        .into_iter()
        .find(|r| r.name == name)
        .ok_or_else(|| ServerError::Config(format!("this root certified no authority {name:?}")))?;
    let cert = record_cert(&record)?;
    record.revoked = true;
    save_issued(&root, &record)?;
    Ok(cert.hashed_id8())
}

fn record_cert(r: &IssuedRecord) -> Result<Certificate> {
    let bytes = hex::decode(&r.certificate)
        .map_err(|_| ServerError::Config(format!("issued/{}.toml: not hex", r.name)))?;
    cert_of(&bytes, &format!("issued/{}.toml", r.name))
}

/// What the root's signed list says (for the operator and the warnings).
#[derive(Debug, Clone)]
pub struct SignedList {
    /// The signed list.
    pub bytes: Vec<u8>,
    /// Its `nextUpdate`, Unix seconds.
    pub next_update: i64,
    /// The authorities it lists (CTL) or revokes (CRL), by name.
    pub names: Vec<String>,
}

/// `trustca etsi root sign-ctl`: the full CTL of every certified EA and AA
/// not revoked, with their access points, and the distribution centre at
/// `dc_url` if given; valid for `valid_secs`.
pub fn root_sign_ctl(
    dir: &Path,
    passphrase: &Passphrase,
    dc_url: Option<&str>,
    valid_secs: i64,
    now: i64,
) -> Result<SignedList> {
    let root = open_root(dir, passphrase)?;
    let mut entries = Vec::new();
    let mut names = Vec::new();
    for r in issued(&root.dir)?.into_iter().filter(|r| !r.revoked) {
        let certificate = record_cert(&r)?;
        entries.push(match r.role.as_str() {
            "ea" => CtlEntry::Ea {
                certificate,
                aa_access_point: format!("{}{VALIDATION_PATH}", r.url),
                its_access_point: Some(format!("{}{ENROLMENT_PATH}", r.url)),
            },
            _ => CtlEntry::Aa {
                certificate,
                access_point: format!("{}{AUTHORIZATION_PATH}", r.url),
            },
        });
        names.push(r.name);
    }
    if let Some(url) = dc_url {
        check_base_url(url)?;
        entries.push(CtlEntry::Dc {
            url: format!("{}/etsi/dc/", url.trim_end_matches('/')),
            roots: vec![root.cert.hashed_id8()],
        });
    }
    let next = now + valid_secs;
    // The sequence wraps (0..255): one a day is distinct for 255 days.
    let sequence = ((now / 86_400) % 256) as u8;
    let next_update = Time32::from_unix(next).map_err(etsi_err)?;
    let bytes = trust_lists::rca_ctl(&root.cert, &root.key, entries, sequence, next_update, now)
        .map_err(etsi_err)?;
    Ok(SignedList {
        bytes,
        next_update: next,
        names,
    })
}

/// `trustca etsi root sign-crl`: the CRL of every revoked EA and AA, valid
/// for `valid_secs`.
pub fn root_sign_crl(
    dir: &Path,
    passphrase: &Passphrase,
    valid_secs: i64,
    now: i64,
) -> Result<SignedList> {
    let root = open_root(dir, passphrase)?;
    let mut revoked = Vec::new();
    let mut names = Vec::new();
    for r in issued(&root.dir)?.into_iter().filter(|r| r.revoked) {
        revoked.push(record_cert(&r)?.hashed_id8());
        names.push(r.name);
    }
    let next = now + valid_secs;
    let this_update = Time32::from_unix(now).map_err(etsi_err)?;
    let next_update = Time32::from_unix(next).map_err(etsi_err)?;
    let bytes = trust_lists::crl(
        &root.cert,
        &root.key,
        revoked,
        this_update,
        next_update,
        now,
    )
    .map_err(etsi_err)?;
    Ok(SignedList {
        bytes,
        next_update: next,
        names,
    })
}

/// What `trustca etsi install` brings into a directory.
#[derive(Debug, Default)]
pub struct Install<'a> {
    /// The root certificate (the first install; later ones must match).
    pub root: Option<&'a [u8]>,
    /// The authority's own certificate (EA, AA).
    pub certificate: Option<&'a [u8]>,
    /// The root's CTL.
    pub ctl: Option<&'a [u8]>,
    /// The root's CRL.
    pub crl: Option<&'a [u8]>,
}

/// `trustca etsi install`: checks each file against the root (and the
/// certificate against the directory's own request) before writing it.
pub fn install(dir: &Path, files: &Install<'_>) -> Result<Vec<&'static str>> {
    let d = EtsiDir::open(dir)?;
    if matches!(d.role, EtsiRole::Root | EtsiRole::Tlm) {
        return Err(ServerError::Config(format!(
            "the {}'s directory installs nothing: it makes its certificate and lists",
            d.role.as_str()
        )));
    }
    let root = match files.root {
        Some(bytes) => {
            let root = cert_of(bytes, "--root")?;
            root.verify_signed_by(None)
                .map_err(|e| ServerError::Config(format!("--root is not self-signed: {e}")))?;
            if let Ok(held) = d.root()
                && held.as_coer() != root.as_coer()
            {
                return Err(ServerError::Config(format!(
                    "{} already trusts another root",
                    dir.display()
                )));
            }
            root
        }
        None => d.root()?,
    };
    let mut done = Vec::new();
    let mut writes: Vec<(&str, &[u8])> = Vec::new();
    if let Some(bytes) = files.root {
        writes.push((ROOT_FILE, bytes));
    }
    if let Some(bytes) = files.certificate {
        check_own_certificate(&d, bytes, &root)?;
        writes.push((CERT_FILE, bytes));
    }
    if let Some(bytes) = files.ctl {
        trust_lists::read_rca_ctl(bytes, &root)
            .map_err(|e| ServerError::Config(format!("--ctl: {e}")))?;
        writes.push((CTL_FILE, bytes));
    }
    if let Some(bytes) = files.crl {
        trust_lists::read_crl(bytes, &root)
            .map_err(|e| ServerError::Config(format!("--crl: {e}")))?;
        writes.push((CRL_FILE, bytes));
    }
    // Every file is checked before the first is written.
    for (name, bytes) in writes {
        write_file(&d.dir.join(name), bytes)?;
        done.push(name);
    }
    Ok(done)
}

/// The certificate must be the root's and carry this directory's keys.
fn check_own_certificate(d: &EtsiDir, bytes: &[u8], root: &Certificate) -> Result<()> {
    if !matches!(d.role, EtsiRole::Ea | EtsiRole::Aa) {
        return Err(ServerError::Config(format!(
            "an ETSI {} has no certificate of its own",
            d.role.as_str()
        )));
    }
    let cert = cert_of(bytes, "--cert")?;
    cert.verify_signed_by(Some(root))
        .map_err(|e| ServerError::Config(format!("--cert is not issued by the root: {e}")))?;
    let text = String::from_utf8(read_file(&d.dir.join(REQUEST_FILE))?)
        .map_err(|_| ServerError::Config("request.toml is not UTF-8".into()))?;
    let req: AuthorityRequest = toml::from_str(&text)
        .map_err(|e| ServerError::Config(format!("request.toml: {}", e.message())))?;
    let tbs = cert.tbs();
    let ours = hex::encode(tbs.verification_key.compressed()) == req.verification_key
        && tbs.encryption_key.map(|k| hex::encode(k.compressed())) == Some(req.encryption_key);
    if !ours {
        return Err(ServerError::Config(format!(
            "--cert certifies other keys than {}'s",
            d.dir.display()
        )));
    }
    Ok(())
}

/// Where the distribution centre serves `root`'s lists under `base`.
pub fn list_urls(base: &str, root: &Certificate) -> (String, String) {
    let id = hex::encode(root.hashed_id8());
    let base = base.trim_end_matches('/');
    (
        format!("{base}{CTL_PREFIX}{id}"),
        format!("{base}{CRL_PREFIX}{id}"),
    )
}

#[cfg(test)]
#[path = "ceremony_tests.rs"]
mod tests;
