//! The separated V2X authorities as separate servers (issue 8): the
//! pseudonym CA and both linkage authorities each run `serve --role` on a
//! copy of the data directory (as on their own machines), the registration
//! authority reaches them over mutual TLS with its own credential, and
//! vehicles enrolled at the CA get IEEE 1609.2 tickets through it. Then an
//! operator resolves one ticket with all four and revokes its vehicle from
//! the next period on; and the single-process `serve` does the same with
//! the four stores apart.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::path::Path;

use common::separated::{Authority, Car, Separated, enroll_cars, ticket_request};
use common::*;
use tonic::Code;
use tonic::transport::Channel;
use trustca_api::client::{ClientCredentials, connect};
use trustca_ca::Passphrase;
use trustca_model::CertificateKind;
use trustca_proto::v1 as pb;
use trustca_proto::v1::v2x_linkage_client::V2xLinkageClient;
use trustca_proto::v1::v2x_pseudonym_ca_client::V2xPseudonymCaClient;
use trustca_proto::v1::v2x_registration_client::V2xRegistrationClient;
use trustca_scms::{BatchPolicy, LinkageCrl, TicketOpener};
use trustca_server::ServeOptions;
use trustca_server::v2x::V2xRole;
use trustca_v2x::{CertProfile, Certificate, CertificateId};

const MB: usize = 16 * 1024 * 1024;

fn pass() -> Passphrase {
    Passphrase::new(PASSPHRASE.to_vec()).unwrap()
}

async fn registration(url: &str, creds: &ClientCredentials) -> V2xRegistrationClient<Channel> {
    V2xRegistrationClient::new(connect(url, creds).await.unwrap()).max_decoding_message_size(MB)
}

/// Requests `periods` periods for every car, then downloads and opens them.
async fn fill(ra_url: &str, cars: &[Car], periods: u32) -> Vec<Vec<trustca_scms::OpenedTicket>> {
    let mut first = 0;
    let mut pca_cert = None;
    for car in cars {
        let mut ra = registration(ra_url, &car.device.creds).await;
        let profile = ra
            .get_ticket_profile(pb::GetTicketProfileRequest {})
            .await
            .unwrap()
            .into_inner();
        first = profile.current_period;
        pca_cert = Some(profile.pseudonym_ca_certificate);
        let r = ra
            .request_tickets(ticket_request(&car.caterpillar, None, periods))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.queued, periods * profile.certificates_per_period);
    }
    let pca = Certificate::from_coer_in(CertProfile::Ieee1609Dot2, &pca_cert.unwrap()).unwrap();
    let mut all = Vec::new();
    for car in cars {
        let mut ra = registration(ra_url, &car.device.creds).await;
        // The batch goes out once enough vehicles wait; poll briefly.
        let mut responses = Vec::new();
        for _ in 0..50 {
            responses = ra
                .download_tickets(pb::DownloadTicketsRequest {})
                .await
                .unwrap()
                .into_inner()
                .responses;
            if !responses.is_empty() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        let opener = TicketOpener::new(&car.caterpillar, &pca, first, periods, 20).unwrap();
        let opened: Vec<_> = responses.iter().map(|r| opener.open(r).unwrap()).collect();
        assert_eq!(opened.len() as u32, periods * 20);
        all.push(opened);
    }
    all
}

fn linkage(c: &Certificate) -> (u16, [u8; 9]) {
    match &c.tbs().id {
        CertificateId::LinkageData(l) => (l.i_cert, l.linkage_value),
        other => panic!("{other:?}"),
    }
}

