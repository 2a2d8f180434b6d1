//! Interoperability with software that is not ours: every certificate kind
//! and CRL trustca produces is parsed by Go's standard library
//! (`crypto/x509`, the parser behind grpcurl, Kubernetes, Vault, Caddy and
//! most IoT gateways), linted by pkilint (RFC 5280 / X.520 rules), and
//! verified by openssl; a device chain verifies under Go's path validation,
//! and a Go TLS client completes a mutual-TLS handshake with ALPN h2 with
//! the running server and makes a gRPC call over Go's HTTP/2.
//!
//! The tools are optional on a developer's machine (the test says it skips
//! them), required in CI: `.ci/run` installs `golang-go` and `pkilint` and
//! sets `TRUSTCA_REQUIRE_INTEROP=1`, which turns a missing tool into a
//! failure.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::run_output as run;
use common::*;
use trustca_api::client::connect;
use trustca_model::CertificateKind;
use trustca_proto::v1 as pb;
use trustca_proto::v1::revocation_client::RevocationClient;

/// One certificate trustca issued, written as PEM: the certificate first,
/// then the CAs up to (not including) the root.
struct CertArtefact {
    kind: &'static str,
    chain: PathBuf,
    /// The extended key usage Go should verify it for.
    eku: &'static str,
}

/// One CRL, DER, with the certificate of its issuer.
struct CrlArtefact {
    name: String,
    path: PathBuf,
    issuer: PathBuf,
    /// An authority revocation list (issued by the root).
    arl: bool,
}

struct Artefacts {
    ca: TestCa,
    out: tempfile::TempDir,
    root: PathBuf,
    certs: Vec<CertArtefact>,
    crls: Vec<CrlArtefact>,
    /// The manufacturer credential for the TLS check: chain and key.
    client_chain: PathBuf,
    client_key: PathBuf,
}

fn write_chain(dir: &Path, name: &str, chain: &[Vec<u8>]) -> PathBuf {
    let path = dir.join(format!("{name}.pem"));
    std::fs::write(&path, chain.iter().map(|d| pem_of(d)).collect::<String>()).unwrap();
    path
}

fn pem_ders(text: &str) -> Vec<Vec<u8>> {
    pem::parse_many(text)
        .unwrap()
        .into_iter()
        .filter(|p| p.tag() == "CERTIFICATE")
        .map(|p| p.into_contents())
        .collect()
}

