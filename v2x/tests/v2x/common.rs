//! Shared fixtures: keys and a root → CA → authorization ticket chain.
#![allow(dead_code, clippy::expect_used, clippy::unwrap_used)]

use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use trustca_v2x::{
    Certificate, Duration, PsidGroupPermissions, PsidSsp, PsidSspRange, PublicKeyP256, Ssp,
    SspRange, SubjectAssurance, SubjectPermissions, Time32, ToBeSigned, ValidityPeriod,
};

/// A fresh P-256 key pair.
pub fn key() -> EcdsaKeyPair {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap()
}

/// The test-only key with private scalar 1 (public key = the P-256 base
/// point G), used for the published vector.
pub fn key_one() -> EcdsaKeyPair {
    let mut d = [0u8; 32];
    d[31] = 1;
    let g = hex::decode(concat!(
        "04",
        "6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296",
        "4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5"
    ))
    .unwrap();
    EcdsaKeyPair::from_private_key_and_public_key(
        &ECDSA_P256_SHA256_FIXED_SIGNING,
        &d,
        &g,
        &SystemRandom::new(),
    )
    .unwrap()
}

pub fn public(k: &EcdsaKeyPair) -> PublicKeyP256 {
    PublicKeyP256::from_sec1(k.public_key().as_ref()).unwrap()
}

/// 2026-01-01 00:00:00 UTC.
pub fn start() -> Time32 {
    Time32::from_unix(1_767_225_600).unwrap()
}

/// The root's to-be-signed fields used by the published vector.
pub fn root_tbs(k: &EcdsaKeyPair) -> ToBeSigned {
    let mut t = ToBeSigned::ca(
        "trustca-v2x-test-root",
        public(k),
        ValidityPeriod {
            start: start(),
            duration: Duration::Years(10),
        },
        vec![PsidGroupPermissions::all(
            2,
            PsidGroupPermissions::EE_APP | PsidGroupPermissions::EE_ENROL,
        )],
    );
    t.assurance_level = Some(SubjectAssurance::from_trust_level(5).unwrap());
    t.app_permissions = Some(vec![PsidSsp {
        psid: 622,
        ssp: None,
    }]);
    t
}

pub fn ca_tbs(k: &EcdsaKeyPair, enc: &EcdsaKeyPair) -> ToBeSigned {
    let mut t = ToBeSigned::ca(
        "pseudonym-ca.trustca.example",
        public(k),
        ValidityPeriod {
            start: start(),
            duration: Duration::Years(4),
        },
        vec![PsidGroupPermissions::all(1, PsidGroupPermissions::EE_APP)],
    );
    t.assurance_level = Some(SubjectAssurance::from_trust_level(4).unwrap());
    t.encryption_key = Some(public(enc));
    t.crl_series = 1;
    t
}

pub fn ticket_tbs(k: &EcdsaKeyPair) -> ToBeSigned {
    let mut t = ToBeSigned::authorization_ticket(
        public(k),
        ValidityPeriod {
            start: start(),
            duration: Duration::Hours(168),
        },
        vec![
            PsidSsp {
                psid: 36,
                ssp: Some(Ssp::Bitmap(vec![0x01, 0xff, 0xfc])),
            },
            PsidSsp {
                psid: 37,
                ssp: Some(Ssp::Opaque(vec![0x01, 0xff, 0xff, 0xff])),
            },
            PsidSsp {
                psid: 0x20_40_97,
                ssp: None,
            },
        ],
    );
    t.assurance_level = Some(SubjectAssurance::from_trust_level(3).unwrap());
    t
}

pub struct Chain {
    pub root_key: EcdsaKeyPair,
    pub ca_key: EcdsaKeyPair,
    pub ticket_key: EcdsaKeyPair,
    pub root: Certificate,
    pub ca: Certificate,
    pub ticket: Certificate,
}

