//! `trustca serve --etsi-listen --etsi-demo-root-online`: the EU C-ITS
//! authorities of one CA directory (`docs/v2x-etsi.md`). An ETSI root, an
//! enrolment authority, an authorization authority and a distribution
//! centre in the serving process, on one plain-HTTP listener. The root key
//! is online, so this runs only when asked for by name (a try-out);
//! without the flag `--etsi-listen` is refused ([`root_online_refused`]) and
//! a deployment runs the ceremony's separated authorities
//! (`super::roles`).
//!
//! Their keys are made where they are used, at the first start with the
//! listener: `DATA/etsi/keys/` is a keystore encrypted under the CA
//! passphrase (like `DATA/ca/` and `DATA/v2x/<role>/keys`), holding the
//! root's, EA's and AA's signing keys and the EA's and AA's encryption
//! secrets; `DATA/etsi/{root,ea,aa}.oer` are their TS 103 097 certificates
//! (a root of its own: the V2X root is an SCMS root, without the
//! permissions to sign CTLs and CRLs that `trustca_etsi::profile` gives).
//! The set is made in a scratch directory and renamed into place, so a
//! failed first start leaves no half-made authorities.
//!
//! The ticket profile is `v2x-tickets-etsi.toml` of the server's policies
//! (the `--policies` directory or `DATA/policies`), else the shipped one;
//! it must say `profile = "etsi-ts-103-097"`, and it follows policy
//! reloads like the SCMS authorities' `v2x-tickets.toml`
//! (`crate::ticket_files`), so both models can run from one CA.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration as StdDuration;
use trustca_datadir::CaFiles;
use trustca_datadir::DataDir;

use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use tokio_util::sync::CancellationToken;
use trustca_ca::{Keystore, Passphrase};
use trustca_etsi::aa::{AuthorizationAuthority, KnownEa};
use trustca_etsi::ea::EnrolmentAuthority;
use trustca_etsi::{profile, trust_lists};
use trustca_scms::TicketProfile;
use trustca_store::Storage;
use trustca_v2x::trust_lists::CtlEntry;
use trustca_v2x::{
    CertProfile, Certificate, Duration, PublicKeyP256, SubjectAssurance, Time32, ValidityPeriod,
    encryption_public_key,
};

use super::http::{
    AUTHORIZATION_PATH, ENROLMENT_PATH, EtsiHttp, HttpEaLink, PublishedLists, VALIDATION_PATH,
};
use super::{StoreCredentials, StoreStations};
use crate::error::{Result, ServerError, io};
use crate::loaded_policies::Policies;
use crate::ticket_files::ETSI_TICKETS;

/// The authorities' directory under the CA's data directory.
pub const ETSI_DIR: &str = trustca_datadir::ETSI;
/// The ticket profile file of the ETSI authorities.
pub const TICKETS_FILE: &str = ETSI_TICKETS.name;
/// How long a signed CTL or CRL is valid (its `nextUpdate`).
const LIST_VALIDITY: i64 = 7 * 86_400;
/// How often the lists are signed again: well before `nextUpdate`.
const LIST_REISSUE: StdDuration = StdDuration::from_secs(86_400);
/// The authorities' certificates: three years from their first start.
const CERT_YEARS: u16 = 3;

/// The authorities' keys and certificates from `DATA/etsi/`.
struct Authorities {
    root: Certificate,
    root_key: Arc<EcdsaKeyPair>,
    ea: Certificate,
    ea_key: Arc<EcdsaKeyPair>,
    ea_secret: [u8; 32],
    aa: Certificate,
    aa_key: Arc<EcdsaKeyPair>,
    aa_secret: [u8; 32],
}

pub(super) fn etsi_err(e: impl std::fmt::Display) -> ServerError {
    ServerError::Config(format!("ETSI authorities: {e}"))
}

/// The ETSI ticket profile in the policy directory `policies`, else in
/// `DIR/policies`, else the shipped one: what an authority without the
/// CA's policies (a separated AA, the ceremony) issues by.
pub fn ticket_profile(policies: Option<&Path>, dir: &Path) -> Result<TicketProfile> {
    let folder = policies.map_or_else(|| DataDir::new(dir).policies(), Path::to_path_buf);
    let path = folder.join(TICKETS_FILE);
    if !path.exists() {
        return ETSI_TICKETS.shipped();
    }
    let text = std::fs::read_to_string(&path)
        .map_err(|e| io(format_args!("cannot read {}", path.display()), e))?;
    ETSI_TICKETS.parse(&text, &path.display().to_string())
}

