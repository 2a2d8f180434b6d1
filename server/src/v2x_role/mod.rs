//! One separated V2X authority's own directory, made on its own machine by
//! `trustca init --role R`: its keys, created here under its own
//! passphrase and never copied; the public material of its peers; its TLS
//! credential, which the CA issues from a CSR; its own store.
//!
//! ```text
//! role.toml            which role, and the authority's name
//! keys/                keystore: authority (P-256: link and storage keys),
//!                      tls; the pseudonym CA's aa (tickets) and crl; the
//!                      registration authority's scms-signing and
//!                      scms-encryption (its IEEE 1609.2 certificate's keys)
//! request.toml         what the CA certifies (`trustca v2x certify`)
//! tls/chain.pem        own TLS chain (leaf, sector sub-CA), imported
//! trust/root.pem       the trustca root; trust/issuers.pem the sub-CAs
//! trust/v2x-root.oer   the IEEE 1609.2 root
//! trust/aa.oer         the authorization authority's certificate (the
//!                      pseudonym CA's own; the RA's copy of the PCA's)
//! trust/ra.oer         the RA's own IEEE 1609.2 certificate; trust/ea.oer
//!                      the enrolment CA's (to verify enrolment certificates)
//! peers/<role>.toml    public bundles of the peers this role talks to
//! policies/ store/ crl/
//! ```
//!
//! A `--role` process opens nothing else: [`RoleDir::check_own_secrets_only`]
//! refuses a directory that holds any private key but its own, and nothing
//! here creates or rewrites another role's files.

mod exchange;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use trustca_datadir::DataDir;

use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use serde::{Deserialize, Serialize};
use trustca_ca::{CaKey, Keystore, Passphrase};
use trustca_pseudonym::{P256PrivateKey, P256PublicKey};

use crate::error::{Result, ServerError, io};
use crate::v2x::V2xRole;

pub use exchange::{
    AuthorityCredential, AuthorityRequest, Imported, PeerBundle, certify, export, import,
};

/// `role.toml`'s format marker.
const ROLE_FORMAT: &str = "trustca-v2x-role-1";
/// Keystore entry of the authority's P-256 key (link keys, storage keys).
const AUTHORITY_KEY: &str = "authority";
/// Keystore entry of the TLS key.
const TLS_KEY: &str = "tls";
/// Keystore entry of the pseudonym CA's ticket-signing (AA) key.
const AA_KEY: &str = "aa";
/// Keystore entry of the pseudonym CA's linkage-CRL signing key.
const CRL_KEY: &str = "crl";
/// Files read and scanned for PEM private keys are at most this long.
const MAX_SCANNED_FILE: u64 = 1 << 20;

/// `role.toml`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RoleFile {
    format: String,
    role: String,
    name: String,
}

/// A separated authority's directory.
#[derive(Debug, Clone)]
pub struct RoleDir {
    dir: PathBuf,
    role: V2xRole,
    name: String,
}

/// What [`init_role`] made.
#[derive(Debug, Clone)]
pub struct RoleInit {
    /// The request file to hand to the CA.
    pub request: PathBuf,
    /// SHA-256 of the request file, hex, to compare out of band.
    pub fingerprint: String,
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| io(format_args!("cannot create {}", parent.display()), e))?;
    }
    std::fs::write(path, bytes).map_err(|e| io(format_args!("cannot write {}", path.display()), e))
}

fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| io(format_args!("cannot read {}", path.display()), e))
}

/// Refuses a directory file whose format marker is not `expected`.
pub(crate) fn check_format(path: &Path, found: &str, expected: &str) -> Result<()> {
    if found != expected {
        return Err(ServerError::Config(format!(
            "{}: unknown format {found:?}",
            path.display()
        )));
    }
    Ok(())
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, bytes))
}

/// The keystore entries each role has.
fn own_keys(role: V2xRole) -> &'static [&'static str] {
    match role {
        V2xRole::PseudonymCa => &[AUTHORITY_KEY, TLS_KEY, AA_KEY, CRL_KEY],
        V2xRole::Registration => &[
            AUTHORITY_KEY,
            TLS_KEY,
            crate::v2x::ee_http::RA_SIGNING_KEY,
            crate::v2x::ee_http::RA_ENCRYPTION_KEY,
        ],
        _ => &[AUTHORITY_KEY, TLS_KEY],
    }
}

