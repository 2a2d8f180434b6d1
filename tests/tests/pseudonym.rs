//! V2X pseudonym certificates end to end: issuance to enrolled vehicles over
//! mutual TLS, butterfly keys only the vehicle can use, certificates that
//! name nobody, an operator who cannot link them, a resolution authority
//! who can, pseudonym revocation lists that catch a revoked car's current
//! and future pseudonyms only, and the vehicle's encrypted pool.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use tonic::Code;
use tonic::transport::Channel;
use trustca::client::{ClientCredentials, connect};
use trustca::pseudonym_cmd::{check_against_prl, read_prl, request_into_pool};
use trustca::vehicle_pool::{Pool, PoolEntry, PoolProfile, PoolSecret, Rotation};
use trustca_ca::pseudonym_ca::{self, pseudonym_fields};
use trustca_model::{CertificateKind, TrustLevelExtension};
use trustca_proto::v1 as pb;
use trustca_proto::v1::pseudonyms_client::PseudonymsClient;
use trustca_proto::v1::trust_database_client::TrustDatabaseClient;
use trustca_pseudonym::{CaContribution, Caterpillar, P256PublicKey, ResolutionAuthorityKey};
use trustca_store::Storage;

async fn pseudonyms(url: &str, creds: &ClientCredentials) -> PseudonymsClient<Channel> {
    PseudonymsClient::new(connect(url, creds).await.unwrap())
        .max_decoding_message_size(8 * 1024 * 1024)
}

async fn profile(c: &mut PseudonymsClient<Channel>) -> pb::PseudonymProfileResponse {
    c.get_pseudonym_profile(pb::GetPseudonymProfileRequest {})
        .await
        .unwrap()
        .into_inner()
}

async fn request(
    c: &mut PseudonymsClient<Channel>,
    first: u64,
    n: u32,
) -> Result<(Caterpillar, pb::RequestPseudonymsResponse), tonic::Status> {
    let cat = Caterpillar::generate().unwrap();
    let r = c
        .request_pseudonyms(pb::RequestPseudonymsRequest {
            first_period: first,
            number_of_periods: n,
            butterfly_request: cat.request().to_bytes().to_vec(),
        })
        .await?
        .into_inner();
    Ok((cat, r))
}

async fn change(
    ca: &TestCa,
    operator: &ClientCredentials,
    identity: &str,
    c: pb::change_trust_request::Change,
) {
    let mut t = TrustDatabaseClient::new(connect(&ca.url(), operator).await.unwrap());
    t.change_trust(pb::ChangeTrustRequest {
        identity: identity.into(),
        change: Some(c),
        reason: "pseudonym test".into(),
    })
    .await
    .unwrap();
}

struct World {
    ca: TestCa,
    operator: ClientCredentials,
    cars: Vec<Device>,
    house: Device,
}

/// A CA with `cars` enrolled automotive Lv.5 cars and one HEMS device. With
/// `policy`, `pseudonym.toml` is replaced before the server starts.
async fn world(cars: usize, policy: Option<&str>) -> World {
    let mut ca = TestCa::init();
    if let Some(p) = policy {
        std::fs::write(ca.data().join("policies/pseudonym.toml"), p).unwrap();
    }
    ca.restart().await;
    let acme = ca.credential(
        CertificateKind::Manufacturer,
        "Acme",
        &["automotive", "hems"],
    );
    let operator = ca.credential(CertificateKind::Operator, "ops", &["automotive", "hems"]);
    let mut enroll = ca.client(&acme).await;
    let root = ca.root_pem();
    let mut list = Vec::new();
    for i in 0..cars {
        list.push(
            enroll_device(
                &mut enroll,
                &root,
                "automotive",
                "Acme",
                "EV-200",
                &format!("VIN-{i:04}-XYZ"),
                "1.0.0",
                automotive_lv5(),
            )
            .await,
        );
    }
    let house = enroll_device(
        &mut enroll,
        &root,
        "hems",
        "Acme",
        "HB-1",
        "HOUSE-77",
        "1.0.0",
        hems_lv5(),
    )
    .await;
    World {
        ca,
        operator,
        cars: list,
        house,
    }
}

