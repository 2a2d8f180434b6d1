//! CA keys in a PKCS#11 token, end to end against SoftHSM2: `init` makes
//! every CA and service key in a fresh token, `serve` signs TLS handshakes,
//! certificates, CRLs, trust assertions and audit tree heads with them, and
//! openssl checks what comes out. A missing module or token and a wrong PIN
//! stop `init`/`serve` with one clear line that never shows the PIN.
//!
//! Each test runs the binary with `SOFTHSM2_CONF` pointing at its own token
//! directory. Without SoftHSM2 the tests print a note and pass, unless
//! `TRUSTCA_REQUIRE_INTEROP=1` (set in CI), where they fail.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use super::{acme_args, tuv_args};
use trustca_testkit::softhsm::SoftHsmToken;

const PASS: &str = "hsm-test-passphrase";
const PIN: &str = "735164";
const SO_PIN: &str = "9817326";
const TOKEN: &str = "trustca-test";

/// A fresh SoftHSM2 token in a temporary directory (the test kit's).
struct SoftHsm {
    dir: tempfile::TempDir,
    conf: PathBuf,
    module: PathBuf,
}

fn softhsm() -> Option<SoftHsm> {
    let Some(token) = SoftHsmToken::create(TOKEN, PIN, SO_PIN).unwrap() else {
        trustca_testkit::skip_or_fail(trustca_testkit::softhsm::INSTALL);
        return None;
    };
    Some(SoftHsm {
        dir: token.dir,
        conf: token.conf,
        module: token.module,
    })
}

impl SoftHsm {
    fn command(&self, pin: Option<&str>) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_trustca"));
        c.env("TRUSTCA_PASSPHRASE", PASS)
            .env_remove("TRUSTCA_PASSPHRASE_FILE")
            .env_remove("TRUSTCA_PKCS11_MODULE")
            .env_remove("TRUSTCA_PKCS11_TOKEN")
            .env_remove("TRUSTCA_PKCS11_PIN_FILE")
            .env("SOFTHSM2_CONF", &self.conf)
            .env("RUST_LOG", "info");
        match pin {
            Some(p) => c.env("TRUSTCA_PKCS11_PIN", p),
            None => c.env_remove("TRUSTCA_PKCS11_PIN"),
        };
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(Some(PIN)).args(args).output().unwrap()
    }

    fn module(&self) -> &str {
        self.module.to_str().unwrap()
    }

    fn init(&self, data: &Path) -> Output {
        self.run(&init_args(data.to_str().unwrap(), self.module(), TOKEN))
    }
}

/// The arguments of `init --data DATA` with the CA keys in `token` of the
/// PKCS#11 `module`.
fn init_args<'a>(data: &'a str, module: &'a str, token: &'a str) -> [&'a str; 7] {
    [
        "init",
        "--data",
        data,
        "--pkcs11-module",
        module,
        "--pkcs11-token",
        token,
    ]
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn openssl(args: &[&str]) -> Output {
    Command::new("openssl").args(args).output().unwrap()
}

/// A `trustca serve` child, killed when dropped.
struct Server {
    child: Child,
    url: String,
    log: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(hsm: &SoftHsm, data: &Path) -> Server {
    let mut child = hsm
        .command(Some(PIN))
        .args([
            "serve",
            "--data",
            data.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let err = child.stderr.take().unwrap();
    let sink = std::sync::Arc::clone(&log);
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            let mut l = sink.lock().unwrap();
            l.push_str(&line);
            l.push('\n');
        }
    });
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("serve did not start: {line:?} {}", log.lock().unwrap()))
        .to_owned();
    Server {
        child,
        url: format!("https://{addr}"),
        log,
    }
}

fn evidence(dir: &Path, name: &str, items: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, items).unwrap();
    path
}

fn today() -> String {
    let out = Command::new("date").args(["-u", "+%F"]).output().unwrap();
    stdout(&out).trim().to_owned()
}

