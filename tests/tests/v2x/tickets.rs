//! Vehicles' pseudonyms are IEEE 1609.2 authorization tickets. What the
//! retired X.509 pseudonym tests checked and still holds is checked here on
//! the ticket path, against a real single-process server: tickets name
//! nobody, only the vehicle holds their keys, two vehicles' tickets of one
//! period differ only in key, linkage value and signature, the authorities'
//! audit entries name no vehicle, and who may ask is decided by the
//! certificate. And the retirement itself: a pool of X.509 pseudonyms is
//! refused in one line and left alone, and a data directory made by an
//! older `init` (with the X.509 pseudonym CA, state secret, resolution
//! authority key, PRLs and profile) still serves.
//!
//! Not carried over, because the ticket path does not do it (see the
//! report of issue 18): the registration authority decides by the level
//! and the revocation of the vehicle's certificate, not by the live trust
//! record (a suspended car still gets tickets) or the blocked-key list.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;

use common::separated::ticket_request;
use common::*;
use tonic::Code;
use tonic::transport::Channel;
use trustca_api::client::{ClientCredentials, connect};
use trustca_ca::Passphrase;
use trustca_model::CertificateKind;
use trustca_proto::v1 as pb;
use trustca_proto::v1::v2x_registration_client::V2xRegistrationClient;
use trustca_pseudonym::Caterpillar;
use trustca_scms::{BatchPolicy, OpenedTicket, TicketOpener};
use trustca_server::ServeOptions;
use trustca_store::Storage;
use trustca_v2x::{CertProfile, Certificate};
use trustca_vehicle::{Pool, PoolEntry, PoolProfile, PoolSecret, Rotation};

const MB: usize = 64 * 1024 * 1024;

/// Starts `ca`'s server with its V2X authorities in-process, sending every
/// request at once.
pub(crate) async fn serve(ca: &mut TestCa) {
    ca.stop().await;
    let mut opts = ServeOptions::new(
        ca.data().to_path_buf(),
        "127.0.0.1:0".parse().unwrap(),
        Passphrase::new(PASSPHRASE.to_vec()).unwrap(),
    );
    opts.v2x_batch = BatchPolicy {
        min_vehicles: 1,
        max_wait_secs: 0,
        max_requests_per_batch: 10_000,
    };
    ca.server = Some(trustca_server::start(opts).await.unwrap());
}

async fn enroll(
    ca: &TestCa,
    sector: &str,
    serial: &str,
    evidence: Vec<pb::EvidenceItem>,
) -> Device {
    enroll_model(ca, sector, "EV-200", serial, evidence).await
}

async fn enroll_model(
    ca: &TestCa,
    sector: &str,
    model: &str,
    serial: &str,
    evidence: Vec<pb::EvidenceItem>,
) -> Device {
    let acme = ca.credential(CertificateKind::Manufacturer, "Acme", &[sector]);
    let mut client = ca.client(&acme).await;
    enroll_device(
        &mut client,
        &ca.root_pem(),
        sector,
        "Acme",
        model,
        serial,
        "1.0.0",
        evidence,
    )
    .await
}

/// A car at Lv.5, from its registered model `EV-500` (declared hardware
/// counts up to Lv.3 in automotive; the tickets' permissions follow the
/// level).
pub(crate) async fn enroll_lv5_car(ca: &TestCa, serial: &str) -> Device {
    let acme = ca.credential(CertificateKind::Manufacturer, "Acme", &["automotive"]);
    register_automotive_lv5(ca, &acme, "Acme", "EV-500").await;
    enroll_model(ca, "automotive", "EV-500", serial, vec![]).await
}

pub(crate) async fn registration(
    url: &str,
    creds: &ClientCredentials,
) -> V2xRegistrationClient<Channel> {
    V2xRegistrationClient::new(connect(url, creds).await.unwrap()).max_decoding_message_size(MB)
}