fn pseudonym_ca_der(data: &Path) -> Vec<u8> {
    let text = std::fs::read_to_string(data.join("ca/automotive-pseudonym.pem")).unwrap();
    pem::parse(text).unwrap().into_contents()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

fn extension(der: &[u8]) -> TrustLevelExtension {
    let (_, c) = x509_parser::parse_x509_certificate(der).unwrap();
    trustca_model::trust_extension(&c, &Default::default())
        .unwrap()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_creates_a_separate_pseudonym_ca_and_an_offline_ra_key() {
    let ca = TestCa::init();
    let d = ca.data();
    assert!(d.join("ca/automotive-pseudonym.pem").exists());
    assert!(
        d.join("ca/automotive-pseudonym.key").exists(),
        "key in the keystore"
    );
    assert!(
        !d.join("ca/hems-pseudonym.pem").exists(),
        "HEMS has no profile"
    );
    assert!(d.join("ra/resolution-authority.key").exists());
    assert!(d.join("ca/resolution-authority.pub").exists());
    assert!(
        !d.join("ca/resolution-authority.key").exists(),
        "RA key not in the CA keystore"
    );
    let ra = pseudonym_ca::read_resolution_authority_key(&d.join("ra/resolution-authority.key"))
        .unwrap();
    let pub_pem = std::fs::read_to_string(d.join("ca/resolution-authority.pub")).unwrap();
    assert_eq!(
        pem::parse(pub_pem).unwrap().contents(),
        ra.public_key().as_p256().to_spki_der()
    );

    let der = pseudonym_ca_der(d);
    let (_, c) = x509_parser::parse_x509_certificate(&der).unwrap();
    let root = pem::parse(ca.root_pem()).unwrap().into_contents();
    let (_, r) = x509_parser::parse_x509_certificate(&root).unwrap();
    assert_eq!(
        c.issuer().as_raw(),
        r.subject().as_raw(),
        "issued by the root"
    );
    let bc = c.basic_constraints().unwrap().unwrap().value;
    assert!(bc.ca);
    assert_eq!(bc.path_len_constraint, Some(0));
    let ext = extension(&der);
    assert_eq!(ext.kind, CertificateKind::SectorCa);
    assert_eq!(ext.sector.as_str(), "automotive");
    assert!(c.subject().to_string().contains("Pseudonym CA"));
    let sector_ca = std::fs::read_to_string(d.join("ca/automotive.pem")).unwrap();
    let (_, s) = x509_parser::parse_x509_certificate(pem::parse(sector_ca).unwrap().contents())
        .map(|(r, c)| (r.to_vec(), c.subject().to_string()))
        .unwrap();
    assert_ne!(
        s,
        c.subject().to_string(),
        "distinct from the long-term sub-CA"
    );

    // A second init changes nothing.
    let before = std::fs::read(d.join("ca/automotive-pseudonym.pem")).unwrap();
    let pass = trustca_ca::Passphrase::new(PASSPHRASE.to_vec()).unwrap();
    trustca_server::init(d, None, &pass, &[]).unwrap();
    assert_eq!(
        before,
        std::fs::read(d.join("ca/automotive-pseudonym.pem")).unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_active_car_gets_unidentifiable_pseudonyms_whose_keys_only_it_holds() {
    let w = world(1, None).await;
    let car = &w.cars[0];
    let mut c = pseudonyms(&w.ca.url(), &car.creds).await;
    let p = profile(&mut c).await;
    let prof = p.profile.clone().unwrap();
    assert!(!p.has_issued && !p.revoked);
    assert_eq!(prof.certificates_per_period, 20);
    assert_eq!(prof.period_seconds, 604_800);
    let current = prof.current_period;

    let started = Instant::now();
    let (cat, resp) = request(&mut c, current, 12).await.unwrap();
    println!(
        "issued {} pseudonym certificates (12 periods x 20) in {} ms",
        resp.certificates.len(),
        started.elapsed().as_millis()
    );
    assert_eq!(resp.certificates.len(), 240);
    let ca_der = resp.pseudonym_ca_der.clone();
    assert_eq!(ca_der, pseudonym_ca_der(w.ca.data()));
    let root_der = pem::parse(w.ca.root_pem()).unwrap().into_contents();
    let sector_ca =
        pem::parse(std::fs::read_to_string(w.ca.data().join("ca/automotive.pem")).unwrap())
            .unwrap()
            .into_contents();
    let (_, sector_ca) = x509_parser::parse_x509_certificate(&sector_ca).unwrap();
    let (_, pca) = x509_parser::parse_x509_certificate(&ca_der).unwrap();

    let mut seen = HashSet::new();
    for issued in &resp.certificates {
        assert!(seen.insert((issued.period, issued.index)));
        let der = &issued.certificate_der;
        let f = pseudonym_fields(der, &Default::default()).unwrap();
        assert_eq!(f.period, issued.period);
        assert_eq!(f.level, 5);
        assert_eq!(f.certificates_per_period, 20);
        assert_eq!(f.permissions, ["cam", "denm", "spatem-request"]);
        // The key the CA certified is the one the vehicle derives.
        let certified = P256PublicKey::from_spki_der(&f.spki_der).unwrap();
        let contribution = CaContribution::from_bytes(&issued.ca_contribution).unwrap();
        let private = cat
            .derive_and_check(issued.period, issued.index, &contribution, &certified)
            .unwrap();
        assert_eq!(private.public_key(), certified);
        // ... and someone without the caterpillar key derives a wrong one.
        let other = Caterpillar::generate().unwrap();
        assert!(
            other
                .derive_and_check(issued.period, issued.index, &contribution, &certified)
                .is_err()
        );

        let (_, cert) = x509_parser::parse_x509_certificate(der).unwrap();
        assert_eq!(cert.subject().to_string(), "CN=pseudonym");
        assert_eq!(
            cert.issuer().as_raw(),
            pca.subject().as_raw(),
            "issued by the pseudonym CA"
        );
        assert_ne!(cert.issuer().as_raw(), sector_ca.subject().as_raw());
        let mut oids: Vec<String> = cert
            .extensions()
            .iter()
            .map(|e| {
                if trustca_model::extension::ExtensionOid::default().matches(e.oid.as_bytes()) {
                    "trust-level".to_owned()
                } else {
                    e.oid.to_id_string()
                }
            })
            .collect();
        oids.sort();
        assert_eq!(
            oids,
            [
                "2.5.29.14",
                "2.5.29.15",
                "2.5.29.19",
                "2.5.29.35",
                "trust-level"
            ],
            "no SAN, no CRL distribution point, nothing else"
        );
        for needle in [
            car.identity.as_str(),
            "Acme",
            "acme",
            "EV-200",
            "VIN-0000-XYZ",
            "trustca.internal",
        ] {
            assert!(
                !contains(der, needle.as_bytes()),
                "certificate contains {needle}"
            );
        }
        let ext = extension(der);
        assert_eq!(ext.kind, CertificateKind::Pseudonym);
        assert_eq!(ext.sector.as_str(), "automotive");
        let (nb, na) = (f.not_before, f.not_after);
        let start = prof.epoch + (issued.period * prof.period_seconds) as i64;
        // The period with the overlap, but never before the CA itself.
        let ca_nb = pca.validity().not_before.timestamp();
        assert_eq!(nb, (start - 3600).max(ca_nb));
        assert_eq!(na, start + prof.period_seconds as i64 + 3599);
        // Every certificate verifies to the root through the pseudonym CA.
        let at = time::OffsetDateTime::from_unix_timestamp(nb + 7200).unwrap();
        trustca_model::verify_chain(
            &[der.clone(), ca_der.clone()],
            &[],
            &root_der,
            at,
            &Default::default(),
        )
        .unwrap();
    }
    // The current period's certificates verify with openssl now, later ones
    // at their time.
    let first = &resp.certificates[0].certificate_der;
    let (ok, out) = openssl_verify(
        w.ca.data(),
        &w.ca.root_pem(),
        &[first.clone(), ca_der.clone()],
        &[],
    );
    assert!(ok, "{out}");
    let last = &resp.certificates[239];
    let at = pseudonym_fields(&last.certificate_der, &Default::default())
        .unwrap()
        .not_before
        + 7200;
    let (ok, out) = openssl_verify(
        w.ca.data(),
        &w.ca.root_pem(),
        &[last.certificate_der.clone(), ca_der.clone()],
        &["-attime", &at.to_string()],
    );
    assert!(ok, "{out}");

    // A signature made with the derived key verifies under the certificate.
    let f = pseudonym_fields(first, &Default::default()).unwrap();
    let contribution = CaContribution::from_bytes(&resp.certificates[0].ca_contribution).unwrap();
    let private = cat.derive_private_key(f.period, 0, &contribution).unwrap();
    let rng = ring::rand::SystemRandom::new();
    let kp = ring::signature::EcdsaKeyPair::from_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
        &private.to_pkcs8_der(),
        &rng,
    )
    .unwrap();
    let sig = kp.sign(&rng, b"CAM: speed 13.9 m/s").unwrap();
    let certified = P256PublicKey::from_spki_der(&f.spki_der).unwrap();
    ring::signature::UnparsedPublicKey::new(
        &ring::signature::ECDSA_P256_SHA256_ASN1,
        certified.to_sec1_uncompressed(),
    )
    .verify(b"CAM: speed 13.9 m/s", sig.as_ref())
    .unwrap();

    // Periods already issued are not issued twice; the rest of the rules.
    let again = request(&mut c, current, 1).await.unwrap_err();
    assert_eq!(again.code(), Code::AlreadyExists, "{again:?}");
    assert!(
        again
            .message()
            .contains(&format!("period {}", current + 12))
    );
    let p = profile(&mut c).await;
    assert!(p.has_issued);
    assert_eq!(p.issued_through, current + 11);
    let past = request(&mut c, current - 1, 1).await.unwrap_err();
    assert_eq!(past.code(), Code::InvalidArgument);
    let too_many = request(&mut c, current + 12, 13).await.unwrap_err();
    assert_eq!(too_many.code(), Code::InvalidArgument);
    let too_far = request(&mut c, current + 150, 12).await.unwrap_err();
    assert_eq!(too_far.code(), Code::InvalidArgument, "{too_far:?}");
    let bad = c
        .request_pseudonyms(pb::RequestPseudonymsRequest {
            first_period: current + 12,
            number_of_periods: 1,
            butterfly_request: vec![4; 81],
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    let (_, next) = request(&mut c, current + 12, 12).await.unwrap();
    assert_eq!(next.certificates.len(), 240);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspended_or_low_level_cars_hems_devices_and_other_roles_are_refused() {
    let w = world(1, None).await;
    let car = &w.cars[0];
    let url = w.ca.url();
    let mut c = pseudonyms(&url, &car.creds).await;
    let current = profile(&mut c).await.profile.unwrap().current_period;

    change(
        &w.ca,
        &w.operator,
        &car.identity,
        pb::change_trust_request::Change::Suspend(true),
    )
    .await;
    let e = request(&mut c, current, 1).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(e.message().contains("suspended"));
    change(
        &w.ca,
        &w.operator,
        &car.identity,
        pb::change_trust_request::Change::SetLevel(2),
    )
    .await;
    change(
        &w.ca,
        &w.operator,
        &car.identity,
        pb::change_trust_request::Change::Restore(true),
    )
    .await;
    let e = request(&mut c, current, 1).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    assert!(e.message().contains("below"), "{}", e.message());
    change(
        &w.ca,
        &w.operator,
        &car.identity,
        pb::change_trust_request::Change::SetLevel(4),
    )
    .await;
    let (_, ok) = request(&mut c, current, 1).await.unwrap();
    assert_eq!(ok.certificates.len(), 20);
    assert_eq!(
        pseudonym_fields(&ok.certificates[0].certificate_der, &Default::default())
            .unwrap()
            .level,
        4,
        "live level"
    );

    let mut house = pseudonyms(&url, &w.house.creds).await;
    let e = request(&mut house, current, 1).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    assert!(e.message().contains("hems"), "{}", e.message());
    let e = house
        .get_pseudonym_profile(pb::GetPseudonymProfileRequest {})
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);

    let mut ops = pseudonyms(&url, &w.operator).await;
    let e = request(&mut ops, current, 1).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    // A vehicle cannot revoke.
    let e = c
        .revoke_pseudonyms(pb::RevokePseudonymsRequest {
            identity: car.identity.clone(),
            from_period: 0,
            reason: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
}

/// What the operator can see: every file of the data directory, but not
/// the resolution authority's key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_cannot_link_pseudonyms_but_the_resolution_authority_can() {
    let w = world(2, None).await;
    let mut issued: Vec<Vec<pb::IssuedPseudonym>> = Vec::new();
    for car in &w.cars {
        let mut c = pseudonyms(&w.ca.url(), &car.creds).await;
        let current = profile(&mut c).await.profile.unwrap().current_period;
        let (_, r) = request(&mut c, current, 3).await.unwrap();
        issued.push(r.certificates);
    }
    // No serial, key, key identifier or linkage value pattern shared.
    let fields: Vec<Vec<_>> = issued
        .iter()
        .map(|v| {
            v.iter()
                .map(|i| pseudonym_fields(&i.certificate_der, &Default::default()).unwrap())
                .collect()
        })
        .collect();
    let mut serials = HashSet::new();
    let mut keys = HashSet::new();
    let mut lvs = HashSet::new();
    for f in fields.iter().flatten() {
        assert!(serials.insert(f.serial.clone()));
        assert!(keys.insert(f.spki_der.clone()));
        assert!(lvs.insert(f.linkage_value));
        assert_eq!(f.serial.len(), 16);
    }
    let prefixes = |v: &Vec<pseudonym_ca::PseudonymCertificate>| -> HashSet<Vec<u8>> {
        v.iter().map(|f| f.serial[..4].to_vec()).collect()
    };
    assert!(prefixes(&fields[0]).is_disjoint(&prefixes(&fields[1])));
    // Same period: everything but serial, key, signature and linkage value
    // is identical across vehicles.
    for (a, b) in issued[0].iter().zip(&issued[1]) {
        assert_eq!(a.period, b.period);
        let (_, ca) = x509_parser::parse_x509_certificate(&a.certificate_der).unwrap();
        let (_, cb) = x509_parser::parse_x509_certificate(&b.certificate_der).unwrap();
        assert_eq!(ca.subject().as_raw(), cb.subject().as_raw());
        assert_eq!(ca.issuer().as_raw(), cb.issuer().as_raw());
        assert_eq!(ca.validity().not_before, cb.validity().not_before);
        assert_eq!(ca.validity().not_after, cb.validity().not_after);
        let strip = |mut e: TrustLevelExtension| {
            e.basis.retain(|b| b.evidence != "linkage-value");
            e
        };
        assert_eq!(
            strip(extension(&a.certificate_der)),
            strip(extension(&b.certificate_der))
        );
    }

    // A copy of the whole data directory, as a curious operator takes it.
    let copy = tempfile::tempdir().unwrap();
    copy_dir(w.ca.data(), copy.path());
    std::fs::remove_dir_all(copy.path().join("ra")).unwrap();
    let identities: Vec<(String, String)> = w
        .cars
        .iter()
        .map(|c| {
            let id = trustca_model::DeviceIdentity::from_urn(&c.identity).unwrap();
            (c.identity.clone(), id.key())
        })
        .collect();
    // 1. No pseudonym serial appears in any file: certificates are not kept.
    let mut files = Vec::new();
    fn walk(p: &Path, out: &mut Vec<Vec<u8>>) {
        for e in std::fs::read_dir(p).unwrap().flatten() {
            if e.path().is_dir() {
                walk(&e.path(), out);
            } else {
                out.push(std::fs::read(e.path()).unwrap());
            }
        }
    }
    walk(copy.path(), &mut files);
    for f in fields.iter().flatten() {
        for bytes in &files {
            assert!(!contains(bytes, &f.serial), "a pseudonym serial is stored");
            assert!(!contains(bytes, hex::encode(&f.serial).as_bytes()));
            assert!(
                !contains(bytes, &f.spki_der[27..]),
                "a pseudonym key is stored"
            );
        }
    }
    // 2. Every stored record of the pseudonym space, read with the store's
    // own API: none names a vehicle, none holds a long-term serial.
    {
        let store = trustca_store::SledStorage::open(&copy.path().join("db")).unwrap();
        let blobs = store.blob_scan(pseudonym_ca::SPACE, b"").unwrap();
        let escrow = blobs.iter().filter(|(k, _)| k.starts_with(b"e/")).count();
        let vehicles = blobs.iter().filter(|(k, _)| k.starts_with(b"v/")).count();
        assert_eq!(escrow, 120, "one escrow record per certificate");
        assert_eq!(vehicles, 2);
        for (k, v) in &blobs {
            for (urn, key) in &identities {
                for needle in [urn.as_bytes(), key.as_bytes(), b"Acme", b"acme", b"VIN-"] {
                    assert!(!contains(k, needle) && !contains(v, needle));
                }
            }
            for car in &w.cars {
                let (_, lt) = x509_parser::parse_x509_certificate(&car.chain[0]).unwrap();
                assert!(!contains(v, lt.raw_serial()));
            }
        }
        // Escrow keys are the linkage values; nothing groups them by car.
        for f in fields.iter().flatten() {
            let key = [b"e/".as_slice(), &f.linkage_value].concat();
            assert!(blobs.iter().any(|(k, _)| *k == key));
        }
        // 3. Audit entries of pseudonym issuance name no vehicle and no
        // certificate.
        let entries = store.audit_entries(0, 100_000).unwrap();
        let issuance: Vec<_> = entries
            .iter()
            .filter(|e| e.kind.starts_with("pseudonym."))
            .collect();
        assert_eq!(issuance.len(), 2);
        for e in issuance {
            let text = format!("{} {} {}", e.actor, e.subject, e.detail);
            for (urn, key) in &identities {
                assert!(
                    !text.contains(urn.as_str()) && !text.contains(key.as_str()),
                    "{text}"
                );
            }
            assert!(
                !text.to_lowercase().contains("acme") && !text.contains("VIN-"),
                "{text}"
            );
            for f in fields.iter().flatten() {
                assert!(!text.contains(&hex::encode(&f.serial)));
                assert!(!text.contains(&hex::encode(f.linkage_value)));
            }
        }
        // 4. Without the RA key nothing opens: another key fails.
        let stranger = ResolutionAuthorityKey::generate().unwrap();
        let e = pseudonym_ca::resolve(
            &store,
            &stranger,
            &issued[0][0].certificate_der,
            &Default::default(),
        );
        assert!(e.is_err());
        // 5. With it, each certificate names its vehicle.
        let ra = pseudonym_ca::read_resolution_authority_key(
            &w.ca.data().join("ra/resolution-authority.key"),
        )
        .unwrap();
        for (car, certs) in w.cars.iter().zip(&issued) {
            for i in [&certs[0], &certs[37], &certs[59]] {
                let r = pseudonym_ca::resolve(&store, &ra, &i.certificate_der, &Default::default())
                    .unwrap();
                assert_eq!(r.identity, car.identity);
                assert_eq!(r.period, i.period);
                assert_eq!(r.index, Some(i.index));
            }
        }
    }
    // The command line, offline on the copy.
    let cert = copy.path().join("pseudonym.pem");
    std::fs::write(&cert, pem_of(&issued[1][5].certificate_der)).unwrap();
    let out = Command::new(trustca_bin())
        .args(["pseudonym", "resolve"])
        .arg(&cert)
        .arg("--data")
        .arg(copy.path())
        .arg("--ra-key")
        .arg(w.ca.data().join("ra/resolution-authority.key"))
        .arg("--json")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["identity"], w.cars[1].identity.as_str());
    assert_eq!(v["index"], issued[1][5].index);
}

/// Four-second periods, so the test sees a period pass.
const FAST_POLICY: &str = r#"
version = "test-1"
[sectors.automotive]
period_seconds = 4
overlap_seconds = 0
certificates_per_period = 4
max_periods_ahead = 10
max_periods_per_request = 6
min_level = 3
permissions = ["cam"]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prl_matches_the_revoked_cars_current_and_future_pseudonyms_only() {
    let w = world(2, Some(FAST_POLICY)).await;
    let url = w.ca.url();
    let mut certs: Vec<Vec<pb::IssuedPseudonym>> = Vec::new();
    let mut first_period = 0;
    for car in &w.cars {
        let mut c = pseudonyms(&url, &car.creds).await;
        let current = profile(&mut c).await.profile.unwrap().current_period;
        // From the next period, so a period change during the call cannot
        // make the request late.
        let (_, r) = request(&mut c, current + 1, 6).await.unwrap();
        assert_eq!(r.certificates.len(), 24);
        first_period = first_period.max(current + 1);
        certs.push(r.certificates);
    }
    let mut ops = pseudonyms(&url, &w.operator).await;
    // Wait until the cars' first period has begun and ended, so it is past.
    let revoke = loop {
        let r = ops
            .revoke_pseudonyms(pb::RevokePseudonymsRequest {
                identity: "urn:trustca:automotive:Acme:EV-200:NOBODY".into(),
                from_period: 0,
                reason: String::new(),
            })
            .await
            .unwrap_err();
        assert_eq!(r.code(), Code::NotFound);
        let mut c = pseudonyms(&url, &w.cars[1].creds).await;
        let now = profile(&mut c).await.profile.unwrap().current_period;
        if now > first_period {
            break ops
                .revoke_pseudonyms(pb::RevokePseudonymsRequest {
                    identity: w.cars[0].identity.clone(),
                    from_period: 0,
                    reason: "misbehaviour report 42".into(),
                })
                .await
                .unwrap()
                .into_inner();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(revoke.newly_revoked);
    let from = revoke.from_period;
    assert!(from > first_period);
    assert!(
        from <= certs[0].last().unwrap().period,
        "the car holds future pseudonyms"
    );

    // The list served over gRPC is the one in DIR/crl/automotive.prl.
    let served = ops
        .get_prl(pb::GetPrlRequest {
            sector: "automotive".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let file = w.ca.data().join("crl/automotive.prl");
    assert_eq!(read_prl(&file).unwrap(), served);
    assert_eq!(revoke.prl_number, served_number(&served));
    let root = pem::parse(w.ca.root_pem()).unwrap().into_contents();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut verdicts = BTreeMap::new();
    for i in &certs[0] {
        let r = check_against_prl(&i.certificate_der, &served, Some(&root), now).unwrap();
        assert_eq!(
            r.revoked,
            i.period >= from,
            "revoked car, period {} (from {from})",
            i.period
        );
        verdicts.insert(i.period, r.revoked);
    }
    assert!(
        verdicts.values().any(|v| !v) && verdicts.values().any(|v| *v),
        "{verdicts:?}"
    );
    for i in &certs[1] {
        let r = check_against_prl(&i.certificate_der, &served, Some(&root), now).unwrap();
        assert!(!r.revoked, "the other car is not revoked");
    }
    // A tampered list is refused.
    let mut bad = served.clone();
    let n = bad.prl.len();
    bad.prl[n - 1] ^= 1;
    assert!(check_against_prl(&certs[0][0].certificate_der, &bad, None, now).is_err());

    // The revoked car gets no more pseudonyms; revoking again changes nothing.
    let mut c = pseudonyms(&url, &w.cars[0].creds).await;
    let p = profile(&mut c).await;
    assert!(p.revoked);
    let e = request(&mut c, p.profile.unwrap().current_period + 7, 1)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let again = ops
        .revoke_pseudonyms(pb::RevokePseudonymsRequest {
            identity: w.cars[0].identity.clone(),
            from_period: 0,
            reason: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!again.newly_revoked);
    assert_eq!(again.from_period, from);

    // `trustca pseudonym check` on the published file: exit 3 for a
    // revoked pseudonym, 0 for one before the revocation period.
    let dir = tempfile::tempdir().unwrap();
    let root_file = dir.path().join("root.pem");
    std::fs::write(&root_file, w.ca.root_pem()).unwrap();
    for (cert, code) in [
        (certs[0].last().unwrap(), 3),
        (&certs[0][0], 0),
        (certs[1].last().unwrap(), 0),
    ] {
        let path = dir.path().join("p.pem");
        std::fs::write(&path, pem_of(&cert.certificate_der)).unwrap();
        let out = Command::new(trustca_bin())
            .args(["pseudonym", "check"])
            .arg(&path)
            .arg("--prl")
            .arg(&file)
            .arg("--root")
            .arg(&root_file)
            .arg("--json")
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(code),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn served_number(s: &pb::SignedPrl) -> u64 {
    trustca_pseudonym::PseudonymRevocationList::from_signed_bytes(&s.prl)
        .unwrap()
        .issue_number()
}

fn key_file(dir: &Path) -> std::path::PathBuf {
    use ring::rand::SecureRandom;
    let mut k = [0u8; 32];
    ring::rand::SystemRandom::new().fill(&mut k).unwrap();
    let p = dir.join("pool.key");
    std::fs::write(&p, k).unwrap();
    p
}

fn cli(args: &[&str], extra: &[&Path]) -> (Option<i32>, serde_json::Value, String) {
    let mut cmd = Command::new(trustca_bin());
    cmd.args(args);
    for p in extra {
        cmd.arg(p);
    }
    let out = cmd.env("RUST_LOG", "warn").output().unwrap();
    (
        out.status.code(),
        serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_vehicle_pool_requests_rotates_reports_exports_and_survives_restart() {
    let w = world(1, None).await;
    let car = &w.cars[0];
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("car.pem"), &car.creds.cert_pem).unwrap();
    std::fs::write(d.join("car.key"), &car.creds.key_pem).unwrap();
    std::fs::write(d.join("root.pem"), w.ca.root_pem()).unwrap();
    let key = key_file(d);
    let pool = d.join("pool");
    let url = w.ca.url();
    let pool_args = |cmd: &str| -> Vec<String> {
        vec![
            "pseudonym".into(),
            cmd.into(),
            "--pool".into(),
            pool.display().to_string(),
            "--pool-key".into(),
            key.display().to_string(),
            "--json".into(),
        ]
    };
    let request = |periods: &str| -> Vec<String> {
        let mut a = pool_args("request");
        a.extend(
            [
                "--server",
                &url,
                "--identity",
                &d.join("car.pem").display().to_string(),
                "--key",
                &d.join("car.key").display().to_string(),
                "--ca",
                &d.join("root.pem").display().to_string(),
                "--periods",
                periods,
            ]
            .map(String::from),
        );
        a
    };
    let run = |a: Vec<String>| {
        let refs: Vec<&str> = a.iter().map(|s| s.as_str()).collect();
        cli(&refs, &[])
    };

    let (code, v, out) = run(request("3"));
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(v["certificates"], 60, "{v}");
    let p0 = v["periods"][0].as_u64().unwrap();
    assert_eq!(v["periods"][1].as_u64().unwrap(), p0 + 2);

    let (code, s, out) = run(pool_args("status"));
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(s["periods_covered"], 3, "{s}");
    assert_eq!(s["certificates"], 60);
    assert_eq!(s["period_now"], p0);
    assert_eq!(s["unused_in_current_period"], 19, "one is in use");
    let current = s["current"]["serial"].as_str().unwrap().to_owned();
    assert_eq!(s["current"]["period"], p0);
    // Top-up is due when only one covered period is left.
    let epoch = 1_704_067_200i64;
    assert_eq!(s["next_topup_unix"], epoch + 604_800 * (p0 as i64 + 2));
    assert_eq!(s["topup_due"], false);

    // Rotation keeps the certificate until its interval passes; forced, it
    // changes to an unused one of the same period.
    let (_, r, _) = run(pool_args("rotate"));
    assert_eq!(r["rotation"], "kept");
    assert_eq!(r["status"]["current"]["serial"], current.as_str());
    let mut forced = pool_args("rotate");
    forced.push("--force".into());
    let (_, r, out) = run(forced);
    assert_eq!(r["rotation"], "changed", "{out}");
    let second = r["status"]["current"]["serial"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(second, current);
    assert_eq!(r["status"]["unused_in_current_period"], 18);

    // Export: the current certificate, its chain and its key, which match.
    let out_file = d.join("v2x.pem");
    let mut export = pool_args("export");
    export.push("--out".into());
    export.push(out_file.display().to_string());
    let (code, e, out) = run(export);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(e["serial"], second.as_str());
    let items = pem::parse_many(std::fs::read_to_string(&out_file).unwrap()).unwrap();
    assert_eq!(
        items.iter().map(|p| p.tag()).collect::<Vec<_>>(),
        ["CERTIFICATE", "CERTIFICATE", "PRIVATE KEY"]
    );
    rcgen::KeyPair::try_from(items[2].contents()).expect("rcgen loads the exported key");
    let f = pseudonym_fields(items[0].contents(), &Default::default()).unwrap();
    assert_eq!(hex::encode(&f.serial), second);
    assert_eq!(
        trustca_pseudonym::P256PrivateKey::from_pkcs8_der(items[2].contents())
            .unwrap()
            .public_key()
            .to_spki_der(),
        f.spki_der,
        "the exported key is the certificate's"
    );
    let (ok, msg) = openssl_verify(
        d,
        &w.ca.root_pem(),
        &[items[0].contents().to_vec(), items[1].contents().to_vec()],
        &[],
    );
    assert!(ok, "{msg}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&out_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0);
    }

    // Already covered: nothing requested. Five periods: two more fetched.
    let (_, v, out) = run(request("3"));
    assert_eq!(v["certificates"], 0, "{out}");
    let (_, v, out) = run(request("5"));
    assert_eq!(v["certificates"], 40, "{out}");
    assert_eq!(v["periods"][0].as_u64().unwrap(), p0 + 3);

    // At rest nothing is readable, and the wrong key opens nothing.
    let state = std::fs::read(pool.join("pool.bin")).unwrap();
    assert!(!contains(&state, second.as_bytes()));
    assert!(!contains(&state, &f.serial));
    let wrong = d.join("wrong.key");
    std::fs::write(&wrong, [7u8; 32]).unwrap();
    let (code, _, out) = cli(
        &[
            "pseudonym",
            "status",
            "--pool",
            &pool.display().to_string(),
            "--pool-key",
        ],
        &[&wrong],
    );
    assert_ne!(code, Some(0));
    assert!(out.contains("wrong pool key"), "{out}");

    // The library opens the same pool after the "restart".
    let secret = PoolSecret::key_file(&key).unwrap();
    let reopened = Pool::open(&pool, &secret).unwrap();
    assert_eq!(reopened.entries().len(), 100);
    assert_eq!(reopened.current().unwrap().serial, second);

    // A lost pool: the CA refuses to issue the same periods twice, and a
    // fresh pool continues after what was issued.
    let fresh_dir = d.join("fresh");
    let mut fresh = Pool::create(&fresh_dir, &secret).unwrap();
    let channel = connect(&url, &car.creds).await.unwrap();
    let root_der = pem::parse(w.ca.root_pem()).unwrap().into_contents();
    let r = request_into_pool(channel, &root_der, &mut fresh, 7)
        .await
        .unwrap();
    assert_eq!(r.periods, Some((p0 + 5, p0 + 6)));
    assert_eq!(r.certificates, 40);
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
    }
}

#[test]
fn rotation_never_reuses_a_certificate_within_a_period_and_drops_expired_ones() {
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path());
    let secret = PoolSecret::key_file(&key).unwrap();
    let path = dir.path().join("pool");
    let mut pool = Pool::create(&path, &secret).unwrap();
    let profile = PoolProfile {
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
    // Default interval: period / certificates = 200 s. Rotate faster
    // (150 s ±20 %) than the certificates last, so a period runs out.
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
            "always a certificate of the current period"
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
    // Every certificate of every period was used, once.
    assert_eq!(runs.len(), 15, "{runs:?}");
    assert!(
        outcomes.contains(&Rotation::Exhausted),
        "more changes than certificates"
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
    assert_eq!(s["certificates"], 5);
    assert_eq!(s["periods_covered"], 1);
    assert_eq!(s["topup_due"], true);
    // After everything expired there is no certificate to use.
    assert_eq!(pool.rotate(4000, false).unwrap(), Rotation::Empty);
    assert!(pool.current().is_none());
    // A wrong key does not open it.
    std::fs::write(dir.path().join("bad.key"), [1u8; 40]).unwrap();
    let bad = PoolSecret::key_file(&dir.path().join("bad.key")).unwrap();
    assert!(Pool::open(&path, &bad).is_err());
}