/// Makes a new authority directory: keys generated here under
/// `passphrase`, the policies, and `request.toml` for the CA. Refuses a
/// directory that already holds an authority or a CA.
pub fn init_role(
    dir: &Path,
    role: V2xRole,
    name: &str,
    server_names: &[String],
    policies: Option<&Path>,
    passphrase: &Passphrase,
) -> Result<RoleInit> {
    if dir.join("role.toml").exists()
        || DataDir::new(dir).ca().exists()
        || dir.join("keys").exists()
    {
        return Err(ServerError::Config(format!(
            "{} already holds an authority or a CA: `init --role` makes a new directory",
            dir.display()
        )));
    }
    // Checked before anything is written, so a refused init leaves nothing.
    if server_names.is_empty() {
        return Err(ServerError::Config(
            "an authority needs --server-name: the DNS name or IP address its clients reach it at"
                .into(),
        ));
    }
    let (files, _) = crate::policies::resolve(policies, None)?;
    let keys_dir = dir.join("keys");
    std::fs::create_dir_all(&keys_dir)
        .map_err(|e| io(format_args!("cannot create {}", keys_dir.display()), e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&keys_dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| io(format_args!("cannot restrict {}", keys_dir.display()), e))?;
    }
    crate::policies::install(dir, &files)?;
    let keystore = Keystore::create(&keys_dir, passphrase)?;
    let authority = P256PrivateKey::generate().map_err(|e| ServerError::Config(e.to_string()))?;
    keystore.store(AUTHORITY_KEY, &authority.to_pkcs8_der())?;
    let tls = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .map_err(|e| ServerError::Tls(e.to_string()))?;
    keystore.store(TLS_KEY, tls.serialized_der())?;
    // The pseudonym CA's ticket and CRL signing keys, certified by the V2X
    // root from the request.
    let ra_keys = if role == V2xRole::Registration {
        let (signing, encryption) = crate::v2x::ee_http::ra_keys(&keystore)?;
        Some((signing, signing_key(&encryption.to_pkcs8_der())?))
    } else {
        None
    };
    let signing = if role == V2xRole::PseudonymCa {
        let mut made = Vec::new();
        for entry in [AA_KEY, CRL_KEY] {
            let pkcs8 = EcdsaKeyPair::generate_pkcs8(
                &ECDSA_P256_SHA256_FIXED_SIGNING,
                &SystemRandom::new(),
            )
            .map_err(|_| ServerError::Config(format!("cannot generate the {entry} key")))?;
            keystore.store(entry, pkcs8.as_ref())?;
            made.push(signing_key(pkcs8.as_ref())?);
        }
        let crl = made.pop();
        made.pop().zip(crl)
    } else {
        None
    };
    let request = AuthorityRequest::new(
        role,
        name,
        server_names,
        &tls,
        signing.as_ref().or(ra_keys.as_ref()),
    )?;
    let text = request.to_toml()?;
    let request_path = dir.join("request.toml");
    write_file(&request_path, text.as_bytes())?;
    let role_file = RoleFile {
        format: ROLE_FORMAT.into(),
        role: role.as_str().into(),
        name: name.into(),
    };
    let role_text = toml::to_string(&role_file).map_err(|e| ServerError::Config(e.to_string()))?;
    write_file(&dir.join("role.toml"), role_text.as_bytes())?;
    Ok(RoleInit {
        fingerprint: sha256_hex(text.as_bytes()),
        request: request_path,
    })
}

fn signing_key(pkcs8: &[u8]) -> Result<EcdsaKeyPair> {
    EcdsaKeyPair::from_pkcs8(
        &ECDSA_P256_SHA256_FIXED_SIGNING,
        pkcs8,
        &SystemRandom::new(),
    )
    .map_err(|_| ServerError::Config("the AA key in the keystore is not a P-256 key".into()))
}

