//! The key ceremony's steps and their refusals, on temporary directories.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

fn policies() -> PolicySet {
    let sectors: Vec<(String, String)> = [
        (
            "automotive.toml",
            include_str!("../../policies/sectors/automotive.toml"),
        ),
        (
            "hems.toml",
            include_str!("../../policies/sectors/hems.toml"),
        ),
        (
            "healthcare.toml",
            include_str!("../../policies/sectors/healthcare.toml"),
        ),
    ]
    .iter()
    .map(|(n, t)| (n.to_string(), t.to_string()))
    .collect();
    PolicySet::parse(
        ("pki.toml", include_str!("../../policies/pki.toml")),
        &sectors,
        (
            "cooperation.toml",
            include_str!("../../policies/cooperation.toml"),
        ),
        (
            "recognition.toml",
            include_str!("../../policies/recognition.toml"),
        ),
        &[],
    )
    .unwrap()
}

fn pass() -> Passphrase {
    Passphrase::new(b"ceremony-test-passphrase".to_vec()).unwrap()
}

/// What a refused install must not have written: the certificates and
/// the service keys that only a successful install makes.
fn installed(dir: &Path) -> bool {
    [
        "ca/root.pem",
        "ca/automotive.pem",
        "ca/server.key",
        "ca/record-seal.key",
    ]
    .iter()
    .any(|f| dir.join(f).exists())
}

fn sign(root: &Path, csr: &Path) -> SignedSector {
    sign_sector(
        root,
        &policies(),
        &pass(),
        None,
        &std::fs::read(csr).unwrap(),
        false,
    )
    .unwrap()
}

fn install(
    dir: &Path,
    cert: &str,
    root: &Path,
    names: &[String],
) -> Result<InstallReport, CaError> {
    sector_install(
        dir,
        &policies(),
        &pass(),
        None,
        cert.as_bytes(),
        &std::fs::read(root).unwrap(),
        names,
    )
}