pub(super) fn new_signing_key(rng: &SystemRandom) -> Result<Vec<u8>> {
    EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, rng)
        .map(|k| k.as_ref().to_vec())
        .map_err(|_| etsi_err("cannot make a P-256 key"))
}

pub(super) fn new_encryption_secret(rng: &SystemRandom) -> Result<([u8; 32], PublicKeyP256)> {
    // A random 32 octets is a valid scalar except with negligible chance.
    for _ in 0..16 {
        let mut secret = [0u8; 32];
        rng.fill(&mut secret)
            .map_err(|_| etsi_err("no randomness"))?;
        if let Ok(public) = encryption_public_key(&secret) {
            return Ok((secret, public));
        }
    }
    Err(etsi_err("cannot make an encryption key"))
}

pub(super) fn signing_key(pkcs8: &[u8]) -> Result<EcdsaKeyPair> {
    EcdsaKeyPair::from_pkcs8(
        &ECDSA_P256_SHA256_FIXED_SIGNING,
        pkcs8,
        &SystemRandom::new(),
    )
    .map_err(|_| etsi_err("a stored signing key is not a P-256 PKCS#8 key"))
}

pub(super) fn public(key: &EcdsaKeyPair) -> Result<PublicKeyP256> {
    PublicKeyP256::from_sec1(key.public_key().as_ref()).map_err(etsi_err)
}

/// Makes the keys and certificates in `dir` (a fresh directory).
fn create(dir: &Path, passphrase: &Passphrase, tickets: &TicketProfile, now: i64) -> Result<()> {
    let rng = SystemRandom::new();
    let key_dir = dir.join("keys");
    std::fs::create_dir_all(&key_dir)
        .map_err(|e| io(format_args!("cannot create {}", key_dir.display()), e))?;
    let keys = Keystore::create(&key_dir, passphrase)?;
    let validity = ValidityPeriod {
        start: Time32::from_unix(now - 3600).map_err(etsi_err)?,
        duration: Duration::Years(CERT_YEARS),
    };
    // Software keys encrypted at rest: level 4, as the V2X CA certificates.
    let assurance = SubjectAssurance::from_trust_level(4).map_err(etsi_err)?;
    let root_pkcs8 = new_signing_key(&rng)?;
    let root_key = signing_key(&root_pkcs8)?;
    let root = profile::root_ca("trustca-etsi-root", public(&root_key)?, validity, assurance);
    let root = Certificate::sign_root(root, &root_key).map_err(etsi_err)?;
    keys.store("root", &root_pkcs8)?;
    let mut issued = Vec::new();
    for name in ["ea", "aa"] {
        let pkcs8 = new_signing_key(&rng)?;
        let key = public(&signing_key(&pkcs8)?)?;
        let (secret, encryption) = new_encryption_secret(&rng)?;
        let subject = format!("trustca-etsi-{name}");
        let tbs = if name == "ea" {
            profile::enrolment_authority(&subject, key, encryption, validity, assurance)
        } else {
            profile::authorization_authority(
                &subject, key, encryption, validity, assurance, tickets,
            )
        };
        let cert = Certificate::issue(tbs, &root, &root_key).map_err(etsi_err)?;
        keys.store(name, &pkcs8)?;
        keys.store(&format!("{name}-encryption"), &secret)?;
        issued.push((name, cert));
    }
    issued.push(("root", root));
    for (name, cert) in issued {
        let path = dir.oer(name);
        std::fs::write(&path, cert.as_coer())
            .map_err(|e| io(format_args!("cannot write {}", path.display()), e))?;
    }
    Ok(())
}

pub(super) fn read_cert(dir: &Path, name: &str) -> Result<Certificate> {
    let path = dir.oer(name);
    let bytes =
        std::fs::read(&path).map_err(|e| io(format_args!("cannot read {}", path.display()), e))?;
    Certificate::from_coer_in(CertProfile::EtsiTs103097, &bytes)
        .map_err(|e| etsi_err(format!("{}: {e}", path.display())))
}

pub(super) fn secret(keys: &Keystore, name: &str) -> Result<[u8; 32]> {
    keys.load(name)?
        .as_slice()
        .try_into()
        .map_err(|_| etsi_err(format!("{name} is not a 32-octet secret")))
}

