//! The `trustca` binary as users and scripts run it: exit codes, one-line
//! errors, JSON output, files it writes and refuses to overwrite.

#![allow(clippy::unwrap_used, clippy::expect_used)]

// The PKCS#11 and V2X command tests share this binary: each test binary
// links the whole CLI and server.
mod pkcs11;
mod v2x;

use std::path::Path;
use std::process::{Command, Output};

const PASS: &str = "cli-test-passphrase";

fn trustca(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_trustca"))
        .args(args)
        .env("TRUSTCA_PASSPHRASE", PASS)
        .env_remove("TRUSTCA_PASSPHRASE_FILE")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
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
    assert!(
        trustca(&["init", "--data", d.to_str().unwrap()])
            .status
            .success()
    );
    let pf = dir.path().join("pass");
    std::fs::write(&pf, "not-the-right-one\n").unwrap();
    let out = trustca(&[
        "manufacturer",
        "add",
        "--data",
        d.to_str().unwrap(),
        "--name",
        "Acme",
        "--sector",
        "hems",
        "--out",
        dir.path().join("m").to_str().unwrap(),
        "--passphrase-file",
        pf.to_str().unwrap(),
    ]);
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
    let out = trustca(&[
        "manufacturer",
        "add",
        "--data",
        ds,
        "--name",
        "Acme",
        "--sector",
        "automotive,hems",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
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
    let again = trustca(&[
        "manufacturer",
        "add",
        "--data",
        ds,
        "--name",
        "Acme",
        "--sector",
        "hems",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert!(!again.status.success());
    assert!(stderr(&again).contains("refusing to overwrite"));
    // Unknown sector and bad names are one-line errors.
    let bad = trustca(&[
        "manufacturer",
        "add",
        "--data",
        ds,
        "--name",
        "Acme",
        "--sector",
        "aviation",
        "--out",
        dir.path().join("x").to_str().unwrap(),
    ]);
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
    assert!(
        trustca(&["init", "--data", a.to_str().unwrap()])
            .status
            .success()
    );
    assert!(
        trustca(&["init", "--data", b.to_str().unwrap()])
            .status
            .success()
    );
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

/// Every file under `dir` with its bytes, recursively, sorted by path.
fn read_tree_deep(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.path().is_dir() {
                todo.push(e.path());
            } else {
                out.push((
                    e.path().strip_prefix(dir).unwrap().display().to_string(),
                    std::fs::read(e.path()).unwrap(),
                ));
            }
        }
    }
    out.sort();
    out
}

/// `trustca serve` as a child process with its output piped; returns the
/// child once it printed its address.
fn spawn_serve(data: &Path) -> (std::process::Child, String) {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_trustca"))
        .args([
            "serve",
            "--data",
            data.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
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

#[test]
fn serve_on_a_taken_port_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("d");
    assert!(
        trustca(&["init", "--data", d.to_str().unwrap()])
            .status
            .success()
    );
    let before = read_tree_deep(&d);
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().to_string();
    let out = trustca(&["serve", "--data", d.to_str().unwrap(), "--listen", &port]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert_eq!(err.trim().lines().count(), 1, "one clear line: {err}");
    assert!(err.contains("already in use"), "{err}");
    // No store, CRL, CRL number or audit entry was created on the way.
    assert_eq!(
        read_tree_deep(&d)
            .iter()
            .map(|(p, _)| p)
            .collect::<Vec<_>>(),
        before.iter().map(|(p, _)| p).collect::<Vec<_>>()
    );
    assert!(read_tree_deep(&d) == before, "the data directory changed");
}

#[test]
fn logs_carry_no_colour_codes_off_a_terminal_and_a_second_server_is_told_plainly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("d");
    assert!(
        trustca(&["init", "--data", d.to_str().unwrap()])
            .status
            .success()
    );
    let (mut first, addr) = spawn_serve(&d);

    // A second server on the same data directory: one plain sentence.
    let out = trustca(&[
        "serve",
        "--data",
        d.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("is in use by another trustca process"),
        "{err}"
    );
    for dump in ["Os {", "WouldBlock", "code:", "kind:"] {
        assert!(!err.contains(dump), "Debug dump in {err}");
    }

    // A client that trusts another root: the TLS failure is a sentence,
    // not rustls' `InvalidCertificate(UnknownIssuer)`.
    let other = dir.path().join("other");
    assert!(
        trustca(&["init", "--data", other.to_str().unwrap()])
            .status
            .success()
    );
    let m = dir.path().join("m");
    assert!(
        trustca(&[
            "manufacturer",
            "add",
            "--data",
            d.to_str().unwrap(),
            "--name",
            "Acme",
            "--sector",
            "hems",
            "--out",
            m.to_str().unwrap(),
        ])
        .status
        .success()
    );
    let out = trustca(&[
        "enroll",
        "--server",
        &format!("https://{addr}"),
        "--identity",
        m.join("cert.pem").to_str().unwrap(),
        "--key",
        m.join("key.pem").to_str().unwrap(),
        "--ca",
        other.join("ca/root.pem").to_str().unwrap(),
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
        dir.path().join("dev.key").to_str().unwrap(),
        "--out",
        dir.path().join("dev.pem").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert_eq!(err.trim().lines().count(), 1, "one clear line: {err}");
    assert!(
        err.contains("the server's certificate is not accepted: "),
        "{err}"
    );
    for dump in [
        "UnknownIssuer",
        "BadSignature",
        "InvalidCertificate",
        "Other(",
        "{ ",
    ] {
        assert!(!err.contains(dump), "Debug dump in {err}");
    }

    first.kill().unwrap();
    let mut logs = String::new();
    std::io::Read::read_to_string(first.stderr.as_mut().unwrap(), &mut logs).unwrap();
    first.wait().unwrap();
    assert!(logs.contains("trustca listening"), "{logs}");
    assert!(
        !logs.contains('\u{1b}'),
        "ANSI escape in piped logs: {logs:?}"
    );
}

#[test]
fn serve_without_a_data_directory_initialises_one_and_says_what_next() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_trustca"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .current_dir(dir.path())
        .env("TRUSTCA_PASSPHRASE", PASS)
        .env_remove("TRUSTCA_PASSPHRASE_FILE")
        .env_remove("TRUSTCA_DATA")
        .env_remove("TRUSTCA_STORE")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(first.starts_with("listening on 127.0.0.1:"), "{first}");
    let mut said = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let done = line.contains("README.md");
        said.push(line);
        if done {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let said = said.join("\n");
    let data = dir.path().join("trustca-data");
    assert!(
        data.join("ca/root.pem").exists(),
        "no CA in {}",
        data.display()
    );
    assert!(data.join("db").exists());
    assert!(
        !data.join("ra").exists(),
        "no resolution authority key: X.509 pseudonyms are retired"
    );
    for want in [
        "initialised a new CA in trustca-data",
        "trustca-data/ca/root.pem",
        "manufacturer add --data trustca-data",
        "enroll --server https://127.0.0.1:",
    ] {
        assert!(said.contains(want), "{want:?} missing from:\n{said}");
    }

    // The first printed step works as printed, pasted into a shell whose
    // PATH has no `trustca` (the binary is named by its path then).
    let step = said
        .lines()
        .find(|l| l.contains("manufacturer add"))
        .unwrap()
        .trim();
    let out = Command::new("sh")
        .args(["-c", step])
        .current_dir(dir.path())
        .env("PATH", "/usr/bin:/bin")
        .env("TRUSTCA_PASSPHRASE", PASS)
        .env_remove("TRUSTCA_PASSPHRASE_FILE")
        .output()
        .unwrap();
    assert!(out.status.success(), "{step}: {}", stderr(&out));
    assert!(dir.path().join("acme/cert.pem").exists());

    // A second start of the same directory does not print the steps again.
    let mut again = Command::new(env!("CARGO_BIN_EXE_trustca"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .current_dir(dir.path())
        .env("TRUSTCA_PASSPHRASE", PASS)
        .env_remove("TRUSTCA_PASSPHRASE_FILE")
        .env_remove("TRUSTCA_DATA")
        .env_remove("TRUSTCA_STORE")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let mut reader = std::io::BufReader::new(again.stdout.take().unwrap());
    reader.read_line(&mut line).unwrap();
    assert!(line.starts_with("listening on "), "{line}");
    let _ = again.kill();
    let _ = again.wait();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut reader, &mut rest).unwrap();
    assert!(!rest.contains("initialised a new CA"), "{rest}");
}

#[test]
fn model_registry_commands_run_from_the_shell() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("d");
    let ds = d.to_str().unwrap();
    assert!(trustca(&["init", "--data", ds]).status.success());
    let path = |n: &str| dir.path().join(n).to_str().unwrap().to_owned();
    assert!(
        trustca(&[
            "manufacturer",
            "add",
            "--data",
            ds,
            "--name",
            "Acme",
            "--sector",
            "automotive",
            "--out",
            &path("acme"),
        ])
        .status
        .success()
    );
    // A certification body needs schemes of its sectors.
    let no_scheme = trustca(&[
        "certification-body",
        "add",
        "--data",
        ds,
        "--name",
        "TUV",
        "--sector",
        "automotive",
        "--out",
        &path("tuv0"),
    ]);
    assert!(!no_scheme.status.success());
    assert!(
        stderr(&no_scheme).contains("--scheme"),
        "{}",
        stderr(&no_scheme)
    );
    let wrong_scheme = trustca(&[
        "certification-body",
        "add",
        "--data",
        ds,
        "--name",
        "TUV",
        "--sector",
        "automotive",
        "--scheme",
        "iec-81001-5-1",
        "--out",
        &path("tuv1"),
    ]);
    assert!(!wrong_scheme.status.success());
    assert!(
        stderr(&wrong_scheme).contains("iec-81001-5-1"),
        "{}",
        stderr(&wrong_scheme)
    );
    let tuv = trustca(&[
        "certification-body",
        "add",
        "--data",
        ds,
        "--name",
        "TUV",
        "--sector",
        "automotive",
        "--scheme",
        "iso-sae-21434",
        "--out",
        &path("tuv"),
        "--json",
    ]);
    assert!(tuv.status.success(), "{}", stderr(&tuv));
    let inspect = trustca(&["inspect", &path("tuv/cert.pem"), "--json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&inspect)).unwrap();
    assert_eq!(v["trust_level"]["kind"], "certification-body", "{v}");
    assert_eq!(v["trust_level"]["permitted_schemes"][0], "iso-sae-21434");

    let (mut server, addr) = spawn_serve(&d);
    let url = format!("https://{addr}");
    let root = format!("{ds}/ca/root.pem");
    let client = |who: &str| {
        vec![
            "--server".to_owned(),
            url.clone(),
            "--identity".to_owned(),
            path(&format!("{who}/cert.pem")),
            "--key".to_owned(),
            path(&format!("{who}/key.pem")),
            "--ca".to_owned(),
            root.clone(),
        ]
    };
    let model = |action: &str, who: &str, extra: &[&str]| {
        let mut args: Vec<String> = vec!["model".into(), action.into()];
        args.extend(client(who));
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        trustca(&args)
    };
    let which = [
        "--sector",
        "automotive",
        "--manufacturer",
        "Acme",
        "--model",
        "EV-9",
        "--firmware",
        "1.0..1.9",
    ];
    let mut register = which.to_vec();
    register.extend([
        "--hardware-root-of-trust",
        "secure-element",
        "--secure-update",
        "true",
        "--supported-until",
        "2040-01-01",
        "--reason",
        "launch",
        "--json",
    ]);
    let out = model("register", "acme", &register);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        (v["level"].as_u64(), v["status"].as_str()),
        (Some(2), Some("provisional"))
    );
    let today = time::OffsetDateTime::now_utc().date();
    let (evaluated, until) = (
        (today - time::Duration::days(10)).to_string(),
        (today + time::Duration::days(500)).to_string(),
    );
    let mut evaluate = which.to_vec();
    evaluate.extend([
        "--scheme",
        "iso-sae-21434",
        "--result",
        "CAL3",
        "--certificate",
        "TUV-1",
        "--evaluated-at",
        &evaluated,
        "--valid-until",
        &until,
        "--reason",
        "report 1",
    ]);
    let out = model("evaluate", "tuv", &evaluate);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("Lv.4 certified"), "{}", stdout(&out));
    // The manufacturer cannot withdraw the body's evaluation: one line, exit 1.
    let mut withdraw = which.to_vec();
    withdraw.extend(["--certificate", "TUV-1", "--reason", "no"]);
    let out = model("withdraw", "acme", &withdraw);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr(&out).trim().lines().count(), 1, "{}", stderr(&out));
    // A bad range is refused before anything is sent.
    let out = model(
        "show",
        "acme",
        &[
            "--sector",
            "automotive",
            "--manufacturer",
            "Acme",
            "--model",
            "EV-9",
            "--firmware",
            "2..1",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("firmware range"), "{}", stderr(&out));
    let out = model("list", "acme", &["--sector", "automotive"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("EV-9") && stdout(&out).contains("1 model record"),
        "{}",
        stdout(&out)
    );
    server.kill().unwrap();
    server.wait().unwrap();
}

/// `trustca enroll` checks where it will write before it asks the server:
/// a bad `--generate-key` or `--out` path enrolls nothing (a retry with
/// good paths then succeeds instead of being refused as a duplicate), and
/// credential files are checked with plain words, never `KeyMismatch` or
/// `malformedframing`.
#[test]
fn enroll_checks_its_files_before_it_enrolls() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("d");
    assert!(
        trustca(&["init", "--data", d.to_str().unwrap()])
            .status
            .success()
    );
    let m = dir.path().join("m");
    assert!(
        trustca(&[
            "manufacturer",
            "add",
            "--data",
            d.to_str().unwrap(),
            "--name",
            "Acme",
            "--sector",
            "hems",
            "--out",
            m.to_str().unwrap(),
        ])
        .status
        .success()
    );
    let (mut server, addr) = spawn_serve(&d);
    let url = format!("https://{addr}");
    let root = d.join("ca/root.pem");
    let enroll = |identity: &Path, key: &Path, keyout: &Path, out: &Path| {
        trustca(&[
            "enroll",
            "--server",
            &url,
            "--identity",
            identity.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
            "--ca",
            root.to_str().unwrap(),
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
            keyout.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
    };
    let (cert, key) = (m.join("cert.pem"), m.join("key.pem"));
    let (keyout, out) = (dir.path().join("dev.key"), dir.path().join("dev.pem"));
    let missing = dir.path().join("no-such-dir");

    let o = enroll(&cert, &key, &missing.join("dev.key"), &out);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("nothing was enrolled"),
        "{}",
        stderr(&o)
    );
    let o = enroll(&cert, &key, &keyout, &missing.join("dev.pem"));
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("nothing was enrolled"),
        "{}",
        stderr(&o)
    );
    assert!(!keyout.exists(), "no key is written for a refused --out");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // Credential files that do not fit together, or are not PEM.
    let o = enroll(&cert, &d.join("ca/root.pem"), &keyout, &out);
    assert!(!o.status.success());
    let broken = dir.path().join("broken.pem");
    std::fs::write(&broken, "-----BEGIN CERTIFICATE-----\nAAAA\n").unwrap();
    let o2 = enroll(&broken, &key, &keyout, &out);
    assert!(!o2.status.success());
    let other_key = dir.path().join("other.key");
    std::fs::write(
        &other_key,
        rcgen::KeyPair::generate().unwrap().serialize_pem(),
    )
    .unwrap();
    let o3 = enroll(&cert, &other_key, &keyout, &out);
    assert!(!o3.status.success());
    assert!(
        stderr(&o3).contains("does not belong to the identity certificate"),
        "{}",
        stderr(&o3)
    );
    for o in [&o, &o2, &o3] {
        let err = stderr(o);
        for name in ["KeyMismatch", "malformedframing", "InconsistentKeys"] {
            assert!(!err.contains(name), "{name} in {err}");
        }
    }
    assert!(!keyout.exists() && !out.exists());

    // Good paths: enrolled (it was not before), key and certificate written.
    let o = enroll(&cert, &key, &keyout, &out);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        std::fs::read_to_string(&out)
            .unwrap()
            .contains("BEGIN CERTIFICATE")
    );
    assert!(
        std::fs::read_to_string(&keyout)
            .unwrap()
            .contains("PRIVATE KEY")
    );
    server.kill().unwrap();
    let _ = server.wait();
}
