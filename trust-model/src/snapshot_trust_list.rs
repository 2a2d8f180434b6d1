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

/// `trustList [2] IMPLICIT OCTET STRING`: context-specific, primitive, 2.
pub(crate) const TAG_TRUST_LIST: u8 = 0x82;

/// At most this many bytes of signed trust list (64 roots of a few KiB).
pub const MAX_TRUST_LIST_BYTES: usize = 1 << 20;

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

/// Appends `[2] IMPLICIT OCTET STRING` holding the signed list.
pub(crate) fn encode(body: &mut Vec<u8>, list: &[u8]) {
    der::write_tlv(body, TAG_TRUST_LIST, list);
}

/// Reads the `[2]` field (the caller knows it must be there).
pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Vec<u8>, ModelError> {
    let list = r.read(TAG_TRUST_LIST).map_err(bad)?.to_vec();
    validate(&list)?;
    Ok(list)
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
        encode(&mut appended, &good);
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
}