/// Starts a real server on 127.0.0.1:0 and makes one of every certificate
/// kind and CRL trustca produces.
async fn artefacts() -> Artefacts {
    let ca = TestCa::start().await;
    let out = tempfile::tempdir().unwrap();
    let d = out.path();
    let data = ca.data().to_path_buf();
    let root = data.join("ca/root.pem");
    let root_der = pem_ders(&std::fs::read_to_string(&root).unwrap()).remove(0);
    let mut certs = Vec::new();
    let mut add = |kind: &'static str, chain: &[Vec<u8>], eku: &'static str| {
        certs.push(CertArtefact {
            kind,
            chain: write_chain(d, &kind.replace(' ', "-"), chain),
            eku,
        });
    };

    // The hierarchy `init` made: root, sector CAs and the root-issued
    // service certificates.
    add("root CA", std::slice::from_ref(&root_der), "any");
    for sector in ["automotive", "hems", "healthcare"] {
        let der =
            pem_ders(&std::fs::read_to_string(data.join(format!("ca/{sector}.pem"))).unwrap())
                .remove(0);
        let kind: &'static str = match sector {
            "automotive" => "sector CA automotive",
            "hems" => "sector CA hems",
            _ => "sector CA healthcare",
        };
        add(kind, &[der], "any");
    }
    for (stem, kind, eku) in [
        ("server", "TLS server and federation client", "server"),
        ("responder", "trust responder", "ocsp"),
        ("audit", "audit log signer", "ocsp"),
    ] {
        let chain =
            pem_ders(&std::fs::read_to_string(data.join(format!("ca/{stem}.pem"))).unwrap());
        add(kind, &chain[..1], eku);
    }

    // Role credentials, issued offline as `trustca manufacturer add` does.
    let acme = ca.credential(
        CertificateKind::Manufacturer,
        "Acme",
        &["automotive", "hems", "healthcare"],
    );
    let ops = ca.credential(CertificateKind::Operator, "ops", &["automotive"]);
    let auditor = ca.credential(CertificateKind::Auditor, "audit-firm", &["automotive"]);
    let gateway = ca.credential(CertificateKind::Gateway, "soc-1", &["automotive"]);
    let longest_name = ca.credential(
        CertificateKind::Manufacturer,
        &std::iter::repeat_n('N', 63).collect::<String>(),
        &["automotive"],
    );
    for (kind, creds) in [
        ("manufacturer credential", &acme),
        ("operator credential", &ops),
        ("auditor credential", &auditor),
        ("gateway credential", &gateway),
        ("manufacturer credential longest name", &longest_name),
    ] {
        add(kind, &pem_ders(&creds.cert_pem), "client");
    }
    let client_chain = d.join("manufacturer-credential.pem");
    let client_key = d.join("manufacturer-credential.key");
    std::fs::write(&client_key, &acme.key_pem).unwrap();

    // Devices over the real gRPC API.
    let root_pem = ca.root_pem();
    let mut enroll = ca.client(&acme).await;
    let car = enroll_device(
        &mut enroll,
        &root_pem,
        "automotive",
        "Acme",
        "EV-200",
        "VIN-0001",
        "1.0.0",
        automotive_lv5(),
    )
    .await;
    add("device long-term automotive", &car.chain, "client");
    let house = enroll_device(
        &mut enroll,
        &root_pem,
        "hems",
        "Acme",
        "HB-1",
        "HOUSE-77",
        "1.0.0",
        hems_lv5(),
    )
    .await;
    add("device long-term hems", &house.chain, "server");
    // Device keys of the other algorithms the sector profiles allow.
    for (kind, sector, serial, alg) in [
        (
            "device long-term healthcare P-384 key",
            "healthcare",
            "MRI-0001",
            &rcgen::PKCS_ECDSA_P384_SHA384,
        ),
        (
            "device long-term automotive Ed25519 key",
            "automotive",
            "VIN-0009",
            &rcgen::PKCS_ED25519,
        ),
    ] {
        let (_k, csr_der) = csr_for(alg);
        let resp = enroll
            .enroll(request(sector, "Acme", serial, csr_der, vec![]))
            .await
            .unwrap()
            .into_inner();
        add(kind, &resp.chain_der, "client");
    }
    // The longest names trustca accepts (63-character labels) must still
    // give X.520-conformant subjects (ub-common-name is 64).
    let long = |c: char| std::iter::repeat_n(c, 63).collect::<String>();
    let (_k, csr_der) = csr();
    let mut longest = request("automotive", "Acme", &long('S'), csr_der, vec![]);
    longest.device.as_mut().unwrap().model = long('M');
    let resp = enroll.enroll(longest).await.unwrap().into_inner();
    add("device long-term longest names", &resp.chain_der, "client");
    let (_k, csr_der) = csr();
    let mut renew = request("automotive", "Acme", "VIN-0001", csr_der, automotive_lv5());
    renew.renewal = true;
    renew.device.as_mut().unwrap().model = "EV-200".into();
    let renewed = enroll.enroll(renew).await.unwrap().into_inner();
    add("device renewed", &renewed.chain_der, "client");
    let restricted_car = enroll_device(
        &mut enroll,
        &root_pem,
        "automotive",
        "Acme",
        "EV-200",
        "VIN-0002",
        "1.0.0",
        automotive_lv5(),
    )
    .await;
    let stolen = enroll_device(
        &mut enroll,
        &root_pem,
        "automotive",
        "Acme",
        "EV-200",
        "VIN-0003",
        "1.0.0",
        automotive_lv5(),
    )
    .await;
    let mut rev = RevocationClient::new(connect(&ca.url(), &ops).await.unwrap());
    let restricted = rev
        .restrict(pb::RestrictRequest {
            identity: restricted_car.identity.clone(),
            withdraw: vec!["server-auth".into()],
            note: "interop".into(),
        })
        .await
        .unwrap()
        .into_inner();
    add("device restricted", &restricted.chain_der, "client");
    rev.revoke(pb::RevokeRequest {
        subject: Some(pb::revoke_request::Subject::Certificate(
            stolen.chain[0].clone(),
        )),
        reason: "key-compromise".into(),
        note: "interop".into(),
    })
    .await
    .unwrap();

    // CRLs: every sector's (served over gRPC and written to DIR/crl), and
    // the root's ARL when this version publishes one.
    let mut crls = Vec::new();
    for sector in ["automotive", "hems", "healthcare"] {
        let crl = rev
            .get_crl(pb::GetCrlRequest {
                sector: sector.into(),
            })
            .await
            .unwrap()
            .into_inner();
        let path = d.join(format!("{sector}.crl"));
        std::fs::write(&path, &crl.crl_der).unwrap();
        crls.push(CrlArtefact {
            name: format!("sector CRL {sector}"),
            path,
            issuer: data.join(format!("ca/{sector}.pem")),
            arl: false,
        });
    }
    let root_crl = data.join("crl/root.crl");
    if root_crl.exists() {
        crls.push(CrlArtefact {
            name: "root ARL".into(),
            path: root_crl,
            issuer: root.clone(),
            arl: true,
        });
    }
    Artefacts {
        ca,
        out,
        root,
        certs,
        crls,
        client_chain,
        client_key,
    }
}

