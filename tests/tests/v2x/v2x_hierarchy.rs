//! The V2X (IEEE 1609.2) hierarchy `init` creates beside the X.509 one:
//! `ca/v2x-root.oer` (self-signed), `ca/v2x-ea.oer` and `ca/v2x-aa.oer`
//! (issued by the V2X root), and `ca/v2x-root.pem`, the X.509 root's
//! certificate for the same P-256 key. Checked with trustca-v2x, with
//! openssl, and with the independent Python check
//! (`v2x/tests/independent.py`: asn1tools from the published ASN.1 and
//! `cryptography`), which skips loudly when its tools are missing unless
//! `TRUSTCA_REQUIRE_INTEROP=1`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::path::Path;
use std::process::Command;

use common::PASSPHRASE;
use trustca_ca::Passphrase;
use trustca_v2x::{
    CertProfile, Certificate, CertificateId, IssuerIdentifier, PublicKeyP256, SubjectPermissions,
};

fn init(data: &Path) -> trustca_ca::InitReport {
    trustca_server::init(data, None, &common::creating_passphrase(PASSPHRASE), &[]).unwrap()
}

fn load(data: &Path, name: &str) -> Certificate {
    let bytes = std::fs::read(data.join("ca").join(name)).unwrap();
    Certificate::from_coer_in(CertProfile::Ieee1609Dot2, &bytes).unwrap()
}

