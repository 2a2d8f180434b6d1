//! The trust list a snapshot carries (version 3): the root's signed list
//! of recognised foreign roots ([`crate::trust_list`]), byte for byte as
//! the root issued it, so an offline decision recognises the same foreign
//! peers the online `Decide` does.
//!
//! The list travels with its own signature: the snapshot's signer (a
//! trust responder) only carries it, and the offline verifier checks the
//! root's signature and the list's `nextUpdate` itself before it counts a
//! foreign peer, exactly as `trustca sector import --trust-list` did. A
//! list that no longer verifies recognises nothing; the rest of the
//! snapshot still decides about this root's own devices.

use time::OffsetDateTime;

use crate::chain::VerifiedChain;
use crate::der::{self, Reader};
use crate::extension::ExtensionOid;
use crate::trust_list::TrustList;
use crate::{ModelError, SectorName, TrustLevel};
use x509_parser::prelude::FromDer;
use x509_parser::revocation_list::CertificateRevocationList;

/// `trustList [2] IMPLICIT OCTET STRING`: context-specific, primitive, 2.
pub(crate) const TAG_TRUST_LIST: u8 = 0x82;

/// At most this many bytes of signed trust list (64 roots of a few KiB).
pub const MAX_TRUST_LIST_BYTES: usize = 1 << 20;
/// `foreignCrls [3] IMPLICIT SEQUENCE OF CertificateList`: context-specific,
/// constructed, 3.
const TAG_FOREIGN_CRLS: u8 = 0xa3;
/// At most this many foreign CRLs, as `serve` reads from `DATA/crl/foreign/`.
pub const MAX_FOREIGN_CRLS: usize = 64;
/// At most this many bytes per foreign CRL.
pub const MAX_FOREIGN_CRL_BYTES: usize = 16 << 20;

fn bad(m: impl Into<String>) -> ModelError {
    ModelError::InvalidSnapshot(m.into())
}

/// Checks that `list` is within bounds and decodes as a trust list. The
/// signature is not checked here: the codec has no root; the decision
/// does ([`foreign_peer`]).
pub(crate) fn validate(list: &[u8]) -> Result<(), ModelError> {
    if list.is_empty() || list.len() > MAX_TRUST_LIST_BYTES {
        return Err(bad(format!(
            "trust list must be 1-{MAX_TRUST_LIST_BYTES} bytes"
        )));
    }
    TrustList::decode_unchecked(list).map_err(|e| bad(format!("trust list: {e}")))?;
    Ok(())
}

/// Whether `crl` may be carried: one whole DER X.509 CRL of at most
/// [`MAX_FOREIGN_CRL_BYTES`] (the publisher leaves out what is not).
pub fn is_carriable_crl(crl: &[u8]) -> bool {
    crl.len() <= MAX_FOREIGN_CRL_BYTES
        && matches!(CertificateRevocationList::from_der(crl), Ok((rest, _)) if rest.is_empty())
}

/// Checks the foreign CRLs a snapshot carries: only beside a trust list,
/// at most [`MAX_FOREIGN_CRLS`], each a whole DER CRL of at most
/// [`MAX_FOREIGN_CRL_BYTES`], sorted bytewise without duplicates. Their
/// signatures are checked where they are used, against a peer's CA.
pub(crate) fn validate_crls(s: &crate::TrustSnapshot) -> Result<(), ModelError> {
    if s.foreign_crls.is_empty() {
        return Ok(());
    }
    if s.trust_list.is_none() {
        return Err(bad("foreign CRLs are carried only with a trust list"));
    }
    if s.foreign_crls.len() > MAX_FOREIGN_CRLS {
        return Err(bad(format!("more than {MAX_FOREIGN_CRLS} foreign CRLs")));
    }
    for (i, crl) in s.foreign_crls.iter().enumerate() {
        if !is_carriable_crl(crl) {
            return Err(bad(format!(
                "foreign CRL {i} is not one DER X.509 CRL of at most {MAX_FOREIGN_CRL_BYTES} bytes"
            )));
        }
    }
    crate::snapshot::strictly_sorted("foreign CRLs", &s.foreign_crls, |a, b| a.cmp(b))
}

/// Appends `[2] IMPLICIT OCTET STRING` holding the signed list, then the
/// foreign CRLs as `[3]` when there are any.
pub(crate) fn encode(body: &mut Vec<u8>, list: &[u8], crls: &[Vec<u8>]) {
    der::write_tlv(body, TAG_TRUST_LIST, list);
    if !crls.is_empty() {
        der::write_tlv(body, TAG_FOREIGN_CRLS, &crls.concat());
    }
}

