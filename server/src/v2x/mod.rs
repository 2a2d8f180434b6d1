//! The V2X authorities (`trustca-scms`) in the server: how each is built
//! from its keys, peers and store (their gRPC services and the
//! registration authority's remote clients are `trustca_api::v2x`).
//!
//! * **Separated** (`serve --role registration|pseudonym-ca|linkage-1|
//!   linkage-2`): one authority per process, from the directory `init
//!   --role` made on its own machine (`crate::v2x_role`): its own keys, its
//!   peers' public bundles, its own store. The registration authority
//!   reaches the others over mutual TLS with its own TLS certificate
//!   (`trustca_api::v2x::RemoteLinkage`, `RemotePseudonymCa`), the only
//!   role they serve for issuance.
//! * **In-process** (plain `trustca serve`): all four in the CA's process,
//!   each on its own sled store (`DATA/v2x/<role>/store`) but with their
//!   keys (`DATA/v2x/<role>/keys`) under the CA's directory and
//!   passphrase: no separation against whoever holds both. For trying
//!   things out.
//! * `deploy.rs` builds the services one process runs, in either mode.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use trustca_datadir::DataDir;

use ring::hmac;
use trustca_ca::{CaHierarchy, Keystore, Passphrase};
use trustca_pseudonym::{LaId, P256PrivateKey, P256PublicKey};
use trustca_scms::deployment::LINK_LABEL;
use trustca_scms::{
    BatchPolicy, LinkKey, LinkageAuthority, LinkageAuthorityApi, ProfileSlot, PseudonymCa,
    PseudonymCaApi, RegistrationAuthority, ScmsError,
};
use trustca_store::{SledStorage, Storage};
use trustca_v2x::Certificate;

use crate::error::{Result, ServerError, io};

mod deploy;
pub(crate) mod ee_http;
pub(crate) mod hash_crls;
pub use deploy::RemoteAuthorities;
pub(crate) use deploy::{V2xServices, enrollment_service, in_process_services, role_services};
pub use trustca_api::v2x::{
    ENROLMENT_POP_DOMAIN, EnrollmentCredentialService, LinkageService, MAX_RESPONSE_BYTES,
    PseudonymCaService, RegistrationService, RemoteLinkage, RemotePseudonymCa, RemoteTls,
};

/// Directory of the V2X authorities under the data directory.
pub const V2X_DIR: &str = trustca_datadir::V2X;
/// Keystore entry of each authority's key.
const AUTHORITY_KEY: &str = "authority";
/// How often the registration authority checks whether a batch is due.
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(2);

/// One of the separated authorities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum V2xRole {
    /// The registration authority (vehicles talk to it).
    Registration,
    /// The pseudonym CA (authorization authority).
    PseudonymCa,
    /// Linkage authority 1.
    Linkage1,
    /// Linkage authority 2.
    Linkage2,
}

impl V2xRole {
    /// Every role.
    pub const ALL: [V2xRole; 4] = [
        Self::Registration,
        Self::PseudonymCa,
        Self::Linkage1,
        Self::Linkage2,
    ];

    /// The name on the command line and under `DATA/v2x/`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Registration => "registration",
            Self::PseudonymCa => "pseudonym-ca",
            Self::Linkage1 => "linkage-1",
            Self::Linkage2 => "linkage-2",
        }
    }

    /// Parses [`V2xRole::as_str`].
    pub fn parse(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                ServerError::Config(format!(
                    "unknown role {s:?}: expected registration, pseudonym-ca, linkage-1 or linkage-2"
                ))
            })
    }

    fn la_id(self) -> Option<LaId> {
        match self {
            Self::Linkage1 => Some(LaId(1)),
            Self::Linkage2 => Some(LaId(2)),
            _ => None,
        }
    }
}

fn role_dir(data: &Path, role: V2xRole) -> PathBuf {
    DataDir::new(data).v2x_role(role.as_str())
}

