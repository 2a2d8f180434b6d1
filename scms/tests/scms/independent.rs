//! Cross-check of what the separated authorities produce with an independent
//! implementation: `tests/independent.py` (Python asn1tools compiled from the
//! published IEEE 1609.2 ASN.1 modules, Python cryptography, hashlib, hmac;
//! no trustca code) decodes and verifies every authorization ticket and the
//! pseudonym CA certificate, decrypts responses with the vehicle's cocoon
//! key, and recomputes the CAMP/SCMS linkage values from the seeds in the
//! signed linkage CRL. Skipped, loudly, when python3, asn1tools,
//! cryptography or the ASN.1 modules are missing, unless
//! TRUSTCA_REQUIRE_INTEROP=1.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use common::{NOW, hierarchy_with_crl_signer};
use serde_json::{Value, json};
use trustca_pseudonym::Caterpillar;
use trustca_scms::{BatchPolicy, LocalDeployment, TicketOpener, TicketProfile, VehicleCredential};
use trustca_testkit::{asn1_dir, asn1tools_ready};

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p.to_str().unwrap().to_owned()
}

/// Runs independent.py on `manifest`; its JSON answer and exit status.
fn run_python(dir: &Path, name: &str, manifest: &Value) -> (Value, bool) {
    let manifest_path = write(dir, name, manifest.to_string().as_bytes());
    let run = Command::new("python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/independent.py"))
        .arg(&manifest_path)
        .env("V2X_ASN1_DIR", asn1_dir())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    eprintln!("{}", String::from_utf8_lossy(&run.stderr));
    let result: Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("python printed no JSON ({e}):\n{stdout}"));
    eprintln!("{}", serde_json::to_string_pretty(&result).unwrap());
    (result, run.status.success())
}

