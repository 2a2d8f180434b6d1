//! The root's CTL and CRL in TS 102 941 format: signed by the root under
//! PSID 624 / 622, read back with every signature checked, refusals for
//! lists that are tampered with, signed by another key, under the other
//! PSID or carrying entries a root CA's CTL may not carry.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::*;
use trustca_etsi::trust_lists::{crl, rca_ctl, read_crl, read_rca_ctl, read_tlm_ectl, tlm_ectl};
use trustca_v2x::trust_lists::{CtlCommand, CtlEntry, CtlFormat};
use trustca_v2x::ts102941::EtsiTs102941Data;
use trustca_v2x::{EtsiSignedData, SignAs, SignedPayload, Time32};

fn entries(h: &Hierarchy) -> Vec<CtlEntry> {
    vec![
        CtlEntry::Ea {
            certificate: h.ea.clone(),
            aa_access_point: "http://ea.example/etsi/ea/authorization-validation".into(),
            its_access_point: Some("http://ea.example/etsi/ea/enrolment".into()),
        },
        CtlEntry::Aa {
            certificate: h.aa.clone(),
            access_point: "http://aa.example/etsi/aa/authorization".into(),
        },
        CtlEntry::Dc {
            url: "http://dc.example/etsi/dc/".into(),
            roots: vec![h.root.hashed_id8()],
        },
    ]
}

#[test]
fn the_root_signs_a_ctl_that_stations_read_back() {
    let h = Hierarchy::new();
    let next = Time32::from_unix(NOW + 7 * 86_400).unwrap();
    let bytes = rca_ctl(&h.root, &h.root_key, entries(&h), 3, next, NOW).unwrap();
    let ctl = read_rca_ctl(&bytes, &h.root).unwrap();
    assert!(ctl.is_full);
    assert_eq!((ctl.sequence, ctl.next_update), (3, next));
    assert_eq!(
        ctl.commands,
        entries(&h)
            .into_iter()
            .map(|e| CtlCommand::Add(Box::new(e)))
            .collect::<Vec<_>>()
    );
    let signed = EtsiSignedData::from_coer(&bytes).unwrap();
    assert_eq!(signed.psid(), 624);
    // Tampered: every octet flip in the list is caught.
    let mut bad = bytes.clone();
    let at = bad.len() / 2;
    bad[at] ^= 1;
    assert!(read_rca_ctl(&bad, &h.root).is_err());
    // Signed by the EA's key under the root's name: refused.
    let forged = rca_ctl(&h.root, &h.ea_key, entries(&h), 3, next, NOW);
    assert!(forged.is_err() || read_rca_ctl(&forged.unwrap(), &h.root).is_err());
    // Another root is not this list's signer.
    let other = Hierarchy::new();
    assert!(read_rca_ctl(&bytes, &other.root).is_err());
    // A root CA's CTL lists no roots.
    let with_root = vec![CtlEntry::Rca {
        certificate: h.root.clone(),
        link: None,
    }];
    assert!(rca_ctl(&h.root, &h.root_key, with_root.clone(), 1, next, NOW).is_err());
    let smuggled = EtsiTs102941Data::RcaCtl(CtlFormat {
        next_update: next,
        is_full: true,
        sequence: 1,
        commands: with_root
            .into_iter()
            .map(|e| CtlCommand::Add(Box::new(e)))
            .collect(),
    })
    .to_coer();
    assert!(EtsiTs102941Data::from_coer(&smuggled).is_err());
    // A full CTL deletes nothing.
    let delete = EtsiTs102941Data::RcaCtl(CtlFormat {
        next_update: next,
        is_full: true,
        sequence: 1,
        commands: vec![CtlCommand::DeleteCertificate([1; 8])],
    })
    .to_coer();
    assert!(EtsiTs102941Data::from_coer(&delete).is_err());
}