/// Resolution over gRPC with an operator credential: PCA → LA1, LA2 → RA.
async fn resolve(
    ops: &ClientCredentials,
    ra_url: &str,
    pca_url: &str,
    la_urls: [&str; 2],
    la_ids: [u32; 2],
    ticket: &Certificate,
) -> String {
    let mut pca = V2xPseudonymCaClient::new(connect(pca_url, ops).await.unwrap());
    let env = pca
        .resolution_envelopes(pb::ResolutionEnvelopesRequest {
            ticket: ticket.as_coer().to_vec(),
            case_reference: "MB-7".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let mut chains = Vec::new();
    for (k, envelope) in [env.first, env.second].into_iter().enumerate() {
        let mut la = V2xLinkageClient::new(connect(la_urls[k], ops).await.unwrap());
        chains.push(
            la.open_envelope(pb::OpenEnvelopeRequest {
                envelope,
                case_reference: "MB-7".into(),
                la_id: la_ids[k],
            })
            .await
            .unwrap()
            .into_inner()
            .chain_id,
        );
    }
    registration(ra_url, ops)
        .await
        .identify_vehicle(pb::IdentifyVehicleRequest {
            first_chain: chains[0].clone(),
            second_chain: chains[1].clone(),
            case_reference: "MB-7".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .vehicle
}

fn file_contains(dir: &Path, needle: &[u8]) -> bool {
    walk(dir).into_iter().any(|f| {
        std::fs::read(&f)
            .map(|b| b.windows(needle.len()).any(|w| w == needle))
            .unwrap_or(false)
    })
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.path().is_dir() {
                out.extend(walk(&e.path()));
            } else {
                out.push(e.path());
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_authorities_in_four_servers_issue_resolve_and_revoke() {
    let mut ca = TestCa::init();
    // Each authority on "its own machine": its own directory from `init
    // --role`, its own passphrase, certified by the CA from its request.
    let mut v2x = Separated::provision(&ca);
    for a in &v2x.authorities {
        assert_only_own_keys(a, &ca);
    }
    // The CA itself runs without in-process V2X authorities.
    ca.start_without_v2x().await;
    let batch = BatchPolicy {
        min_vehicles: 3,
        max_wait_secs: 3600,
        max_requests_per_batch: 10_000,
    };
    v2x.start(batch).await;
    let (ra_url, pca_url, la1_url, la2_url) = (
        v2x.get(V2xRole::Registration).url(),
        v2x.get(V2xRole::PseudonymCa).url(),
        v2x.get(V2xRole::Linkage1).url(),
        v2x.get(V2xRole::Linkage2).url(),
    );
    let ra_cred = v2x.get(V2xRole::Registration).client_credentials();
    let machines: Vec<&Path> = v2x.authorities.iter().map(|a| a.path()).collect();

    let cars = enroll_cars(&ca, 3).await;
    let tickets = fill(&ra_url, &cars, 3).await;
    // Downloads come in no particular order: the first period is the least.
    let current = tickets[0].iter().map(|t| t.period).min().unwrap();
    for (car, ts) in cars.iter().zip(&tickets) {
        for t in ts {
            let c = &t.certificate;
            assert!(c.conforms_to(CertProfile::Ieee1609Dot2));
            // automotive_lv5 evidence: Lv.5 → assurance octet A0.
            assert_eq!(c.tbs().assurance_level.unwrap().trust_level(), Some(5));
            let psids: Vec<u64> = c
                .tbs()
                .app_permissions
                .as_ref()
                .unwrap()
                .iter()
                .map(|p| p.psid)
                .collect();
            assert_eq!(psids, vec![36, 37, 639]);
        }
        // The pseudonym CA's and the linkage authorities' whole data never
        // hold the vehicle's identity.
        let id = car.device.identity.as_bytes();
        for m in &machines[1..] {
            assert!(!file_contains(m, id));
        }
    }

    // Roles come from certificates: a vehicle cannot issue at the PCA or
    // ask an LA for values; an operator cannot issue either; the RA's
    // credential is not a vehicle's.
    let car0 = &cars[0].device.creds;
    let mut as_car = V2xPseudonymCaClient::new(connect(&pca_url, car0).await.unwrap());
    let denied = as_car
        .issue_tickets(pb::IssueTicketsRequest { requests: vec![] })
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
    let ops = ca.credential(CertificateKind::Operator, "ops", &["automotive"]);
    let mut as_ops = V2xLinkageClient::new(connect(&la1_url, &ops).await.unwrap());
    let denied = as_ops
        .pre_linkage_values(pb::PreLinkageValuesRequest {
            chain_id: vec![0; 16],
            period: current,
            count: 1,
            la_id: 0,
            periods: 1,
        })
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    let denied = registration(&ra_url, &ra_cred)
        .await
        .request_tickets(ticket_request(&cars[0].caterpillar, None, 1))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    // Bad input: a short butterfly request, zero periods.
    let mut ra0 = registration(&ra_url, car0).await;
    for (bytes, periods) in [
        (vec![4u8; 10], 1),
        (cars[0].caterpillar.request().to_bytes().to_vec(), 0),
    ] {
        let e = ra0
            .request_tickets(pb::RequestTicketsRequest {
                butterfly_request: bytes,
                first_period: 0,
                has_first_period: false,
                periods,
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    }

    // Resolution of car 1's ticket of the second period.
    let culprit = &tickets[1]
        .iter()
        .find(|t| t.period == current + 1)
        .unwrap()
        .certificate;
    let vehicle = resolve(
        &ops,
        &ra_url,
        &pca_url,
        [&la1_url, &la2_url],
        [0, 0],
        culprit,
    )
    .await;
    assert_eq!(vehicle, cars[1].device.identity);

    // Revocation from the current period: the public CRL (an IEEE 1609.2
    // linkage CRL, whose seeds are for one period, iRev = the current one)
    // links car 1's tickets of periods ≥ current and nothing else. (A
    // revocation from a later period is withheld until that period: seeds
    // do not run backwards; scms/tests/scms/authorities.rs checks that.)
    let crl = registration(&ra_url, &ops)
        .await
        .revoke_vehicle(pb::RevokeVehicleRequest {
            vehicle: cars[1].device.identity.clone(),
            from_period: current,
            include_past: false,
        })
        .await
        .unwrap()
        .into_inner()
        .crl;
    let mut public = V2xPseudonymCaClient::new(connect(&pca_url, car0).await.unwrap());
    let fetched = public
        .get_linkage_crl(pb::GetLinkageCrlRequest {})
        .await
        .unwrap()
        .into_inner()
        .crl;
    assert_eq!(fetched, crl, "the published CRL is the new one");
    let crl = LinkageCrl::from_bytes(&fetched).unwrap();
    let pca_cert = Certificate::from_coer_in(
        CertProfile::Ieee1609Dot2,
        &std::fs::read(machines[1].join("trust/aa.oer")).unwrap(),
    )
    .unwrap();
    crl.verify(&pca_cert).unwrap();
    for (n, ts) in tickets.iter().enumerate() {
        for t in ts {
            let expect = n == 1 && t.period >= current;
            assert_eq!(
                crl.revokes(&t.certificate).unwrap(),
                expect,
                "car {n} period {}",
                t.period
            );
        }
    }
    // No more tickets for car 1.
    let e = registration(&ra_url, &cars[1].device.creds)
        .await
        .request_tickets(ticket_request(&cars[1].caterpillar, None, 1))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");

    // The RA's credential revoked at the CA: once the CA's CRL reaches the
    // pseudonym CA's machine, the pseudonym CA refuses it.
    let mut pca_as_ra = V2xPseudonymCaClient::new(connect(&pca_url, &ra_cred).await.unwrap());
    pca_as_ra
        .issue_tickets(pb::IssueTicketsRequest { requests: vec![] })
        .await
        .unwrap();
    let leaf = pem::parse_many(&ra_cred.cert_pem).unwrap()[0]
        .contents()
        .to_vec();
    pb::revocation_client::RevocationClient::new(connect(&ca.url(), &ops).await.unwrap())
        .revoke(pb::RevokeRequest {
            subject: Some(pb::revoke_request::Subject::Certificate(leaf)),
            reason: "key-compromise".into(),
            note: "RA host compromised".into(),
        })
        .await
        .unwrap();
    v2x.sync_crls(&ca);
    let mut refused = None;
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        match pca_as_ra
            .issue_tickets(pb::IssueTicketsRequest { requests: vec![] })
            .await
        {
            Ok(_) => continue,
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    let refused = refused.expect("the revoked RA credential is still accepted");
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    assert!(refused.message().contains("revoked"));

    v2x.stop().await;
    ca.stop().await;
}

/// No authority's directory holds a key that is not its own: its keystore
/// has exactly its own entries, and no file anywhere in it equals or
/// contains a file of another authority's keystore or of the CA's.
fn assert_only_own_keys(a: &Authority, ca: &TestCa) {
    let own: Vec<String> = std::fs::read_dir(a.path().join("keys"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".key"))
        .collect();
    let mut own_sorted = own.clone();
    own_sorted.sort();
    let expect: &[&str] = match a.role {
        V2xRole::PseudonymCa => &["aa.key", "authority.key", "crl.key", "tls.key"],
        V2xRole::Registration => &[
            "authority.key",
            "scms-encryption.key",
            "scms-signing.key",
            "tls.key",
        ],
        _ => &["authority.key", "tls.key"],
    };
    assert_eq!(own_sorted, expect, "{}", a.role.as_str());
    let ca_keys: Vec<Vec<u8>> = walk(&ca.data().join("ca"))
        .into_iter()
        .chain(walk(&ca.data().join("v2x")))
        .filter(|p| p.extension().is_some_and(|e| e == "key"))
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    assert!(!ca_keys.is_empty());
    for f in walk(a.path()) {
        let bytes = std::fs::read(&f).unwrap();
        for k in &ca_keys {
            assert!(
                !bytes
                    .windows(k.len().min(64))
                    .any(|w| w == &k[..k.len().min(64)]),
                "{} holds a CA key's bytes",
                f.display()
            );
        }
        // Outside its own keystore, no private key in any form.
        if f.parent() != Some(a.path().join("keys").as_path()) {
            let text = String::from_utf8_lossy(&bytes);
            assert!(!text.contains("PRIVATE KEY"), "{}", f.display());
        }
    }
    // Our own check agrees.
    trustca_server::v2x_role::RoleDir::open(a.path(), Some(a.role))
        .unwrap()
        .check_own_secrets_only()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_process_keeps_four_stores_apart() {
    let mut ca = TestCa::init();
    let mut opts = ServeOptions::new(
        ca.data().to_path_buf(),
        "127.0.0.1:0".parse().unwrap(),
        pass(),
    );
    opts.v2x_batch = BatchPolicy {
        min_vehicles: 2,
        max_wait_secs: 3600,
        max_requests_per_batch: 10_000,
    };
    ca.server = Some(trustca_server::start(opts).await.unwrap());
    let url = ca.url();
    let cars = enroll_cars(&ca, 2).await;
    let tickets = fill(&url, &cars, 1).await;
    assert_eq!(tickets.iter().map(Vec::len).sum::<usize>(), 40);
    let ops = ca.credential(CertificateKind::Operator, "ops", &["automotive"]);
    let vehicle = resolve(
        &ops,
        &url,
        &url,
        [&url, &url],
        [1, 2],
        &tickets[0][3].certificate,
    )
    .await;
    assert_eq!(vehicle, cars[0].device.identity);
    for role in ["registration", "pseudonym-ca", "linkage-1", "linkage-2"] {
        assert!(
            ca.data().join("v2x").join(role).join("store").is_dir(),
            "{role}"
        );
    }
    let pca_store = ca.data().join("v2x/pseudonym-ca");
    for car in &cars {
        assert!(!file_contains(&pca_store, car.device.identity.as_bytes()));
    }
    enrolment_credential(&ca, &cars[0].device.creds).await;
    cli_resolves_and_revokes(
        &ca,
        &ops,
        &tickets[1][0].certificate,
        &cars[1].device.identity,
    );
    // `trustca inspect` reads a ticket (linkageData, IEEE 1609.2 profile).
    let file = ca.data().join("ticket.oer");
    std::fs::write(&file, tickets[0][0].certificate.as_coer()).unwrap();
    let out = std::process::Command::new(trustca_bin())
        .args(["inspect", "--json"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["profile"], "Ieee1609Dot2");
    assert_eq!(v["id"]["i_cert"].as_u64(), Some(tickets[0][0].period));
    assert_eq!(
        v["id"]["linkage_value"].as_str().unwrap(),
        hex::encode(linkage(&tickets[0][0].certificate).1)
    );
    ca.stop().await;
}

/// The vehicle's V2X enrolment credential from the CA's enrolment
/// authority: for its own key (proof of possession bound to its TLS
/// credential), in the ETSI profile, checked by asn1tools and Python
/// `cryptography` when available.
async fn enrolment_credential(ca: &TestCa, creds: &ClientCredentials) {
    use ring::rand::SystemRandom;
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let key =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let public = trustca_v2x::PublicKeyP256::from_sec1(key.public_key().as_ref()).unwrap();
    // The caller's key fingerprint: SHA-256 of its certificate's SPKI.
    let leaf = pem::parse_many(&creds.cert_pem).unwrap()[0]
        .contents()
        .to_vec();
    let (_, cert) = x509_parser::parse_x509_certificate(&leaf).unwrap();
    let fingerprint = ring::digest::digest(&ring::digest::SHA256, cert.public_key().raw);
    let mut signed = trustca_api::v2x::ENROLMENT_POP_DOMAIN.to_vec();
    signed.extend_from_slice(&public.compressed());
    signed.extend_from_slice(fingerprint.as_ref());
    let pop = key.sign(&rng, &signed).unwrap().as_ref().to_vec();
    let mut client = pb::v2x_enrollment_client::V2xEnrollmentClient::new(
        connect(&ca.url(), creds).await.unwrap(),
    );
    // A proof by another key is refused.
    let other = EcdsaKeyPair::from_pkcs8(
        &ECDSA_P256_SHA256_FIXED_SIGNING,
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .unwrap()
            .as_ref(),
        &rng,
    )
    .unwrap();
    let bad = other.sign(&rng, &signed).unwrap().as_ref().to_vec();
    let e = client
        .issue_enrollment_credential(pb::IssueEnrollmentCredentialRequest {
            verification_key: key.public_key().as_ref().to_vec(),
            proof_of_possession: bad,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    let r = client
        .issue_enrollment_credential(pb::IssueEnrollmentCredentialRequest {
            verification_key: key.public_key().as_ref().to_vec(),
            proof_of_possession: pop,
        })
        .await
        .unwrap()
        .into_inner();
    let ec = Certificate::from_coer_in(CertProfile::Ieee1609Dot2, &r.credential).unwrap();
    let ea = Certificate::from_coer_in(CertProfile::Ieee1609Dot2, &r.enrolment_authority).unwrap();
    ec.verify_signed_by(Some(&ea)).unwrap();
    // IEEE 1609.2.1's enrolment certificate: certRequestPermissions, no
    // appPermissions (so not the ETSI TS 103 097 profile).
    assert!(!ec.conforms_to(CertProfile::EtsiTs103097));
    assert!(ec.tbs().app_permissions.is_none());
    assert_eq!(ec.tbs().verification_key, public);
    // Named for the RA, which knows vehicles (it travels encrypted to it).
    assert!(matches!(&ec.tbs().id, CertificateId::Name(n) if !n.is_empty()));
    assert_eq!(ec.tbs().assurance_level.unwrap().trust_level(), Some(5));
    assert_eq!(ec.tbs().craca_id, ea.tbs().craca_id);
    let groups = ec.tbs().cert_request_permissions.as_ref().unwrap();
    let psids: Vec<u64> = match &groups[0].subject_permissions {
        trustca_v2x::SubjectPermissions::Explicit(r) => r.iter().map(|p| p.psid).collect(),
        other => panic!("{other:?}"),
    };
    assert_eq!(psids, vec![36, 37, 639]);
    // The independent check: root → EA → EC with asn1tools + cryptography.
    if !asn1tools_ready(&["TS103097v131.asn"], &[]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let files = [
        ("root.oer", &r.root),
        ("ea.oer", &r.enrolment_authority),
        ("ec.oer", &r.credential),
    ];
    for (n, b) in files {
        std::fs::write(dir.path().join(n), b).unwrap();
    }
    let asn1 = asn1_dir();
    let out = std::process::Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../v2x/tests/independent.py"
        ))
        // The root in the ETSI profile; the EA (cracaId) and the enrolment
        // credential (certRequestPermissions) only in the IEEE one.
        .arg(dir.path().join("root.oer"))
        .arg("--ieee")
        .arg(dir.path().join("ea.oer"))
        .arg("--ieee")
        .arg(dir.path().join("ec.oer"))
        .env("V2X_ASN1_DIR", asn1)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ec_path = dir.path().join("ec.oer");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with(&format!("OK verified {}", ec_path.display()))),
        "{stdout}"
    );
}

/// `trustca v2x resolve` and `trustca v2x revoke` (the operator's CLI)
/// against a one-process deployment, with bad input refused in one line.
fn cli_resolves_and_revokes(
    ca: &TestCa,
    ops: &ClientCredentials,
    ticket: &Certificate,
    vehicle: &str,
) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("ops.pem"), &ops.cert_pem).unwrap();
    std::fs::write(d.join("ops.key"), &ops.key_pem).unwrap();
    std::fs::write(d.join("root.pem"), &ops.root_pem).unwrap();
    std::fs::write(d.join("ticket.oer"), ticket.as_coer()).unwrap();
    let client = |extra: &[&str]| {
        let mut a: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        for (flag, value) in [
            ("--server", ca.url()),
            ("--identity", d.join("ops.pem").display().to_string()),
            ("--key", d.join("ops.key").display().to_string()),
            ("--ca", d.join("root.pem").display().to_string()),
        ] {
            a.push(flag.into());
            a.push(value);
        }
        std::process::Command::new(trustca_bin())
            .args(&a)
            .output()
            .unwrap()
    };
    let ticket_path = d.join("ticket.oer").display().to_string();
    let out = client(&[
        "v2x",
        "resolve",
        &ticket_path,
        "--case",
        "MB-CLI-1",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["vehicle"], vehicle);
    // A file that is not a ticket: one line, non-zero exit.
    std::fs::write(d.join("junk.oer"), b"not a ticket").unwrap();
    let junk = d.join("junk.oer").display().to_string();
    let out = client(&["v2x", "resolve", &junk, "--case", "MB-CLI-2"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("InvalidArgument"), "{err}");
    let crl_path = d.join("linkage.crl").display().to_string();
    let period = match &ticket.tbs().id {
        CertificateId::LinkageData(l) => u64::from(l.i_cert),
        other => panic!("{other:?}"),
    };
    let out = client(&[
        "v2x",
        "revoke",
        "--vehicle",
        vehicle,
        "--from-period",
        &period.to_string(),
        "--out",
        &crl_path,
        "--eca",
        &ca.url(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("now lists 1 vehicle"), "{said}");
    // This vehicle never enrolled for an enrolment certificate.
    assert!(
        said.contains("0 enrolment certificate(s) listed; hash CRL series 3"),
        "{said}"
    );
    let crl = LinkageCrl::from_bytes(&std::fs::read(&crl_path).unwrap()).unwrap();
    assert!(crl.revokes(ticket).unwrap());

    // The CA certificate CRL: empty, then listing the revoked AA.
    let json = |out: std::process::Output| -> serde_json::Value {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let list = d.join("ca.crl").display().to_string();
    let before = json(client(&[
        "v2x", "hash-crl", "--series", "2", "--out", &list, "--json",
    ]));
    assert_eq!(before["entries"], 0);
    let aa = ca.data().join("ca/v2x-aa.oer").display().to_string();
    let after = json(client(&[
        "v2x",
        "revoke-ca-certificate",
        &aa,
        "--reason",
        "key compromise (test)",
        "--json",
    ]));
    assert_eq!(after["crl"]["entries"], 1);
    assert_eq!(after["crl"]["crl_series"], 2);
    assert!(
        after["crl"]["crl_serial"].as_u64() > before["crl_serial"].as_u64(),
        "{after}"
    );
    // Not a certificate of this V2X root: refused in one line.
    let out = client(&[
        "v2x",
        "revoke-ca-certificate",
        &ticket_path,
        "--reason",
        "a ticket is no CA certificate",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("InvalidArgument"));
}