fn pub_file(data: &Path, role: V2xRole) -> PathBuf {
    DataDir::new(data)
        .v2x()
        .join(format!("{}.pub", role.as_str()))
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn scms(what: &str, e: ScmsError) -> ServerError {
    ServerError::Config(format!("{what}: {e}"))
}

/// Creates what is missing of the four authorities' keystores and public
/// key files. Returns the roles whose key was created.
pub(crate) fn init_authorities(data: &Path, passphrase: &Passphrase) -> Result<Vec<&'static str>> {
    let mut created = Vec::new();
    for role in V2xRole::ALL {
        let dir = DataDir::new(data).v2x_role_keys(role.as_str());
        if dir.join(trustca_datadir::KEYSTORE_META).exists() {
            continue;
        }
        std::fs::create_dir_all(&dir)
            .map_err(|e| io(format_args!("cannot create {}", dir.display()), e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| io(format_args!("cannot restrict {}", dir.display()), e))?;
        }
        let keystore = Keystore::create(&dir, passphrase)?;
        let key = P256PrivateKey::generate().map_err(|e| ServerError::Config(e.to_string()))?;
        keystore.store(AUTHORITY_KEY, &key.to_pkcs8_der())?;
        let public = pub_file(data, role);
        std::fs::write(&public, key.public_key().to_sec1_uncompressed())
            .map_err(|e| io(format_args!("cannot write {}", public.display()), e))?;
        created.push(role.as_str());
    }
    Ok(created)
}

fn load_key(data: &Path, role: V2xRole, passphrase: &Passphrase) -> Result<P256PrivateKey> {
    let keystore = Keystore::open(&DataDir::new(data).v2x_role_keys(role.as_str()), passphrase)?;
    let der = keystore.load(AUTHORITY_KEY)?;
    P256PrivateKey::from_pkcs8_der(&der)
        .map_err(|e| ServerError::Config(format!("the {} key: {e}", role.as_str())))
}

fn load_public(data: &Path, role: V2xRole) -> Result<P256PublicKey> {
    let path = pub_file(data, role);
    let bytes =
        std::fs::read(&path).map_err(|e| io(format_args!("cannot read {}", path.display()), e))?;
    P256PublicKey::from_sec1_uncompressed(&bytes)
        .map_err(|e| ServerError::Config(format!("{}: {e}", path.display())))
}

fn open_store(data: &Path, role: V2xRole) -> Result<Arc<dyn Storage>> {
    Ok(Arc::new(SledStorage::open(
        &DataDir::new(data).v2x_role_store(role.as_str()),
    )?))
}

/// Seals the records of an authority's own store (`space`) under a key
/// derived from the authority's own key, so whoever can write that store
/// but holds no key of the authority cannot change a record, or put one
/// under another key, unnoticed (`trustca_store::RecordSeal`). The log
/// stays as coarse as it is: nothing in it names or counts a vehicle's
/// records, so a deleted record or an older copy put back is not caught
/// by this; what a revocation must survive is on signed CRLs. Records
/// from before are sealed once, at the first start with this build.
fn seal_role_store(
    store: &dyn Storage,
    key: &P256PrivateKey,
    role: V2xRole,
    space: &str,
) -> Result<()> {
    let seal = trustca_store::RecordSeal::new(&derived_secret(key, b"trustca-v2x-record-seal-v1"))
        .sealing_spaces(&[space]);
    let actor = format!("authority:{}", role.as_str());
    let sealed = trustca_store::install_record_seal(store, Arc::new(seal), &actor, now())?;
    if sealed > 0 {
        tracing::info!(
            role = role.as_str(),
            sealed,
            "records written before record seals sealed once"
        );
    }
    Ok(())
}

/// A secret derived from an authority's key for one purpose, so each
/// authority holds one key and its storage keys follow from it.
fn derived_secret(key: &P256PrivateKey, label: &[u8]) -> [u8; 32] {
    let hkey = hmac::Key::new(hmac::HMAC_SHA256, key.to_bytes().as_ref());
    let tag = hmac::sign(&hkey, label);
    let mut out = [0u8; 32];
    out.copy_from_slice(tag.as_ref());
    out
}

/// Opens a linkage authority of the single-process deployment from
/// `DATA/v2x/<role>/`.
pub(crate) fn linkage_authority(
    data: &Path,
    role: V2xRole,
    passphrase: &Passphrase,
) -> Result<LinkageAuthority> {
    linkage_authority_with(
        role,
        &load_key(data, role, passphrase)?,
        &load_public(data, V2xRole::PseudonymCa)?,
        open_store(data, role)?,
    )
}

