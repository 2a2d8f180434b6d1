//! The separated V2X authorities end to end, in one process with four
//! stores: issuance through RA → PCA → vehicle, batching and shuffling,
//! resolution, revocation by linkage seeds, and the attacker who holds one
//! authority's complete store.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use crate::common;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use common::{NOW, hierarchy_with, hierarchy_with_crl_signer};
use trustca_pseudonym::Caterpillar;
use trustca_scms::resolution::{ResolutionCase, identify};
use trustca_scms::{
    BatchPolicy, LinkageCrl, LocalDeployment, PseudonymCaApi, ScmsError, TicketOpener,
    TicketProfile, TicketRequest, TicketResponse, VehicleCredential,
};
use trustca_store::Storage;
use trustca_v2x::{
    CertProfile, Certificate, CertificateId, PsidGroupPermissions, PublicKeyP256, Time32,
};

struct World {
    _dir: tempfile::TempDir,
    d: LocalDeployment,
    root: Certificate,
    pca_cert: Certificate,
    profile: TicketProfile,
}

fn world(policy: BatchPolicy) -> World {
    world_with(policy, TicketProfile::default())
}

fn world_with(policy: BatchPolicy, profile: TicketProfile) -> World {
    let dir = tempfile::tempdir().unwrap();
    let h = hierarchy_with_crl_signer();
    let d = LocalDeployment::open_with_crl_signer(
        dir.path(),
        profile.clone(),
        policy,
        Arc::new(h.pca_key),
        h.pca.clone(),
        (Arc::new(h.crl_key), h.crl),
    )
    .unwrap();
    World {
        _dir: dir,
        d,
        root: h.root,
        pca_cert: h.pca,
        profile,
    }
}

fn eager() -> BatchPolicy {
    BatchPolicy {
        min_vehicles: 1,
        max_wait_secs: 0,
        max_requests_per_batch: 10_000,
    }
}

fn vehicle(n: usize, level: u8) -> VehicleCredential {
    VehicleCredential {
        id: format!("urn:trustca:mobility:acme:car-{n}"),
        level,
    }
}

fn linkage(cert: &Certificate) -> (u16, [u8; 9]) {
    match &cert.tbs().id {
        CertificateId::LinkageData(l) => (l.i_cert, l.linkage_value),
        other => panic!("ticket id is {other:?}"),
    }
}

/// Opens everything waiting for `v` at the RA.
fn collect(
    w: &World,
    v: &VehicleCredential,
    cat: &Caterpillar,
    first: u64,
    periods: u32,
) -> Vec<trustca_scms::OpenedTicket> {
    let opener = TicketOpener::new(
        cat,
        &w.pca_cert,
        first,
        periods,
        w.profile.certificates_per_period,
    )
    .unwrap();
    w.d.ra
        .download(v)
        .unwrap()
        .iter()
        .filter_map(|r| opener.open(r).ok())
        .collect()
}

