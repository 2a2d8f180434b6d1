//! `trustca inspect` on the IEEE 1609.2 certificates `trustca init` writes
//! (`ca/v2x-*.oer`), as a script would run it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

fn trustca(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_trustca"))
        .args(args)
        .env("TRUSTCA_PASSPHRASE", "cli-v2x-test-passphrase")
        .env_remove("TRUSTCA_PASSPHRASE_FILE")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn init_writes_v2x_certificates_and_inspect_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let d = data.to_str().unwrap();
    let init = trustca(&["init", "--data", d, "--json"]);
    assert!(init.status.success(), "{}", text(&init));
    let v: serde_json::Value = serde_json::from_slice(&init.stdout).unwrap();
    assert_eq!(v["created_v2x"].as_array().unwrap().len(), 4);

    let root_path = data.join("ca/v2x-root.oer");
    let out = trustca(&["inspect", root_path.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let root: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(root["issuer"], "self");
    assert_eq!(root["id"], "root.v2x.trustca.internal");
    assert_eq!(root["self_signature_valid"], true);
    assert_eq!(root["assurance"]["trust_level"], 4);
    assert_eq!(
        root["cert_issue_permissions"][0]["subject_permissions"],
        "all"
    );
    assert_eq!(root["cert_issue_permissions"][0]["min_chain_length"], 2);
    assert!(root["validity"]["start"].as_str().unwrap().ends_with('Z'));
    let bytes = std::fs::read(&root_path).unwrap();
    let digest = ring::digest::digest(&ring::digest::SHA256, &bytes);
    assert_eq!(
        root["hashed_id8"],
        hex::encode(&digest.as_ref()[24..]),
        "HashedId8 is the last 8 octets of SHA-256 over the file"
    );
    assert_eq!(
        root["verification_key"]["compressed"]
            .as_str()
            .unwrap()
            .len(),
        66
    );

    // The AA names the root by HashedId8 and may issue CAM and DENM tickets.
    let aa_path = data.join("ca/v2x-aa.oer");
    let out = trustca(&["inspect", aa_path.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let aa: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(aa["issuer"], root["hashed_id8"]);
    assert_eq!(aa["self_signature_valid"], serde_json::Value::Null);
    let issue = &aa["cert_issue_permissions"][0];
    assert_eq!(issue["subject_permissions"][0]["psid"], 36);
    assert_eq!(issue["subject_permissions"][1]["psid"], 37);
    assert_eq!(issue["ee_type"], serde_json::json!(["app"]));

    // Text form.
    let out = trustca(&["inspect", aa_path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let t = String::from_utf8_lossy(&out.stdout);
    assert!(t.contains("36 (CAM)") && t.contains("37 (DENM)"), "{t}");
    assert!(t.contains("trust level Lv.4"), "{t}");

    // X.509 files still inspect as X.509; garbage is a clear error.
    let out = trustca(&[
        "inspect",
        data.join("ca/v2x-root.pem").to_str().unwrap(),
        "--json",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let garbage = dir.path().join("garbage.oer");
    std::fs::write(&garbage, [0x80, 0x03, 0x00, 0xff]).unwrap();
    let out = trustca(&["inspect", garbage.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(text(&out).contains("IEEE 1609.2"), "{}", text(&out));
}