#[test]
fn a_sector_directory_holds_only_its_own_keys_and_installs_only_its_own_answer() {
    let set = policies();
    let root = tempfile::tempdir().unwrap();
    let report = root_init(root.path(), &set, &pass(), None, "Test Root A").unwrap();
    assert!(report.arl.exists());
    let keys: Vec<String> = std::fs::read_dir(root.path().join("ca"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|f| f.ends_with(".key"))
        .collect();
    assert_eq!(
        keys,
        ["root.key"],
        "root init makes the root key and nothing else"
    );

    let auto = tempfile::tempdir().unwrap();
    let hems = tempfile::tempdir().unwrap();
    let a = sector_init(auto.path(), &set, &pass(), "automotive", None).unwrap();
    let h = sector_init(hems.path(), &set, &pass(), "hems", None).unwrap();
    let auto_cert = sign(root.path(), &a.csr);
    assert_eq!(auto_cert.sector.as_str(), "automotive");
    assert_eq!(auto_cert.arl_number, 2, "signing re-issues the ARL");
    let hems_cert = sign(root.path(), &h.csr);

    // Refused, each in one line, and nothing installed: the hems answer;
    // an automotive certificate for another key (under another root of
    // the same name); the right certificate under that other root; a
    // server name outside the sector CA's name constraint.
    let other = tempfile::tempdir().unwrap();
    let o = sector_init(other.path(), &set, &pass(), "automotive", None).unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let root2 = root_init(elsewhere.path(), &set, &pass(), None, "Test Root A").unwrap();
    let stray = sign(elsewhere.path(), &o.csr);
    for (cert, root_pem, names, why) in [
        (&hems_cert, &report.root_pem, vec![], "for sector hems"),
        (
            &stray,
            &root2.root_pem,
            vec![],
            "not for this directory's automotive CA key",
        ),
        (
            &auto_cert,
            &root2.root_pem,
            vec![],
            "does not verify under this root's key",
        ),
        (
            &auto_cert,
            &report.root_pem,
            vec!["db.example.org".to_owned()],
            "outside automotive.",
        ),
    ] {
        let err = install(auto.path(), &cert.cert_pem, root_pem, &names)
            .unwrap_err()
            .to_string();
        assert!(err.contains(why), "{err}");
        assert!(!err.contains('\n'), "one line: {err}");
        assert!(!installed(auto.path()), "nothing written: {err}");
    }

    let err = sector_import(
        auto.path(),
        &set,
        &[("hems.pem".into(), hems_cert.cert_pem.clone().into_bytes())],
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("install this sector's CA first"), "{err}");
    let done = install(auto.path(), &auto_cert.cert_pem, &report.root_pem, &[]).unwrap();
    assert_eq!(done.root_sha256, report.root_sha256);
    // Without the other sectors' certificates the directory does not open.
    let err = CaHierarchy::open(auto.path(), &set, &pass())
        .unwrap_err()
        .to_string();
    assert!(err.contains("trustca sector import"), "{err}");
    let arl = |r: &Path| std::fs::read(r.join("crl/root.crl")).unwrap();
    let imported = sector_import(
        auto.path(),
        &set,
        &[
            ("hems.pem".into(), hems_cert.cert_pem.clone().into_bytes()),
            ("root.crl".into(), arl(root.path())),
        ],
    )
    .unwrap();
    assert_eq!(imported.sectors.len(), 1);
    assert_eq!(imported.arl_number, Some(3));
    let health = tempfile::tempdir().unwrap();
    let hc = sector_init(health.path(), &set, &pass(), "healthcare", None).unwrap();
    let hc_cert = sign(root.path(), &hc.csr);
    sector_import(
        auto.path(),
        &set,
        &[("healthcare.pem".into(), hc_cert.cert_pem.into_bytes())],
    )
    .unwrap();
    let h = CaHierarchy::open(auto.path(), &set, &pass()).unwrap();
    assert_eq!(
        h.sectors.keys().map(|s| s.as_str()).collect::<Vec<_>>(),
        ["automotive"]
    );
    assert_eq!(h.sector_certs.len(), 3);
    assert!(!h.holds_root_key());
    assert_eq!(h.own_sector().map(|s| s.as_str()), Some("automotive"));
    // The service certificates are the sector CA's: leaf, sector CA, root.
    assert_eq!(h.server_chain.len(), 3);
    let checked = trustca_model::verify_chain(
        &h.responder_chain,
        &[],
        &h.root_der,
        OffsetDateTime::now_utc(),
        &set.pki.extensions.trust_level_oid,
    )
    .unwrap();
    assert_eq!(checked.extension.unwrap().sector.as_str(), "automotive");
    let err = h
        .issuing_sector(&SectorName::new("hems").unwrap())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("enroll hems devices at the hems instance"),
        "{err}"
    );

    // The root revokes hems offline; the ARL reaches automotive.
    let (revoked, number) =
        CaHierarchy::revoke_ca(root.path(), &set, &pass(), None, "hems", 2, "test").unwrap();
    assert_eq!(revoked.name, "hems");
    let imported =
        sector_import(auto.path(), &set, &[("root.crl".into(), arl(root.path()))]).unwrap();
    assert_eq!(imported.arl_number, Some(number));
    assert_eq!(imported.revoked, ["hems"]);
    let h = CaHierarchy::open(auto.path(), &set, &pass()).unwrap();
    assert!(h.revoked_cas().revoked("hems").is_some());
    // The same ARL again, and another root's ARL, are refused.
    for (from, why) in [
        (root.path(), "not newer"),
        (elsewhere.path(), "does not verify under this root's key"),
    ] {
        let err = sector_import(auto.path(), &set, &[("root.crl".into(), arl(from))])
            .unwrap_err()
            .to_string();
        assert!(err.contains(why), "{err}");
    }
}

#[test]
fn the_root_refuses_a_request_for_a_sector_it_has_no_profile_for() {
    let set = policies();
    let root = tempfile::tempdir().unwrap();
    root_init(root.path(), &set, &pass(), None, "Test Root B").unwrap();
    let arl_before = std::fs::read(root.path().join("crl/root.crl")).unwrap();
    let nothing_written = || {
        assert_eq!(
            std::fs::read(root.path().join("crl/root.crl")).unwrap(),
            arl_before,
            "no ARL re-issued"
        );
        assert!(!root.path().join("ca/aviation.pem").exists());
    };
    let key = issuer::generate_key(trustca_model::KeyAlgorithm::EcdsaP256).unwrap();
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::OrganizationalUnitName, "aviation");
    let csr = params.serialize_request(&key).unwrap().pem().unwrap();
    let err = sign_sector(root.path(), &set, &pass(), None, csr.as_bytes(), false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("no profile for sector \"aviation\""), "{err}");
    assert!(!err.contains('\n'), "one line: {err}");
    nothing_written();
    // A request naming no sector, and garbage, are refused too.
    let plain = CertificateParams::default()
        .serialize_request(&key)
        .unwrap()
        .pem()
        .unwrap();
    let err = sign_sector(root.path(), &set, &pass(), None, plain.as_bytes(), false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("exactly one sector"), "{err}");
    assert!(sign_sector(root.path(), &set, &pass(), None, b"junk", false).is_err());
    nothing_written();
}

