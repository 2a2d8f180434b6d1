//! `trustca serve` as operators start it: a taken port changes nothing, logs
//! carry no colour codes off a terminal, a second server is told plainly, and
//! a missing data directory is initialised with runnable next steps.

use super::*;

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

#[test]
fn serve_on_a_taken_port_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("d");
    init_data(&d);
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
    init_data(&d);
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
    init_data(&other);
    let m = dir.path().join("m");
    assert!(
        trustca(&acme_args(d.to_str().unwrap(), "hems", m.to_str().unwrap()))
            .status
            .success()
    );
    let out = enroll_s1(
        &format!("https://{addr}"),
        &EnrollFiles {
            identity: &m.join("cert.pem"),
            key: &m.join("key.pem"),
            root: &other.join("ca/root.pem"),
            keyout: &dir.path().join("dev.key"),
            out: &dir.path().join("dev.pem"),
        },
    );
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

/// `trustca serve` in `dir` as a new user runs it: no `--data` and no
/// `TRUSTCA_DATA` or `TRUSTCA_STORE`, stdout piped.
fn serve_in(dir: &Path) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_trustca"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .current_dir(dir)
        .env("TRUSTCA_PASSPHRASE", PASS)
        .env_remove("TRUSTCA_PASSPHRASE_FILE")
        .env_remove("TRUSTCA_DATA")
        .env_remove("TRUSTCA_STORE")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn serve_without_a_data_directory_initialises_one_and_says_what_next() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let mut child = serve_in(dir.path());
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
    let mut again = serve_in(dir.path());
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