#[test]
fn python_verifies_tickets_responses_and_the_linkage_crl() {
    if !asn1tools_ready(&["IEEE1609dot2.asn", "TS103097v131.asn"], &["tomllib"]) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let h = hierarchy_with_crl_signer();
    let (root, pca_cert) = (h.root.clone(), h.pca.clone());
    let profile = TicketProfile::default();
    let d = LocalDeployment::open_with_crl_signer(
        work.path(),
        profile.clone(),
        BatchPolicy {
            min_vehicles: 1,
            max_wait_secs: 0,
            max_requests_per_batch: 10_000,
        },
        Arc::new(h.pca_key),
        pca_cert.clone(),
        (Arc::new(h.crl_key), h.crl),
    )
    .unwrap();
    let current = profile.period_at(NOW).unwrap();
    let cpp = profile.certificates_per_period;
    const PERIODS: u32 = 4;
    // Three vehicles at three levels; vehicle 0 is revoked from the third
    // of the four periods.
    let vehicles: Vec<VehicleCredential> = [3u8, 4, 2]
        .iter()
        .enumerate()
        .map(|(n, level)| VehicleCredential {
            id: format!("urn:trustca:mobility:acme:car-{n}"),
            level: *level,
        })
        .collect();
    let cats: Vec<Caterpillar> = vehicles
        .iter()
        .map(|_| Caterpillar::generate().unwrap())
        .collect();
    for (v, c) in vehicles.iter().zip(&cats) {
        d.ra.submit(v, &c.request(), Some(current), PERIODS, NOW)
            .unwrap();
    }
    d.ra.flush(NOW, false).unwrap();

    let mut tickets = Vec::new();
    let mut responses = Vec::new();
    let mut expected_revoked = BTreeSet::new();
    let revoked_vehicle = 0usize;
    let revoked_from = current + 2;
    for (n, (v, cat)) in vehicles.iter().zip(&cats).enumerate() {
        let opener = TicketOpener::new(cat, &pca_cert, current, PERIODS, cpp).unwrap();
        let downloaded = d.ra.download(v).unwrap();
        assert_eq!(downloaded.len() as u32, PERIODS * cpp);
        for (k, encrypted) in downloaded.iter().enumerate() {
            let t = opener.open(encrypted).unwrap();
            let index = tickets.len();
            let path = write(
                out.path(),
                &format!("ticket-{n}-{}-{}.coer", t.period, t.j),
                t.certificate.as_coer(),
            );
            tickets.push(json!({
                "path": path,
                "vehicle": n,
                "level": v.level,
                "period": t.period,
                "j": t.j,
            }));
            if n == revoked_vehicle && t.period >= revoked_from {
                expected_revoked.insert(index);
            }
            // A few responses per vehicle, in different periods, with the
            // cocoon private key that opens each.
            if k % 23 == 0 {
                let cocoon = cat.cocoon_private_key(t.period, t.j).unwrap();
                let rpath = write(
                    out.path(),
                    &format!("response-{n}-{}-{}.coer", t.period, t.j),
                    encrypted,
                );
                responses.push(json!({
                    "path": rpath,
                    "cocoon_secret": hex::encode(cocoon.to_bytes().as_ref()),
                    "ticket": index,
                }));
            }
        }
    }
    assert!(responses.len() >= 3 * 3, "{} responses", responses.len());

    let entry =
        d.ra.revoke(
            &vehicles[revoked_vehicle].id,
            revoked_from,
            false,
            "operator",
            NOW + 7200,
        )
        .unwrap();
    d.pca.revoke(entry, "operator", NOW + 7200).unwrap();
    // The list of the revocation period carries the seeds for it (iRev).
    let crl = d
        .pca
        .current_crl(profile.epoch + revoked_from as i64 * profile.period_seconds() + 60)
        .unwrap();

    let manifest = json!({
        "policy": concat!(env!("CARGO_MANIFEST_DIR"), "/../policies/v2x-tickets.toml"),
        "root": write(out.path(), "root.coer", root.as_coer()),
        "pca": write(out.path(), "pca.coer", pca_cert.as_coer()),
        "crl": write(out.path(), "linkage-crl.bin", crl.as_bytes()),
        "tickets": tickets,
        "responses": responses,
        "revoked": { "vehicle": revoked_vehicle, "from_period": revoked_from },
    });
    let (result, success) = run_python(out.path(), "manifest.json", &manifest);
    assert_eq!(result["failures"], json!([]), "independent check failed");
    assert!(success);

    let n_tickets = vehicles.len() as u64 * u64::from(PERIODS * cpp);
    assert_eq!(result["tickets_decoded"], json!(n_tickets));
    assert_eq!(result["tickets_verified"], json!(n_tickets));
    assert_eq!(result["pca_verified_under_root"], json!(true));
    assert_eq!(result["root_self_signed_verified"], json!(true));
    assert_eq!(result["responses_decrypted"], json!(responses.len()));
    assert_eq!(result["response_keys_matched"], json!(responses.len()));
    assert_eq!(result["crl_signature_verified"], json!(true));
    // The IEEE 1609.2-2022 modules read the same bytes: root, PCA, every
    // ticket and the signed CRL re-encode identically.
    assert_eq!(
        result["ieee2022_certificates_reencoded"],
        json!(n_tickets + 2)
    );
    assert_eq!(result["ieee2022_crl_reencoded"], json!(true));
    assert_eq!(result["crl_entries"], json!(1));
    assert_eq!(result["crl_series"], json!(profile.crl_series));
    // Seeds released from the revocation period: linkage values of the
    // two remaining periods, all `j`.
    let last = current + u64::from(PERIODS) - 1;
    assert_eq!(
        result["linkage_values_computed"],
        json!((last - revoked_from + 1) * u64::from(cpp))
    );
    let matched: BTreeSet<usize> = result["matched_tickets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    assert_eq!(matched, expected_revoked);
    assert_eq!(matched.len() as u64, 2 * u64::from(cpp));
    let mut per_vehicle_period: BTreeMap<String, u64> = BTreeMap::new();
    for (k, v) in result["matched_by_vehicle_period"].as_object().unwrap() {
        per_vehicle_period.insert(k.clone(), v.as_u64().unwrap());
    }
    assert_eq!(
        per_vehicle_period,
        (revoked_from..=last)
            .map(|p| (format!("{revoked_vehicle}/{p}"), u64::from(cpp)))
            .collect()
    );

    // Standard responses have the ticket's length (the RA pads them to
    // one size in its store, not on the wire).
    let lengths = result["response_lengths"].as_array().unwrap();
    assert!(!lengths.is_empty());
    assert!(lengths.iter().all(|l| {
        let l = l.as_u64().unwrap() as usize;
        (300..=trustca_scms::registration::STORED_RESPONSE_LEN - 2).contains(&l)
    }));

    // The check is not vacuous: a changed sSig, a wrong level, a response
    // opened with another cocoon key and a wrong revocation period must
    // each be reported.
    let mut bad = manifest.clone();
    let victim = bad["tickets"][161]["path"].as_str().unwrap().to_owned();
    assert_eq!(bad["tickets"][161]["vehicle"], json!(2));
    let mut bytes = std::fs::read(&victim).unwrap();
    *bytes.last_mut().unwrap() ^= 1;
    bad["tickets"][161]["path"] = json!(write(out.path(), "tampered.coer", &bytes));
    assert_eq!(bad["tickets"][81]["level"], json!(4));
    bad["tickets"][81]["level"] = json!(3);
    bad["responses"][0]["cocoon_secret"] = manifest["responses"][1]["cocoon_secret"].clone();
    bad["revoked"]["from_period"] = json!(revoked_from + 1);
    let (result, success) = run_python(out.path(), "bad-manifest.json", &bad);
    assert!(!success);
    let failures: Vec<String> = result["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_owned())
        .collect();
    for needle in [
        "tampered.coer: signature does not verify",
        "assuranceLevel b'\\x80' for level 3",
        "recipient id is not the cocoon key's",
        &format!("CRL entry releases from period {revoked_from}"),
        &format!("CRL matches {} tickets, expected the {}", 2 * cpp, cpp),
    ] {
        assert!(
            failures.iter().any(|f| f.contains(needle)),
            "not reported: {needle}\n{failures:#?}"
        );
    }
    assert_eq!(failures.len(), 5, "{failures:#?}");
}
