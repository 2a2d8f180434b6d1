//! Escrow round trips, and the intended use: a vehicle's linkage chain
//! escrowed per certificate, opened by the resolution authority, turned into
//! a revocation entry.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use trustca_pseudonym::{
    ESCROW_OVERHEAD, LinkageChain, PseudonymError, PseudonymRevocationList, ResolutionAuthorityKey,
    ResolutionAuthorityPublicKey, open, seal,
};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn seal_open_round_trip(aad in proptest::collection::vec(any::<u8>(), 0..64), msg in proptest::collection::vec(any::<u8>(), 0..300)) {
        let ra = ResolutionAuthorityKey::generate().unwrap();
        let sealed = seal(&ra.public_key(), &aad, &msg).unwrap();
        prop_assert_eq!(sealed.len(), msg.len() + ESCROW_OVERHEAD);
        let opened = open(&ra, &aad, &sealed).unwrap();
        prop_assert_eq!(opened.as_slice(), msg.as_slice());
        let mut other_aad = aad.clone();
        other_aad.push(0);
        prop_assert_eq!(open(&ra, &other_aad, &sealed).unwrap_err(), PseudonymError::EscrowAuthentication);
    }

    #[test]
    fn opening_garbage_never_panics(blob in proptest::collection::vec(any::<u8>(), 0..200)) {
        let ra = ResolutionAuthorityKey::generate().unwrap();
        prop_assert!(open(&ra, b"", &blob).is_err());
    }
}

#[test]
fn escrowed_linkage_chain_resolves_to_a_revocation() {
    // Offline: the RA generates its key; the CA is configured with the public half.
    let ra = ResolutionAuthorityKey::generate().unwrap();
    let ra_stored = ra.to_pkcs8_der();
    let ca_config = ResolutionAuthorityPublicKey::from_sec1_uncompressed(
        &ra.public_key().to_sec1_uncompressed(),
    )
    .unwrap();

    // Issuance: one blob per certificate, bound to that certificate's linkage value.
    let chain = LinkageChain::generate(2900).unwrap();
    let lv = chain.linkage_value(2902, 5).unwrap();
    let blob = seal(&ca_config, lv.as_bytes(), chain.to_bytes().as_ref()).unwrap();

    // Resolution: the RA opens the blob of a misbehaving certificate.
    let ra = ResolutionAuthorityKey::from_pkcs8_der(&ra_stored).unwrap();
    let plain = open(&ra, lv.as_bytes(), &blob).unwrap();
    let recovered = LinkageChain::from_bytes(&plain).unwrap();
    let entry = recovered.revocation_entry(2902).unwrap();
    let prl = PseudonymRevocationList::new("automotive", 1, 0, 1, vec![entry]).unwrap();
    let mut m = prl.matcher(20).unwrap();
    assert!(m.is_revoked(2902, &lv));
    assert!(m.is_revoked(2950, &chain.linkage_value(2950, 0).unwrap()));
    assert!(!m.is_revoked(2901, &chain.linkage_value(2901, 0).unwrap()));

    // The blob does not open under another certificate's linkage value.
    let other = chain.linkage_value(2902, 6).unwrap();
    assert!(open(&ra, other.as_bytes(), &blob).is_err());
}
