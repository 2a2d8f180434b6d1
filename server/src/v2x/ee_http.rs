//! The IEEE 1609.2.1 side of the registration authority and the enrolment
//! CA in the CA's process (`trustca serve`): the RA's 1609.2 identity (its
//! ack-signing and request-decryption keys in its own keystore under
//! `DATA/v2x/registration/keys`, its certificate `ra.oer` from the V2X
//! root), and the resources of `trustca_api::v2x_http` built over them.

use std::path::Path;
use std::sync::Arc;
use trustca_datadir::{CaFiles, DataDir};

use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use trustca_ca::{CaHierarchy, Keystore, Passphrase};
use trustca_pseudonym::P256PrivateKey;
use trustca_scms::{BatchPolicy, EeInterface, PseudonymCa, RaIdentity, RegistrationAuthority};
use trustca_store::Storage;
use trustca_v2x::{CertProfile, Certificate, PublicKeyP256};

use super::hash_crls::HashCrlPublisher;
use super::{V2xRole, role_dir};
use crate::error::{Result, ServerError, io};
use trustca_api::v2x_http::{EcaRoute, V2xHttp};

/// Keystore entry of the RA's 1609.2 signing key (acknowledgements).
pub(crate) const RA_SIGNING_KEY: &str = "scms-signing";
/// Keystore entry of the RA's 1609.2 encryption key (requests).
pub(crate) const RA_ENCRYPTION_KEY: &str = "scms-encryption";
/// The RA's IEEE 1609.2 certificate in its directory.
pub(crate) const RA_CERTIFICATE: &str = "ra.oer";

fn config(what: &str, e: impl std::fmt::Display) -> ServerError {
    ServerError::Config(format!("{what}: {e}"))
}

/// The RA's two 1609.2 keys from `keystore`, made there on first use.
pub(crate) fn ra_keys(keystore: &Keystore) -> Result<(EcdsaKeyPair, P256PrivateKey)> {
    if !keystore.has(RA_SIGNING_KEY) {
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .map_err(|_| ServerError::Config("cannot generate the RA signing key".into()))?;
        keystore.store(RA_SIGNING_KEY, pkcs8.as_ref())?;
    }
    if !keystore.has(RA_ENCRYPTION_KEY) {
        let key = P256PrivateKey::generate().map_err(|e| config("the RA encryption key", e))?;
        keystore.store(RA_ENCRYPTION_KEY, &key.to_pkcs8_der())?;
    }
    let signing = EcdsaKeyPair::from_pkcs8(
        &ECDSA_P256_SHA256_FIXED_SIGNING,
        &keystore.load(RA_SIGNING_KEY)?,
        &SystemRandom::new(),
    )
    .map_err(|_| ServerError::Config("the RA signing key does not load".into()))?;
    let encryption = P256PrivateKey::from_pkcs8_der(&keystore.load(RA_ENCRYPTION_KEY)?)
        .map_err(|e| config("the RA encryption key", e))?;
    Ok((signing, encryption))
}

/// The public halves, as 1609.2 keys.
pub(crate) fn ra_public_keys(
    signing: &EcdsaKeyPair,
    encryption: &P256PrivateKey,
) -> Result<(PublicKeyP256, PublicKeyP256)> {
    Ok((
        PublicKeyP256::from_sec1(signing.public_key().as_ref()).map_err(|e| config("RA key", e))?,
        PublicKeyP256::from_sec1(&encryption.public_key().to_sec1_uncompressed())
            .map_err(|e| config("RA key", e))?,
    ))
}

/// The RA identity from its keys and certificate, checked to belong
/// together.
pub(crate) fn ra_identity(
    signing: Arc<EcdsaKeyPair>,
    encryption: &P256PrivateKey,
    certificate: Certificate,
) -> Result<RaIdentity> {
    let (sign_pub, enc_pub) = ra_public_keys(&signing, encryption)?;
    if certificate.tbs().verification_key != sign_pub
        || certificate.tbs().encryption_key != Some(enc_pub)
    {
        return Err(ServerError::Config(
            "the RA's 1609.2 certificate does not certify its keys".into(),
        ));
    }
    Ok(RaIdentity {
        certificate,
        signer: signing,
        decryption_key: encryption.to_bytes(),
    })
}