pub fn chain() -> Chain {
    let root_key = key();
    let ca_key = key();
    let ticket_key = key();
    let root = Certificate::sign_root(root_tbs(&root_key), &root_key).unwrap();
    let ca = Certificate::issue(ca_tbs(&ca_key, &key()), &root, &root_key).unwrap();
    let ticket = Certificate::issue(ticket_tbs(&ticket_key), &ca, &ca_key).unwrap();
    Chain {
        root_key,
        ca_key,
        ticket_key,
        root,
        ca,
        ticket,
    }
}

/// A CA certificate that exercises every supported field and alternative:
/// a 200-character name (long-form length), every ssp and ssp-range
/// alternative (including the extension alternatives, encoded as open
/// types), non-default and negative chain parameters, a default `eeType`.
pub fn kitchen_sink_tbs(k: &EcdsaKeyPair, enc: &EcdsaKeyPair) -> ToBeSigned {
    let name: String = "kitchen-sink.".repeat(16).chars().take(200).collect();
    let mut t = ToBeSigned::ca(
        &name,
        public(k),
        ValidityPeriod {
            // Within the root's validity (issuance clamps to it).
            start: Time32(start().0 + 0x0102_0304),
            duration: Duration::SixtyHours(7),
        },
        vec![
            PsidGroupPermissions {
                subject_permissions: SubjectPermissions::Explicit(vec![
                    PsidSspRange {
                        psid: 36,
                        ssp_range: Some(SspRange::Bitmap {
                            value: vec![0x01, 0x02],
                            mask: vec![0xff, 0x00],
                        }),
                    },
                    PsidSspRange {
                        psid: 37,
                        ssp_range: Some(SspRange::All),
                    },
                    PsidSspRange {
                        psid: 38,
                        ssp_range: Some(SspRange::Opaque(vec![vec![], vec![1, 2, 3]])),
                    },
                    PsidSspRange {
                        psid: 39,
                        ssp_range: None,
                    },
                ]),
                min_chain_length: 3,
                chain_length_range: -1,
                ee_type: PsidGroupPermissions::EE_ENROL,
            },
            // eeType {app}: the DEFAULT, not encoded.
            PsidGroupPermissions::all(1, PsidGroupPermissions::EE_APP),
        ],
    );
    t.crl_series = 0xbeef;
    t.assurance_level = Some(SubjectAssurance(0x62));
    t.encryption_key = Some(public(enc));
    t.app_permissions = Some(vec![
        PsidSsp { psid: 0, ssp: None },
        PsidSsp {
            psid: u64::from(u32::MAX),
            ssp: Some(Ssp::Opaque(vec![])),
        },
        PsidSsp {
            psid: 300,
            ssp: Some(Ssp::Bitmap(vec![0xa5; 31])),
        },
    ]);
    t
}

/// The linkage data of the SCMS-style test ticket (with a group linkage
/// value when `group`).
pub fn linkage(group: bool) -> trustca_v2x::LinkageData {
    trustca_v2x::LinkageData {
        i_cert: 0x1234,
        linkage_value: [0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99],
        group_linkage_value: group.then_some(trustca_v2x::GroupLinkageValue {
            j_value: [0xde, 0xad, 0xbe, 0xef],
            value: [1, 2, 3, 4, 5, 6, 7, 8, 9],
        }),
    }
}

/// An SCMS-style authorization ticket with id `linkageData`, issued by
/// the chain's CA in the IEEE 1609.2 profile.
pub fn linked_ticket(c: &Chain, group: bool) -> Certificate {
    let tbs = ToBeSigned::linked_authorization_ticket(
        public(&c.ticket_key),
        ValidityPeriod {
            start: start(),
            duration: Duration::Hours(168),
        },
        vec![PsidSsp {
            psid: 32,
            ssp: Some(Ssp::Opaque(vec![0x01])),
        }],
        SubjectAssurance::from_trust_level(2).unwrap(),
        linkage(group),
        0x0102,
    );
    Certificate::issue_in(
        trustca_v2x::CertProfile::Ieee1609Dot2,
        tbs,
        &c.ca,
        &c.ca_key,
    )
    .unwrap()
}
