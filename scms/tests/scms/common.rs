//! Shared set-up of the scms tests: keys and a V2X root with a pseudonym
//! CA certificate under it.
#![allow(dead_code, clippy::expect_used, clippy::unwrap_used)]

use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use trustca_scms::TicketProfile;
use trustca_v2x::{
    CRL_PSID, CertProfile, Certificate, CertificateId, CracaType, CrlSsp, Duration,
    PsidGroupPermissions, PsidSsp, PublicKeyP256, Ssp, Time32, ToBeSigned, ValidityPeriod,
};

/// The tests' clock: 2026-01-01T00:00:00Z.
pub const NOW: i64 = 1_767_225_600;

/// A fresh P-256 key in ring.
pub fn key() -> EcdsaKeyPair {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap()
}

/// A V2X root and a pseudonym CA certificate under it (and the CA's key).
pub fn hierarchy() -> (Certificate, Certificate, EcdsaKeyPair) {
    hierarchy_with(PsidGroupPermissions::all(1, PsidGroupPermissions::EE_APP))
}

/// A V2X root, a pseudonym CA and a CRL signer under it (the root is the
/// CRACA), with the keys.
pub struct Hierarchy {
    pub root: Certificate,
    pub pca: Certificate,
    pub pca_key: EcdsaKeyPair,
    pub crl: Certificate,
    pub crl_key: EcdsaKeyPair,
}

/// [`hierarchy`] plus a CRL signer for the profile's CRL series.
pub fn hierarchy_with_crl_signer() -> Hierarchy {
    let (root, root_key, pca, pca_key) =
        hierarchy_keys(PsidGroupPermissions::all(1, PsidGroupPermissions::EE_APP));
    let crl_key = key();
    let ssp = CrlSsp {
        associated_craca: CracaType::IssuerIsCraca,
        crls: vec![TicketProfile::default().crl_series],
    };
    let mut tbs = ToBeSigned::new(
        CertificateId::Name("crl.v2x.test".into()),
        root.tbs().validity,
        PublicKeyP256::from_sec1(crl_key.public_key().as_ref()).unwrap(),
    );
    tbs.craca_id = root.hashed_id3();
    tbs.app_permissions = Some(vec![PsidSsp {
        psid: CRL_PSID,
        ssp: Some(Ssp::Opaque(ssp.to_coer())),
    }]);
    let crl = Certificate::issue_in(CertProfile::Ieee1609Dot2, tbs, &root, &root_key).unwrap();
    Hierarchy {
        root,
        pca,
        pca_key,
        crl,
        crl_key,
    }
}

/// [`hierarchy`] with the pseudonym CA limited to `permissions`.
pub fn hierarchy_with(
    permissions: PsidGroupPermissions,
) -> (Certificate, Certificate, EcdsaKeyPair) {
    let (root, _, pca, pca_key) = hierarchy_keys(permissions);
    (root, pca, pca_key)
}

fn hierarchy_keys(
    permissions: PsidGroupPermissions,
) -> (Certificate, EcdsaKeyPair, Certificate, EcdsaKeyPair) {
    let (root_key, pca_key) = (key(), key());
    let validity = ValidityPeriod {
        start: Time32::from_unix(NOW - 86_400).unwrap(),
        duration: Duration::Years(10),
    };
    let root = Certificate::sign_root(
        ToBeSigned::ca(
            "root.v2x.test",
            PublicKeyP256::from_sec1(root_key.public_key().as_ref()).unwrap(),
            validity,
            vec![PsidGroupPermissions::all(2, PsidGroupPermissions::EE_APP)],
        ),
        &root_key,
    )
    .unwrap();
    let mut tbs = ToBeSigned::ca(
        "pca.v2x.test",
        PublicKeyP256::from_sec1(pca_key.public_key().as_ref()).unwrap(),
        validity,
        vec![permissions],
    );
    tbs.craca_id = root.hashed_id3();
    let pca = Certificate::issue_in(CertProfile::Ieee1609Dot2, tbs, &root, &root_key).unwrap();
    (root, root_key, pca, pca_key)
}