/// Runs a command and returns (success, stdout + stderr).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_standard_library_parses_verifies_and_connects() {
    if !available("go", &["version"], "apt-get install golang-go") {
        return;
    }
    let bin = build_go_checker();
    let a = artefacts().await;
    let mut failures = Vec::new();
    let mut check = |what: String, (ok, out): (bool, String)| {
        println!("{out}");
        if !ok {
            failures.push(format!("{what}:\n{out}"));
        }
    };

    // The checker catches the defect it is here for: an extension OID with
    // an arc of 2^31 or more (as the former 2.25.<uuid> OID had) is refused.
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["wide-arc.example".into()]).unwrap();
    params
        .custom_extensions
        .push(rcgen::CustomExtension::from_oid_content(
            &[2, 25, 1 << 40],
            vec![0x05, 0x00],
        ));
    let wide = a.out.path().join("wide-arc.pem");
    std::fs::write(&wide, params.self_signed(&key).unwrap().pem()).unwrap();
    let (ok, out) = run(Command::new(&bin).arg("cert").arg(&wide));
    assert!(
        !ok && out.contains("malformed extension OID"),
        "Go should refuse a 41-bit arc:\n{out}"
    );

    // Every certificate kind parses.
    for c in &a.certs {
        check(
            format!("Go parses the {}", c.kind),
            run(Command::new(&bin).arg("cert").arg(&c.chain)),
        );
    }
    // Every CRL parses and its signature verifies under its issuer.
    for crl in &a.crls {
        check(
            format!("Go parses the {}", crl.name),
            run(Command::new(&bin).arg("crl").arg(format!(
                "{}={}",
                crl.path.display(),
                crl.issuer.display()
            ))),
        );
    }
    // Path validation with crypto/x509 (root pool + intermediates, the EKU
    // each certificate is for) of every end-entity certificate, the device
    // chains first among them.
    for c in a.certs.iter().filter(|c| !c.kind.contains("CA")) {
        check(
            format!("Go verifies the {} ({})", c.kind, c.eku),
            run(Command::new(&bin)
                .arg("verify")
                .arg(&a.root)
                .arg(&c.chain)
                .arg(c.eku)),
        );
    }
    // A device's chain must not verify for a usage it does not have.
    let restricted = a
        .certs
        .iter()
        .find(|c| c.kind == "device restricted")
        .unwrap();
    let (ok, out) = run(Command::new(&bin)
        .arg("verify")
        .arg(&a.root)
        .arg(&restricted.chain)
        .arg("server"));
    assert!(
        !ok && out.contains("incompatible key usage"),
        "a restricted device must not verify for server auth:\n{out}"
    );
    // Mutual TLS with ALPN h2 against the running server, as the
    // manufacturer, and a gRPC health check over Go's HTTP/2 client.
    let addr = a.ca.server.as_ref().unwrap().addr.to_string();
    check(
        "Go completes mutual TLS (h2) and a gRPC call".into(),
        run(Command::new(&bin)
            .arg("tls")
            .arg(&addr)
            .arg(&a.root)
            .arg(&a.client_chain)
            .arg(&a.client_key)),
    );
    assert!(
        failures.is_empty(),
        "{} Go check(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    println!(
        "Go checked {} certificate kinds and {} CRLs: {}",
        a.certs.len(),
        a.crls.len(),
        a.certs
            .iter()
            .map(|c| c.kind)
            .collect::<Vec<_>>()
            .join(", ")
    );
    drop(a.out);
}

/// One accepted pkilint false positive: a validator, optionally only for
/// findings about one exact value, and why it is accepted.
struct Allowed {
    validator: String,
    value: Option<String>,
}

impl Allowed {
    fn covers(&self, validator: &str, message: &str) -> bool {
        self.validator == validator
            && self
                .value
                .as_ref()
                .is_none_or(|v| message.contains(&format!("\"{v}\"")))
    }
}