/// Requests `periods` periods from `first` and downloads the responses.
async fn tickets(
    ra: &mut V2xRegistrationClient<Channel>,
    cat: &Caterpillar,
    first: u64,
    periods: u32,
) -> Vec<Vec<u8>> {
    let r = ra
        .request_tickets(ticket_request(cat, Some(first), periods))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.queued, periods * 20);
    for _ in 0..50 {
        let responses = ra
            .download_tickets(pb::DownloadTicketsRequest {})
            .await
            .unwrap()
            .into_inner()
            .responses;
        if responses.len() as u32 == periods * 20 {
            return responses;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    panic!("the tickets did not arrive");
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_car_gets_tickets_that_name_nobody_and_whose_keys_only_it_holds() {
    let mut ca = TestCa::init();
    serve(&mut ca).await;
    let url = ca.url();
    let cars = [
        enroll_lv5_car(&ca, "VIN-0000-XYZ").await,
        enroll_lv5_car(&ca, "VIN-0001-XYZ").await,
    ];
    let mut ra = registration(&url, &cars[0].creds).await;
    let profile = ra
        .get_ticket_profile(pb::GetTicketProfileRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(profile.certificates_per_period, 20);
    assert_eq!(
        profile.pseudonym_ca_certificate,
        std::fs::read(ca.data().join("ca/v2x-aa.oer")).unwrap(),
        "tickets come from the V2X authorization authority"
    );
    // Below the V2X root everything is in the IEEE 1609.2 profile (the
    // root is the CRACA, so cracaId is not 000000).
    let ieee = |b: &[u8]| Certificate::from_coer_in(CertProfile::Ieee1609Dot2, b).unwrap();
    let pca = ieee(&profile.pseudonym_ca_certificate);
    let ea = ieee(&std::fs::read(ca.data().join("ca/v2x-ea.oer")).unwrap());
    let current = profile.current_period;

    let mut issued: Vec<Vec<OpenedTicket>> = Vec::new();
    for car in &cars {
        let mut ra = registration(&url, &car.creds).await;
        let cat = Caterpillar::generate().unwrap();
        let responses = tickets(&mut ra, &cat, current, 3).await;
        let opener = TicketOpener::new(&cat, &pca, current, 3, 20).unwrap();
        // Someone without the caterpillar key opens nothing.
        let stranger_cat = Caterpillar::generate().unwrap();
        let stranger = TicketOpener::new(&stranger_cat, &pca, current, 3, 20).unwrap();
        let mut seen = HashSet::new();
        let mut opened = Vec::new();
        for r in &responses {
            assert!(!stranger.recognises(r));
            assert!(stranger.open(r).is_err());
            let t = opener.open(r).unwrap();
            assert!(seen.insert((t.period, t.j)), "one ticket per (period, j)");
            assert!((current..current + 3).contains(&t.period));
            opened.push(t);
        }
        opened.sort_by_key(|t| (t.period, t.j));
        issued.push(opened);
    }

    let trust_domain = "trustca.internal";
    for (car, ts) in cars.iter().zip(&issued) {
        for t in ts {
            let c = &t.certificate;
            // The key the pseudonym CA certified is the one the vehicle derived.
            assert_eq!(
                t.private_key.public_key().to_sec1_uncompressed(),
                c.tbs().verification_key.uncompressed().unwrap()
            );
            // Signed by the pseudonym CA, not by another V2X CA.
            c.verify_signed_by(Some(&pca)).unwrap();
            assert!(c.verify_signed_by(Some(&ea)).is_err());
            // Nothing in the ticket names the vehicle or its maker.
            let id = trustca_model::DeviceIdentity::from_urn(&car.identity).unwrap();
            for needle in [
                car.identity.as_str(),
                id.key().as_str(),
                "Acme",
                "acme",
                "EV-200",
                "VIN-000",
                trust_domain,
            ] {
                assert!(
                    !contains(c.as_coer(), needle.as_bytes()),
                    "ticket contains {needle}"
                );
            }
        }
    }
    // Two vehicles' tickets of one period and index: everything but the
    // linkage value, the key and the signature is the same.
    for (a, b) in issued[0].iter().zip(&issued[1]) {
        assert_eq!((a.period, a.j), (b.period, b.j));
        assert_ne!(a.certificate.tbs().id, b.certificate.tbs().id);
        assert_ne!(
            a.certificate.tbs().verification_key,
            b.certificate.tbs().verification_key
        );
        let mut same = a.certificate.tbs().clone();
        same.id = b.certificate.tbs().id.clone();
        same.verification_key = b.certificate.tbs().verification_key;
        assert_eq!(&same, b.certificate.tbs());
    }

    // A signature made with the derived key verifies under the ticket's key.
    let t = &issued[0][0];
    let rng = ring::rand::SystemRandom::new();
    let kp = ring::signature::EcdsaKeyPair::from_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
        &t.private_key.to_pkcs8_der(),
        &rng,
    )
    .unwrap();
    let sig = kp.sign(&rng, b"CAM: speed 13.9 m/s").unwrap();
    ring::signature::UnparsedPublicKey::new(
        &ring::signature::ECDSA_P256_SHA256_ASN1,
        t.certificate.tbs().verification_key.uncompressed().unwrap(),
    )
    .verify(b"CAM: speed 13.9 m/s", sig.as_ref())
    .unwrap();

    // Periods already issued are not issued again; the other limits.
    let cat = Caterpillar::generate().unwrap();
    let again = ra
        .request_tickets(ticket_request(&cat, Some(current), 1))
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::InvalidArgument, "{again:?}");
    assert!(again.message().contains("already issued"), "{again:?}");
    if current > 0 {
        let past = ra
            .request_tickets(ticket_request(&cat, Some(current - 1), 1))
            .await
            .unwrap_err();
        assert_eq!(past.code(), Code::InvalidArgument, "{past:?}");
    }
    let too_many = ra
        .request_tickets(ticket_request(
            &cat,
            Some(current + 3),
            profile.max_periods_per_request + 1,
        ))
        .await
        .unwrap_err();
    assert_eq!(too_many.code(), Code::InvalidArgument, "{too_many:?}");
    let too_far = ra
        .request_tickets(ticket_request(
            &cat,
            Some(current + u64::from(profile.max_periods_ahead)),
            1,
        ))
        .await
        .unwrap_err();
    assert_eq!(too_far.code(), Code::InvalidArgument, "{too_far:?}");
    let bad = ra
        .request_tickets(pb::RequestTicketsRequest {
            butterfly_request: vec![4; 81],
            ..ticket_request(&cat, Some(current + 3), 1)
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument, "{bad:?}");
    drop(ra);

    // What the operator of the authorities' stores sees: no audit entry of
    // the registration authority, the pseudonym CA or a linkage authority
    // names a vehicle, its maker or a ticket.
    ca.stop().await;
    let mut issuance = 0;
    for role in ["registration", "pseudonym-ca", "linkage-1", "linkage-2"] {
        let store =
            trustca_store::SledStorage::open(&ca.data().join("v2x").join(role).join("store"))
                .unwrap();
        for e in store.audit_entries(0, 100_000).unwrap() {
            issuance += usize::from(e.kind == "v2x.tickets.issued");
            let text = format!("{} {} {}", e.actor, e.subject, e.detail);
            for car in &cars {
                let id = trustca_model::DeviceIdentity::from_urn(&car.identity).unwrap();
                assert!(
                    !text.contains(car.identity.as_str()) && !text.contains(id.key().as_str()),
                    "{role}: {text}"
                );
            }
            assert!(!text.to_lowercase().contains("acme"), "{role}: {text}");
            assert!(!text.contains("VIN-"), "{role}: {text}");
            for t in issued.iter().flatten() {
                assert!(!text.contains(&hex::encode(t.certificate.hashed_id8())));
            }
        }
    }
    assert!(issuance >= 1, "the pseudonym CA audits issuance (counts)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_vehicles_of_the_sector_at_the_profiles_level_get_tickets() {
    let mut ca = TestCa::init();
    serve(&mut ca).await;
    let url = ca.url();
    let car = enroll_lv5_car(&ca, "CAR-1").await;
    let house = enroll(&ca, "hems", "HOUSE-77", hems_lv5()).await;
    // No evidence: the sector's lowest level, below the ticket profile's.
    let weak = enroll(&ca, "automotive", "CAR-LOW", vec![]).await;
    let operator = ca.credential(CertificateKind::Operator, "ops", &["automotive", "hems"]);
    let cat = Caterpillar::generate().unwrap();

    // Another sector's device, and a car below the profile's level.
    for (device, why) in [(&house, "hems"), (&weak, "level")] {
        let e = registration(&url, &device.creds)
            .await
            .request_tickets(ticket_request(&cat, None, 1))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
        assert!(e.message().contains(why), "{}", e.message());
    }
    let mut ops = registration(&url, &operator).await;
    let e = ops
        .request_tickets(ticket_request(&cat, None, 1))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    // A vehicle cannot revoke; an operator cannot revoke a vehicle the
    // registration authority does not know.
    let mut as_car = registration(&url, &car.creds).await;
    let e = as_car
        .revoke_vehicle(pb::RevokeVehicleRequest {
            vehicle: car.identity.clone(),
            from_period: 0,
            include_past: false,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    let e = ops
        .revoke_vehicle(pb::RevokeVehicleRequest {
            vehicle: "urn:trustca:automotive:Acme:EV-200:NOBODY".into(),
            from_period: u64::MAX,
            include_past: false,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    // The Lv.5 car does get tickets.
    let r = as_car
        .request_tickets(ticket_request(&cat, None, 1))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.queued, 20);
    ca.stop().await;
}

// ---------------------------------------------------------------------------
// The retirement
// ---------------------------------------------------------------------------

/// Writes a pool as trustca wrote it before tickets replaced X.509
/// pseudonyms (`pool.toml` + sealed `pool.bin`, key-file secret), with
/// ring only: the format, not this version's code.
fn write_old_x509_pool(dir: &Path, key_file: &[u8]) {
    use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
    std::fs::create_dir_all(dir).unwrap();
    let salt = [9u8; 16];
    let mut key = [0u8; 32];
    ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, &salt)
        .extract(key_file)
        .expand(&[b"trustca-pool-key-file-v1"], ring::hkdf::HKDF_SHA256)
        .unwrap()
        .fill(&mut key)
        .unwrap();
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key).unwrap());
    let seal = |nonce: u8, aad: &[u8], plain: &[u8]| -> Vec<u8> {
        let mut buf = plain.to_vec();
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key([nonce; 12]),
            Aad::from(aad),
            &mut buf,
        )
        .unwrap();
        [vec![nonce; 12], buf].concat()
    };
    let check = seal(1, b"trustca-pool-check-v1", b"trustca pool check v1");
    std::fs::write(
        dir.join("pool.toml"),
        format!(
            "format = \"trustca-pool-v1\"\nkdf = \"hkdf-sha256-key-file\"\niterations = 200000\nsalt = \"{}\"\ncheck = \"{}\"\n",
            hex::encode(salt),
            hex::encode(check)
        ),
    )
    .unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let state = serde_json::json!({
        "format": "x509",
        "ticket_requests": [],
        "profile": {
            "sector": "automotive", "policy_version": "2024-1", "epoch": 1_704_067_200i64,
            "period_seconds": 604_800, "certificates_per_period": 20, "overlap_seconds": 3600,
            "max_periods_ahead": 156, "max_periods_per_request": 12,
            "permissions": ["cam", "denm"]
        },
        "pseudonym_ca": "3082",
        "root": "3082",
        "entries": [{
            "period": 1, "index": 0, "certificate": "308201", "key": "11".repeat(32),
            "serial": "0a0b0c", "not_before": now - 60, "not_after": now + 86_400,
            "used": true
        }],
        "current": {"period": 1, "index": 0, "serial": "0a0b0c", "since": now - 60,
                    "next_change": now + 3600},
        "settings": {"rotation_seconds": null, "jitter_percent": 20, "topup_margin_periods": 2},
        "issued_through": 1
    });
    let sealed = seal(
        2,
        b"trustca-pool-state-v1",
        &serde_json::to_vec(&state).unwrap(),
    );
    std::fs::write(dir.join("pool.bin"), [b"TCP1".as_slice(), &sealed].concat()).unwrap();
}

fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>, std::time::SystemTime)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
                e.metadata().unwrap().modified().unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

#[test]
fn an_old_pool_of_x509_pseudonyms_is_refused_in_one_line_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pool = d.join("pool");
    std::fs::write(d.join("pool.key"), [0x42u8; 32]).unwrap();
    write_old_x509_pool(&pool, &[0x42u8; 32]);
    // Anything that parses as DER will do: the pool is refused before the
    // root is used or the server is called.
    std::fs::write(d.join("root.der"), [0x30u8, 0x00]).unwrap();
    let before = snapshot(&pool);
    let s = |p: &Path| p.display().to_string();
    let pool_args = |cmd: &str| -> Vec<String> {
        [
            "pseudonym",
            cmd,
            "--pool",
            &s(&pool),
            "--pool-key",
            &s(&d.join("pool.key")),
        ]
        .map(String::from)
        .to_vec()
    };
    let mut commands = vec![
        pool_args("status"),
        [pool_args("status"), vec!["--json".into()]].concat(),
        pool_args("rotate"),
        [pool_args("export"), vec!["--out".into(), s(&d.join("out"))]].concat(),
    ];
    commands.push(
        [
            pool_args("request"),
            [
                "--server",
                "https://127.0.0.1:9",
                "--identity",
                "car.pem",
                "--key",
                "car.key",
            ]
            .map(String::from)
            .to_vec(),
            vec!["--ca".into(), s(&d.join("root.der"))],
        ]
        .concat(),
    );
    for args in commands {
        let out = Command::new(trustca_bin())
            .args(&args)
            .env("RUST_LOG", "warn")
            .env_remove("TRUSTCA_POOL_PASSPHRASE")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
        assert!(
            stderr.trim_end().ends_with(
                "this pool holds X.509 pseudonyms, which trustca no longer issues; request IEEE 1609.2 tickets with `trustca pseudonym request` (into a new --pool directory)"
            ),
            "{args:?}: {stderr}"
        );
        assert_eq!(snapshot(&pool), before, "{args:?} changed the pool");
    }
    assert!(!d.join("out").exists(), "export wrote nothing");
    // The library refuses it the same way.
    let secret = PoolSecret::key_file(&d.join("pool.key")).unwrap();
    let e = Pool::open(&pool, &secret).unwrap_err();
    assert!(format!("{e:#}").contains("X.509 pseudonyms"), "{e:#}");
    assert_eq!(snapshot(&pool), before);
}

