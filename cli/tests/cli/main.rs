//! The `trustca` binary as users and scripts run it: exit codes, one-line
//! errors, JSON output, files it writes and refuses to overwrite.

#![allow(clippy::unwrap_used, clippy::expect_used)]

// The PKCS#11 and V2X command tests share this binary: each test binary
// links the whole CLI and server.
mod devices;
mod pkcs11;
mod serve;
mod stores;
mod v2x;

use std::path::Path;
use std::process::{Command, Output};

const PASS: &str = "cli-test-passphrase";

fn trustca(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_trustca"))
        .args(args)
        .env("TRUSTCA_PASSPHRASE", PASS)
        .env_remove("TRUSTCA_PASSPHRASE_FILE")
        .env_remove("TRUSTCA_TEST_ONLY_KDF_ITERATIONS")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

/// `trustca init --data DATA`, which must succeed.
fn init_data(data: &Path) {
    let out = trustca(&["init", "--data", data.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// The arguments of `manufacturer add` for Acme in `sectors`, its
/// credential written to `out`.
fn acme_args<'a>(data: &'a str, sectors: &'a str, out: &'a str) -> [&'a str; 10] {
    [
        "manufacturer",
        "add",
        "--data",
        data,
        "--name",
        "Acme",
        "--sector",
        sectors,
        "--out",
        out,
    ]
}

/// The arguments of `certification-body add` for TUV in automotive with
/// the evaluation scheme `scheme` (none: refused), its credential written
/// to `out`.
fn tuv_args<'a>(data: &'a str, scheme: Option<&'a str>, out: &'a str) -> Vec<&'a str> {
    let mut args = vec![
        "certification-body",
        "add",
        "--data",
        data,
        "--name",
        "TUV",
        "--sector",
        "automotive",
    ];
    if let Some(scheme) = scheme {
        args.extend(["--scheme", scheme]);
    }
    args.extend(["--out", out]);
    args
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn read_tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.path().is_file() {
            out.push((
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            ));
        }
    }
    out.sort();
    out
}

#[test]
fn init_creates_the_hierarchy_and_never_overwrites_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let d = data.to_str().unwrap();
    let first = trustca(&["init", "--data", d, "--json"]);
    assert!(first.status.success(), "{}", stderr(&first));
    let v: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap();
    assert_eq!(v["created_root"], true);
    assert_eq!(v["created_sectors"].as_array().unwrap().len(), 3);
    for f in [
        "root.pem",
        "automotive.pem",
        "hems.pem",
        "healthcare.pem",
        "server.pem",
    ] {
        assert!(data.join("ca").join(f).exists(), "{f} missing");
    }
    let before = read_tree(&data.join("ca"));
    let second = trustca(&["init", "--data", d]);
    assert!(second.status.success(), "{}", stderr(&second));
    assert!(stdout(&second).contains("left unchanged"));
    assert_eq!(
        read_tree(&data.join("ca")),
        before,
        "a second init changed the CA"
    );

    // Keys are encrypted: no PEM private key, no DER PKCS#8 that openssl reads.
    for (name, bytes) in &before {
        if name.ends_with(".key") {
            let text = String::from_utf8_lossy(bytes);
            assert!(
                text.contains("TRUSTCA ENCRYPTED PRIVATE KEY"),
                "{name} is not encrypted"
            );
            assert!(!text.contains("BEGIN PRIVATE KEY") && !text.contains("EC PRIVATE KEY"));
        }
    }
    // Every keystore `init` makes has the product's KDF cost (the test kit
    // makes its own directories with a cheaper one).
    let mut stack = vec![data.clone()];
    let mut keystores = 0;
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else if e.file_name() == "keystore.toml" {
                let meta = std::fs::read_to_string(e.path()).unwrap();
                assert!(
                    meta.contains("kdf = \"pbkdf2-hmac-sha256\"")
                        && meta.contains("iterations = 600000"),
                    "{}: {meta}",
                    e.path().display()
                );
                keystores += 1;
            }
        }
    }
    assert!(keystores >= 2, "{keystores} keystores");
    // openssl agrees the root is a CA with keyCertSign and pathlen 1, the
    // sector CAs pathlen 0 with a name constraint.
    let root = Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in"])
        .arg(data.join("ca/root.pem"))
        .output()
        .unwrap();
    let root = stdout(&root);
    assert!(root.contains("CA:TRUE, pathlen:1"), "{root}");
    assert!(root.contains("Certificate Sign, CRL Sign"), "{root}");
    let sub = Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in"])
        .arg(data.join("ca/hems.pem"))
        .output()
        .unwrap();
    let sub = stdout(&sub);
    assert!(sub.contains("CA:TRUE, pathlen:0"), "{sub}");
    assert!(sub.contains("DNS:hems.trustca.internal"), "{sub}");
}

