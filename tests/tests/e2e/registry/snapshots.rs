//! Signed trust snapshots from the registry: offline decisions from a fetched
//! snapshot equal the online ones, and the snapshot is checked independently
//! of our code.

use super::*;

/// Python `asn1tools` (compiling docs/trust-snapshot.asn1) decodes the file
/// and `cryptography` verifies its signature and signer: no trustca code.
/// Skips loudly where they are missing, fails under
/// `TRUSTCA_REQUIRE_INTEROP=1`.
fn independent_check(
    file: &std::path::Path,
    root: &std::path::Path,
    snapshot: &trustca_model::TrustSnapshot,
) {
    if !python_ready(&["asn1tools", "cryptography"]) {
        return;
    }
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new("python3")
        .arg(repo.join("tests/interop/snapshot_check.py"))
        .arg(file)
        .arg(root)
        .arg(repo.join("docs/trust-snapshot.asn1"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "independent check failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["serial"], snapshot.serial);
    assert_eq!(v["models"].as_array().unwrap().len(), snapshot.models.len());
    assert_eq!(
        v["devices"].as_array().unwrap().len(),
        snapshot.devices.len()
    );
    for (theirs, ours) in v["devices"]
        .as_array()
        .unwrap()
        .iter()
        .zip(&snapshot.devices)
    {
        assert_eq!(theirs[0], ours.identity.as_str());
        assert_eq!(theirs[1], ours.level.get());
        assert_eq!(theirs[2], ours.status.as_str());
    }
    let m = &v["models"][0];
    assert_eq!(
        (m[4].as_u64(), m[5].as_str()),
        (Some(5), Some("certified")),
        "{m}"
    );
    assert_eq!(v["revoked"], snapshot.revoked_certificates.len());
    assert_eq!(
        v["blocked_keys"][0].as_str().unwrap(),
        hex_of(&snapshot.blocked_keys[0])
    );
    assert_eq!(
        v["cooperation_version"],
        snapshot.cooperation_policy.version.as_str()
    );
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn trustca(args: &[&str]) -> std::process::Output {
    Command::new(trustca_bin()).args(args).output().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn offline_decisions_from_a_snapshot_equal_the_online_ones() {
    let ca = TestCa::start().await;
    let acme = ca.credential(
        CertificateKind::Manufacturer,
        "Acme",
        &["automotive", "hems", "healthcare"],
    );
    let tuv = ca.certification_body("TUV", &["automotive"], &["iso-sae-21434"]);
    let ops = ca.credential(
        CertificateKind::Operator,
        "ops",
        &["automotive", "hems", "healthcare"],
    );
    let mut enroll = ca.client(&acme).await;
    let root = ca.root_pem();
    // A registered, certified car model and devices of every sector at
    // various levels and states.
    registry(&ca, &acme)
        .await
        .register_model(pb::RegisterModelRequest {
            model: model("automotive", "Acme", "EV-9", "1.0.."),
            declared: declared_strong(),
            self_assessed: vec![],
            reason: "r".into(),
        })
        .await
        .unwrap();
    registry(&ca, &tuv)
        .await
        .add_evaluation(pb::AddEvaluationRequest {
            model: model("automotive", "Acme", "EV-9", "1.0.."),
            evaluation: evaluation("iso-sae-21434", "CAL4", "TUV-9"),
            reason: "r".into(),
        })
        .await
        .unwrap();
    let car = enroll_device(
        &mut enroll,
        &root,
        "automotive",
        "Acme",
        "EV-9",
        "C1",
        "1.1",
        vec![],
    )
    .await;
    let car2 = enroll_device(
        &mut enroll,
        &root,
        "automotive",
        "Acme",
        "EV-9",
        "C2",
        "1.1",
        vec![],
    )
    .await;
    let old_car = enroll_device(
        &mut enroll,
        &root,
        "automotive",
        "Acme",
        "OLD",
        "C3",
        "1.0",
        vec![evidence("secure-update", "", "true", "")],
    )
    .await;
    let house = enroll_device(
        &mut enroll,
        &root,
        "hems",
        "Acme",
        "HB-1",
        "H1",
        "1.0",
        hems_lv5(),
    )
    .await;
    let house2 = enroll_device(
        &mut enroll,
        &root,
        "hems",
        "Acme",
        "HB-1",
        "H2",
        "1.0",
        hems_lv5(),
    )
    .await;
    let scale = enroll_device(
        &mut enroll,
        &root,
        "healthcare",
        "Acme",
        "BP-3",
        "P1",
        "1.0",
        healthcare_lv5(),
    )
    .await;
    let revoked = enroll_device(
        &mut enroll,
        &root,
        "hems",
        "Acme",
        "HB-1",
        "H3",
        "1.0",
        hems_lv5(),
    )
    .await;
    let mut t = trust(&ca, &ops).await;
    t.change_trust(pb::ChangeTrustRequest {
        identity: house2.identity.clone(),
        change: Some(pb::change_trust_request::Change::SetLevel(2)),
        reason: "firmware finding".into(),
    })
    .await
    .unwrap();
    t.change_trust(pb::ChangeTrustRequest {
        identity: car2.identity.clone(),
        change: Some(pb::change_trust_request::Change::Suspend(true)),
        reason: "investigation".into(),
    })
    .await
    .unwrap();
    trustca_proto::v1::revocation_client::RevocationClient::new(
        trustca_api::client::connect(&ca.url(), &ops).await.unwrap(),
    )
    .revoke(pb::RevokeRequest {
        subject: Some(pb::revoke_request::Subject::Identity(
            revoked.identity.clone(),
        )),
        reason: "key-compromise".into(),
        note: "key extracted".into(),
    })
    .await
    .unwrap();

    // Fetch with the CLI (no client certificate), then verify it ourselves.
    // A served snapshot is rebuilt at most once a second after a change:
    // fetched again until it holds the blocked key, for up to 10 s.
    let dir = tempfile::tempdir().unwrap();
    let root_file = dir.path().join("root.pem");
    std::fs::write(&root_file, &root).unwrap();
    let file = dir.path().join("all.snapshot");
    let summary = fetch_until(&ca.url(), &root_file, &[], &file, |summary| {
        summary["blocked_keys"] == 1
    })
    .await;
    assert_eq!(summary["models"], 1);
    assert_eq!(summary["blocked_keys"], 1, "{summary}");
    let der = std::fs::read(&file).unwrap();
    let root_der = pem::parse(root.as_bytes()).unwrap().into_contents();
    let now = time::OffsetDateTime::now_utc();
    let snapshot = SignedSnapshot::from_der(&der)
        .unwrap()
        .verify(&root_der, now, &Default::default(), false)
        .unwrap();
    assert!(snapshot.device(&car2.identity).is_some());
    assert!(snapshot.device(&house2.identity).is_some());
    assert!(snapshot.device(&car.identity).is_none());
    independent_check(&file, &root_file, &snapshot);

    // Every pair, every shipped operation: the same answer offline.
    let operations = [
        "read-telemetry",
        "evacuation-notice",
        "exchange-data",
        "safety-confirmation",
        "share-health-data",
        "demand-response",
        "battery-discharge",
        "remote-control",
        "driving-support-adjust",
        "safety-critical",
    ];
    let callers = [&car, &old_car, &house, &house2, &scale];
    let peers = [&car, &car2, &old_car, &house, &house2, &scale, &revoked];
    let mut compared = 0;
    let mut allowed = 0;
    for caller in callers {
        let mut online = trust(&ca, &caller.creds).await;
        for peer in peers {
            for op in operations {
                let on = online
                    .decide(pb::DecideRequest {
                        peer: Some(pb::CertificateChain {
                            certificates: peer.chain.clone(),
                        }),
                        operation: op.into(),
                    })
                    .await
                    .unwrap()
                    .into_inner();
                let off = decide_offline(
                    &snapshot,
                    &caller.chain,
                    &peer.chain,
                    &[],
                    op,
                    &root_der,
                    now,
                    &Default::default(),
                )
                .unwrap();
                let o = &off.outcome;
                let pair = format!("{} -> {} {op}", caller.identity, peer.identity);
                assert_eq!(
                    o.allow, on.allow,
                    "{pair}: {:?} vs {:?}",
                    o.reasons, on.reasons
                );
                assert_eq!(o.depth, on.depth, "{pair}");
                let required = o.required_depth.as_ref().map_or("", |r| r.as_str());
                assert_eq!(required, on.required_depth, "{pair}");
                let level = |l: Option<trustca_model::TrustLevel>| {
                    l.map(|l| u32::from(l.get())).unwrap_or(0)
                };
                assert_eq!(level(o.peer_level), on.peer_level, "{pair}");
                assert_eq!(level(o.caller_level), on.caller_level, "{pair}");
                compared += 1;
                allowed += usize::from(on.allow);
            }
        }
    }
    assert_eq!(compared, 5 * 7 * operations.len());
    assert!(
        allowed > 0 && allowed < compared,
        "{allowed} of {compared} allowed"
    );

    // The CLI decides offline too, with query's exit codes.
    let chain_file = |name: &str, d: &Device| {
        let p = dir.path().join(name);
        std::fs::write(&p, d.pem()).unwrap();
        p
    };
    let (house_pem, car_pem, car2_pem) = (
        chain_file("house.pem", &house),
        chain_file("car.pem", &car),
        chain_file("car2.pem", &car2),
    );
    let decide = |peer: &std::path::Path, extra: &[&str]| {
        let mut args = vec![
            "snapshot",
            "decide",
            file.to_str().unwrap(),
            "--root",
            root_file.to_str().unwrap(),
            "--caller",
            house_pem.to_str().unwrap(),
            "--peer",
            peer.to_str().unwrap(),
            "--operation",
            "battery-discharge",
        ];
        args.extend_from_slice(extra);
        trustca(&args)
    };
    let ok = decide(&car_pem, &["--json"]);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    let denied = decide(&car2_pem, &[]);
    assert_eq!(
        denied.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&denied.stdout)
    );
    assert!(String::from_utf8_lossy(&denied.stdout).contains("DENY"));

    // Stale: refused unless explicitly allowed.
    let later = (snapshot.next_update + time::Duration::hours(1))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let stale = decide(&car_pem, &["--at", &later]);
    assert_eq!(stale.status.code(), Some(1));
    let err = String::from_utf8_lossy(&stale.stderr);
    assert!(
        err.contains("next_update") || err.contains("stale") || err.contains("expired"),
        "{err}"
    );
    let allowed_stale = decide(&car_pem, &["--at", &later, "--allow-stale"]);
    assert_eq!(allowed_stale.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&allowed_stale.stdout).contains("STALE"));
    let verify = |f: &std::path::Path| {
        trustca(&[
            "snapshot",
            "verify",
            f.to_str().unwrap(),
            "--root",
            root_file.to_str().unwrap(),
        ])
    };
    assert!(verify(&file).status.success());
    // Another deployment's root: the root is named, not key usage.
    let other = TestCa::init_fresh();
    let other_root = dir.path().join("other-root.pem");
    std::fs::write(&other_root, other.root_pem()).unwrap();
    let out = trustca(&[
        "snapshot",
        "verify",
        file.to_str().unwrap(),
        "--root",
        other_root.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("key usage"), "{err}");
    assert!(
        err.contains("another root certificate") || err.contains("not issued under the given root"),
        "{err}"
    );
    // A flipped byte anywhere in the body is refused.
    let mut tampered = der.clone();
    let at = tampered.len() / 3;
    tampered[at] ^= 0x01;
    let bad = dir.path().join("tampered.snapshot");
    std::fs::write(&bad, &tampered).unwrap();
    let out = verify(&bad);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("INVALID"));

    // The server keeps the files under DATA/snapshots/ for any web server,
    // and a change to the state issues a higher serial.
    let published = ca.data().join("snapshots").join("all.snapshot");
    for _ in 0..100 {
        if published.exists() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(verify(&published).status.success());
    assert!(ca.data().join("snapshots").join("hems.snapshot").exists());
    t.change_trust(pb::ChangeTrustRequest {
        identity: car.identity.clone(),
        change: Some(pb::change_trust_request::Change::SetLevel(3)),
        reason: "x".into(),
    })
    .await
    .unwrap();
    // Fetched again until the rebuilt snapshot carries the change, for up
    // to 10 s.
    let again = dir.path().join("again.snapshot");
    let car_level = || {
        SignedSnapshot::from_der(&std::fs::read(&again).unwrap())
            .unwrap()
            .verify(
                &root_der,
                time::OffsetDateTime::now_utc(),
                &Default::default(),
                false,
            )
            .unwrap()
            .device(&car.identity)
            .map(|d| d.level.get())
    };
    let v = fetch_until(
        &ca.url(),
        &root_file,
        &["--sector", "automotive"],
        &again,
        |v| {
            assert_eq!(v["scope"], "automotive");
            car_level() == Some(3)
        },
    )
    .await;
    assert_eq!(v["scope"], "automotive");
    assert_eq!(car_level(), Some(3));
}

/// Fetches a snapshot from `server` with the CLI (`--json`, checked
/// against `root`, written to `out`, with `extra` flags) until `done`
/// holds for its summary, for up to 10 s: a served snapshot is rebuilt at
/// most once a second after a change. Returns the last summary.
async fn fetch_until(
    server: &str,
    root: &std::path::Path,
    extra: &[&str],
    out: &std::path::Path,
    mut done: impl FnMut(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut args = vec!["snapshot", "fetch", "--server", server];
    args.extend(["--ca", root.to_str().unwrap()]);
    args.extend(extra);
    args.extend(["--out", out.to_str().unwrap(), "--json"]);
    loop {
        let fetched = trustca(&args);
        assert!(
            fetched.status.success(),
            "{}",
            String::from_utf8_lossy(&fetched.stderr)
        );
        let summary: serde_json::Value = serde_json::from_slice(&fetched.stdout).unwrap();
        if done(&summary) || std::time::Instant::now() > deadline {
            return summary;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