#[test]
fn hsm_keys_sign_everything_and_openssl_agrees() {
    let Some(hsm) = softhsm() else { return };
    let work = hsm.dir.path();
    let data = work.join("data");
    let ds = data.to_str().unwrap();

    let init = hsm.init(&data);
    assert!(init.status.success(), "{}", stderr(&init));
    assert!(stdout(&init).contains("PKCS#11 token"), "{}", stdout(&init));
    // Every CA and service key is a token reference; no key file exists.
    let ca = data.join("ca");
    for name in [
        "root",
        "automotive",
        "hems",
        "healthcare",
        "server",
        "responder",
        "audit",
        "v2x-root",
        "v2x-ea",
        "v2x-aa",
    ] {
        assert!(
            ca.join(format!("{name}.pkcs11")).exists(),
            "{name}.pkcs11 missing"
        );
        assert!(
            !ca.join(format!("{name}.key")).exists(),
            "{name}.key exists: the key left the token"
        );
    }
    // No X.509 pseudonym CA any more (retired).
    assert!(!ca.join("automotive-pseudonym.pkcs11").exists());
    // The V2X (IEEE 1609.2) CAs were signed in the token too, and state
    // assurance level 5 for keys in a token.
    for name in ["v2x-root.oer", "v2x-aa.oer"] {
        let out = hsm.run(&["inspect", ca.join(name).to_str().unwrap(), "--json"]);
        assert!(out.status.success(), "{}", stderr(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["assurance"]["trust_level"], 5, "{name}");
    }
    let v2x_root = openssl(&[
        "verify",
        "-CAfile",
        ca.join("root.pem").to_str().unwrap(),
        ca.join("v2x-root.pem").to_str().unwrap(),
    ]);
    assert!(v2x_root.status.success(), "{}", stderr(&v2x_root));
    let reference = std::fs::read_to_string(ca.join("root.pkcs11")).unwrap();
    assert!(
        reference.contains("label = \"trustca-root\""),
        "{reference}"
    );
    // openssl verifies the root's self-signature and the sector CA chain:
    // both were signed in the token (raw r‖s converted to DER).
    let root = ca.join("root.pem");
    let rs = root.to_str().unwrap();
    let v = openssl(&["verify", "-CAfile", rs, rs]);
    assert!(v.status.success(), "{}", stderr(&v));
    let v = openssl(&[
        "verify",
        "-CAfile",
        rs,
        ca.join("hems.pem").to_str().unwrap(),
    ]);
    assert!(v.status.success(), "{}", stderr(&v));

    // Credentials issued offline by a sector CA key in the token.
    let acme = work.join("acme");
    let out = hsm.run(&acme_args(ds, "automotive,hems", acme.to_str().unwrap()));
    assert!(out.status.success(), "{}", stderr(&out));
    let tuv = work.join("tuv");
    let out = hsm.run(&tuv_args(ds, Some("iso-sae-21434"), tuv.to_str().unwrap()));
    assert!(out.status.success(), "{}", stderr(&out));
    let ops = work.join("ops");
    let out = hsm.run(&[
        "operator",
        "add",
        "--data",
        ds,
        "--name",
        "Ops",
        "--sector",
        "automotive",
        "--out",
        ops.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));

    // serve: the TLS handshake itself is signed by the token.
    let server = serve(&hsm, &data);
    let client = |dir: &Path| -> Vec<String> {
        vec![
            "--server".into(),
            server.url.clone(),
            "--identity".into(),
            dir.join("cert.pem").to_str().unwrap().into(),
            "--key".into(),
            dir.join("key.pem").to_str().unwrap().into(),
            "--ca".into(),
            rs.into(),
        ]
    };
    let run = |args: Vec<String>| -> Output {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        hsm.run(&a)
    };
    let today = today();
    // The car's Lv.4 needs a hardware root of trust the automotive policy
    // believes: declared per device it counts up to Lv.3 only, so the
    // model is registered and evaluated, and the device declares its TEE.
    let model = |action: &str, who: &Path, extra: &[&str]| {
        let mut a = vec!["model".to_owned(), action.to_owned()];
        a.extend(client(who));
        a.extend(
            [
                "--sector",
                "automotive",
                "--manufacturer",
                "Acme",
                "--model",
                "EV-200",
                "--firmware",
                "1.0.0..1.9.9",
            ]
            .iter()
            .chain(extra)
            .map(|x| x.to_string()),
        );
        run(a)
    };
    let out = model(
        "register",
        &acme,
        &[
            "--hardware-root-of-trust",
            "tee",
            "--secure-update",
            "true",
            "--supported-until",
            "2040-12-31",
            "--reason",
            "launch",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = model(
        "evaluate",
        &tuv,
        &[
            "--scheme",
            "iso-sae-21434",
            "--result",
            "CAL3",
            "--certificate",
            "TUV-1",
            "--evaluated-at",
            &today,
            "--valid-until",
            "2030-01-01",
            "--reason",
            "report 1",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("Lv.4 certified"), "{}", stdout(&out));
    let car_ev = evidence(
        work,
        "car.toml",
        "[[evidence]]\ntype = \"hardware-root-of-trust\"\nvalue = \"tee\"\n",
    );
    let house_ev = evidence(
        work,
        "house.toml",
        &format!(
            "[[evidence]]\ntype = \"evaluation\"\nscheme = \"iec-62443-4-2\"\nvalue = \"SL2\"\nevaluated_at = \"{today}\"\n\n\
             [[evidence]]\ntype = \"secure-update\"\nvalue = \"true\"\n\n\
             [[evidence]]\ntype = \"supported-until\"\nvalue = \"2040-12-31\"\n"
        ),
    );
    let enroll = |sector: &str, model: &str, serial: &str, ev: &Path, name: &str| -> Output {
        let mut a = vec!["enroll".to_owned()];
        a.extend(client(&acme));
        for x in [
            "--sector",
            sector,
            "--manufacturer",
            "Acme",
            "--model",
            model,
            "--serial",
            serial,
            "--firmware",
            "1.0.0",
            "--evidence",
            ev.to_str().unwrap(),
            "--generate-key",
            work.join(format!("{name}.key")).to_str().unwrap(),
            "--out",
            work.join(format!("{name}.pem")).to_str().unwrap(),
        ] {
            a.push(x.to_owned());
        }
        run(a)
    };
    let out = enroll("automotive", "EV-200", "SN0001", &car_ev, "car");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("at Lv.4"), "{}", stdout(&out));
    let out = enroll("hems", "HB-1", "SN0002", &house_ev, "house");
    assert!(out.status.success(), "{}", stderr(&out));
    let car = work.join("car.pem");
    let v = openssl(&[
        "verify",
        "-CAfile",
        rs,
        "-untrusted",
        ca.join("automotive.pem").to_str().unwrap(),
        car.to_str().unwrap(),
    ]);
    assert!(v.status.success(), "{}", stderr(&v));

    // Decide with a signed assertion from the responder key in the token.
    let answer = work.join("answer.pem");
    let house = work.join("house");
    std::fs::create_dir(&house).unwrap();
    std::fs::copy(work.join("house.pem"), house.join("cert.pem")).unwrap();
    std::fs::copy(work.join("house.key"), house.join("key.pem")).unwrap();
    let query = |save: &Path| -> Output {
        let mut a = vec!["query".to_owned()];
        a.extend(client(&house));
        for x in [
            "--peer",
            car.to_str().unwrap(),
            "--operation",
            "battery-discharge",
            "--save-answer",
            save.to_str().unwrap(),
        ] {
            a.push(x.to_owned());
        }
        run(a)
    };
    let out = query(&answer);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("ALLOW"), "{}", stdout(&out));
    let out = hsm.run(&["verify-answer", answer.to_str().unwrap(), "--root", rs]);
    assert!(out.status.success(), "{}", stderr(&out));
    // openssl checks the assertion's signature on its own: the body and the
    // signature cut out of the answer file, the key from the responder
    // certificate, which openssl also verifies to the root.
    let pem_text = std::fs::read_to_string(&answer).unwrap();
    let items = pem::parse_many(&pem_text).unwrap();
    let signed = items
        .iter()
        .find(|p| p.tag() == trustca_model::assertion::PEM_LABEL)
        .expect("an assertion in the answer file");
    let signed = trustca_model::SignedTrustAssertion::from_der(signed.contents()).unwrap();
    std::fs::write(work.join("body.der"), &signed.body).unwrap();
    std::fs::write(work.join("sig.der"), &signed.signature).unwrap();
    std::fs::write(
        work.join("responder.pem"),
        pem::encode(&pem::Pem::new(
            "CERTIFICATE",
            signed.responder_chain[0].to_vec(),
        )),
    )
    .unwrap();
    let w = |f: &str| work.join(f).to_str().unwrap().to_owned();
    let v = openssl(&["verify", "-CAfile", rs, &w("responder.pem")]);
    assert!(v.status.success(), "{}", stderr(&v));
    let key = openssl(&["x509", "-pubkey", "-noout", "-in", &w("responder.pem")]);
    std::fs::write(work.join("responder.pub"), &key.stdout).unwrap();
    let v = openssl(&[
        "dgst",
        "-sha256",
        "-verify",
        &w("responder.pub"),
        "-signature",
        &w("sig.der"),
        &w("body.der"),
    ]);
    assert!(
        stdout(&v).contains("Verified OK"),
        "{}{}",
        stdout(&v),
        stderr(&v)
    );

    // Revoke the car; the CRL is signed by the sector key in the token.
    let mut a = vec!["revoke".to_owned()];
    a.extend(client(&ops));
    for x in [
        "--cert",
        car.to_str().unwrap(),
        "--reason",
        "key-compromise",
    ] {
        a.push(x.to_owned());
    }
    let out = run(a);
    assert!(out.status.success(), "{}", stderr(&out));
    let crl = work.join("automotive.crl");
    // GetCrl is public: no client credential.
    let mut a = vec![
        "crl".to_owned(),
        "--server".to_owned(),
        server.url.clone(),
        "--ca".to_owned(),
        rs.to_owned(),
    ];
    for x in ["--sector", "automotive", "--out", crl.to_str().unwrap()] {
        a.push(x.to_owned());
    }
    let out = run(a);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = openssl(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        crl.to_str().unwrap(),
        "-noout",
        "-text",
        "-CAfile",
        ca.join("automotive.pem").to_str().unwrap(),
    ]);
    assert!(
        stderr(&text).contains("verify OK") || stdout(&text).contains("verify OK"),
        "{}{}",
        stdout(&text),
        stderr(&text)
    );
    assert!(
        stdout(&text).contains("Key Compromise"),
        "{}",
        stdout(&text)
    );
    let crl_pem = work.join("automotive.crl.pem");
    let conv = openssl(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        crl.to_str().unwrap(),
        "-out",
        crl_pem.to_str().unwrap(),
    ]);
    assert!(conv.status.success());
    let v = openssl(&[
        "verify",
        "-crl_check",
        "-CAfile",
        rs,
        "-untrusted",
        ca.join("automotive.pem").to_str().unwrap(),
        "-CRLfile",
        crl_pem.to_str().unwrap(),
        car.to_str().unwrap(),
    ]);
    assert!(
        !v.status.success(),
        "openssl accepted a revoked certificate"
    );
    assert!(
        stdout(&v).contains("revoked") || stderr(&v).contains("revoked"),
        "{}{}",
        stdout(&v),
        stderr(&v)
    );
    // And the trust database now refuses with a freshly signed answer.
    let out = query(&work.join("answer2.pem"));
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );

    let log = server.log.lock().unwrap().clone();
    assert!(!log.contains(PIN), "the PIN appeared in the server log");
    drop(server);
    // Tree heads were signed with the audit key in the token; the offline
    // verifier checks them against the audit certificate.
    let out = hsm.run(&["audit", "verify", "--data", ds]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
}