#[test]
fn a_root_is_named_by_its_operator_and_the_default_name_is_refused() {
    let set = policies();
    let dir = tempfile::tempdir().unwrap();
    for (name, why) in [
        ("trustca Root CA", "default name of pki.toml"),
        ("TRUSTCA ROOT CA", "default name of pki.toml"),
        ("", "must not be empty"),
        (" Spaced Root", "start or end with spaces"),
        ("Root\nCA", "control character"),
        ("R".repeat(65).as_str(), "longer than 64"),
    ] {
        let e = root_init(dir.path(), &set, &pass(), None, name)
            .unwrap_err()
            .to_string();
        assert!(e.contains(why), "{name:?}: {e}");
        assert!(!dir.path().join("ca").exists(), "{name:?}: nothing made");
    }
    let r = root_init(
        dir.path(),
        &set,
        &pass(),
        None,
        "Example Energy Root CA 2026",
    )
    .unwrap();
    assert_eq!(r.subject, "O=trustca, CN=Example Energy Root CA 2026");
    let pem = std::fs::read(&r.root_pem).unwrap();
    let der = der_of(&pem, "CERTIFICATE", "root").unwrap();
    let (_, cert) = X509Certificate::from_der(&der).unwrap();
    assert_eq!(cert.subject().to_string(), r.subject);
    assert_eq!(cert.issuer(), cert.subject());
}

#[test]
fn a_rolled_over_sector_issues_from_its_new_ca_and_is_revoked_whole_only_with_both() {
    let set = policies();
    let root = tempfile::tempdir().unwrap();
    root_init(root.path(), &set, &pass(), None, "Test Root R").unwrap();
    let root_pem = root.path().join("ca/root.pem");
    let mut dirs = Vec::new();
    let mut certs = Vec::new();
    for sector in ["automotive", "hems", "healthcare"] {
        let dir = tempfile::tempdir().unwrap();
        let r = sector_init(dir.path(), &set, &pass(), sector, None).unwrap();
        let signed = sign(root.path(), &r.csr);
        install(dir.path(), &signed.cert_pem, &root_pem, &[]).unwrap();
        certs.push((format!("{sector}.pem"), signed.cert_pem.into_bytes()));
        dirs.push(dir);
    }
    let auto = dirs[0].path();
    sector_import(auto, &set, &certs[1..]).unwrap();
    let next = crate::rollover::sector_rollover(auto, &set, &pass(), None).unwrap();
    assert_eq!((next.generation, next.name.as_str()), (2, "automotive.2"));
    let rolled = sign_sector(
        root.path(),
        &set,
        &pass(),
        None,
        &std::fs::read(&next.csr).unwrap(),
        true,
    )
    .unwrap();
    assert_eq!(rolled.generation, 2);
    let done = install(auto, &rolled.cert_pem, &root_pem, &[]).unwrap();
    assert_eq!(done.generation, 2);

    let h = CaHierarchy::open(auto, &set, &pass()).unwrap();
    let sector = SectorName::new("automotive").unwrap();
    assert_eq!(h.issuing_sector(&sector).unwrap().generation, 2);
    let signers: Vec<String> = h.crl_signers(&sector).into_iter().map(|(n, _)| n).collect();
    assert_eq!(signers, ["automotive", "automotive.2"]);
    assert_eq!(h.all_sector_cas().len(), 4);

    // The root revokes the old generation: the sector stands, the new CA
    // still issues.
    let arl = |r: &Path| std::fs::read(r.join("crl/root.crl")).unwrap();
    CaHierarchy::revoke_ca(root.path(), &set, &pass(), None, "automotive", 5, "retired").unwrap();
    let imported = sector_import(auto, &set, &[("root.crl".into(), arl(root.path()))]).unwrap();
    assert_eq!(imported.revoked, ["automotive"]);
    let h = CaHierarchy::open(auto, &set, &pass()).unwrap();
    assert!(h.revoked_cas().revoked("automotive").is_none());
    assert!(h.issuing_sector(&sector).is_ok());
    // Both revoked: the sector's CA is revoked, and issuance stops.
    CaHierarchy::revoke_ca(root.path(), &set, &pass(), None, "automotive.2", 1, "gone").unwrap();
    sector_import(auto, &set, &[("root.crl".into(), arl(root.path()))]).unwrap();
    let h = CaHierarchy::open(auto, &set, &pass()).unwrap();
    assert_eq!(
        h.revoked_cas().revoked("automotive").map(|r| r.name),
        Some("automotive.2".to_owned())
    );
    let err = h.issuing_sector(&sector).unwrap_err().to_string();
    assert!(err.contains("automotive.2"), "{err}");
}
