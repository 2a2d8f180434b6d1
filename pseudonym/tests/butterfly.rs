//! Butterfly key expansion end to end: CA-expanded public keys against
//! vehicle-derived private keys, loaded into ring and rcgen.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair,
    UnparsedPublicKey,
};
use trustca_pseudonym::{
    BUTTERFLY_REQUEST_LEN, ButterflyRequest, CATERPILLAR_LEN, CaContribution, Caterpillar,
    P256PrivateKey, P256PublicKey, PseudonymError,
};

fn sign_and_verify(private: &P256PrivateKey, public: &P256PublicKey, msg: &[u8]) {
    let rng = SystemRandom::new();
    let pkcs8 = private.to_pkcs8_der();
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &pkcs8, &rng).unwrap();
    assert_eq!(pair.public_key().as_ref(), &public.to_sec1_uncompressed());
    let sig = pair.sign(&rng, msg).unwrap();
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, public.to_sec1_uncompressed())
        .verify(msg, sig.as_ref())
        .unwrap();
    // The SPKI form decodes to the same key.
    assert_eq!(
        P256PublicKey::from_spki_der(&public.to_spki_der()).unwrap(),
        *public
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn vehicle_key_signs_for_ca_expanded_key(period in 0u64..=u64::from(u32::MAX), j in any::<u32>(), msg in proptest::collection::vec(any::<u8>(), 0..64)) {
        let vehicle = Caterpillar::generate().unwrap();
        // The request crosses the wire as bytes.
        let request = ButterflyRequest::from_bytes(vehicle.request().to_bytes().as_ref()).unwrap();
        let issued = request.issue(period, j).unwrap();
        // So does the contribution.
        let c = CaContribution::from_bytes(issued.ca_contribution.to_bytes().as_ref()).unwrap();
        let private = vehicle.derive_and_check(period, j, &c, &issued.public_key).unwrap();
        sign_and_verify(&private, &issued.public_key, &msg);
    }

    #[test]
    fn other_index_or_contribution_is_detected(period in 0u64..1_000_000, j in 0u32..1000) {
        let vehicle = Caterpillar::generate().unwrap();
        let issued = vehicle.request().issue(period, j).unwrap();
        prop_assert_eq!(
            vehicle.derive_and_check(period, j + 1, &issued.ca_contribution, &issued.public_key).unwrap_err(),
            PseudonymError::KeyMismatch { period, j: j + 1 }
        );
        prop_assert_eq!(
            vehicle.derive_and_check(period + 1, j, &issued.ca_contribution, &issued.public_key).unwrap_err(),
            PseudonymError::KeyMismatch { period: period + 1, j }
        );
        let other_c = CaContribution::generate().unwrap();
        prop_assert!(vehicle.derive_and_check(period, j, &other_c, &issued.public_key).is_err());
    }
}

#[test]
fn keys_of_one_batch_are_distinct_and_not_the_cocoon() {
    let vehicle = Caterpillar::generate().unwrap();
    let request = vehicle.request();
    let batch = request.issue_batch(2900, 20).unwrap();
    let mut seen = std::collections::HashSet::new();
    for (j, issued) in batch.iter().enumerate() {
        let j = j as u32;
        assert!(seen.insert(issued.public_key.to_sec1_uncompressed()));
        assert_ne!(
            issued.public_key,
            request.cocoon_public_key(2900, j).unwrap()
        );
        assert_ne!(issued.public_key, vehicle.public_key());
        let key = vehicle
            .derive_and_check(2900, j, &issued.ca_contribution, &issued.public_key)
            .unwrap();
        assert_eq!(key.public_key(), issued.public_key);
    }
    // Same c, same index: deterministic.
    let first = &batch[0];
    assert_eq!(
        request
            .expand_public_key(2900, 0, &first.ca_contribution)
            .unwrap(),
        first.public_key
    );
}

#[test]
fn rcgen_accepts_the_encodings() {
    let vehicle = Caterpillar::generate().unwrap();
    let issued = vehicle.request().issue(7, 3).unwrap();
    let private = vehicle
        .derive_and_check(7, 3, &issued.ca_contribution, &issued.public_key)
        .unwrap();

    // The vehicle's key pair loads in rcgen from PKCS#8.
    let kp = rcgen::KeyPair::try_from(private.to_pkcs8_der().as_slice()).unwrap();
    assert_eq!(
        kp.public_key_raw(),
        &issued.public_key.to_sec1_uncompressed()
    );

    // The CA certifies the expanded public key from its SPKI alone.
    let spki = issued.public_key.to_spki_der();
    let subject = rcgen::SubjectPublicKeyInfo::from_der(&spki).unwrap();
    let ca_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let issuer = rcgen::Issuer::new(
        rcgen::CertificateParams::new(Vec::<String>::new()).unwrap(),
        ca_key,
    );
    let cert = rcgen::CertificateParams::new(Vec::<String>::new())
        .unwrap()
        .signed_by(&subject, &issuer)
        .unwrap();
    let der = cert.der().as_ref();
    assert!(der.windows(spki.len()).any(|w| w == spki.as_slice()));
}

#[test]
fn serialisation_round_trips_and_rejections() {
    let vehicle = Caterpillar::generate().unwrap();
    let bytes = vehicle.to_bytes();
    assert_eq!(bytes.len(), CATERPILLAR_LEN);
    let again = Caterpillar::from_bytes(bytes.as_ref()).unwrap();
    assert_eq!(again.public_key(), vehicle.public_key());
    assert_eq!(
        again.expansion_key().as_bytes(),
        vehicle.expansion_key().as_bytes()
    );

    assert!(matches!(
        Caterpillar::from_bytes(&bytes[..47]),
        Err(PseudonymError::InvalidLength { .. })
    ));
    assert!(matches!(
        Caterpillar::from_bytes(&[0u8; CATERPILLAR_LEN]),
        Err(PseudonymError::InvalidScalar { .. })
    ));
    assert!(matches!(
        Caterpillar::from_bytes(&[0xffu8; CATERPILLAR_LEN]),
        Err(PseudonymError::InvalidScalar { .. })
    ));

    let req = vehicle.request().to_bytes();
    assert_eq!(req.len(), BUTTERFLY_REQUEST_LEN);
    let mut bad = *req;
    bad[0] = 0x02; // compressed tag is refused
    assert!(matches!(
        ButterflyRequest::from_bytes(&bad),
        Err(PseudonymError::InvalidPublicKey { .. })
    ));
    let mut off_curve = *req;
    off_curve[64] ^= 1;
    assert!(ButterflyRequest::from_bytes(&off_curve).is_err());
    assert!(ButterflyRequest::from_bytes(&req[..80]).is_err());

    assert!(CaContribution::from_bytes(&[0u8; 32]).is_err());
    assert!(CaContribution::from_bytes(&[0xffu8; 32]).is_err());
    assert!(CaContribution::from_bytes(&[1u8; 31]).is_err());
}