#[test]
fn tickets_reach_the_vehicle_as_ieee_1609_2_with_level_and_linkage() {
    let w = world(eager());
    let current = w.profile.period_at(NOW).unwrap();
    let cpp = w.profile.certificates_per_period;
    let (lv3, lv4) = (vehicle(1, 3), vehicle(2, 4));
    let (cat3, cat4) = (
        Caterpillar::generate().unwrap(),
        Caterpillar::generate().unwrap(),
    );
    assert_eq!(
        w.d.ra.submit(&lv3, &cat3.request(), None, 2, NOW).unwrap(),
        2 * cpp
    );
    w.d.ra.submit(&lv4, &cat4.request(), None, 2, NOW).unwrap();
    assert_eq!(w.d.ra.flush(NOW, false).unwrap() as u32, 4 * cpp);

    let t3 = collect(&w, &lv3, &cat3, current, 2);
    let t4 = collect(&w, &lv4, &cat4, current, 2);
    assert_eq!(t3.len() as u32, 2 * cpp);
    assert_eq!(t4.len() as u32, 2 * cpp);
    // A vehicle cannot open another's responses.
    let opener = TicketOpener::new(&cat3, &w.pca_cert, current, 2, cpp).unwrap();
    for r in w.d.ra.download(&lv4).unwrap() {
        assert!(opener.open(&r).is_err());
    }
    let mut lvs = HashSet::new();
    let mut keys = HashSet::new();
    for t in t3.iter().chain(&t4) {
        let c = &t.certificate;
        // Re-parse as received: a 1609.2 certificate, outside the ETSI
        // profile only because of linkageData.
        let again = Certificate::from_coer_in(CertProfile::Ieee1609Dot2, c.as_coer()).unwrap();
        again.verify_signed_by(Some(&w.pca_cert)).unwrap();
        assert!(!c.conforms_to(CertProfile::EtsiTs103097));
        assert!(c.as_coer().len() < 200, "{} bytes", c.as_coer().len());
        let (i, value) = linkage(c);
        assert_eq!(u64::from(i), t.period);
        assert!(lvs.insert(value), "linkage values repeat");
        assert!(keys.insert(c.tbs().verification_key));
        // Valid from the period's start, or from the pseudonym CA's if the
        // period began before it existed (clamped to the issuer), and never
        // past the issuer's validity.
        let period_start =
            Time32::from_unix(w.profile.epoch + t.period as i64 * w.profile.period_seconds())
                .unwrap();
        let issuer = w.pca_cert.tbs().validity;
        assert!(c.tbs().validity.contains(period_start.max(issuer.start)));
        assert!(c.tbs().validity.within(&issuer));
        assert_eq!(c.tbs().crl_series, w.profile.crl_series);
        assert_eq!(c.tbs().craca_id, w.root.hashed_id3());
    }
    let level_of =
        |t: &trustca_scms::OpenedTicket| t.certificate.tbs().assurance_level.unwrap().trust_level();
    assert!(t3.iter().all(|t| level_of(t) == Some(3)));
    assert!(t4.iter().all(|t| level_of(t) == Some(4)));
    let psids = |t: &trustca_scms::OpenedTicket| -> Vec<u64> {
        t.certificate
            .tbs()
            .app_permissions
            .as_ref()
            .unwrap()
            .iter()
            .map(|p| p.psid)
            .collect()
    };
    assert_eq!(psids(&t3[0]), vec![36, 37]);
    assert_eq!(psids(&t4[0]), vec![36, 37, 639]);
    // Each ticket key is the vehicle's: p·G equals the certified key.
    for t in &t3 {
        let pk = t.private_key.public_key().to_sec1_uncompressed();
        assert_eq!(
            PublicKeyP256::from_sec1(&pk).unwrap(),
            t.certificate.tbs().verification_key
        );
    }
}

/// A vehicle with two sets of tickets for one period could pose as two
/// vehicles: the RA refuses a period already queued or issued, before and
/// after the batch, and the refusal changes nothing.
#[test]
fn one_set_of_tickets_per_vehicle_and_period() {
    let w = world(BatchPolicy {
        min_vehicles: 2,
        max_wait_secs: 3600,
        max_requests_per_batch: 10_000,
    });
    let current = w.profile.period_at(NOW).unwrap();
    let car = vehicle(1, 3);
    let cat = Caterpillar::generate().unwrap();
    w.d.ra
        .submit(&car, &cat.request(), Some(current), 2, NOW)
        .unwrap();
    let err =
        w.d.ra
            .submit(
                &car,
                &Caterpillar::generate().unwrap().request(),
                Some(current + 1),
                1,
                NOW,
            )
            .unwrap_err();
    assert!(err.to_string().contains("already issued"), "{err}");
    assert_eq!(w.d.ra.queued(), (1, 40));
    w.d.ra.flush(NOW, true).unwrap();
    assert!(
        w.d.ra
            .submit(&car, &cat.request(), Some(current), 1, NOW)
            .is_err()
    );
    // Later periods are fine, and another vehicle's same period too.
    w.d.ra
        .submit(&car, &cat.request(), Some(current + 2), 1, NOW)
        .unwrap();
    w.d.ra
        .submit(&vehicle(2, 3), &cat.request(), Some(current), 1, NOW)
        .unwrap();
}