/// The secrets of one authority, opened from its keystore.
pub(crate) struct RoleSecrets {
    pub authority: P256PrivateKey,
    pub tls: Arc<CaKey>,
    /// The pseudonym CA's ticket-signing key.
    pub aa: Option<Arc<EcdsaKeyPair>>,
    /// The pseudonym CA's linkage-CRL signing key.
    pub crl: Option<Arc<EcdsaKeyPair>>,
    /// The registration authority's IEEE 1609.2 signing and encryption
    /// keys.
    pub ra: Option<(Arc<EcdsaKeyPair>, P256PrivateKey)>,
}

impl std::fmt::Debug for RoleSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RoleSecrets(<keys>)")
    }
}

impl RoleDir {
    /// Opens `dir` as the directory of `expected` (when given): it must
    /// have been made by `init --role`.
    pub fn open(dir: &Path, expected: Option<V2xRole>) -> Result<Self> {
        let path = dir.join("role.toml");
        if !path.exists() {
            let hint = if DataDir::new(dir).ca().exists() {
                " (it is a CA's data directory, which holds CA keys)"
            } else {
                ""
            };
            return Err(ServerError::Config(format!(
                "{} is not a V2X authority's directory{hint}: make one with `trustca init --role ROLE --data DIR` on the authority's own machine",
                dir.display()
            )));
        }
        let text = String::from_utf8(read_file(&path)?)
            .map_err(|_| ServerError::Config(format!("{} is not UTF-8", path.display())))?;
        let file: RoleFile = toml::from_str(&text)
            .map_err(|e| ServerError::Config(format!("{}: {}", path.display(), e.message())))?;
        check_format(&path, &file.format, ROLE_FORMAT)?;
        let role = V2xRole::parse(&file.role)?;
        if let Some(expected) = expected
            && expected != role
        {
            return Err(ServerError::Config(format!(
                "{} is the directory of the {}, not of the {}",
                dir.display(),
                role.as_str(),
                expected.as_str()
            )));
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            role,
            name: file.name,
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Its role.
    pub fn role(&self) -> V2xRole {
        self.role
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn keys_dir(&self) -> PathBuf {
        self.dir.join("keys")
    }

    pub(crate) fn tls_chain(&self) -> PathBuf {
        self.dir.join("tls").join("chain.pem")
    }

    pub(crate) fn trust(&self, file: &str) -> PathBuf {
        self.dir.join("trust").join(file)
    }

    pub(crate) fn peer(&self, role: V2xRole) -> PathBuf {
        self.dir
            .join("peers")
            .join(format!("{}.toml", role.as_str()))
    }

    /// The authority's own store.
    pub fn store_dir(&self) -> PathBuf {
        self.dir.join("store")
    }

    /// Refuses a directory holding any private key that is not this
    /// authority's own: another keystore, a CA directory, a `.key` file or
    /// a PEM private key anywhere but `keys/`, or an unexpected entry in
    /// its own keystore. The error names the file.
    pub fn check_own_secrets_only(&self) -> Result<()> {
        let foreign = |path: &Path, what: &str| {
            ServerError::Config(format!(
                "refusing to start the {}: {} holds {what}; an authority's directory holds only its own keys (made by `init --role`)",
                self.role.as_str(),
                path.display()
            ))
        };
        if DataDir::new(&self.dir).ca().exists() {
            return Err(foreign(&DataDir::new(&self.dir).ca(), "a CA directory"));
        }
        let keys_dir = self.keys_dir();
        let mut stack = vec![self.dir.clone()];
        while let Some(dir) = stack.pop() {
            let entries = std::fs::read_dir(&dir)
                .map_err(|e| io(format_args!("cannot read {}", dir.display()), e))?;
            for entry in entries.flatten() {
                let path = entry.path();
                let Ok(meta) = entry.metadata() else { continue };
                if meta.is_dir() {
                    stack.push(path);
                    continue;
                }
                // The store holds sealed records only and sled's files are
                // large: names are checked there, contents are not scanned.
                let in_store = path.starts_with(self.store_dir());
                let in_own = path.parent() == Some(keys_dir.as_path());
                let file_name = entry.file_name().to_string_lossy().into_owned();
                if in_own {
                    let stem = file_name.strip_suffix(".key");
                    match stem {
                        Some(s) if own_keys(self.role).contains(&s) => {}
                        None if file_name == "keystore.toml" => {}
                        _ => return Err(foreign(&path, "a key that is not this authority's")),
                    }
                    continue;
                }
                if file_name == "keystore.toml" {
                    return Err(foreign(&path, "another keystore"));
                }
                if file_name.ends_with(".key") {
                    return Err(foreign(&path, "a private key file"));
                }
                if !in_store
                    && meta.len() <= MAX_SCANNED_FILE
                    && let Ok(bytes) = std::fs::read(&path)
                    && bytes.windows(11).any(|w| w == b"PRIVATE KEY")
                {
                    return Err(foreign(&path, "a PEM private key"));
                }
            }
        }
        Ok(())
    }

    /// Opens this authority's keys with its passphrase.
    pub(crate) fn secrets(&self, passphrase: &Passphrase) -> Result<RoleSecrets> {
        let keystore = Keystore::open(&self.keys_dir(), passphrase)?;
        let authority = P256PrivateKey::from_pkcs8_der(&keystore.load(AUTHORITY_KEY)?)
            .map_err(|e| ServerError::Config(format!("the authority key: {e}")))?;
        let tls_der = keystore.load(TLS_KEY)?;
        let tls = rcgen::KeyPair::try_from(tls_der.as_slice())
            .map(|k| Arc::new(CaKey::File(k)))
            .map_err(|e| ServerError::Tls(format!("the TLS key: {e}")))?;
        let signing = |entry: &str| -> Result<Option<Arc<EcdsaKeyPair>>> {
            if self.role == V2xRole::PseudonymCa {
                Ok(Some(Arc::new(signing_key(&keystore.load(entry)?)?)))
            } else {
                Ok(None)
            }
        };
        let ra = if self.role == V2xRole::Registration {
            let (signing, encryption) = crate::v2x::ee_http::ra_keys(&keystore)?;
            Some((Arc::new(signing), encryption))
        } else {
            None
        };
        Ok(RoleSecrets {
            authority,
            tls,
            aa: signing(AA_KEY)?,
            crl: signing(CRL_KEY)?,
            ra,
        })
    }

    /// The public key of a peer, from its imported bundle.
    pub(crate) fn peer_bundle(&self, role: V2xRole) -> Result<PeerBundle> {
        let path = self.peer(role);
        if !path.exists() {
            return Err(ServerError::Config(format!(
                "{} has no public bundle of the {}: on its machine run `trustca v2x export`, then here `trustca v2x import --data {} FILE`",
                self.dir.display(),
                role.as_str(),
                self.dir.display()
            )));
        }
        PeerBundle::from_toml(&String::from_utf8_lossy(&read_file(&path)?))
    }

    /// A peer's authority key.
    pub(crate) fn peer_key(&self, role: V2xRole) -> Result<P256PublicKey> {
        self.peer_bundle(role)?.authority_key()
    }

    /// A file the credential import wrote; a clear error when missing.
    pub(crate) fn imported(&self, path: &Path) -> Result<Vec<u8>> {
        if !path.exists() {
            return Err(ServerError::Config(format!(
                "{} is missing: have the CA certify {} (`trustca v2x certify`) and import its answer with `trustca v2x import --data {} FILE`",
                path.display(),
                self.dir.join("request.toml").display(),
                self.dir.display()
            )));
        }
        read_file(path)
    }
}

/// Sets up all four authorities under `base/<role>/` on this one machine,
/// exactly as operators do on four (`init --role`, `v2x certify` at the CA
/// in `ca_data`, `v2x import` of the answer, `v2x export`, `v2x import` of
/// the peers' bundles), each under `passphrase(role)`. For trying the
/// separated deployment, for tests and for benchmarks: on one machine the
/// separation is only as good as the file permissions between the roles.
pub fn provision_on_one_machine(
    ca_data: &Path,
    ca_passphrase: &Passphrase,
    base: &Path,
    passphrase: &dyn Fn(V2xRole) -> Passphrase,
    server_names: &[String],
) -> Result<Vec<RoleDir>> {
    let mut dirs = Vec::new();
    for role in V2xRole::ALL {
        let path = base.join(role.as_str());
        let made = init_role(
            &path,
            role,
            &format!("{}-1", role.as_str()),
            server_names,
            None,
            &passphrase(role),
        )?;
        let request = String::from_utf8(read_file(&made.request)?)
            .map_err(|_| ServerError::Config("request.toml is not UTF-8".into()))?;
        let answer = certify(
            ca_data,
            ca_passphrase,
            &crate::pkcs11::Pkcs11Options::default(),
            &request,
        )?;
        let dir = RoleDir::open(&path, Some(role))?;
        import(&dir, &passphrase(role), &answer.to_toml()?)?;
        dirs.push(dir);
    }
    let bundles = dirs
        .iter()
        .map(|d| Ok((d.role(), export(d, &passphrase(d.role()))?.to_toml()?)))
        .collect::<Result<Vec<_>>>()?;
    for dir in &dirs {
        for (role, text) in &bundles {
            if exchange::peers_of(dir.role()).contains(role) {
                import(dir, &passphrase(dir.role()), text)?;
            }
        }
    }
    Ok(dirs)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn pass() -> Passphrase {
        Passphrase::new(b"role passphrase".to_vec()).unwrap()
    }

    #[test]
    fn a_fresh_role_directory_holds_only_its_own_keys() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("la1");
        init_role(
            &dir,
            V2xRole::Linkage1,
            "la-1",
            &["la1.example".into()],
            None,
            &pass(),
        )
        .unwrap();
        let role = RoleDir::open(&dir, Some(V2xRole::Linkage1)).unwrap();
        role.check_own_secrets_only().unwrap();
        assert!(RoleDir::open(&dir, Some(V2xRole::PseudonymCa)).is_err());
        // A second init refuses.
        assert!(
            init_role(
                &dir,
                V2xRole::Linkage1,
                "la-1",
                &["x".into()],
                None,
                &pass()
            )
            .is_err()
        );
        // The PCA's key copied in: refused, naming the file.
        std::fs::write(dir.join("keys").join("aa.key"), b"x").unwrap();
        let e = role.check_own_secrets_only().unwrap_err().to_string();
        assert!(e.contains("aa.key"), "{e}");
        std::fs::remove_file(dir.join("keys").join("aa.key")).unwrap();
        // Another keystore anywhere.
        std::fs::create_dir_all(dir.join("copy/v2x/linkage-2/keys")).unwrap();
        std::fs::write(dir.join("copy/v2x/linkage-2/keys/keystore.toml"), b"").unwrap();
        assert!(role.check_own_secrets_only().is_err());
        std::fs::remove_dir_all(dir.join("copy")).unwrap();
        // A PEM private key under another name.
        std::fs::write(dir.join("notes.txt"), b"-----BEGIN PRIVATE KEY-----").unwrap();
        assert!(role.check_own_secrets_only().is_err());
        std::fs::remove_file(dir.join("notes.txt")).unwrap();
        // A key file hidden in the store's directory.
        std::fs::create_dir_all(dir.join("store")).unwrap();
        std::fs::write(dir.join("store").join("la2.key"), b"x").unwrap();
        assert!(role.check_own_secrets_only().is_err());
        std::fs::remove_file(dir.join("store").join("la2.key")).unwrap();
        role.check_own_secrets_only().unwrap();
        // A CA directory.
        std::fs::create_dir_all(dir.join("ca")).unwrap();
        assert!(role.check_own_secrets_only().is_err());
    }

    #[test]
    fn a_refused_init_writes_nothing() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("ra");
        let e = init_role(&dir, V2xRole::Registration, "ra-1", &[], None, &pass()).unwrap_err();
        assert!(e.to_string().contains("--server-name"), "{e}");
        assert!(!dir.exists());
    }

    #[test]
    fn secrets_open_with_the_role_passphrase_only() {
        let d = tempfile::tempdir().unwrap();
        init_role(
            d.path(),
            V2xRole::PseudonymCa,
            "pca-1",
            &["127.0.0.1".into()],
            None,
            &pass(),
        )
        .unwrap();
        let role = RoleDir::open(d.path(), None).unwrap();
        assert_eq!(role.role(), V2xRole::PseudonymCa);
        let s = role.secrets(&pass()).unwrap();
        assert!(s.aa.is_some());
        let wrong = Passphrase::new(b"another passphrase".to_vec()).unwrap();
        assert!(role.secrets(&wrong).is_err());
    }
}