/// Reads the `[2]` field (the caller knows it must be there) and the
/// optional `[3]` after it.
pub(crate) fn decode(r: &mut Reader<'_>) -> Result<(Vec<u8>, Vec<Vec<u8>>), ModelError> {
    let list = r.read(TAG_TRUST_LIST).map_err(bad)?.to_vec();
    validate(&list)?;
    let mut crls = Vec::new();
    if r.peek_tag() == Some(TAG_FOREIGN_CRLS) {
        let mut seq = Reader::new(r.read(TAG_FOREIGN_CRLS).map_err(bad)?);
        while !seq.is_empty() {
            if crls.len() == MAX_FOREIGN_CRLS {
                return Err(bad(format!("more than {MAX_FOREIGN_CRLS} foreign CRLs")));
            }
            crls.push(seq.read_tlv(der::TAG_SEQUENCE).map_err(bad)?.to_vec());
        }
        if crls.is_empty() {
            return Err(bad(
                "an empty foreignCrls field (absent when there are none)",
            ));
        }
    }
    Ok((list, crls))
}

/// A peer accepted through the carried list: its chain, sector, level
/// and the note the online engine gives.
pub(crate) struct ForeignPeer {
    pub(crate) verified: VerifiedChain,
    pub(crate) sector: SectorName,
    pub(crate) level: TrustLevel,
    pub(crate) note: String,
}

