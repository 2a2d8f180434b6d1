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
    // Root (COER and its X.509 certificate), EA, AA and the CRL signer.
    assert_eq!(v["created_v2x"].as_array().unwrap().len(), 5);

    let root_path = data.join("ca/v2x-root.oer");
    let out = trustca(&["inspect", root_path.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let root: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(root["issuer"], "self");
    assert_eq!(root["id"], "root.v2x.trustca.internal");
    assert_eq!(root["self_signature_valid"], true);
    assert_eq!(root["assurance"]["trust_level"], 4);
    // First the CRL signer's group (PSID 256, directly below the root),
    // then every other PSID through the EA and AA.
    assert_eq!(
        root["cert_issue_permissions"][0]["subject_permissions"][0]["psid"],
        256
    );
    assert_eq!(root["cert_issue_permissions"][0]["min_chain_length"], 1);
    assert_eq!(
        root["cert_issue_permissions"][1]["subject_permissions"],
        "all"
    );
    assert_eq!(root["cert_issue_permissions"][1]["min_chain_length"], 2);
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

fn trustca_as(pass: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_trustca"))
        .args(args)
        .env("TRUSTCA_PASSPHRASE", pass)
        .env_remove("TRUSTCA_PASSPHRASE_FILE")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

fn one_line_failure(o: &Output) -> String {
    assert!(!o.status.success(), "{}", text(o));
    let err = String::from_utf8_lossy(&o.stderr).trim().to_owned();
    assert_eq!(err.lines().count(), 1, "{err}");
    err
}

/// The separated set-up as an operator types it: `init --role` on each
/// machine (own passphrase), `v2x certify` at the CA, `v2x import` and
/// `v2x export`; bad input is one line, a non-zero exit, and changes nothing.
#[test]
fn separated_authorities_are_set_up_from_their_own_requests() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca");
    let ca_s = ca.to_str().unwrap();
    let init = trustca(&["init", "--data", ca_s]);
    assert!(init.status.success(), "{}", text(&init));
    assert!(
        String::from_utf8_lossy(&init.stderr).contains("no separation")
            || text(&init).contains("can link and name"),
        "init warns that the in-process authorities are not separated: {}",
        text(&init)
    );
    let role_dir = |r: &str| dir.path().join(r);
    let mut credentials = Vec::new();
    for (role, name) in [("pseudonym-ca", "pca-1"), ("linkage-1", "la-1")] {
        let d = role_dir(role);
        let pass = format!("{role}-machine-passphrase");
        let out = trustca_as(
            &pass,
            &[
                "init",
                "--role",
                role,
                "--name",
                name,
                "--server-name",
                "127.0.0.1",
                "--data",
                d.to_str().unwrap(),
                "--json",
            ],
        );
        assert!(out.status.success(), "{}", text(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["role"], role);
        assert_eq!(v["request_sha256"].as_str().unwrap().len(), 64);
        // No CA key, no other role's key: only its own keystore.
        assert!(!d.join("ca").exists());
        let cred = dir.path().join(format!("{name}.credential.toml"));
        let out = trustca(&[
            "v2x",
            "certify",
            "--data",
            ca_s,
            d.join("request.toml").to_str().unwrap(),
            "--out",
            cred.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", text(&out));
        let answer = std::fs::read_to_string(&cred).unwrap();
        assert!(
            !answer.contains("PRIVATE KEY"),
            "the answer holds public material only"
        );
        credentials.push((role, pass, d, cred));
    }
    // A tampered AA proof of possession is refused at the CA.
    let pca_req = std::fs::read_to_string(role_dir("pseudonym-ca").join("request.toml")).unwrap();
    let proof_line = pca_req.lines().find(|l| l.starts_with("aa_proof")).unwrap();
    let flipped = if proof_line.ends_with("0\"") {
        "1\""
    } else {
        "0\""
    };
    let bad = pca_req.replace(
        proof_line,
        &format!("{}{flipped}", &proof_line[..proof_line.len() - 2]),
    );
    let bad_path = dir.path().join("bad-request.toml");
    std::fs::write(&bad_path, bad).unwrap();
    let err = one_line_failure(&trustca(&[
        "v2x",
        "certify",
        "--data",
        ca_s,
        bad_path.to_str().unwrap(),
    ]));
    assert!(err.contains("aa_proof"), "{err}");
    // Another authority's credential is refused by import.
    let (_, la_pass, la_dir, _) = &credentials[1];
    let (_, _, _, pca_cred) = &credentials[0];
    let err = one_line_failure(&trustca_as(
        la_pass,
        &[
            "v2x",
            "import",
            "--data",
            la_dir.to_str().unwrap(),
            pca_cred.to_str().unwrap(),
        ],
    ));
    assert!(err.contains("pseudonym-ca"), "{err}");
    assert!(
        !la_dir.join("tls").exists(),
        "a refused import writes nothing"
    );
    // Each imports its own; the wrong passphrase is refused.
    for (_, pass, d, cred) in &credentials {
        let err = one_line_failure(&trustca_as(
            "not-this-machines-passphrase",
            &[
                "v2x",
                "import",
                "--data",
                d.to_str().unwrap(),
                cred.to_str().unwrap(),
            ],
        ));
        assert!(err.contains("passphrase"), "{err}");
        let out = trustca_as(
            pass,
            &[
                "v2x",
                "import",
                "--data",
                d.to_str().unwrap(),
                cred.to_str().unwrap(),
            ],
        );
        assert!(out.status.success(), "{}", text(&out));
        assert!(text(&out).contains("SHA-256"), "{}", text(&out));
    }
    // Bundles: the PCA's goes to the LA, and the LA's is accepted by the PCA.
    let (_, pca_pass, pca_dir, _) = &credentials[0];
    let pca_pub = dir.path().join("pca.pub.toml");
    let out = trustca_as(
        pca_pass,
        &[
            "v2x",
            "export",
            "--data",
            pca_dir.to_str().unwrap(),
            "--out",
            pca_pub.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let out = trustca_as(
        la_pass,
        &[
            "v2x",
            "import",
            "--data",
            la_dir.to_str().unwrap(),
            pca_pub.to_str().unwrap(),
            "--json",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["imported"][0]["peer"], "pseudonym-ca");
    // A bundle whose key was swapped no longer verifies.
    let text_pub = std::fs::read_to_string(&pca_pub).unwrap();
    let key_line = text_pub
        .lines()
        .find(|l| l.starts_with("authority_key"))
        .unwrap();
    // Flip one hex digit of the key (the last before the closing quote).
    let mut flipped_key = key_line.to_owned();
    let at = flipped_key.len() - 2;
    let digit = if &flipped_key[at..at + 1] == "0" {
        "1"
    } else {
        "0"
    };
    flipped_key.replace_range(at..at + 1, digit);
    let swapped = text_pub.replace(key_line, &flipped_key);
    let swapped_path = dir.path().join("swapped.pub.toml");
    std::fs::write(&swapped_path, swapped).unwrap();
    let err = one_line_failure(&trustca_as(
        la_pass,
        &[
            "v2x",
            "import",
            "--data",
            la_dir.to_str().unwrap(),
            swapped_path.to_str().unwrap(),
        ],
    ));
    assert!(
        err.contains("signature") || err.contains("authority_key"),
        "{err}"
    );
    // serve --role refuses the CA's directory, and a foreign key in its own.
    let err = one_line_failure(&trustca(&[
        "serve",
        "--role",
        "linkage-1",
        "--data",
        ca_s,
        "--listen",
        "127.0.0.1:0",
    ]));
    assert!(err.contains("CA's data directory"), "{err}");
    std::fs::copy(pca_dir.join("keys/aa.key"), la_dir.join("pca-aa.key")).unwrap();
    let err = one_line_failure(&trustca_as(
        la_pass,
        &[
            "serve",
            "--role",
            "linkage-1",
            "--data",
            la_dir.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ],
    ));
    assert!(
        err.contains("pca-aa.key") && err.contains("refusing"),
        "{err}"
    );
    // An unknown role is one line.
    let err = one_line_failure(&trustca(&[
        "init",
        "--role",
        "enrolment",
        "--data",
        dir.path().join("x").to_str().unwrap(),
    ]));
    assert!(err.contains("unknown role"), "{err}");
}