/// The in-process RA's identity: keys in its keystore, certificate
/// `DATA/v2x/registration/ra.oer` issued by the V2X root when missing or
/// no longer matching the keys.
fn in_process_identity(
    data: &Path,
    hierarchy: &CaHierarchy,
    passphrase: &Passphrase,
    pki: &trustca_model::policy::PkiPolicy,
) -> Result<RaIdentity> {
    let dir = role_dir(data, V2xRole::Registration);
    let keystore = Keystore::open(&dir.join("keys"), passphrase)?;
    let (signing, encryption) = ra_keys(&keystore)?;
    let (sign_pub, enc_pub) = ra_public_keys(&signing, &encryption)?;
    let path = dir.join(RA_CERTIFICATE);
    let current = std::fs::read(&path)
        .ok()
        .and_then(|b| Certificate::from_coer_in(CertProfile::Ieee1609Dot2, &b).ok())
        .filter(|c| {
            c.tbs().verification_key == sign_pub && c.tbs().encryption_key == Some(enc_pub)
        });
    let certificate = match current {
        Some(c) => c,
        None => {
            let c = trustca_ca::v2x_ca::certify_registration_authority(
                data,
                hierarchy,
                pki,
                sign_pub,
                enc_pub,
                time::OffsetDateTime::now_utc(),
            )?;
            std::fs::write(&path, c.as_coer())
                .map_err(|e| io(format_args!("cannot write {}", path.display()), e))?;
            c
        }
    };
    ra_identity(Arc::new(signing), &encryption, certificate)
}

fn read_v2x(path: &Path) -> Result<Certificate> {
    Certificate::from_coer_in(
        CertProfile::Ieee1609Dot2,
        &std::fs::read(path).map_err(|e| io(format_args!("cannot read {}", path.display()), e))?,
    )
    .map_err(|e| config(&path.display().to_string(), e))
}

/// The enrolment CA's resource in the CA's process (`serve` with or
/// without the in-process authorities).
pub(crate) fn eca_route(
    data: &Path,
    hierarchy: &CaHierarchy,
    sector: String,
    ca_storage: Arc<dyn Storage>,
    hash_crls: Arc<HashCrlPublisher>,
) -> Result<EcaRoute> {
    Ok(EcaRoute {
        hash_crls,
        ea: Arc::new(trustca_ca::v2x_ca::enrolment_authority(data, hierarchy)?),
        root: read_v2x(&DataDir::new(data).ca().oer("v2x-root"))?,
        sector,
        callers: Arc::new(crate::est::AuthCheck {
            storage: ca_storage,
            revoked_cas: Arc::clone(hierarchy.revoked_cas()),
        }),
    })
}

/// The resources of a separated registration authority (`serve --role
/// registration`), from its own directory: its keys, `trust/ra.oer`,
/// `trust/ea.oer`, and its copies of the pseudonym CA's certificates.
pub(crate) fn role_http(
    dir: &crate::v2x_role::RoleDir,
    secrets: &crate::v2x_role::RoleSecrets,
    ra: Arc<RegistrationAuthority>,
    pca: Arc<dyn trustca_scms::PseudonymCaApi>,
    policy: BatchPolicy,
) -> Result<V2xHttp> {
    let (signing, encryption) = secrets.ra.as_ref().ok_or_else(|| {
        ServerError::Config("the registration authority's keystore lacks its 1609.2 keys".into())
    })?;
    let read = |file: &str| -> Result<Certificate> {
        let path = dir.trust(file);
        dir.imported(&path)?;
        read_v2x(&path)
    };
    let identity = ra_identity(Arc::clone(signing), encryption, read("ra.oer")?)?;
    let eca = read("ea.oer")?;
    let chain = [
        read("v2x-root.oer")?,
        eca.clone(),
        read("aa.oer")?,
        identity.certificate.clone(),
        read("crl-signer.oer")?,
    ];
    let ee = EeInterface::new(ra, identity, eca, &chain, policy.max_wait_secs);
    Ok(V2xHttp {
        ra: Some(Arc::new(ee)),
        crl: Some(pca),
        ..Default::default()
    })
}

/// The resources of the CA's process: the RA's and the ECA's.
#[allow(clippy::too_many_arguments)]
pub(crate) fn in_process_http(
    data: &Path,
    hierarchy: &CaHierarchy,
    passphrase: &Passphrase,
    pki: &trustca_model::policy::PkiPolicy,
    ra: Arc<RegistrationAuthority>,
    pca: Arc<PseudonymCa>,
    policy: BatchPolicy,
    ca_storage: Arc<dyn Storage>,
    hash_crls: Arc<HashCrlPublisher>,
) -> Result<V2xHttp> {
    let identity = in_process_identity(data, hierarchy, passphrase, pki)?;
    let sector = ra.profile().sector.clone();
    let eca = eca_route(data, hierarchy, sector, ca_storage, Arc::clone(&hash_crls))?;
    let root = eca.root.clone();
    let crl_signer = trustca_ca::v2x_ca::crl_signer(data, hierarchy)?.1;
    let chain = [
        root,
        eca.ea.1.clone(),
        pca.certificate().clone(),
        identity.certificate.clone(),
        crl_signer,
    ];
    let ee = Arc::new(EeInterface::new(
        ra,
        identity,
        eca.ea.1.clone(),
        &chain,
        policy.max_wait_secs,
    ));
    // The RA refuses what the enrolment CA's hash CRLs list, from the
    // first request on and at once after each revocation.
    hash_crls.attach(&ee);
    Ok(V2xHttp {
        ra: Some(ee),
        crl: Some(pca),
        eca: Some(eca),
        hash_crls: Some(hash_crls),
        ..Default::default()
    })
}