#[test]
fn refuses_to_start_without_a_passphrase() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_trustca"))
        .args(["init", "--data", dir.path().join("d").to_str().unwrap()])
        .env_remove("TRUSTCA_PASSPHRASE")
        .env_remove("TRUSTCA_PASSPHRASE_FILE")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert_eq!(err.trim().lines().count(), 1, "one clear line: {err}");
    assert!(err.contains("no passphrase"), "{err}");
    assert!(!dir.path().join("d/ca/root.key").exists());
}

#[test]
fn wrong_passphrase_is_a_clear_error_and_the_passphrase_is_never_printed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("d");
    init_data(&d);
    let pf = dir.path().join("pass");
    std::fs::write(&pf, "not-the-right-one\n").unwrap();
    let m = dir.path().join("m");
    let mut args = acme_args(d.to_str().unwrap(), "hems", m.to_str().unwrap()).to_vec();
    args.extend(["--passphrase-file", pf.to_str().unwrap()]);
    let out = trustca(&args);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("wrong passphrase"), "{err}");
    assert!(!err.contains("not-the-right-one") && !err.contains(PASS));
}

#[test]
fn manufacturer_credentials_state_their_sectors_and_verify() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("d");
    let ds = d.to_str().unwrap();
    assert!(trustca(&["init", "--data", ds]).status.success());
    let out_dir = dir.path().join("acme");
    let out = trustca(&acme_args(ds, "automotive,hems", out_dir.to_str().unwrap()));
    assert!(out.status.success(), "{}", stderr(&out));
    let cert = out_dir.join("cert.pem");
    let inspect = trustca(&["inspect", cert.to_str().unwrap(), "--json"]);
    assert!(inspect.status.success());
    let v: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(v["trust_level"]["kind"], "manufacturer");
    assert_eq!(
        v["trust_level"]["authorized_sectors"],
        serde_json::json!(["automotive", "hems"])
    );
    assert_eq!(
        v["trust_level"]["oid"],
        "1.2.840.113556.1.8000.2554.58725.3509.15607.16446.39834.7259910.13731153"
    );
    // Under another OID (`--extension-oid`), the extension is not ours.
    let other = trustca(&[
        "inspect",
        cert.to_str().unwrap(),
        "--json",
        "--extension-oid",
        "1.3.6.1.4.1.99999.1",
    ]);
    assert!(other.status.success(), "{}", stderr(&other));
    let v: serde_json::Value = serde_json::from_slice(&other.stdout).unwrap();
    assert!(v["trust_level"].is_null(), "{v}");
    // An OID Go and pkilint could not parse is refused up front.
    let wide = trustca(&[
        "inspect",
        cert.to_str().unwrap(),
        "--extension-oid",
        "2.25.304917911047948023692104962459481245009",
    ]);
    assert!(!wide.status.success());
    assert!(
        stderr(&wide).contains("larger than 2^31-1"),
        "{}",
        stderr(&wide)
    );
    let root = d.join("ca/root.pem");
    let verify = trustca(&[
        "verify",
        cert.to_str().unwrap(),
        "--root",
        root.to_str().unwrap(),
    ]);
    assert!(verify.status.success(), "{}", stderr(&verify));
    let ossl = Command::new("openssl")
        .args(["verify", "-CAfile"])
        .arg(&root)
        .arg("-untrusted")
        .arg(&cert)
        .arg(&cert)
        .output()
        .unwrap();
    assert!(ossl.status.success(), "{}", stderr(&ossl));
    // Refuses to overwrite an existing credential.
    let again = trustca(&acme_args(ds, "hems", out_dir.to_str().unwrap()));
    assert!(!again.status.success());
    assert!(stderr(&again).contains("refusing to overwrite"));
    // Unknown sector and bad names are one-line errors.
    let bad = trustca(&acme_args(
        ds,
        "aviation",
        dir.path().join("x").to_str().unwrap(),
    ));
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("unknown sector"), "{}", stderr(&bad));
    let bad = trustca(&[
        "operator",
        "add",
        "--data",
        ds,
        "--name",
        "ops team",
        "--out",
        dir.path().join("y").to_str().unwrap(),
    ]);
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("name"), "{}", stderr(&bad));
}

#[test]
fn verify_rejects_a_certificate_of_another_root_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    init_data(&a);
    init_data(&b);
    let out = trustca(&[
        "verify",
        a.join("ca/server.pem").to_str().unwrap(),
        "--root",
        b.join("ca/root.pem").to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["valid"], false);
    // Both roots share a name: the root is blamed, not a signature or
    // key usage further down.
    let reason = v["reason"].as_str().unwrap();
    assert!(reason.contains("another root certificate"), "{v}");
    let missing = trustca(&[
        "verify",
        "/nonexistent.pem",
        "--root",
        b.join("ca/root.pem").to_str().unwrap(),
    ]);
    assert!(!missing.status.success());
    assert_eq!(stderr(&missing).trim().lines().count(), 1);
}

