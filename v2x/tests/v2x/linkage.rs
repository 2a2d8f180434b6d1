//! IEEE 1609.2 (SCMS) certificates with id `linkageData`.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use crate::common;

use common::*;
use trustca_v2x::{
    CertProfile, Certificate, CertificateId, Duration, SubjectAssurance, ToBeSigned, V2xError,
    ValidityPeriod,
};

const IEEE: CertProfile = CertProfile::Ieee1609Dot2;
const ETSI: CertProfile = CertProfile::EtsiTs103097;

#[test]
fn linked_tickets_round_trip_in_the_ieee_profile() {
    let c = chain();
    for group in [false, true] {
        let t = linked_ticket(&c, group);
        t.verify_signed_by(Some(&c.ca)).unwrap();
        assert_eq!(t.tbs().id, CertificateId::LinkageData(linkage(group)));
        assert_eq!(t.tbs().crl_series, 0x0102);
        assert_eq!(t.tbs().craca_id, [0; 3]);
        assert_eq!(
            t.tbs().assurance_level,
            Some(SubjectAssurance::from_trust_level(2).unwrap())
        );
        let again = Certificate::from_coer_in(IEEE, t.as_coer()).unwrap();
        assert_eq!(again, t);
        again.verify_signed_by(Some(&c.ca)).unwrap();
        assert!(t.conforms_to(IEEE));
        assert!(!t.conforms_to(ETSI));
        // The ETSI certificates of the chain conform to both profiles and
        // decode in both.
        for cert in [&c.root, &c.ca, &c.ticket] {
            assert!(cert.conforms_to(ETSI) && cert.conforms_to(IEEE));
            assert_eq!(
                &Certificate::from_coer_in(IEEE, cert.as_coer()).unwrap(),
                cert
            );
        }
    }
}

/// The id encoding, by hand from the ASN.1: CertificateId tag 0
/// (`linkageData`), the LinkageData preamble (bit 7: group-linkage-value
/// present), iCert Uint16, linkage-value 9 octets, then jValue (4) and
/// value (9).
#[test]
fn linkage_data_encoding_matches_the_asn1() {
    let c = chain();
    let t = linked_ticket(&c, true);
    // Preamble, version, type, issuer (tag + 8): toBeSigned at 12, its
    // preamble there, the id from 13.
    let id = &t.as_coer()[13..13 + 1 + 1 + 2 + 9 + 4 + 9];
    assert_eq!(
        hex::encode(id),
        concat!(
            "80",
            "80",
            "1234",
            "112233445566778899",
            "deadbeef",
            "010203040506070809"
        )
    );
    let t = linked_ticket(&c, false);
    let id = &t.as_coer()[13..13 + 1 + 1 + 2 + 9];
    assert_eq!(hex::encode(id), "80001234112233445566778899");
    // The cracaId (zero) and crlSeries follow the linkage value.
    assert_eq!(hex::encode(&t.as_coer()[26..31]), "0000000102");
}

#[test]
fn the_etsi_profile_rejects_linkage_data() {
    let c = chain();
    let t = linked_ticket(&c, true);
    assert_eq!(
        Certificate::from_coer(t.as_coer()),
        Err(V2xError::Profile("id linkageData is forbidden"))
    );
    assert_eq!(
        Certificate::from_coer_in(ETSI, t.as_coer()),
        Err(V2xError::Profile("id linkageData is forbidden"))
    );
    let tbs = t.tbs().clone();
    assert!(matches!(tbs.validate(), Err(V2xError::Profile(_))));
    assert!(matches!(tbs.to_coer(), Err(V2xError::Profile(_))));
    assert_eq!(tbs.validate_in(IEEE), Ok(()));
    // issue/issue_with keep the ETSI profile.
    assert!(matches!(
        Certificate::issue(tbs.clone(), &c.ca, &c.ca_key),
        Err(V2xError::Profile(_))
    ));
    assert!(matches!(
        Certificate::issue_in(ETSI, tbs, &c.ca, &c.ca_key),
        Err(V2xError::Profile(_))
    ));
}

#[test]
fn craca_id_is_free_in_the_ieee_profile_only() {
    let c = chain();
    let mut tbs = ToBeSigned::linked_authorization_ticket(
        public(&c.ticket_key),
        ValidityPeriod {
            start: start(),
            duration: Duration::Hours(1),
        },
        vec![],
        SubjectAssurance(0),
        linkage(false),
        7,
    );
    tbs.craca_id = [0xab, 0xcd, 0xef];
    let t = Certificate::issue_in(IEEE, tbs, &c.ca, &c.ca_key).unwrap();
    assert_eq!(
        Certificate::from_coer_in(IEEE, t.as_coer())
            .unwrap()
            .tbs()
            .craca_id,
        [0xab, 0xcd, 0xef]
    );
    // An ETSI ticket with a non-zero cracaId: IEEE accepts, ETSI rejects.
    let mut b = c.ticket.to_coer();
    b[14] = 0x01;
    assert!(matches!(
        Certificate::from_coer(&b),
        Err(V2xError::Profile(_))
    ));
    let ieee = Certificate::from_coer_in(IEEE, &b).unwrap();
    assert!(!ieee.conforms_to(ETSI));
}

#[test]
fn linkage_data_decoding_is_strict() {
    let c = chain();
    for group in [false, true] {
        let t = linked_ticket(&c, group).to_coer();
        // Every truncation fails.
        for n in 0..t.len() {
            assert!(Certificate::from_coer_in(IEEE, &t[..n]).is_err(), "{n}");
        }
        // Trailing bytes.
        let mut long = t.clone();
        long.push(0);
        assert_eq!(
            Certificate::from_coer_in(IEEE, &long),
            Err(V2xError::TrailingBytes(1))
        );
        // LinkageData preamble padding bits.
        let mut b = t.clone();
        b[14] |= 0x01;
        assert!(matches!(
            Certificate::from_coer_in(IEEE, &b),
            Err(V2xError::NonCanonical { .. })
        ));
        // Toggling the group-linkage-value bit desynchronises the rest.
        let mut b = t.clone();
        b[14] ^= 0x80;
        assert!(Certificate::from_coer_in(IEEE, &b).is_err());
        // Other CertificateId alternatives: binaryId (read as octets, so
        // the rest is misread), an unknown alternative, a non-context tag.
        for (tag, unsupported) in [(0x82u8, false), (0x84, true), (0x00, false)] {
            let mut b = t.clone();
            b[13] = tag;
            let e = Certificate::from_coer_in(IEEE, &b).unwrap_err();
            assert_eq!(matches!(e, V2xError::Unsupported(_)), unsupported, "{e:?}");
        }
        // id `none` in place of linkageData misreads the rest.
        let mut b = t.clone();
        b[13] = 0x83;
        assert!(Certificate::from_coer_in(IEEE, &b).is_err());
        // A changed linkage value decodes but breaks the signature.
        let mut b = t.clone();
        b[17] ^= 0x01;
        let changed = Certificate::from_coer_in(IEEE, &b).unwrap();
        assert_eq!(
            changed.verify_signed_by(Some(&c.ca)),
            Err(V2xError::BadSignature)
        );
    }
}
