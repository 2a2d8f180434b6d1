//! Each separated V2X authority played as the attacker the design must
//! withstand (issue 18): with its whole directory, its passphrase and its
//! normal credential, it must neither group another vehicle's tickets nor
//! name a vehicle. A separated deployment of 12 vehicles over two
//! interleaved rounds (batches of ≥ 4 vehicles) runs first; then
//!
//! * the pseudonym CA tries every key its directory holds on every chain
//!   envelope it stored (the attack that grouped 1,460/1,460 tickets when
//!   its directory still held the linkage authorities' keys), and links
//!   tickets whose stored records share bytes: no envelope opens and no two
//!   records are related, which leaves it what batch composition tells it
//!   (grouping a batch's tickets as one vehicle is right for a pair with
//!   probability ≤ 19 / (20·4 − 1) ≈ 0.24 here; docs/pseudonyms.md);
//! * the registration authority asks a linkage authority for pre-linkage
//!   values of a chain it knows: the call is recorded in that linkage
//!   authority's own audit log with its name and the counts, and the
//!   values are sealed to the pseudonym CA, whose key its directory lacks;
//! * no authority's `/metrics` names a vehicle or a chain, and the logs of
//!   all four at debug level never carry a ticket's linkage value, hash or
//!   key, and the pseudonym CA's and linkage authorities' lines never name
//!   a vehicle;
//! * `serve --role` refuses a directory holding another authority's key or
//!   a CA's directory, and a past `--from-period` is refused without
//!   `include_past`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::collections::HashMap;

use common::separated::{
    Car, Separated, enroll_cars, role_options, role_start_error, ticket_request,
};
use common::*;
use tonic::Code;
use trustca_api::client::connect;
use trustca_ca::{Keystore, Passphrase};
use trustca_model::CertificateKind;
use trustca_proto::v1 as pb;
use trustca_proto::v1::v2x_linkage_client::V2xLinkageClient;
use trustca_proto::v1::v2x_registration_client::V2xRegistrationClient;
use trustca_pseudonym::{LaId, P256PrivateKey};
use trustca_scms::{
    BatchPolicy, ChainEnvelope, LinkKey, LinkageAuthority, ScmsError, TicketOpener,
};
use trustca_server::v2x::V2xRole;
use trustca_store::{SledStorage, Storage};
use trustca_v2x::{CertProfile, Certificate, CertificateId};

const MB: usize = 16 * 1024 * 1024;