#[test]
fn policy_check_names_file_line_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    std::fs::create_dir_all(p.join("sectors")).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies");
    for f in [
        "pki.toml",
        "cooperation.toml",
        "recognition.toml",
        "sectors/automotive.toml",
        "sectors/healthcare.toml",
    ] {
        std::fs::copy(root.join(f), p.join(f)).unwrap();
    }
    let hems = std::fs::read_to_string(root.join("sectors/hems.toml")).unwrap();
    std::fs::write(p.join("sectors/hems.toml"), &hems).unwrap();
    let ok = trustca(&["policy", "check", p.to_str().unwrap()]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    assert!(stdout(&ok).contains("hems"));
    std::fs::write(
        p.join("sectors/hems.toml"),
        hems.replace("level = 4", "level = 9"),
    )
    .unwrap();
    let bad = trustca(&["policy", "check", p.to_str().unwrap()]);
    assert!(!bad.status.success());
    let err = stderr(&bad);
    assert!(err.contains("sectors/hems.toml:"), "{err}");
    assert!(err.contains("out of range"), "{err}");

    // Cross-recognition tables are checked too: a decreasing map is refused.
    std::fs::write(p.join("sectors/hems.toml"), &hems).unwrap();
    let recog = std::fs::read_to_string(root.join("recognition.toml")).unwrap();
    std::fs::write(
        p.join("recognition.toml"),
        recog.replace("map = [1, 2, 3, 4, 4]", "map = [1, 2, 3, 4, 2]"),
    )
    .unwrap();
    let bad = trustca(&["policy", "check", p.to_str().unwrap()]);
    assert!(!bad.status.success());
    let err = stderr(&bad);
    assert!(
        err.contains("recognition.toml:") && err.contains("decrease"),
        "{err}"
    );
}

#[test]
fn help_explains_the_commands() {
    let out = trustca(&["--help"]);
    assert!(out.status.success());
    let text = stdout(&out);
    for cmd in [
        "init",
        "serve",
        "manufacturer",
        "enroll",
        "inspect",
        "verify",
    ] {
        assert!(text.contains(cmd), "--help does not mention {cmd}");
    }
    // Grouped by who uses them, not one flat list.
    for heading in [
        "Run a CA:",
        "Key ceremony",
        "Operators:",
        "Vehicles and V2X",
    ] {
        assert!(text.contains(heading), "--help has no {heading:?}:\n{text}");
    }
    let bad = trustca(&["enroll"]);
    assert_eq!(bad.status.code(), Some(2), "usage errors exit 2");
}

/// The files of one `trustca enroll` of Acme's HB-1 device `S1` (hems,
/// firmware 1.0.0): the manufacturer credential and the root the client
/// trusts, and where the new key and certificate go.
struct EnrollFiles<'a> {
    identity: &'a Path,
    key: &'a Path,
    root: &'a Path,
    keyout: &'a Path,
    out: &'a Path,
}

/// Runs `trustca enroll` of device S1 at `url` with `files`.
fn enroll_s1(url: &str, files: &EnrollFiles<'_>) -> Output {
    fn s(p: &Path) -> &str {
        p.to_str().unwrap()
    }
    trustca(&[
        "enroll",
        "--server",
        url,
        "--identity",
        s(files.identity),
        "--key",
        s(files.key),
        "--ca",
        s(files.root),
        "--sector",
        "hems",
        "--manufacturer",
        "Acme",
        "--model",
        "HB-1",
        "--serial",
        "S1",
        "--firmware",
        "1.0.0",
        "--generate-key",
        s(files.keyout),
        "--out",
        s(files.out),
    ])
}

/// `trustca serve` as a child process with its output piped; returns the
/// child once it printed its address.
fn spawn_serve(data: &Path) -> (std::process::Child, String) {
    spawn_serve_with(data, &[])
}

/// [`spawn_serve`] with more arguments (e.g. `--store`).
fn spawn_serve_with(data: &Path, more: &[&str]) -> (std::process::Child, String) {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_trustca"))
        .args([
            "serve",
            "--data",
            data.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .args(more)
        .env("TRUSTCA_PASSPHRASE", PASS)
        .env_remove("TRUSTCA_PASSPHRASE_FILE")
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("listening on "), "{line}");
    (
        child,
        line.trim().trim_start_matches("listening on ").into(),
    )
}
