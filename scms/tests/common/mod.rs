//! Shared set-up of the scms tests: keys and a V2X root with a pseudonym
//! CA certificate under it.
#![allow(dead_code, clippy::expect_used, clippy::unwrap_used)]

use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use trustca_v2x::{
    Certificate, Duration, PsidGroupPermissions, PublicKeyP256, Time32, ToBeSigned, ValidityPeriod,
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

/// [`hierarchy`] with the pseudonym CA limited to `permissions`.
pub fn hierarchy_with(
    permissions: PsidGroupPermissions,
) -> (Certificate, Certificate, EcdsaKeyPair) {
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
    let pca = Certificate::issue(
        ToBeSigned::ca(
            "pca.v2x.test",
            PublicKeyP256::from_sec1(pca_key.public_key().as_ref()).unwrap(),
            validity,
            vec![permissions],
        ),
        &root,
        &root_key,
    )
    .unwrap();
    (root, pca, pca_key)
}