fn ca_files(data: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<_> = std::fs::read_dir(data.join("ca"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_file())
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn init_creates_a_verifiable_v2x_hierarchy_under_the_x509_root() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let report = init(data);
    let mut created = report.created_v2x.clone();
    created.sort();
    assert_eq!(
        created,
        [
            "v2x-aa.oer",
            "v2x-crl.oer",
            "v2x-ea.oer",
            "v2x-root.oer",
            "v2x-root.pem"
        ]
    );
    let root = load(data, "v2x-root.oer");
    let ea = load(data, "v2x-ea.oer");
    let aa = load(data, "v2x-aa.oer");
    root.verify_signed_by(None).unwrap();
    ea.verify_signed_by(Some(&root)).unwrap();
    aa.verify_signed_by(Some(&root)).unwrap();
    assert_eq!(root.issuer(), IssuerIdentifier::SelfSigned);
    assert_eq!(
        ea.issuer(),
        IssuerIdentifier::Sha256AndDigest(root.hashed_id8())
    );
    assert!(ea.verify_signed_by(Some(&aa)).is_err());
    assert_eq!(
        root.tbs().id,
        CertificateId::Name("root.v2x.trustca.internal".into())
    );
    // File keys: assurance level 4 (trust level Lv.4).
    for c in [&root, &ea, &aa] {
        assert_eq!(c.tbs().assurance_level.unwrap().trust_level(), Some(4));
    }
    // The root issues the CRL signer (PSID 256, chains of one) and, through
    // the EA and AA, everything else (chains of two).
    let root_groups = root.tbs().cert_issue_permissions.as_ref().unwrap();
    assert_eq!(root_groups.len(), 2);
    let SubjectPermissions::Explicit(crl_psids) = &root_groups[0].subject_permissions else {
        panic!("the CRL signer's group lists PSID 256");
    };
    assert_eq!(crl_psids.iter().map(|r| r.psid).collect::<Vec<_>>(), [256]);
    assert_eq!(root_groups[0].min_chain_length, 1);
    assert_eq!(root_groups[1].subject_permissions, SubjectPermissions::All);
    // The CRL signer: issued by the root, within its validity, and every
    // certificate below the root names the root as its CRACA.
    let crl = load(data, "v2x-crl.oer");
    crl.verify_signed_by(Some(&root)).unwrap();
    for c in [&ea, &aa, &crl] {
        assert_eq!(c.tbs().craca_id, root.hashed_id3(), "cracaId is the root's");
    }
    let SubjectPermissions::Explicit(aa_psids) =
        &aa.tbs().cert_issue_permissions.as_ref().unwrap()[0].subject_permissions
    else {
        panic!("AA must list its PSIDs");
    };
    let psids: Vec<u64> = aa_psids.iter().map(|r| r.psid).collect();
    assert_eq!(
        psids,
        [36, 37, 639],
        "CAM, DENM and CPM (the AA may issue CPM)"
    );
    // The EA and AA lie within the V2X root's validity.
    let end = |c: &Certificate| {
        c.tbs().validity.start.to_unix() + c.tbs().validity.duration.as_seconds() as i64
    };
    assert!(end(&ea) <= end(&root) && end(&aa) <= end(&root));

    // The X.509 side: the root certifies the V2X root's key.
    let out = Command::new("openssl")
        .arg("verify")
        .arg("-CAfile")
        .arg(data.join("ca/root.pem"))
        .arg(data.join("ca/v2x-root.pem"))
        .output()
        .expect("openssl must be installed");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let pem_text = std::fs::read_to_string(data.join("ca/v2x-root.pem")).unwrap();
    let der = pem::parse(&pem_text).unwrap().into_contents();
    let (_, x509) = x509_parser::parse_x509_certificate(&der).unwrap();
    let point = x509.public_key().subject_public_key.data.to_vec();
    assert_eq!(
        PublicKeyP256::from_sec1(&point).unwrap(),
        root.tbs().verification_key
    );
    // It never outlives the X.509 root, nor the V2X root the X.509 root.
    let root_pem = std::fs::read_to_string(data.join("ca/root.pem")).unwrap();
    let root_der = pem::parse(&root_pem).unwrap().into_contents();
    let (_, x509_root) = x509_parser::parse_x509_certificate(&root_der).unwrap();
    let root_not_after = x509_root.validity().not_after.timestamp();
    assert!(x509.validity().not_after.timestamp() <= root_not_after);
    assert!(end(&root) <= root_not_after);
    let ext = trustca_model::trust_extension(
        &x509,
        &trustca_model::policy::PkiPolicy::parse(
            "pki.toml",
            include_str!("../../../policies/pki.toml"),
        )
        .unwrap()
        .extensions
        .trust_level_oid,
    )
    .unwrap()
    .unwrap();
    assert_eq!(ext.kind, trustca_model::CertificateKind::Service);

    // A second init changes nothing.
    let before = ca_files(data);
    assert!(init(data).created_v2x.is_empty());
    assert_eq!(ca_files(data), before);

    // A data directory made before the V2X hierarchy existed: init adds it
    // and leaves the X.509 hierarchy alone.
    for f in ["v2x-root.oer", "v2x-root.pem", "v2x-ea.oer", "v2x-aa.oer"] {
        std::fs::remove_file(data.join("ca").join(f)).unwrap();
    }
    for f in ["v2x-root.key", "v2x-ea.key", "v2x-aa.key"] {
        std::fs::remove_file(data.join("ca").join(f)).unwrap();
    }
    assert_eq!(init(data).created_v2x.len(), 4);
    assert_eq!(
        std::fs::read_to_string(data.join("ca/root.pem")).unwrap(),
        root_pem
    );
    let new_root = load(data, "v2x-root.oer");
    assert_ne!(new_root.tbs().verification_key, root.tbs().verification_key);
    load(data, "v2x-aa.oer")
        .verify_signed_by(Some(&new_root))
        .unwrap();
    // A crash after a key was made and before its certificate was written:
    // the next init uses that key.
    let aa_key = load(data, "v2x-aa.oer").tbs().verification_key;
    std::fs::remove_file(data.join("ca/v2x-aa.oer")).unwrap();
    assert_eq!(init(data).created_v2x, ["v2x-aa.oer"]);
    let again = load(data, "v2x-aa.oer");
    assert_eq!(again.tbs().verification_key, aa_key);
    again.verify_signed_by(Some(&new_root)).unwrap();
}

#[test]
fn asn1tools_and_cryptography_accept_the_v2x_files_init_writes() {
    if !common::asn1tools_ready(&["TS103097v131.asn"], &[]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    init(data);
    // The root is in the ETSI TS 103 097 profile; everything below it
    // carries the root's HashedId3 as cracaId (the root is the CRACA), so
    // the EA, AA and CRL signer are checked as IEEE 1609.2 certificates.
    let files: Vec<String> = ["v2x-root.oer", "v2x-ea.oer", "v2x-aa.oer", "v2x-crl.oer"]
        .iter()
        .map(|f| data.join("ca").join(f).to_str().unwrap().to_owned())
        .collect();
    // Must fail: the AA with one bit of sSig changed.
    let mut bad = std::fs::read(&files[2]).unwrap();
    let n = bad.len();
    bad[n - 1] ^= 0x01;
    let bad_path = data.join("bad-aa.oer");
    std::fs::write(&bad_path, &bad).unwrap();
    let mut cmd = Command::new("python3");
    cmd.arg(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../v2x/tests/independent.py"
    ))
    .arg(&files[0]);
    for f in &files[1..] {
        cmd.arg("--ieee").arg(f);
    }
    let out = cmd
        .arg("--ieee-must-fail")
        .arg(&bad_path)
        .env("V2X_ASN1_DIR", common::asn1_dir())
        .env("V2X_DUMP", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "independent check failed");
    for (path, name) in
        files
            .iter()
            .zip(["v2x-root.oer", "v2x-ea.oer", "v2x-aa.oer", "v2x-crl.oer"])
    {
        let line = format!(
            "OK verified {path} hashedid8={}",
            hex::encode(load(data, name).hashed_id8())
        );
        assert!(stdout.lines().any(|l| l == line), "missing: {line}");
    }
    assert_eq!(
        stdout
            .lines()
            .filter(|l| l.starts_with("OK rejected"))
            .count(),
        1
    );
    // asn1tools read the AA's permissions as meant: CAM, DENM, CPM, app.
    let dump = stdout
        .lines()
        .find(|l| l.starts_with(&format!("decoded {}:", files[2])))
        .unwrap();
    for expected in [
        "{'psid': 36, 'sspRange': ('all', None)}",
        "{'psid': 37, 'sspRange': ('all', None)}",
        "{'psid': 639}",
        "'name', 'aa.v2x.trustca.internal'",
    ] {
        assert!(dump.contains(expected), "{expected} not in {dump}");
    }
}

/// A data directory whose CRL signer was certified before the enrolment
/// certificate series (3) existed: the CA re-certifies the same key once,
/// by the V2X root, for series 1–3, and leaves a current one alone.
#[test]
fn an_older_crl_signer_is_recertified_for_the_enrolment_certificate_series() {
    use trustca_ca::v2x_ca::{
        CA_HELD_CRL_SERIES, crl_signer_certificate, crl_signer_for_hash_crls,
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    init(data);
    let pass = Passphrase::new(PASSPHRASE.to_vec()).unwrap();
    let (_, set) = trustca_server::policies::resolve(None, Some(data)).unwrap();
    let h = trustca_ca::CaHierarchy::open(data, &set, &pass).unwrap();
    let root = load(data, "v2x-root.oer");
    let current = load(data, "v2x-crl.oer");
    let ssp = |c: &Certificate| trustca_v2x::CrlSsp::of(c).unwrap().unwrap().crls;
    assert_eq!(ssp(&current), CA_HELD_CRL_SERIES);

    // Made the way an older init made it: series 1 and 2 only.
    let root_key = {
        let ks = trustca_ca::Keystore::open(&data.join("ca"), &pass).unwrap();
        let rng = ring::rand::SystemRandom::new();
        ring::signature::EcdsaKeyPair::from_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &ks.load("v2x-root").unwrap(),
            &rng,
        )
        .unwrap()
    };
    let tbs = current.tbs();
    let CertificateId::Name(name) = &tbs.id else {
        panic!("the CRL signer has no name")
    };
    let older = crl_signer_certificate(
        &root_key,
        &root,
        tbs.verification_key,
        name,
        &[1, 2],
        tbs.validity,
        tbs.assurance_level.unwrap(),
    )
    .unwrap();
    std::fs::write(data.join("ca/v2x-crl.oer"), older.as_coer()).unwrap();

    let (_, renewed) = crl_signer_for_hash_crls(data, &h).unwrap();
    assert_eq!(ssp(&renewed), CA_HELD_CRL_SERIES);
    assert_eq!(renewed.tbs().verification_key, tbs.verification_key);
    assert_eq!(renewed.tbs().validity, tbs.validity);
    renewed.verify_signed_by(Some(&root)).unwrap();
    assert_eq!(load(data, "v2x-crl.oer"), renewed, "written back");
    // Current now: nothing changes.
    let (_, again) = crl_signer_for_hash_crls(data, &h).unwrap();
    assert_eq!(again, renewed);
    assert!(!data.join("ca/v2x-crl.oer.new").exists());
}