/// A linkage authority over its own key, the pseudonym CA's public key and
/// its own store.
pub(crate) fn linkage_authority_with(
    role: V2xRole,
    key: &P256PrivateKey,
    pca: &P256PublicKey,
    store: Arc<dyn Storage>,
) -> Result<LinkageAuthority> {
    let la_id = role.la_id().ok_or_else(|| {
        ServerError::Config(format!("{} is not a linkage authority", role.as_str()))
    })?;
    seal_role_store(
        store.as_ref(),
        key,
        role,
        trustca_scms::linkage_authority::SPACE,
    )?;
    let own = key.public_key();
    let link = LinkKey::agree(key, pca, &own, pca, LINK_LABEL)
        .map_err(|e| scms("linkage transport key", e))?;
    let storage = LinkKey::from_bytes(&derived_secret(key, b"trustca-la-storage-v1"))
        .map_err(|e| scms("linkage storage key", e))?;
    Ok(LinkageAuthority::new(la_id, store, storage, link))
}

/// Opens the pseudonym CA of the single-process deployment: the V2X
/// authorization-authority key and certificate made by `init`, its
/// transport keys with both linkage authorities, and its own store.
pub(crate) fn pseudonym_ca(
    data: &Path,
    hierarchy: &CaHierarchy,
    passphrase: &Passphrase,
    profile: ProfileSlot,
) -> Result<PseudonymCa> {
    let (signer, certificate) = trustca_ca::v2x_ca::authorization_authority(data, hierarchy)?;
    let (crl_key, crl_certificate) = trustca_ca::v2x_ca::crl_signer(data, hierarchy)?;
    pseudonym_ca_with(
        Arc::new(signer),
        certificate,
        (Arc::new(crl_key), crl_certificate),
        &load_key(data, V2xRole::PseudonymCa, passphrase)?,
        [
            load_public(data, V2xRole::Linkage1)?,
            load_public(data, V2xRole::Linkage2)?,
        ],
        open_store(data, V2xRole::PseudonymCa)?,
        profile,
    )
}

/// A V2X signing key with its certificate.
type SignerWithCertificate = (Arc<dyn trustca_v2x::V2xSigner + Send + Sync>, Certificate);

/// A pseudonym CA over its ticket signer and certificate, its CRL signer,
/// its own key, the two linkage authorities' public keys and its own store.
pub(crate) fn pseudonym_ca_with(
    signer: Arc<dyn trustca_v2x::V2xSigner + Send + Sync>,
    certificate: Certificate,
    crl_signer: SignerWithCertificate,
    key: &P256PrivateKey,
    linkage: [P256PublicKey; 2],
    store: Arc<dyn Storage>,
    profile: ProfileSlot,
) -> Result<PseudonymCa> {
    profile
        .current()
        .check_issuable(&certificate)
        .map_err(|e| ServerError::Policy(format!("v2x-tickets.toml: {e}")))?;
    seal_role_store(
        store.as_ref(),
        key,
        V2xRole::PseudonymCa,
        trustca_scms::pseudonym_ca::SPACE,
    )?;
    let own = key.public_key();
    let [la1, la2] = linkage;
    let link = |la: &P256PublicKey| {
        LinkKey::agree(key, la, la, &own, LINK_LABEL).map_err(|e| scms("linkage transport key", e))
    };
    let links = [(LaId(1), link(&la1)?), (LaId(2), link(&la2)?)];
    let (crl_signer, crl_certificate) = crl_signer;
    PseudonymCa::new(store, signer, certificate, links, profile)
        .with_crl_signer(crl_signer, crl_certificate)
        .map_err(|e| scms("CRL signer", e))
}

/// Opens the registration authority over its own key and store and the
/// given linkage authorities and pseudonym CA (in-process or remote).
pub(crate) fn registration_authority(
    key: &P256PrivateKey,
    store: Arc<dyn Storage>,
    linkage: [Arc<dyn LinkageAuthorityApi>; 2],
    pca: Arc<dyn PseudonymCaApi>,
    profile: ProfileSlot,
    policy: BatchPolicy,
) -> Result<RegistrationAuthority> {
    seal_role_store(
        store.as_ref(),
        key,
        V2xRole::Registration,
        trustca_scms::registration::SPACE,
    )?;
    RegistrationAuthority::new(
        store,
        &derived_secret(key, b"trustca-ra-secret-v1"),
        linkage,
        pca,
        profile,
        policy,
    )
    .map_err(|e| scms("registration authority", e))
}