/// The key ceremony with the root key and the automotive CA key in the
/// token (the same PKCS#11 path as `init`): `root init`, `sector init`,
/// `root sign-sector` and `sector install`, then `serve` of the automotive
/// directory signs its CRL with the token key, and openssl agrees.
#[test]
fn the_key_ceremony_keeps_the_root_and_sector_keys_in_the_token() {
    let Some(hsm) = softhsm() else { return };
    let work = hsm.dir.path();
    let p = |name: &str| work.join(name).to_str().unwrap().to_owned();
    let token = ["--pkcs11-module", hsm.module(), "--pkcs11-token", TOKEN];
    let ok = |args: &[&str]| {
        let out = hsm.run(args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        out
    };
    ok(&[
        &[
            "root",
            "init",
            "--name",
            "Token Root CA",
            "--data",
            &p("root"),
        ][..],
        &token,
    ]
    .concat());
    assert!(work.join("root/ca/root.pkcs11").exists());
    assert!(!work.join("root/ca/root.key").exists());
    for sector in ["automotive", "hems", "healthcare"] {
        let data = p(sector);
        let mut init = vec!["sector", "init", "--sector", sector, "--data", &data];
        if sector == "automotive" {
            init.extend(token);
        }
        ok(&init);
        let csr = p(&format!("{sector}/ca/{sector}.csr"));
        let cert = p(&format!("{sector}.pem"));
        // The root's token and module come from its ca/pkcs11.toml.
        ok(&[
            "root",
            "sign-sector",
            &csr,
            "--data",
            &p("root"),
            "--out",
            &cert,
        ]);
        ok(&[
            "sector",
            "install",
            &cert,
            "--root",
            &p("root/ca/root.pem"),
            "--data",
            &data,
        ]);
    }
    assert!(work.join("automotive/ca/automotive.pkcs11").exists());
    assert!(!work.join("automotive/ca/automotive.key").exists());
    ok(&[
        "sector",
        "import",
        "--data",
        &p("automotive"),
        &p("hems.pem"),
        &p("healthcare.pem"),
        &p("root/crl/root.crl"),
    ]);
    let v = openssl(&[
        "verify",
        "-CAfile",
        &p("root/ca/root.pem"),
        "-untrusted",
        &p("automotive.pem"),
        &p("automotive/ca/server.pem"),
    ]);
    assert!(v.status.success(), "{}", stderr(&v));
    let server = serve(&hsm, &work.join("automotive"));
    let crl = openssl(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        &p("automotive/crl/automotive.crl"),
        "-CAfile",
        &p("automotive.pem"),
        "-noout",
    ]);
    assert!(
        stderr(&crl).contains("verify OK") || stdout(&crl).contains("verify OK"),
        "{}{}",
        stdout(&crl),
        stderr(&crl)
    );
    drop(server);
}