#[test]
fn the_root_signs_a_crl_and_a_ctl_is_not_a_crl() {
    let h = Hierarchy::new();
    let this = Time32::from_unix(NOW).unwrap();
    let next = Time32::from_unix(NOW + 86_400).unwrap();
    let revoked = vec![h.aa.hashed_id8(), [9; 8]];
    let bytes = crl(&h.root, &h.root_key, revoked.clone(), this, next, NOW).unwrap();
    let list = read_crl(&bytes, &h.root).unwrap();
    assert_eq!(list.entries, revoked);
    assert_eq!((list.this_update, list.next_update), (this, next));
    assert_eq!(EtsiSignedData::from_coer(&bytes).unwrap().psid(), 622);
    let ctl = rca_ctl(&h.root, &h.root_key, entries(&h), 1, next, NOW).unwrap();
    assert!(read_crl(&ctl, &h.root).is_err());
    assert!(read_rca_ctl(&bytes, &h.root).is_err());
    // A CRL under the CTL's PSID (signed directly) is refused by the reader.
    let signed = EtsiSignedData::from_coer(&bytes).unwrap();
    let data = EtsiTs102941Data::from_coer(signed.data().unwrap()).unwrap();
    let wrong = EtsiSignedData::sign(
        SignedPayload::Data(&data.to_coer()),
        624,
        1,
        SignAs::Digest(&h.root),
        &h.root_key,
    )
    .unwrap();
    assert!(read_crl(wrong.as_coer(), &h.root).is_err());
    // The EA may not sign CRLs (no PSID 622 in its certificate).
    assert!(crl(&h.ea, &h.ea_key, vec![], this, next, NOW).is_err());
    // Truncations never panic and never pass.
    for n in 0..bytes.len() {
        assert!(read_crl(&bytes[..n], &h.root).is_err());
    }
}

#[test]
fn a_trust_list_manager_recognises_several_roots() {
    let (tlm, tlm_key) = tlm();
    let (a, b) = (Hierarchy::new(), Hierarchy::new());
    let next = Time32::from_unix(NOW + 30 * 86_400).unwrap();
    let listed = ectl_entries(&a, &b);
    let bytes = tlm_ectl(&tlm, &tlm_key, listed.clone(), 1, next, NOW).unwrap();
    let (ectl, roots) = read_tlm_ectl(&bytes, &tlm).unwrap();
    assert_eq!(roots, vec![a.root.clone(), b.root.clone()]);
    assert_eq!(ectl.commands.len(), 3);
    assert_eq!(EtsiSignedData::from_coer(&bytes).unwrap().psid(), 624);
    rasn_its_certificate(tlm.as_coer());
    // Each recognised root's own CTL reads with the root the ECTL gave.
    let ctl = rca_ctl(&b.root, &b.root_key, entries(&b), 1, next, NOW).unwrap();
    read_rca_ctl(&ctl, &roots[1]).unwrap();
    // Not a root CA's CTL, and a root's CTL is not an ECTL.
    assert!(read_rca_ctl(&bytes, &tlm).is_err());
    assert!(read_tlm_ectl(&ctl, &b.root).is_err());
    // Signed by another key under the TLM's name; another TLM.
    let forged = tlm_ectl(&tlm, &a.root_key, listed, 1, next, NOW);
    assert!(forged.is_err() || read_tlm_ectl(&forged.unwrap(), &tlm).is_err());
    assert!(read_tlm_ectl(&bytes, &common::tlm().0).is_err());
    // No EAs or AAs on an ECTL; no root that is not self-signed.
    let ea = entries(&a).remove(0);
    assert!(tlm_ectl(&tlm, &tlm_key, vec![ea], 1, next, NOW).is_err());
    let not_root = vec![CtlEntry::Rca {
        certificate: a.ea.clone(),
        link: None,
    }];
    assert!(tlm_ectl(&tlm, &tlm_key, not_root, 1, next, NOW).is_err());
    // Truncations never panic and never pass.
    for n in 0..bytes.len() {
        assert!(read_tlm_ectl(&bytes[..n], &tlm).is_err());
    }
}