/// Tries a peer chain that did not verify to `root_der` against the
/// carried `list`: the list must be signed by that root and current at
/// `now`, then the chain must verify to a listed root for a sector its
/// entry names (the rule the online `Decide` applies). `Err` says why not.
pub(crate) fn foreign_peer(
    list: &[u8],
    peer_chain: &[Vec<u8>],
    root_der: &[u8],
    now: OffsetDateTime,
    oid: &ExtensionOid,
) -> Result<ForeignPeer, String> {
    let list = TrustList::verify(list, root_der, now)
        .map_err(|e| format!("the snapshot's trust list is not in force: {e}"))?;
    let verified = list.verify_foreign_chain(peer_chain, now, oid)?;
    let ext = verified
        .extension
        .as_ref()
        .ok_or("it carries no trust-level extension")?;
    let level = ext
        .level
        .ok_or("the foreign device's certificate carries no trust level")?;
    let sector = ext.sector.clone();
    let note = list.foreign_note(&sector, level);
    Ok(ForeignPeer {
        verified,
        sector,
        level,
        note,
    })
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;
    use crate::snapshot::tests::{pki::Pki, sample};
    use crate::snapshot::{EmbeddedPolicy, TrustSnapshot, decide_offline};
    use crate::trust_list::{ListSignatureAlgorithm, TrustListEntry};

    const NOW: OffsetDateTime = datetime!(2026-11-23 12:00 UTC);

    /// The snapshot tests' cooperation policy, its one rule for hems
    /// callers and railway peers.
    fn coop() -> String {
        crate::snapshot::tests::COOP
            .replace("\"c1\"", "\"c2\"")
            .replace("hems-local", "hems-rail")
            .replace("peer = \"hems\"", "peer = \"railway\"")
    }
    const RECOG: &str = r#"version = "r2"
foreign = ["railway"]
[[recognition]]
sector = "hems"
counts = "railway"
map = [1, 2, 3, 3, 4]
rationale = "test"
"#;

    /// A list signed by `signer`'s root, issued under `issuer`'s name,
    /// naming `listed`'s root for `sectors`, valid until `next_update`.
    fn list(signer: &Pki, issuer: &Pki, listed: &Pki, sectors: &[&str]) -> Vec<u8> {
        let (_, issuer_cert) =
            x509_parser::parse_x509_certificate(&issuer.root_der).expect("parse");
        let l = TrustList {
            issuer: issuer_cert.subject().as_raw().to_vec(),
            sequence: 3,
            this_update: NOW - time::Duration::days(1),
            next_update: NOW + time::Duration::days(30),
            entries: vec![TrustListEntry {
                certificate: listed.root_der.clone(),
                sectors: sectors
                    .iter()
                    .map(|s| SectorName::new(s).expect("sector"))
                    .collect(),
            }],
        };
        let tbs = l.tbs_der().expect("tbs");
        TrustList::assemble(
            &tbs,
            ListSignatureAlgorithm::EcdsaSha256,
            &signer.root_sign(&tbs),
        )
        .expect("assemble")
    }

    fn version_of(snapshot: &[u8]) -> u64 {
        let mut outer = Reader::new(snapshot);
        let mut body = Reader::new(outer.read(der::TAG_SEQUENCE).expect("body"));
        body.read_small_uint(der::TAG_INTEGER).expect("version")
    }

    fn carrying(list: Option<Vec<u8>>) -> TrustSnapshot {
        let mut s = sample();
        s.devices.clear();
        s.revoked_certificates.clear();
        s.blocked_keys.clear();
        s.cooperation_policy = EmbeddedPolicy {
            version: "c2".into(),
            text: coop(),
        };
        s.recognition_policy = EmbeddedPolicy {
            version: "r2".into(),
            text: RECOG.into(),
        };
        s.trust_list = list;
        s
    }

    #[test]
    fn version_3_round_trips_with_and_without_systems() {
        let (ours, rail) = (Pki::new(), Pki::for_sector("railway"));
        let s = carrying(Some(list(&ours, &ours, &rail, &["railway"])));
        let der = s.to_der().expect("encodes");
        assert_eq!(version_of(&der), 3);
        let back = TrustSnapshot::from_der(&der).expect("decodes");
        assert_eq!(back, s);
        assert_eq!(back.to_der().expect("re-encodes"), der);
        let mut with_systems = crate::snapshot_systems::tests::with_system();
        with_systems.trust_list = s.trust_list.clone();
        let der = with_systems.to_der().expect("encodes");
        assert_eq!(
            TrustSnapshot::from_der(&der).expect("decodes"),
            with_systems
        );
        // Without a list, a snapshot stays version 1 byte for byte.
        assert_eq!(version_of(&carrying(None).to_der().expect("encodes")), 1);
    }

    #[test]
    fn a_damaged_or_misplaced_list_is_refused() {
        let (ours, rail) = (Pki::new(), Pki::for_sector("railway"));
        let good = list(&ours, &ours, &rail, &["railway"]);
        // Not a trust list at all.
        let mut s = carrying(Some(vec![0x30, 0x00]));
        let e = s.to_der().unwrap_err().to_string();
        assert!(e.contains("trust list"), "{e}");
        s.trust_list = Some(Vec::new());
        assert!(s.to_der().is_err());
        s.trust_list = Some(vec![0x30; MAX_TRUST_LIST_BYTES + 1]);
        assert!(s.to_der().is_err());
        // A version 1 snapshot with a list field appended, and a version 3
        // one with the list cut off.
        let v1 = carrying(None).to_der().expect("encodes");
        let v3 = carrying(Some(good.clone())).to_der().expect("encodes");
        let body_of = |der: &[u8]| {
            let mut r = Reader::new(der);
            r.read(der::TAG_SEQUENCE).expect("seq").to_vec()
        };
        let seq = |body: &[u8]| {
            let mut out = Vec::new();
            der::write_tlv(&mut out, der::TAG_SEQUENCE, body);
            out
        };
        let mut appended = body_of(&v1);
        encode(&mut appended, &good, &[]);
        let e = TrustSnapshot::from_der(&seq(&appended))
            .unwrap_err()
            .to_string();
        assert!(e.contains("trailing"), "{e}");
        let mut body = body_of(&v3);
        let cut = body.len() - good.len() - 4;
        body.truncate(cut);
        assert!(TrustSnapshot::from_der(&seq(&body)).is_err());
        // The list's bytes damaged inside a snapshot.
        let mut damaged = v3.clone();
        let at = damaged.len() - good.len() + 3;
        damaged[at] ^= 0xff;
        assert!(TrustSnapshot::from_der(&damaged).is_err());
    }

    #[test]
    fn offline_decide_recognises_only_what_the_carried_list_does() {
        let (ours, rail, stranger) = (
            Pki::new(),
            Pki::for_sector("railway"),
            Pki::for_sector("railway"),
        );
        let cas = vec![ours.sector_ca_der.clone()];
        let (caller, _) = ours.device("CALLER1", &[0x21], 4);
        let (train, _) = rail.device("T1", &[0x31], 5);
        let (other_train, _) = stranger.device("T2", &[0x32], 5);
        let decide = |s: &TrustSnapshot, peer: &[Vec<u8>], now| {
            decide_offline(
                s,
                &caller,
                peer,
                &cas,
                "remote-control",
                &ours.root_der,
                now,
                &ours.oid,
            )
            .expect("decides")
        };
        let listed = carrying(Some(list(&ours, &ours, &rail, &["railway"])));
        // Railway Lv.5 counts as hems Lv.4: control is allowed.
        let d = decide(&listed, &train, NOW);
        assert!(d.outcome.allow, "{:?}", d.outcome.reasons);
        assert_eq!(d.outcome.peer_level.map(|l| l.get()), Some(4));
        assert_eq!(d.peer_sector, "railway");
        assert_eq!(d.peer_identity, "urn:trustca:railway:Acme:HB-1:T1");
        assert!(
            d.outcome
                .reasons
                .iter()
                .any(|r| r.contains("trust list #3")),
            "{:?}",
            d.outcome.reasons
        );
        // A root the list does not name.
        let d = decide(&listed, &other_train, NOW);
        assert!(!d.outcome.allow);
        assert!(
            d.outcome.reasons[0].contains("nor to any of the 1 root(s) on the trust list (#3)"),
            "{:?}",
            d.outcome.reasons
        );
        // No list carried: refused as before.
        let d = decide(&carrying(None), &train, NOW);
        assert!(!d.outcome.allow);
        assert!(d.outcome.reasons[0].starts_with("peer certificate rejected:"));
        assert!(!d.outcome.reasons[0].contains("trust list"));
        // The listed root named for another sector only.
        let d = decide(
            &carrying(Some(list(&ours, &ours, &rail, &["shipping"]))),
            &train,
            NOW,
        );
        assert!(!d.outcome.allow);
        assert!(
            d.outcome.reasons[0].contains("does not let vouch for sector railway"),
            "{:?}",
            d.outcome.reasons
        );
        // A list the snapshot's responder could have made up: signed by
        // another key under our root's name.
        let forged = carrying(Some(list(&stranger, &ours, &rail, &["railway"])));
        let d = decide(&forged, &train, NOW);
        assert!(!d.outcome.allow);
        assert!(
            d.outcome.reasons[0].contains("trust list is not in force"),
            "{:?}",
            d.outcome.reasons
        );
        // Past the list's nextUpdate (the snapshot itself may be stale).
        let d = decide(&listed, &train, NOW + time::Duration::days(31));
        assert!(!d.outcome.allow);
        assert!(
            d.outcome.reasons[0].contains("nextUpdate"),
            "{:?}",
            d.outcome.reasons
        );
        // Our own devices decide as before.
        let (peer, _) = ours.device("PEER1", &[0x22], 4);
        let d = decide(&listed, &peer, NOW);
        assert_eq!(d.peer_sector, "hems");
    }

    #[test]
    fn foreign_crls_travel_with_the_list_and_revoke_offline() {
        let (ours, rail, stranger) = (
            Pki::new(),
            Pki::for_sector("railway"),
            Pki::for_sector("railway"),
        );
        let (train, _) = rail.device("T1", &[0x31], 5);
        let revoking = rail.crl(NOW, &[&[0x31]]);
        let clean = rail.crl(NOW, &[&[0x77]]);
        // The unlisted root's railway CA has the same name: its CRL does
        // not verify under the train's CA.
        let same_name = stranger.crl(NOW, &[]);
        let mut s = carrying(Some(list(&ours, &ours, &rail, &["railway"])));
        s.foreign_crls = vec![revoking.clone()];
        let der = s.to_der().expect("encodes");
        assert_eq!(TrustSnapshot::from_der(&der).expect("decodes"), s);

        let cas = vec![ours.sector_ca_der.clone()];
        let (caller, _) = ours.device("CALLER1", &[0x21], 4);
        let decide = |s: &TrustSnapshot| {
            decide_offline(
                s,
                &caller,
                &train,
                &cas,
                "read-telemetry",
                &ours.root_der,
                NOW,
                &ours.oid,
            )
            .expect("decides")
        };
        let d = decide(&s);
        assert!(!d.outcome.allow);
        assert!(
            d.outcome
                .reasons
                .iter()
                .any(|r| r.contains("certificate revoked (key-compromise) on CRL #7")),
            "{:?}",
            d.outcome.reasons
        );
        s.foreign_crls = vec![clean];
        let d = decide(&s);
        assert!(d.outcome.allow, "{:?}", d.outcome.reasons);
        assert!(
            d.outcome
                .reasons
                .iter()
                .any(|r| r.starts_with("not on CRL #7"))
        );
        s.foreign_crls = vec![same_name.clone()];
        let d = decide(&s);
        assert!(!d.outcome.allow);
        assert!(
            d.outcome.reasons[0].contains("cannot be relied on"),
            "{:?}",
            d.outcome.reasons
        );
        // Beside the real one, the one that verifies counts.
        s.foreign_crls = vec![same_name, revoking.clone()];
        s.foreign_crls.sort();
        let d = decide(&s);
        assert!(
            d.outcome
                .reasons
                .iter()
                .any(|r| r.contains("certificate revoked")),
            "{:?}",
            d.outcome.reasons
        );

        // Refused by the codec: CRLs without a list, garbage, disorder.
        let mut bad = carrying(None);
        bad.foreign_crls = vec![revoking.clone()];
        assert!(bad.to_der().is_err());
        let mut bad = s.clone();
        bad.foreign_crls = vec![vec![0x30, 0x00]];
        assert!(
            bad.to_der()
                .unwrap_err()
                .to_string()
                .contains("foreign CRL 0")
        );
        let mut bad = s.clone();
        bad.foreign_crls.reverse();
        assert!(bad.to_der().is_err());
        let mut bad = s;
        bad.foreign_crls = vec![revoking.clone(), revoking];
        assert!(bad.to_der().unwrap_err().to_string().contains("duplicates"));
    }
}