fn assert_one_line_error(out: &Output, needle: &str) {
    assert!(!out.status.success(), "expected a failure");
    let err = stderr(out);
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(lines.len(), 1, "one error line: {err}");
    assert!(lines[0].contains(needle), "{err}");
    assert!(!err.contains(PIN), "the PIN was printed: {err}");
    assert!(!stdout(out).contains(PIN));
}

#[test]
fn a_missing_token_module_or_wrong_pin_stops_init_and_serve() {
    let Some(hsm) = softhsm() else { return };
    let work = hsm.dir.path();
    let data = work.join("data");
    let ds = data.to_str().unwrap();

    let wrong = hsm
        .command(Some("000000"))
        .args(init_args(ds, hsm.module(), TOKEN))
        .output()
        .unwrap();
    assert_one_line_error(&wrong, "wrong PIN for PKCS#11 token \"trustca-test\"");
    assert!(!data.join("ca").exists(), "init wrote files before failing");

    let missing = hsm.run(&init_args(ds, hsm.module(), "no-such-token"));
    assert_one_line_error(&missing, "no PKCS#11 token labelled \"no-such-token\"");

    let no_module = hsm.run(&init_args(ds, "/nonexistent/libpkcs11.so", TOKEN));
    assert_one_line_error(
        &no_module,
        "PKCS#11 module /nonexistent/libpkcs11.so does not exist",
    );

    let no_pin = hsm
        .command(None)
        .args(init_args(ds, hsm.module(), TOKEN))
        .output()
        .unwrap();
    assert_one_line_error(&no_pin, "no PKCS#11 PIN");
    assert!(!data.join("ca").exists());

    // The PIN from a file works; then serve with a wrong PIN stops at once.
    let pin_file = work.join("pin");
    std::fs::write(&pin_file, format!("{PIN}\n")).unwrap();
    let ok = hsm
        .command(None)
        .args(init_args(ds, hsm.module(), TOKEN))
        .args(["--pkcs11-pin-file", pin_file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(ok.status.success(), "{}", stderr(&ok));
    // serve finds module and token in ca/pkcs11.toml.
    let serve_wrong = hsm
        .command(Some("111111"))
        .args(["serve", "--data", ds, "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_one_line_error(&serve_wrong, "wrong PIN for PKCS#11 token");
    let serve_no_pin = hsm
        .command(None)
        .args(["serve", "--data", ds, "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_one_line_error(&serve_no_pin, "no PKCS#11 PIN");
}