/// pkilint findings accepted as linter false positives, by validator name
/// (optionally narrowed to one quoted value), each with its reason
/// (`tests/interop/pkilint-allow.txt`).
fn pkilint_allow_list() -> Vec<Allowed> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("interop/pkilint-allow.txt");
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (name, reason) = l.split_once(':').expect(
                "each line is `ValidatorName: reason` or `ValidatorName \"value\": reason`",
            );
            assert!(!reason.trim().is_empty(), "{name} needs a reason");
            match name.trim().split_once(' ') {
                Some((validator, value)) => Allowed {
                    validator: validator.to_owned(),
                    value: Some(value.trim().trim_matches('"').to_owned()),
                },
                None => Allowed {
                    validator: name.trim().to_owned(),
                    value: None,
                },
            }
        })
        .collect()
}

/// One pkilint run: the console script (`lint_pkix_cert` or `lint_crl`)
/// and its arguments after `lint -f JSON -s ERROR`, the file last.
struct PkilintJob {
    tool: &'static str,
    args: Vec<String>,
}

/// Runs every job in one Python process (`tests/interop/pkilint_many.py`
/// calls the console scripts' own `main`): one interpreter start and one
/// import of pkilint instead of one per file. Returns each job's ERROR
/// and FATAL findings, less the allow-listed ones, in the jobs' order.
fn pkilint_findings(jobs: &[PkilintJob], allow: &[Allowed]) -> Vec<Vec<String>> {
    let input = serde_json::Value::Array(
        jobs.iter()
            .map(|j| {
                let mut args = vec!["lint", "-f", "JSON", "-s", "ERROR"];
                args.extend(j.args.iter().map(String::as_str));
                serde_json::json!({ "tool": j.tool, "args": args })
            })
            .collect(),
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("interop/pkilint_many.py");
    let mut child = Command::new("python3")
        .arg(&script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    std::io::Write::write_all(&mut stdin, input.to_string().as_bytes()).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{} failed: {}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let runs: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(runs.len(), jobs.len());
    jobs.iter()
        .zip(&runs)
        .map(|(job, run)| run_findings(job.tool, run, allow))
        .collect()
}

/// ERROR and FATAL findings of one pkilint run, less the allow-listed ones.
fn run_findings(program: &str, run: &serde_json::Value, allow: &[Allowed]) -> Vec<String> {
    let stdout = run["stdout"].as_str().unwrap_or_default();
    let Ok(json) = serde_json::from_str::<serde_json::Value>(stdout) else {
        return vec![format!(
            "{program} did not answer in JSON: {stdout}{}",
            run["stderr"].as_str().unwrap_or_default()
        )];
    };
    let mut findings = Vec::new();
    for r in json["results"].as_array().into_iter().flatten() {
        let validator = r["validator"].as_str().unwrap_or_default();
        for f in r["finding_descriptions"].as_array().into_iter().flatten() {
            let severity = f["severity"].as_str().unwrap_or_default();
            if !matches!(severity, "ERROR" | "FATAL") {
                continue;
            }
            let message = f["message"].as_str().unwrap_or_default();
            let line = format!(
                "{severity} {validator} {} at {} {message}",
                f["code"].as_str().unwrap_or_default(),
                r["node_path"].as_str().unwrap_or_default(),
            );
            if allow.iter().any(|a| a.covers(validator, message)) {
                println!("  allowed: {line}");
            } else {
                findings.push(line);
            }
        }
    }
    findings
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pkilint_finds_no_error_in_any_certificate_or_crl() {
    if !available(
        "lint_pkix_cert",
        &["validations"],
        "pip install pkilint==0.13.3",
    ) {
        return;
    }
    let allow = pkilint_allow_list();
    let a = artefacts().await;
    let mut names = Vec::new();
    let mut jobs = Vec::new();
    for c in &a.certs {
        // pkilint lints one certificate: the first of each file.
        let der = pem_ders(&std::fs::read_to_string(&c.chain).unwrap()).remove(0);
        let single = a
            .out
            .path()
            .join(format!("lint-{}.der", c.kind.replace(' ', "-")));
        std::fs::write(&single, der).unwrap();
        names.push(c.kind.to_owned());
        jobs.push(PkilintJob {
            tool: "lint_pkix_cert",
            args: vec![single.to_str().unwrap().to_owned()],
        });
    }
    for crl in &a.crls {
        let t = if crl.arl { "ARL" } else { "CRL" };
        names.push(crl.name.clone());
        jobs.push(PkilintJob {
            tool: "lint_crl",
            args: ["-t", t, "-p", "PKIX", crl.path.to_str().unwrap()]
                .map(str::to_owned)
                .to_vec(),
        });
    }
    let mut failures = Vec::new();
    for (name, findings) in names.iter().zip(pkilint_findings(&jobs, &allow)) {
        println!("pkilint {name}: {} finding(s)", findings.len());
        for f in findings {
            failures.push(format!("{name}: {f}"));
        }
    }
    assert_eq!(names.len(), a.certs.len() + a.crls.len());
    assert!(
        failures.is_empty(),
        "pkilint reports {} ERROR/FATAL finding(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssl_verifies_every_chain_and_crl() {
    let a = artefacts().await;
    let root_pem = std::fs::read_to_string(&a.root).unwrap();
    for c in a.certs.iter().filter(|c| !c.kind.contains("root")) {
        let chain = pem_ders(&std::fs::read_to_string(&c.chain).unwrap());
        let (ok, out) = if chain.len() > 1 {
            openssl_verify(a.out.path(), &root_pem, &chain, &[])
        } else {
            // Issued by the root itself: nothing untrusted to pass.
            run(Command::new("openssl")
                .arg("verify")
                .arg("-CAfile")
                .arg(&a.root)
                .arg(&c.chain))
        };
        assert!(ok, "openssl rejects the {}: {out}", c.kind);
    }
    for crl in &a.crls {
        let out = Command::new("openssl")
            .args(["crl", "-inform", "DER", "-noout", "-verify", "-in"])
            .arg(&crl.path)
            .arg("-CAfile")
            .arg(&crl.issuer)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && text.contains("verify OK"),
            "openssl rejects the {}: {text}",
            crl.name
        );
    }
}

/// An operator with its own Private Enterprise Number sets the OID in
/// pki.toml before `init`: every certificate carries it, the server
/// recognises credentials under it, and the default OID appears nowhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_chosen_extension_oid_is_used_everywhere() {
    let own = "1.3.6.1.4.1.99999.1.1";
    let policies = tempfile::tempdir().unwrap();
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies"),
        policies.path(),
    );
    let pki = policies.path().join("pki.toml");
    let text = std::fs::read_to_string(&pki)
        .unwrap()
        .replace(trustca_model::extension::DEFAULT_OID, own);
    assert!(text.contains(own));
    std::fs::write(&pki, &text).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let pass = creating_passphrase(PASSPHRASE);
    trustca_server::init(dir.path(), Some(policies.path()), &pass, &[]).unwrap();
    let mut ca = TestCa { dir, server: None };
    ca.restart().await;
    // The manufacturer's credential is recognised only under the new OID.
    let acme = ca.credential(CertificateKind::Manufacturer, "Acme", &["automotive"]);
    let mut enroll = ca.client(&acme).await;
    let car = enroll_device(
        &mut enroll,
        &ca.root_pem(),
        "automotive",
        "Acme",
        "EV-200",
        "PEN-1",
        "1.0.0",
        automotive_lv5(),
    )
    .await;
    let custom = trustca_model::extension::ExtensionOid::parse(own).unwrap();
    let default = trustca_model::extension::ExtensionOid::default();
    for der in car.chain.iter().chain(pem_ders(&acme.cert_pem).iter()) {
        let (_, c) = x509_parser::parse_x509_certificate(der).unwrap();
        assert!(
            trustca_model::trust_extension(&c, &custom)
                .unwrap()
                .is_some()
        );
        assert!(
            trustca_model::trust_extension(&c, &default)
                .unwrap()
                .is_none()
        );
    }
    let ext = {
        let (_, c) = x509_parser::parse_x509_certificate(&car.chain[0]).unwrap();
        trustca_model::trust_extension(&c, &custom)
            .unwrap()
            .unwrap()
    };
    // The declared evidence's level (automotive caps declared hardware at Lv.3).
    assert_eq!(
        ext.level.map(|l| l.get() as u32),
        Some(DECLARED_AUTOMOTIVE_LEVEL)
    );

    // A bad OID in pki.toml is refused at load, with the file and line.
    std::fs::write(
        &pki,
        text.replace(own, "2.25.304917911047948023692104962459481245009"),
    )
    .unwrap();
    let err = trustca_server::policies::resolve(Some(policies.path()), None).unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("pki.toml:") && msg.contains("larger than 2^31-1"),
        "{msg}"
    );
}
