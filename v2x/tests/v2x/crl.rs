//! The IEEE 1609.2 CRL codec (`v2x/src/crl.rs`): `CrlContents` round
//! trips (linkage and hash CRLs, by property), strict rejection of
//! truncated, padded and non-canonical input, and a signed CRL produced by
//! an independent implementation (OpenSCMS, `composite-crl-scms-pdu.dat`
//! in `../shared/spec/v2x-vectors/openscms/`) decoded and re-encoded
//! byte for byte.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use trustca_v2x::Time32;
use trustca_v2x::crl::{
    CrlBody, CrlContents, HashIdCrl, HashRevocation, IMaxGroup, IndividualRevocation, JMaxGroup,
    LaGroup, LinkageValueCrl, SecuredCrl,
};

fn linkage_crl(entries: usize, jmax: u8) -> CrlContents {
    CrlContents {
        crl_series: 1,
        crl_craca: [1, 2, 3, 4, 5, 6, 7, 8],
        issue_date: Time32(700_000_000),
        next_crl: Time32(700_086_400),
        priority: None,
        body: CrlBody::FullLinked(LinkageValueCrl {
            i_rev: 42,
            index_within_i: 0,
            individual: vec![JMaxGroup {
                jmax,
                contents: vec![LaGroup {
                    la1_id: [0, 1],
                    la2_id: [0, 2],
                    contents: vec![IMaxGroup {
                        i_max: 60,
                        contents: (0..entries)
                            .map(|k| IndividualRevocation {
                                linkage_seed1: [k as u8; 16],
                                linkage_seed2: [!(k as u8); 16],
                            })
                            .collect(),
                    }],
                }],
            }],
        }),
    }
}

#[test]
fn a_linkage_crl_round_trips_and_trailing_or_missing_bytes_are_refused() {
    let c = linkage_crl(3, 20);
    let bytes = c.to_coer().unwrap();
    assert_eq!(CrlContents::from_coer(&bytes).unwrap(), c);
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(CrlContents::from_coer(&longer).is_err(), "trailing byte");
    for cut in 0..bytes.len() {
        assert!(
            CrlContents::from_coer(&bytes[..cut]).is_err(),
            "truncated at {cut}"
        );
    }
}

#[test]
fn a_hash_crl_round_trips() {
    let c = CrlContents {
        crl_series: 2,
        crl_craca: [9; 8],
        issue_date: Time32(700_000_000),
        next_crl: Time32(700_003_600),
        priority: Some(3),
        body: CrlBody::FullHash(HashIdCrl {
            crl_serial: 7,
            entries: vec![
                HashRevocation {
                    id: [1; 10],
                    expiry: Time32(800_000_000),
                },
                HashRevocation {
                    id: [2; 10],
                    expiry: Time32(800_000_001),
                },
            ],
        }),
    };
    let bytes = c.to_coer().unwrap();
    assert_eq!(CrlContents::from_coer(&bytes).unwrap(), c);
}

#[test]
fn a_next_crl_not_after_the_issue_date_is_refused() {
    let mut c = linkage_crl(1, 20);
    c.next_crl = c.issue_date;
    let encoded = c.to_coer();
    // Either the encoder or the decoder refuses it; never both accept.
    if let Ok(bytes) = encoded {
        assert!(CrlContents::from_coer(&bytes).is_err());
    }
}

proptest! {
    #[test]
    fn linkage_crls_round_trip(entries in 0usize..40, jmax in 1u8..=255, i_rev in 0u16..2000, series in 0u16..=u16::MAX) {
        let mut c = linkage_crl(entries, jmax);
        c.crl_series = series;
        if let CrlBody::FullLinked(l) = &mut c.body {
            l.i_rev = i_rev;
        }
        let bytes = c.to_coer().unwrap();
        prop_assert_eq!(CrlContents::from_coer(&bytes).unwrap(), c);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = CrlContents::from_coer(&bytes);
        let _ = SecuredCrl::from_coer(&bytes);
    }
}

/// The first `SecuredCrl` inside OpenSCMS's composite CRL (an `ScmsPdu`
/// whose `compositeCrl` is a SEQUENCE OF SecuredCrl followed by the home
/// CTL): our decoder is strict about the end, so the CRL is the one prefix
/// from its start that decodes.
#[test]
fn openscms_composite_crl_decodes_and_re_encodes() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/spec/v2x-vectors/openscms/composite-crl-scms-pdu.dat"
    );
    let Ok(pdu) = std::fs::read(path) else {
        trustca_testkit::skip_or_fail(&format!("{path} not found"));
        return;
    };
    // ScmsPdu: version 2, then the choice and the SEQUENCE OF header; the
    // SecuredCrl begins with protocolVersion 3 and signedData (81 00 40).
    let start = pdu
        .windows(4)
        .position(|w| w == [0x03, 0x81, 0x00, 0x40])
        .expect("a SecuredCrl in the composite CRL");
    let crl = (start + 60..=pdu.len())
        .find_map(|end| SecuredCrl::from_coer(&pdu[start..end]).ok())
        .expect("the first SecuredCrl decodes");
    assert_eq!(crl.as_coer(), &pdu[start..start + crl.as_coer().len()]);
    // OpenSCMS signs with an SCMS CRL generator certificate (PSID 35, the
    // SCMS security-management PSID) rather than PSID 256 with a CrlSsp,
    // so trustca's profile check refuses the signer...
    assert!(crl.verify(None).is_err());
    assert_eq!(
        crl.signer().tbs().app_permissions.as_ref().unwrap()[0].psid,
        35
    );
    // Its signature does not verify by trustca's reading of the 1609.2
    // rule (SHA-256(SHA-256(tbsData) ‖ SHA-256(signer)), r x-only) over
    // these bytes; whether the vector's signature is a placeholder or our
    // reading differs is open (issue 18's closing note). Not asserted.
    let c = crl.contents();
    assert!(c.next_crl.0 > c.issue_date.0);
    // Re-encoding the contents gives back the signed bytes.
    let inner = c.to_coer().unwrap();
    assert!(
        crl.as_coer().windows(inner.len()).any(|w| w == inner),
        "the contents re-encode to the bytes OpenSCMS signed"
    );
}
