//! `trustca store` between the embedded backends: a stopped sled
//! deployment copied into a fjall store checks, verifies and serves the
//! same audit log, copies back, and neither engine opens the other's
//! directory.

use serde_json::Value;

use super::*;

/// `trustca ARGS --json`, which must succeed, as JSON.
fn json_of(args: &[&str]) -> Value {
    let out = trustca(args);
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn a_sled_store_moves_to_fjall_and_back_with_its_audit_log() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("d");
    init_data(&d);
    let data = d.to_str().unwrap();
    // A model registered through a server: a record and its audit entry.
    let acme = dir.path().join("acme");
    let added = trustca(&acme_args(data, "automotive", acme.to_str().unwrap()));
    assert!(added.status.success(), "{}", stderr(&added));
    let (mut server, addr) = spawn_serve(&d);
    let (cert, key) = (acme.join("cert.pem"), acme.join("key.pem"));
    let root = d.join("ca/root.pem");
    let url = format!("https://{addr}");
    #[rustfmt::skip]
    let registered = trustca(&[
        "model", "register", "--server", &url,
        "--identity", cert.to_str().unwrap(), "--key", key.to_str().unwrap(),
        "--ca", root.to_str().unwrap(),
        "--sector", "automotive", "--manufacturer", "Acme", "--model", "EV-9",
        "--firmware", "1.0..1.9", "--hardware-root-of-trust", "secure-element",
        "--secure-update", "true", "--supported-until", "2040-01-01", "--reason", "launch",
    ]);
    assert!(registered.status.success(), "{}", stderr(&registered));
    server.kill().unwrap();
    let _ = server.wait();
    let sled = d.join("db");
    let sled = sled.to_str().unwrap();
    let fjall = format!("fjall:{}", d.join("fjall").display());

    let source = json_of(&["store", "info", "--store", sled, "--json"]);
    let copied = json_of(&["store", "copy", "--from", sled, "--to", &fjall, "--json"]);
    assert!(copied["audit_entries"].as_u64().unwrap() >= 1, "{copied}");
    let target = json_of(&["store", "info", "--store", &fjall, "--json"]);
    for field in ["certificates", "devices", "audit_entries", "audit_root"] {
        assert_eq!(source[field], target[field], "{field}: {source} {target}");
    }
    assert!(
        target["store"].as_str().unwrap().starts_with("fjall:"),
        "{target}"
    );

    let check = trustca(&["store", "check", "--data", data, "--store", &fjall]);
    assert!(
        check.status.success(),
        "{}{}",
        stdout(&check),
        stderr(&check)
    );
    let verify = trustca(&["audit", "verify", "--data", data, "--store", &fjall]);
    assert!(
        verify.status.success(),
        "{}{}",
        stdout(&verify),
        stderr(&verify)
    );

    // And back into a fresh sled directory: the same log again.
    let back = d.join("db-back");
    let back = back.to_str().unwrap();
    json_of(&["store", "copy", "--from", &fjall, "--to", back, "--json"]);
    let again = json_of(&["store", "info", "--store", back, "--json"]);
    assert_eq!(source["audit_root"], again["audit_root"], "{again}");

    // One engine never opens the other's directory, nor a store twice.
    let cross = format!("fjall:{sled}");
    let out = trustca(&["store", "info", "--store", &cross]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("holds a sled store"),
        "{}",
        stderr(&out)
    );
    let out = trustca(&["store", "copy", "--from", sled, "--to", &cross]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("same store"), "{}", stderr(&out));

    // A server runs on the copy and holds it.
    let (mut server, _) = spawn_serve_with(&d, &["--store", &fjall]);
    let out = trustca(&["store", "info", "--store", &fjall]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("in use"), "{}", stderr(&out));
    server.kill().unwrap();
    let _ = server.wait();
}