/// Opens `DATA/etsi/`, making it at the first start.
fn open_or_create(
    data: &Path,
    passphrase: &Passphrase,
    tickets: &TicketProfile,
    now: i64,
) -> Result<Authorities> {
    let dir = DataDir::new(data).etsi();
    if !dir.exists() {
        let scratch: PathBuf = data.join(format!(".{ETSI_DIR}.new-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&scratch);
        std::fs::create_dir_all(&scratch)
            .map_err(|e| io(format_args!("cannot create {}", scratch.display()), e))?;
        if let Err(e) = create(&scratch, passphrase, tickets, now) {
            let _ = std::fs::remove_dir_all(&scratch);
            return Err(e);
        }
        std::fs::rename(&scratch, &dir)
            .map_err(|e| io(format_args!("cannot create {}", dir.display()), e))?;
        tracing::info!(dir = %dir.display(), "created the ETSI root, EA and AA keys and certificates");
        warn_if_root_key_online(data);
    }
    let keys = Keystore::open(&dir.join("keys"), passphrase)?;
    Ok(Authorities {
        root: read_cert(&dir, "root")?,
        root_key: Arc::new(signing_key(&keys.load("root")?)?),
        ea: read_cert(&dir, "ea")?,
        ea_key: Arc::new(signing_key(&keys.load("ea")?)?),
        ea_secret: secret(&keys, "ea-encryption")?,
        aa: read_cert(&dir, "aa")?,
        aa_key: Arc::new(signing_key(&keys.load("aa")?)?),
        aa_secret: secret(&keys, "aa-encryption")?,
    })
}

/// The root's CTL (its EA and AA with their URLs under `base`) and an
/// empty CRL, valid for [`LIST_VALIDITY`] from `now`.
fn sign_lists(
    root: &Certificate,
    root_key: &EcdsaKeyPair,
    entries: Vec<CtlEntry>,
    now: i64,
) -> Result<PublishedLists> {
    let next = Time32::from_unix(now + LIST_VALIDITY).map_err(etsi_err)?;
    let this = Time32::from_unix(now).map_err(etsi_err)?;
    // The sequence number wraps by the standard's definition (0..255).
    let sequence = ((now / LIST_REISSUE.as_secs() as i64) % 256) as u8;
    let ctl = trust_lists::rca_ctl(root, root_key, entries, sequence, next, now);
    let crl = trust_lists::crl(root, root_key, Vec::new(), this, next, now);
    Ok(PublishedLists {
        root: hex::encode(root.hashed_id8()),
        ctl: ctl.map_err(etsi_err)?.into(),
        crl: crl.map_err(etsi_err)?.into(),
    })
}

/// Where the all-in-one authorities find their files and name their URLs.
#[derive(Debug, Clone, Copy)]
pub struct AllInOne<'a> {
    /// The CA's data directory (`DATA/etsi` holds the authorities).
    pub data: &'a Path,
    /// The server's policies (`v2x-tickets-etsi.toml` among them).
    pub policies: &'a Policies,
    /// The CA passphrase (the keystore's).
    pub passphrase: &'a Passphrase,
    /// The base URL the CTL names (`--etsi-public-url`); `None`: the
    /// listen address.
    pub public_url: Option<&'a str>,
}

/// Why `--etsi-listen` alone does not start: the all-in-one authorities
/// keep the ETSI root key online, which only a try-out may do.
pub fn root_online_refused() -> ServerError {
    ServerError::Config(
        "--etsi-listen without --etsi-role keeps the ETSI root key online (it signs every EA, AA, CTL and CRL): run the key ceremony (trustca etsi root init on an offline machine, etsi ea|aa|dc init, etsi root sign, etsi install) and serve --etsi-role ea --etsi-dir DIR, or add --etsi-demo-root-online for a try-out".into(),
    )
}

/// One warning at start when an ETSI root key is in this (online) data
/// directory: `DATA/etsi/keys/root.key` (the all-in-one mode), or a root
/// directory made by `trustca etsi root init` inside DATA.
pub fn warn_if_root_key_online(data: &Path) {
    let held = [DataDir::new(data).etsi(), data.to_path_buf()]
        .into_iter()
        .find(|d| d.join("keys").join("root.key").exists() && d.join("root.oer").exists());
    if let Some(dir) = held {
        tracing::warn!(dir = %dir.display(), "the ETSI root key is in this online directory: it signs every EA, AA, CTL and CRL; keep it offline (trustca etsi root init on an offline machine, serve --etsi-role ea|aa|dc)");
    }
}

/// The EA, AA and distribution centre of `DATA/etsi/` for the listener
/// bound at `bound`: the CTL names `public_url`, else `http://<bound>`
/// (an unspecified address becomes 127.0.0.1 for the AA's own call to its
/// EA). The lists are signed again every [`LIST_REISSUE`] until `stop`.
pub fn service(
    at: AllInOne<'_>,
    storage: Arc<dyn Storage>,
    bound: SocketAddr,
    stop: CancellationToken,
) -> Result<Arc<EtsiHttp>> {
    let tickets = ETSI_TICKETS.of(&at.policies.current().files)?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let a = open_or_create(at.data, at.passphrase, &tickets, now)?;
    let mut local = bound;
    if local.ip().is_unspecified() {
        local.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let base = match at.public_url {
        Some(url) => {
            super::ceremony::check_base_url(url)?;
            url.trim_end_matches('/').to_owned()
        }
        None => format!("http://{bound}"),
    };
    let entries = vec![
        CtlEntry::Ea {
            certificate: a.ea.clone(),
            aa_access_point: format!("{base}{VALIDATION_PATH}"),
            its_access_point: Some(format!("{base}{ENROLMENT_PATH}")),
        },
        CtlEntry::Aa {
            certificate: a.aa.clone(),
            access_point: format!("{base}{AUTHORIZATION_PATH}"),
        },
    ];
    let lists = sign_lists(&a.root, &a.root_key, entries.clone(), now)?;
    let ea = EnrolmentAuthority::new(
        a.ea.clone(),
        a.ea_key,
        a.ea_secret,
        a.root.clone(),
        Arc::new(StoreStations(Arc::clone(&storage))),
        Arc::new(StoreCredentials(storage)),
    );
    let known = KnownEa {
        certificate: a.ea,
        link: Arc::new(HttpEaLink::local(local)),
    };
    let aa = AuthorizationAuthority::new(a.aa, a.aa_key, a.aa_secret, tickets, vec![known])
        .map_err(etsi_err)?;
    ETSI_TICKETS.follow(
        at.policies,
        aa.profile_slot(),
        Some(aa.certificate().clone()),
    );
    let http = Arc::new(EtsiHttp {
        ea: Some(Arc::new(ea)),
        aa: Some(Arc::new(aa)),
        lists: Some(RwLock::new(lists)),
        ..EtsiHttp::default()
    });
    reissue_lists(Arc::clone(&http), a.root, a.root_key, entries, stop);
    Ok(http)
}

/// Signs the lists again every [`LIST_REISSUE`], until `stop`.
fn reissue_lists(
    http: Arc<EtsiHttp>,
    root: Certificate,
    root_key: Arc<EcdsaKeyPair>,
    entries: Vec<CtlEntry>,
    stop: CancellationToken,
) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(LIST_REISSUE);
        every.tick().await; // the first tick is now: signed already
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                _ = every.tick() => {}
            }
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            match sign_lists(&root, &root_key, entries.clone(), now) {
                Ok(lists) => {
                    if let Some(Ok(mut slot)) = http.lists.as_ref().map(|l| l.write()) {
                        *slot = lists;
                    }
                }
                Err(e) => tracing::error!(error = %e, "re-signing the ETSI CTL and CRL failed"),
            }
        }
    });
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use trustca_scms::TicketFormat;

    #[test]
    fn the_shipped_etsi_profile_applies_without_a_file() {
        let data = tempfile::tempdir().unwrap();
        let tickets = ticket_profile(None, data.path()).unwrap();
        assert_eq!(tickets.format, TicketFormat::EtsiTs103097);
    }

    #[test]
    fn an_scms_profile_is_refused_naming_the_file() {
        let policies = tempfile::tempdir().unwrap();
        let scms = include_str!("../../../policies/v2x-tickets.toml");
        std::fs::write(policies.path().join(TICKETS_FILE), scms).unwrap();
        let err = ticket_profile(Some(policies.path()), policies.path())
            .unwrap_err()
            .to_string();
        assert!(err.contains(TICKETS_FILE), "{err}");
        assert!(err.contains("needs profile = \"etsi-ts-103-097\""), "{err}");
    }

    #[test]
    fn the_authorities_are_made_once_and_read_back() {
        let data = tempfile::tempdir().unwrap();
        let pass = Passphrase::new(b"unit-test-passphrase".to_vec()).unwrap();
        let tickets = ticket_profile(None, data.path()).unwrap();
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let first = open_or_create(data.path(), &pass, &tickets, now).unwrap();
        first.ea.verify_signed_by(Some(&first.root)).unwrap();
        first.aa.verify_signed_by(Some(&first.root)).unwrap();
        let again = open_or_create(data.path(), &pass, &tickets, now).unwrap();
        assert_eq!(again.root.as_coer(), first.root.as_coer());
        assert_eq!(again.ea_secret, first.ea_secret);
        let wrong = Passphrase::new(b"another-passphrase".to_vec()).unwrap();
        assert!(open_or_create(data.path(), &wrong, &tickets, now).is_err());
        let lists = sign_lists(&first.root, &first.root_key, Vec::new(), now).unwrap();
        trust_lists::read_crl(&lists.crl, &first.root).unwrap();
        trust_lists::read_rca_ctl(&lists.ctl, &first.root).unwrap();
    }
}