/// What an older `init` left for the X.509 pseudonym path. The files
/// stand in for the real ones (an encrypted key, a PEM key, a signed PRL):
/// this version must not read any of them, so their contents do not
/// matter, and they must stay as they are.
const LEGACY: &[(&str, &[u8])] = &[
    ("ca/automotive-pseudonym.key", b"encrypted pseudonym CA key"),
    (
        "ca/pseudonym-state.key",
        b"encrypted pseudonym state secret",
    ),
    (
        "ca/resolution-authority.pub",
        b"-----BEGIN PUBLIC KEY-----\n",
    ),
    (
        "ra/resolution-authority.key",
        b"-----BEGIN PRIVATE KEY-----\n",
    ),
    ("crl/automotive.prl", b"\x0a\x03prl"),
    (
        "policies/pseudonym.toml",
        b"version = \"2024-1\"\n[sectors.automotive]\nmin_level = 3\n",
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_directory_from_an_older_init_still_serves_tickets() {
    let mut ca = TestCa::init();
    let d = ca.data().to_path_buf();
    assert!(trustca_server::legacy::x509_pseudonym_material(&d).is_empty());
    // The pseudonym CA certificate: a real root-issued certificate.
    std::fs::copy(
        d.join("ca/automotive.pem"),
        d.join("ca/automotive-pseudonym.pem"),
    )
    .unwrap();
    for (name, bytes) in LEGACY {
        std::fs::create_dir_all(d.join(name).parent().unwrap()).unwrap();
        std::fs::write(d.join(name), bytes).unwrap();
    }
    let found = trustca_server::legacy::x509_pseudonym_material(&d);
    assert_eq!(found.len(), 6, "{found:?}");
    let read_all = || -> Vec<Vec<u8>> {
        LEGACY
            .iter()
            .map(|(n, _)| n)
            .chain(&["ca/automotive-pseudonym.pem"])
            .map(|n| std::fs::read(d.join(n)).unwrap())
            .collect()
    };
    let before = read_all();

    // serve starts (it warns once and reads none of it), and vehicles get
    // tickets.
    serve(&mut ca).await;
    let car = enroll_lv5_car(&ca, "OLD-DIR-1").await;
    let cat = Caterpillar::generate().unwrap();
    let mut ra = registration(&ca.url(), &car.creds).await;
    let current = ra
        .get_ticket_profile(pb::GetTicketProfileRequest {})
        .await
        .unwrap()
        .into_inner()
        .current_period;
    assert_eq!(tickets(&mut ra, &cat, current, 1).await.len(), 20);
    drop(ra);
    ca.restart().await;
    ca.stop().await;
    assert_eq!(read_all(), before, "the old material is left as it was");
    // A second init adds nothing for pseudonyms and changes none of it.
    let pass = Passphrase::new(PASSPHRASE.to_vec()).unwrap();
    trustca_server::init(&d, None, &pass, &[]).unwrap();
    assert_eq!(read_all(), before);
}

fn synthetic_entry(period: u64, index: u32, profile: &PoolProfile) -> PoolEntry {
    let start = profile.period_start(period);
    PoolEntry {
        period,
        index,
        certificate: "00".into(),
        key: "11".repeat(32),
        serial: format!("{period:04x}{index:04x}"),
        not_before: start - profile.overlap_seconds as i64,
        not_after: start + profile.period_seconds as i64 + profile.overlap_seconds as i64 - 1,
        used: false,
        kind: trustca_vehicle::TicketKind::Scms,
    }
}

#[test]
fn rotation_never_reuses_a_ticket_within_a_period_and_drops_expired_ones() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pool.key"), [0x33u8; 32]).unwrap();
    let secret = PoolSecret::key_file(&dir.path().join("pool.key")).unwrap();
    let path = dir.path().join("pool");
    let mut pool = Pool::create(&path, &secret).unwrap();
    let profile = PoolProfile {
        kind: trustca_vehicle::TicketKind::Scms,
        sector: "automotive".into(),
        policy_version: "t".into(),
        epoch: 0,
        period_seconds: 1000,
        certificates_per_period: 5,
        overlap_seconds: 10,
        max_periods_ahead: 10,
        max_periods_per_request: 5,
        permissions: vec![],
    };
    pool.set_profile(profile.clone(), b"ca", b"root").unwrap();
    let entries = (0..3)
        .flat_map(|p| (0..5).map(move |j| (p, j)))
        .map(|(p, j)| synthetic_entry(p, j, &profile))
        .collect();
    assert_eq!(pool.add(entries), 15);
    // Default interval: period / tickets = 200 s. Rotate faster (150 s
    // ±20 %) than the tickets last, so a period runs out.
    assert_eq!(pool.rotation_seconds(), 200);
    pool.set_rotation(Some(150));

    let mut runs: Vec<(u64, u32)> = Vec::new();
    let mut outcomes = Vec::new();
    for t in (0..3000).step_by(5) {
        let o = pool.rotate(t, false).unwrap();
        outcomes.push(o.clone());
        let c = pool.current().unwrap();
        let id = (c.period, c.index);
        assert_eq!(
            c.period,
            profile.period_at(t),
            "always a ticket of the current period"
        );
        if runs.last() != Some(&id) {
            assert!(!runs.contains(&id), "{id:?} used again after another");
            runs.push(id);
        }
        if t == 1500 {
            // Survives a restart mid-period.
            pool.save(t).unwrap();
            pool = Pool::open(&path, &secret).unwrap();
        }
    }
    // Every ticket of every period was used, once.
    assert_eq!(runs.len(), 15, "{runs:?}");
    assert!(
        outcomes.contains(&Rotation::Exhausted),
        "more changes than tickets"
    );
    // Changes happen at period starts, at the latest.
    for p in 1..3u64 {
        let first_of_period = runs.iter().position(|(q, _)| *q == p).unwrap();
        assert_eq!(runs[first_of_period - 1].0, p - 1);
    }
    // Periods 0 and 1 have expired and were dropped on the way.
    assert_eq!(pool.entries().len(), 5);
    assert!(pool.entries().iter().all(|e| e.period == 2));
    let s = pool.status(2500);
    assert_eq!(s.certificates, 5);
    assert_eq!(s.covered_periods.len(), 1);
    assert!(s.topup_due);
    // After everything expired there is no ticket to use.
    assert_eq!(pool.rotate(4000, false).unwrap(), Rotation::Empty);
    assert!(pool.current().is_none());
    // A wrong key does not open it, and nothing at rest is readable.
    let state = std::fs::read(path.join("pool.bin")).unwrap();
    assert!(!contains(&state, b"0002"));
    std::fs::write(dir.path().join("bad.key"), [1u8; 40]).unwrap();
    let bad = PoolSecret::key_file(&dir.path().join("bad.key")).unwrap();
    let e = Pool::open(&path, &bad).unwrap_err();
    assert!(e.to_string().contains("wrong pool key"), "{e}");
}
