//! Models and devices from the shell against a running server: the model
//! registry commands, and `enroll` checking its files before it enrolls.

use super::*;

#[test]
fn model_registry_commands_run_from_the_shell() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("d");
    let ds = d.to_str().unwrap();
    assert!(trustca(&["init", "--data", ds]).status.success());
    let path = |n: &str| dir.path().join(n).to_str().unwrap().to_owned();
    assert!(
        trustca(&acme_args(ds, "automotive", &path("acme")))
            .status
            .success()
    );
    // A certification body needs schemes of its sectors.
    let no_scheme = trustca(&tuv_args(ds, None, &path("tuv0")));
    assert!(!no_scheme.status.success());
    assert!(
        stderr(&no_scheme).contains("--scheme"),
        "{}",
        stderr(&no_scheme)
    );
    let wrong_scheme = trustca(&tuv_args(ds, Some("iec-81001-5-1"), &path("tuv1")));
    assert!(!wrong_scheme.status.success());
    assert!(
        stderr(&wrong_scheme).contains("iec-81001-5-1"),
        "{}",
        stderr(&wrong_scheme)
    );
    let tuv_path = path("tuv");
    let mut tuv_add = tuv_args(ds, Some("iso-sae-21434"), &tuv_path);
    tuv_add.push("--json");
    let tuv = trustca(&tuv_add);
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
    init_data(&d);
    let m = dir.path().join("m");
    assert!(
        trustca(&acme_args(d.to_str().unwrap(), "hems", m.to_str().unwrap()))
            .status
            .success()
    );
    let (mut server, addr) = spawn_serve(&d);
    let url = format!("https://{addr}");
    let root = d.join("ca/root.pem");
    let enroll = |identity: &Path, key: &Path, keyout: &Path, out: &Path| {
        enroll_s1(
            &url,
            &EnrollFiles {
                identity,
                key,
                root: &root,
                keyout,
                out,
            },
        )
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