/// Everything every authority in this process logs, at debug level.
#[derive(Clone, Default)]
struct Logs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Logs {
    type Writer = Logs;
    fn make_writer(&'a self) -> Logs {
        self.clone()
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
const VEHICLES: usize = 12;
const MIN_VEHICLES: usize = 4;

/// A deterministic shuffle (the order vehicles ask in; xorshift).
fn shuffle<T>(v: &mut [T], seed: u64) {
    let mut x = seed | 1;
    for i in (1..v.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.swap(i, (x % (i as u64 + 1)) as usize);
    }
}

fn ca_pass() -> Passphrase {
    Passphrase::new(PASSPHRASE.to_vec()).unwrap()
}

/// Every P-256 scalar the authority's keystore holds (the attacker knows
/// its own passphrase), as the candidates it tries.
fn keystore_scalars(dir: &std::path::Path, pass: &Passphrase) -> Vec<[u8; 32]> {
    let keys = Keystore::open(&dir.join("keys"), pass).unwrap();
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir.join("keys")).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(stem) = name.strip_suffix(".key") else {
            continue;
        };
        let der = keys.load(stem).unwrap();
        // Every key there is P-256 (authority, tls, aa, crl): all are tried.
        out.push(*P256PrivateKey::from_pkcs8_der(&der).unwrap().to_bytes());
    }
    assert_eq!(out.len(), 4, "the PCA's four keys");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_authority_alone_links_or_names_vehicles() {
    let logs = Logs::default();
    tracing_subscriber::fmt()
        .with_max_level(tracing_subscriber::filter::LevelFilter::DEBUG)
        .with_ansi(false)
        .with_writer(logs.clone())
        .init();
    let mut ca = TestCa::init();
    let mut v2x = Separated::provision(&ca);
    ca.start_without_v2x().await;
    v2x.start(BatchPolicy {
        min_vehicles: MIN_VEHICLES,
        max_wait_secs: 3600,
        max_requests_per_batch: 100_000,
    })
    .await;
    let ra_url = v2x.get(V2xRole::Registration).url();

    let cars = enroll_cars(&ca, VEHICLES).await;
    let profile =
        V2xRegistrationClient::new(connect(&ra_url, &cars[0].device.creds).await.unwrap())
            .get_ticket_profile(pb::GetTicketProfileRequest {})
            .await
            .unwrap()
            .into_inner();
    let pca_cert =
        Certificate::from_coer_in(CertProfile::Ieee1609Dot2, &profile.pseudonym_ca_certificate)
            .unwrap();
    let first = profile.current_period;

    // Two rounds, each in another order; every vehicle asks for one period
    // per round, so batches mix vehicles of both rounds' orders.
    let mut owner: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut ticket_marks: Vec<String> = Vec::new();
    for round in 0..2u64 {
        let mut order: Vec<usize> = (0..VEHICLES).collect();
        shuffle(&mut order, 0x5eed + round);
        for &i in &order {
            let mut ra =
                V2xRegistrationClient::new(connect(&ra_url, &cars[i].device.creds).await.unwrap());
            ra.request_tickets(ticket_request(&cars[i].caterpillar, Some(first + round), 1))
                .await
                .unwrap();
        }
    }
    for (
        i,
        Car {
            device,
            caterpillar,
        },
    ) in cars.iter().enumerate()
    {
        let mut ra = V2xRegistrationClient::new(connect(&ra_url, &device.creds).await.unwrap())
            .max_decoding_message_size(MB);
        let mut responses = Vec::new();
        for _ in 0..50 {
            responses = ra
                .download_tickets(pb::DownloadTicketsRequest {})
                .await
                .unwrap()
                .into_inner()
                .responses;
            if responses.len() == 40 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        let opener = TicketOpener::new(caterpillar, &pca_cert, first, 2, 20).unwrap();
        assert_eq!(responses.len(), 40, "vehicle {i}");
        for r in &responses {
            let t = opener.open(r).unwrap();
            let CertificateId::LinkageData(l) = &t.certificate.tbs().id else {
                panic!("a ticket without linkage data");
            };
            ticket_marks.push(hex(&l.linkage_value));
            ticket_marks.push(hex(&t.certificate.hashed_id8()));
            ticket_marks.push(hex(&t.certificate.tbs().verification_key.x()));
            // The PCA's record key: t/ ‖ BE16(iCert) ‖ linkage value.
            let mut key = b"t/".to_vec();
            key.extend_from_slice(&l.i_cert.to_be_bytes());
            key.extend_from_slice(&l.linkage_value);
            owner.insert(key, i);
        }
    }
    assert_eq!(owner.len(), VEHICLES * 40);
    let logged = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    assert!(logged.contains("DEBUG"), "debug logging is on");
    for mark in &ticket_marks {
        assert!(
            !logged.contains(mark.as_str()),
            "a ticket's {mark} was logged"
        );
    }
    for line in logged
        .lines()
        .filter(|l| l.contains("pseudonym_ca") || l.contains("linkage"))
    {
        for car in &cars {
            assert!(
                !line.contains(car.device.identity.as_str()),
                "{line} names a vehicle"
            );
        }
    }

    // The registration authority, with its normal credential, asks LA1 for
    // values of a chain its store names.
    let ra_creds = v2x.get(V2xRole::Registration).client_credentials();
    v2x.stop().await;
    let ra_store = SledStorage::open(&v2x.get(V2xRole::Registration).path().join("store")).unwrap();
    let chains = ra_store.blob_scan("v2x.ra", b"x/").unwrap();
    assert_eq!(chains.len(), VEHICLES, "one LA1 chain per vehicle");
    // Its records are sealed under its own key from its first start on (a
    // tag per record, no entry naming a record or a vehicle).
    let sealing: Vec<_> = ra_store
        .audit_entries(0, 10_000)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == trustca_store::SEALED_KIND)
        .collect();
    assert_eq!(sealing.len(), 1, "{sealing:?}");
    assert_eq!(sealing[0].subject, "v2x.ra records");
    assert_eq!(sealing[0].detail, r#"{"records":0}"#);
    drop(ra_store);
    v2x.start(BatchPolicy::default()).await;
    let la1_url = v2x.get(V2xRole::Linkage1).url();
    let mut la1 = V2xLinkageClient::new(connect(&la1_url, &ra_creds).await.unwrap())
        .max_decoding_message_size(MB);
    let chain_id = chains[0].0[2..].to_vec();
    let values = la1
        .pre_linkage_values(pb::PreLinkageValuesRequest {
            chain_id,
            period: first,
            count: 20,
            la_id: 0,
            periods: 2,
        })
        .await
        .unwrap()
        .into_inner()
        .values;
    assert_eq!(values.len(), 40);
    // A past revocation is refused without include_past.
    let ops = ca.credential(CertificateKind::Operator, "ops", &["automotive"]);
    let mut as_ops = V2xRegistrationClient::new(
        connect(&v2x.get(V2xRole::Registration).url(), &ops)
            .await
            .unwrap(),
    );
    let e = as_ops
        .revoke_vehicle(pb::RevokeVehicleRequest {
            vehicle: cars[0].device.identity.clone(),
            from_period: first.saturating_sub(1),
            include_past: false,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(e.message().contains("include-past"), "{e:?}");
    // Each authority's metrics (what its operator's monitoring sees) name
    // no vehicle and no chain.
    let chain_hex = hex::encode(&chains[0].0[2..]);
    for a in &v2x.authorities {
        let addr = a.server.as_ref().unwrap().metrics_addr.expect("--metrics");
        let (status, body) = tokio::task::spawn_blocking(move || http_get(addr, "/metrics"))
            .await
            .unwrap();
        assert!(status.contains("200"), "{status}");
        assert!(body.contains("# TYPE"), "{body}");
        assert!(!body.contains(&chain_hex));
        for Car { device, .. } in &cars {
            assert!(!body.contains(&device.identity), "{}", a.role.as_str());
        }
    }
    v2x.stop().await;
    ca.stop().await;

    // LA1's own log recorded that hand-out: the RA's name, the counts, no chain.
    let la1_store = SledStorage::open(&v2x.get(V2xRole::Linkage1).path().join("store")).unwrap();
    let log = la1_store.audit_entries(0, 10_000).unwrap();
    let handed: Vec<_> = log
        .iter()
        .filter(|e| e.kind == "linkage.values.handed-out")
        .collect();
    assert_eq!(handed.len(), VEHICLES * 2 + 1, "every hand-out is audited");
    let last = handed.last().unwrap();
    assert_eq!(last.actor, "registration-1");
    assert!(
        last.detail.contains("\"periods\":2") && last.detail.contains("\"count\":20"),
        "{}",
        last.detail
    );
    for e in &log {
        assert!(!e.detail.contains(&hex::encode(&chains[0].0[2..])), "{e:?}");
    }
    drop(la1_store);

    // The pseudonym CA as attacker: its store's records per ticket, and
    // every key its directory holds, tried as a linkage authority's.
    let pca = v2x.get(V2xRole::PseudonymCa);
    let pca_store: std::sync::Arc<dyn Storage> =
        std::sync::Arc::new(SledStorage::open(&pca.path().join("store")).unwrap());
    let records = pca_store.blob_scan("v2x.pca", b"t/").unwrap();
    assert_eq!(records.len(), VEHICLES * 40);
    let mut opened = 0;
    for scalar in keystore_scalars(pca.path(), &pca.passphrase()) {
        let hkey = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &scalar);
        for label in [
            &b"trustca-la-storage-v1"[..],
            b"trustca-pca-storage-v1",
            b"",
        ] {
            let mut candidate = [0u8; 32];
            candidate.copy_from_slice(ring::hmac::sign(&hkey, label).as_ref());
            for storage_key in [candidate, scalar] {
                let la = LinkageAuthority::new(
                    LaId(1),
                    std::sync::Arc::clone(&pca_store),
                    LinkKey::from_bytes(&storage_key).unwrap(),
                    LinkKey::from_bytes(&[7; 32]).unwrap(),
                );
                for (_, value) in &records {
                    for half in [&value[..44], &value[44..88]] {
                        let env = ChainEnvelope(half.try_into().unwrap());
                        // Envelope: it did not decrypt; anything else (the
                        // chain is not in this store) means it did.
                        match la.open_envelope(&env, "attacker", "none", 0) {
                            Err(ScmsError::Envelope { .. }) => {}
                            _ => opened += 1,
                        }
                    }
                }
            }
        }
    }
    assert_eq!(opened, 0, "the pseudonym CA opened chain envelopes");

    // Linking by stored bytes: two tickets whose records share any 8-byte
    // window are grouped. Precision is measured against the truth.
    let owners: Vec<usize> = records.iter().map(|(k, _)| owner[k]).collect();
    let (mut linked, mut right) = (0u64, 0u64);
    for a in 0..records.len() {
        let windows: std::collections::HashSet<&[u8]> = records[a].1[..88].windows(8).collect();
        for b in a + 1..records.len() {
            if records[b].1[..88].windows(8).any(|w| windows.contains(w)) {
                linked += 1;
                right += u64::from(owners[a] == owners[b]);
            }
        }
    }
    assert_eq!(
        linked, 0,
        "{right}/{linked} linked pairs were the same vehicle"
    );
    // No vehicle is named in the PCA's or the LAs' directories.
    for role in [V2xRole::PseudonymCa, V2xRole::Linkage1, V2xRole::Linkage2] {
        for Car { device, .. } in &cars {
            assert!(!dir_contains(
                v2x.get(role).path(),
                device.identity.as_bytes()
            ));
        }
    }
    drop(pca_store);

    // serve --role refuses another authority's key in its directory, and a
    // CA's data directory, each in one sentence.
    let la2 = v2x.get(V2xRole::Linkage2);
    std::fs::copy(
        pca.path().join("keys/aa.key"),
        la2.path().join("keys/aa.key"),
    )
    .unwrap();
    let e = role_start_error(la2.path(), V2xRole::Linkage2).await;
    assert!(e.contains("aa.key") && e.contains("refusing"), "{e}");
    std::fs::remove_file(la2.path().join("keys/aa.key")).unwrap();
    std::fs::copy(
        pca.path().join("keys/aa.key"),
        la2.path().join("backup.key"),
    )
    .unwrap();
    let e = role_start_error(la2.path(), V2xRole::Linkage2).await;
    assert!(e.contains("backup.key"), "{e}");
    let mut on_ca = role_options(
        ca.data(),
        V2xRole::PseudonymCa,
        None,
        BatchPolicy::default(),
    );
    on_ca.passphrase = ca_pass();
    let e = trustca_server::start(on_ca)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("CA's data directory"), "{e}");
}

pub(crate) fn dir_contains(dir: &std::path::Path, needle: &[u8]) -> bool {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if std::fs::read(&p)
                .map(|b| b.windows(needle.len()).any(|w| w == needle))
                .unwrap_or(false)
            {
                return true;
            }
        }
    }
    false
}