#[test]
fn a_profile_beyond_the_issuer_permissions_is_refused() {
    // CAM and DENM only: the shipped profile also grants CPM (639).
    let (_root, narrow, pca_key) = hierarchy_with(PsidGroupPermissions {
        subject_permissions: trustca_v2x::SubjectPermissions::Explicit(
            [36, 37]
                .into_iter()
                .map(|psid| trustca_v2x::PsidSspRange {
                    psid,
                    ssp_range: Some(trustca_v2x::SspRange::All),
                })
                .collect(),
        ),
        min_chain_length: 1,
        chain_length_range: 0,
        ee_type: PsidGroupPermissions::EE_APP,
    });
    let err = TicketProfile::default()
        .check_issuable(&narrow)
        .unwrap_err();
    assert!(err.to_string().contains("PSID 639"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    assert!(
        LocalDeployment::open(
            dir.path(),
            TicketProfile::default(),
            eager(),
            Arc::new(pca_key),
            narrow
        )
        .is_err()
    );
}

#[test]
fn bad_requests_are_refused_and_change_nothing() {
    let w = world(eager());
    let cat = Caterpillar::generate().unwrap();
    let err =
        w.d.ra
            .submit(&vehicle(1, 1), &cat.request(), None, 1, NOW)
            .unwrap_err();
    assert!(
        matches!(err, ScmsError::LevelTooLow { level: 1, .. }),
        "{err}"
    );
    for (first, periods) in [(None, 0), (None, 53), (Some(0), 1), (Some(100_000), 1)] {
        assert!(
            w.d.ra
                .submit(&vehicle(1, 3), &cat.request(), first, periods, NOW)
                .is_err()
        );
    }
    assert_eq!(w.d.ra.queued(), (0, 0));
    assert_eq!(
        w.d.stores[2].audit_head().unwrap().0,
        0,
        "no linkage chain was made"
    );
    // A forged request reaches the PCA: the pre-linkage values do not open.
    let good = {
        w.d.ra
            .submit(&vehicle(2, 3), &cat.request(), None, 1, NOW)
            .unwrap();
        let spy = Spy::default();
        let ra = trustca_scms::RegistrationAuthority::new(
            w.d.stores[0].clone(),
            &[9; 32],
            [w.d.linkage[0].clone(), w.d.linkage[1].clone()],
            Arc::new(spy.clone()),
            w.profile.clone(),
            eager(),
        )
        .unwrap();
        ra.submit(&vehicle(3, 3), &cat.request(), None, 1, NOW)
            .unwrap();
        ra.flush(NOW, true).unwrap();
        spy.batches.lock().unwrap()[0][0].clone()
    };
    let mut swapped = good.clone();
    swapped.plv = [good.plv[1].clone(), good.plv[0].clone()];
    let mut moved = good.clone();
    moved.period += 1;
    let before = w.d.stores[1].audit_head().unwrap();
    let answers = w.d.pca.issue_batch(&[swapped, moved], NOW).unwrap();
    assert!(answers.iter().all(|a| a.outcome.is_err()));
    assert_eq!(
        w.d.stores[1].audit_head().unwrap(),
        before,
        "nothing stored"
    );
    assert_eq!(
        TicketRequest::from_bytes(&good.to_bytes())
            .unwrap()
            .to_bytes(),
        good.to_bytes()
    );
    assert!(TicketRequest::from_bytes(&good.to_bytes()[1..]).is_err());
}

/// A pseudonym CA stand-in that records the batches it is sent.
#[derive(Debug, Clone, Default)]
struct Spy {
    batches: Arc<Mutex<Vec<Vec<TicketRequest>>>>,
}

impl PseudonymCaApi for Spy {
    fn issue_batch(
        &self,
        batch: &[TicketRequest],
        _now: i64,
    ) -> Result<Vec<TicketResponse>, ScmsError> {
        self.batches.lock().unwrap().push(batch.to_vec());
        Ok(batch
            .iter()
            .map(|r| TicketResponse {
                request_id: r.request_id,
                outcome: Err("spy".into()),
            })
            .collect())
    }
    fn add_revocation(
        &self,
        _revocation: trustca_pseudonym::LinkageRevocation,
        _actor: &str,
        _now: i64,
    ) -> Result<LinkageCrl, ScmsError> {
        Err(ScmsError::NotFound("spy"))
    }
}

#[test]
fn the_ra_waits_for_enough_vehicles_and_shuffles_them() {
    let w = world(eager());
    let spy = Spy::default();
    let ra = trustca_scms::RegistrationAuthority::new(
        w.d.stores[0].clone(),
        &[7; 32],
        [w.d.linkage[0].clone(), w.d.linkage[1].clone()],
        Arc::new(spy.clone()),
        w.profile.clone(),
        BatchPolicy {
            min_vehicles: 5,
            max_wait_secs: 600,
            max_requests_per_batch: 10_000,
        },
    )
    .unwrap();
    let cats: Vec<Caterpillar> = (0..5).map(|_| Caterpillar::generate().unwrap()).collect();
    for (n, cat) in cats.iter().enumerate().take(4) {
        ra.submit(&vehicle(n, 3), &cat.request(), None, 2, NOW)
            .unwrap();
    }
    assert_eq!(ra.flush(NOW + 10, false).unwrap(), 0);
    assert!(
        spy.batches.lock().unwrap().is_empty(),
        "sent before 5 vehicles"
    );
    ra.submit(&vehicle(4, 3), &cat_request(&cats[4]), None, 2, NOW)
        .unwrap();
    ra.flush(NOW + 20, false).unwrap();
    let batches = spy.batches.lock().unwrap().clone();
    assert_eq!(batches.len(), 1);
    let batch = &batches[0];
    assert_eq!(batch.len(), 5 * 2 * 20);
    // Which vehicle each request is for, known only to this test (it holds
    // the caterpillars): adjacent requests of one vehicle should occur about
    // as often as chance (1/5), not in runs.
    let mut owner = HashMap::new();
    for (n, cat) in cats.iter().enumerate() {
        let current = w.profile.period_at(NOW).unwrap();
        for p in current..current + 2 {
            for j in 0..20 {
                owner.insert(
                    cat.request()
                        .cocoon_public_key(p, j)
                        .unwrap()
                        .to_sec1_uncompressed(),
                    n,
                );
            }
        }
    }
    let seq: Vec<usize> = batch
        .iter()
        .map(|r| owner[&r.cocoon.to_sec1_uncompressed()])
        .collect();
    let same = seq.windows(2).filter(|w| w[0] == w[1]).count() as f64 / (seq.len() - 1) as f64;
    assert!(same < 0.35, "adjacent same-vehicle fraction {same}");
    // Request ids are all distinct, periods are the only shared fields.
    let ids: HashSet<_> = batch.iter().map(|r| r.request_id).collect();
    assert_eq!(ids.len(), batch.len());
    // The timer: one vehicle alone goes out after max_wait_secs.
    ra.submit(&vehicle(9, 3), &cats[0].request(), None, 1, NOW + 100)
        .unwrap();
    assert_eq!(ra.flush(NOW + 200, false).unwrap(), 0);
    assert_eq!(spy.batches.lock().unwrap().len(), 1);
    ra.flush(NOW + 700, false).unwrap();
    assert_eq!(spy.batches.lock().unwrap().len(), 2);
}

fn cat_request(c: &Caterpillar) -> trustca_pseudonym::ButterflyRequest {
    c.request()
}

/// Every (key, value) of a store's space, and its audit entries.
fn dump(
    store: &Arc<dyn Storage>,
    space: &str,
) -> (Vec<trustca_store::KeyValue>, Vec<trustca_store::AuditEntry>) {
    let records = store.blob_scan(space, b"").unwrap();
    let audit = store.audit_entries(0, 100_000).unwrap();
    (records, audit)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The attacker holds one authority's complete store (records and audit
/// log) and every ticket seen on the road, and tries to group the tickets of
/// five vehicles, requested in two rounds at different times.
#[test]
fn no_single_authority_store_groups_tickets_by_vehicle() {
    let w = world(eager());
    let current = w.profile.period_at(NOW).unwrap();
    let cats: Vec<Caterpillar> = (0..5).map(|_| Caterpillar::generate().unwrap()).collect();
    let vehicles: Vec<VehicleCredential> = (0..5).map(|n| vehicle(n, 2 + (n % 3) as u8)).collect();
    // Round 1: periods current..+2 for all; round 2 a day later: +2..+4.
    for (v, c) in vehicles.iter().zip(&cats) {
        w.d.ra
            .submit(v, &c.request(), Some(current), 2, NOW)
            .unwrap();
    }
    w.d.ra.flush(NOW, false).unwrap();
    for (v, c) in vehicles.iter().zip(&cats) {
        w.d.ra
            .submit(v, &c.request(), Some(current + 2), 2, NOW + 86_400)
            .unwrap();
    }
    w.d.ra.flush(NOW + 86_400, false).unwrap();
    let mut tickets: Vec<(usize, Certificate)> = Vec::new();
    for (n, (v, c)) in vehicles.iter().zip(&cats).enumerate() {
        for t in collect(&w, v, c, current, 4) {
            tickets.push((n, t.certificate));
        }
    }
    assert_eq!(tickets.len(), 5 * 4 * 20);

    // --- The pseudonym CA's store.
    let (records, audit) = dump(&w.d.stores[1], "v2x.pca");
    let ticket_records: Vec<_> = records
        .iter()
        .filter(|(k, _)| k.starts_with(b"t/"))
        .collect();
    assert_eq!(ticket_records.len(), tickets.len());
    // Fixed lengths: nothing varies with the vehicle.
    assert!(
        ticket_records
            .iter()
            .all(|(k, v)| k.len() == 13 && v.len() == 96)
    );
    // No shared bytes: every 16-byte window of every record value is unique
    // across all records (chain envelopes are freshly randomised).
    let mut windows = HashSet::new();
    for (_, v) in &ticket_records {
        for win in v[..88].chunks(11) {
            assert!(windows.insert(win.to_vec()), "two records share bytes");
        }
    }
    // Audit: counts per batch, timed to the hour, nothing per vehicle.
    let issued: Vec<_> = audit
        .iter()
        .filter(|e| e.kind == "v2x.tickets.issued")
        .collect();
    assert_eq!(issued.len(), 2, "one entry per batch");
    for e in &issued {
        assert_eq!(e.at % 3600, 0);
        assert!(e.detail.contains("\"count\":200"), "{}", e.detail);
        assert!(!e.subject.contains("car-"));
    }
    // Whatever the PCA has, the vehicle identities are absent.
    for (k, v) in &records {
        for veh in &vehicles {
            assert!(!contains(k, veh.id.as_bytes()) && !contains(v, veh.id.as_bytes()));
        }
    }

    // --- A linkage authority's store: one chain per vehicle, fixed length,
    // no identity, no linkage value of any ticket.
    for (la, space_store) in [(0, &w.d.stores[2]), (1, &w.d.stores[3])] {
        let (records, audit) = dump(space_store, "v2x.linkage");
        assert_eq!(records.len(), 5, "LA{}", la + 1);
        assert!(
            records
                .iter()
                .all(|(k, v)| k.len() == 18 && v.len() == records[0].1.len())
        );
        for (_, t) in &tickets {
            let (_, lv) = linkage(t);
            assert!(records.iter().all(|(_, v)| !contains(v, &lv)));
        }
        assert!(
            audit
                .iter()
                .all(|e| !e.subject.contains("car-") && !e.detail.contains("car-"))
        );
    }

    // --- The registration authority's store: it knows vehicles, but it
    // never saw a ticket: no linkage value, no verification key, no ticket
    // hash appears in anything it stored.
    let (records, _) = dump(&w.d.stores[0], "v2x.ra");
    for (_, t) in &tickets {
        let (_, lv) = linkage(t);
        let key = t.tbs().verification_key.x();
        let hid = t.hashed_id8();
        for (k, v) in &records {
            assert!(!contains(v, &lv) && !contains(v, &key[..16]) && !contains(v, &hid));
            assert!(!contains(k, &hid));
        }
    }
    // Responses stored for the vehicles all have one length.
    let lens: HashSet<usize> = records
        .iter()
        .filter(|(k, _)| k.starts_with(b"d/"))
        .map(|(_, v)| v.len())
        .collect();
    assert_eq!(lens.len(), 1, "response lengths vary: {lens:?}");

    // --- Tickets as seen on the road: no field but the period is shared
    // by all tickets of one vehicle. Grouping by any field value yields
    // groups of one, except fields equal across vehicles (same level /
    // permissions, period).
    let mut by_vehicle_and_value: HashMap<Vec<u8>, HashSet<usize>> = HashMap::new();
    for (n, t) in &tickets {
        let (i, lv) = linkage(t);
        let k = [&i.to_be_bytes()[..], &lv[..]].concat();
        by_vehicle_and_value.entry(k).or_default().insert(*n);
    }
    assert_eq!(by_vehicle_and_value.len(), tickets.len());
}

#[test]
fn revocation_links_only_the_future_and_resolution_needs_all_four() {
    let w = world(eager());
    let current = w.profile.period_at(NOW).unwrap();
    let (bad, good) = (vehicle(1, 3), vehicle(2, 3));
    let (cat_b, cat_g) = (
        Caterpillar::generate().unwrap(),
        Caterpillar::generate().unwrap(),
    );
    w.d.ra
        .submit(&bad, &cat_b.request(), Some(current), 6, NOW)
        .unwrap();
    w.d.ra
        .submit(&good, &cat_g.request(), Some(current), 6, NOW)
        .unwrap();
    w.d.ra.flush(NOW, false).unwrap();
    let tb = collect(&w, &bad, &cat_b, current, 6);
    let tg = collect(&w, &good, &cat_g, current, 6);
    assert_eq!(tb.len(), 120);

    // Resolution of one misbehaving ticket from period current+1.
    let culprit = &tb
        .iter()
        .find(|t| t.period == current + 1)
        .unwrap()
        .certificate;
    let case = ResolutionCase {
        actor: "misbehaviour-authority",
        case: "MB-2026-0042",
        now: NOW + 3600,
    };
    let (_, id) = identify(
        culprit,
        &w.d.pca,
        [&w.d.linkage[0], &w.d.linkage[1]],
        &w.d.ra,
        case,
    )
    .unwrap();
    assert_eq!(id, bad.id);
    for store in &w.d.stores {
        let audit = store.audit_entries(0, 10_000).unwrap();
        assert!(
            audit.iter().any(|e| e.detail.contains("MB-2026-0042")),
            "a step left no audit entry"
        );
    }
    // One linkage authority cannot open the other's envelope.
    let [e1, e2] =
        w.d.pca
            .resolution_envelopes(culprit, "x", "y", NOW)
            .unwrap();
    assert!(w.d.linkage[0].open_envelope(&e2, "x", "y", NOW).is_err());
    assert!(w.d.linkage[1].open_envelope(&e1, "x", "y", NOW).is_err());
    // A ticket the PCA never issued resolves to nothing.
    let other = w.pca_cert.clone();
    assert!(w.d.pca.resolution_envelopes(&other, "x", "y", NOW).is_err());

    // Revoke from period p = current + 3. A 1609.2 linkage CRL carries
    // the seeds of one period (iRev, the current one), and seeds do not
    // run backwards: the list signed now withholds the entry, the list
    // signed in period p carries it.
    let p = current + 3;
    let entry =
        w.d.ra
            .revoke(&bad.id, p, false, "operator", NOW + 7200)
            .unwrap();
    let now_crl = w.d.pca.revoke(entry, "operator", NOW + 7200).unwrap();
    assert!(now_crl.entries.is_empty());
    assert_eq!(u64::from(now_crl.i_rev), current);
    assert_eq!(w.d.pca.revocation_count().unwrap(), 1);
    let in_p = w.profile.epoch + p as i64 * w.profile.period_seconds() + 600;
    let crl = w.d.pca.current_crl(in_p).unwrap();
    let crl = LinkageCrl::from_bytes(crl.as_bytes()).unwrap();
    crl.verify(&w.pca_cert).unwrap();
    crl.verify_chain(&w.pca_cert, &w.root).unwrap();
    assert_eq!(u64::from(crl.i_rev), p);
    assert_eq!(crl.crl_number, 0);
    // jmax is the profile's tickets per period, read from the list.
    assert_eq!(u32::from(crl.jmax), w.profile.certificates_per_period);
    assert_eq!(crl.entries.len(), 1);
    let cpp = u32::from(crl.jmax);
    for t in &tb {
        assert_eq!(
            crl.revokes(&t.certificate).unwrap(),
            t.period >= p,
            "period {}",
            t.period
        );
    }
    for t in &tg {
        assert!(!crl.revokes(&t.certificate).unwrap());
    }
    let mut tampered = crl.as_bytes().to_vec();
    tampered[21] ^= 1; // the last octet of issueDate
    assert!(
        LinkageCrl::from_bytes(&tampered)
            .unwrap()
            .verify(&w.pca_cert)
            .is_err()
    );
    assert!(LinkageCrl::from_bytes(&crl.as_bytes()[1..]).is_err());
    // The next list of the same period has a higher indexWithinI and
    // keeps the entry.
    let next = w.d.pca.current_crl(in_p + 600).unwrap();
    assert!(next.crl_number > crl.crl_number);
    assert_eq!(next.entries, crl.entries);
    // No more tickets for the revoked vehicle.
    assert!(matches!(
        w.d.ra
            .submit(&bad, &cat_b.request(), Some(p), 1, NOW + 7200),
        Err(ScmsError::Revoked { .. })
    ));
    // The PCA's store, with the published seeds in hand: the records of
    // periods ≥ p are recognisable (that is what revocation means), those
    // before p match nothing derivable from the CRL.
    let (records, _) = dump(&w.d.stores[1], "v2x.pca");
    let before: HashSet<[u8; 9]> = tb
        .iter()
        .filter(|t| t.period < p)
        .map(|t| linkage(&t.certificate).1)
        .collect();
    let revoked_lvs: HashSet<[u8; 9]> = (current..current + 6)
        .flat_map(|i| crl.entries[0].linkage_values(i, cpp).unwrap())
        .map(|lv| lv.0)
        .collect();
    assert_eq!(
        revoked_lvs.len() as u64,
        3 * u64::from(cpp),
        "seeds cover p.. only"
    );
    assert!(before.is_disjoint(&revoked_lvs));
    let stored_matching = records
        .iter()
        .filter(|(k, _)| {
            k.len() == 13 && revoked_lvs.contains(<&[u8; 9]>::try_from(&k[4..]).unwrap())
        })
        .count();
    assert_eq!(stored_matching, 3 * cpp as usize);
}

#[test]
fn an_etsi_ticket_profile_issues_no_scms_tickets() {
    // TS 103 097 forbids linkageData ids: a deployment whose ticket profile
    // says "etsi-ts-103-097" issues through trustca-etsi, never here. The
    // same request under the SCMS profile gets its tickets.
    let etsi = TicketProfile {
        format: trustca_scms::TicketFormat::EtsiTs103097,
        ..TicketProfile::default()
    };
    for (profile, issued) in [(TicketProfile::default(), true), (etsi, false)] {
        let w = world_with(eager(), profile);
        let lv3 = vehicle(1, 3);
        let cat = Caterpillar::generate().unwrap();
        w.d.ra.submit(&lv3, &cat.request(), None, 1, NOW).unwrap();
        let flushed = w.d.ra.flush(NOW, false);
        let n = flushed.as_ref().copied().unwrap_or(0);
        assert_eq!(n > 0, issued, "{flushed:?}");
        let downloads = w.d.ra.download(&lv3).unwrap_or_default();
        assert_eq!(!downloads.is_empty(), issued);
    }
}
