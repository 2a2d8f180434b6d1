//! Issuing and importing trust lists, and their refusals, on temporary
//! directories.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::ceremony::root_init;

const RECOGNITION_RAILWAY: &str = r#"
[[recognition]]
sector = "automotive"
counts = "railway"
map = [1, 2, 3, 3, 4]
rationale = "test: railway levels count lower"
"#;

/// The built-in policies, with `railway` declared foreign when `railway`.
fn policies(railway: bool) -> PolicySet {
    let sectors: Vec<(String, String)> = ["automotive", "hems", "healthcare"]
        .iter()
        .map(|s| {
            let path = format!(
                "{}/../policies/sectors/{s}.toml",
                env!("CARGO_MANIFEST_DIR")
            );
            (format!("{s}.toml"), std::fs::read_to_string(path).unwrap())
        })
        .collect();
    let mut recognition = include_str!("../../policies/recognition.toml").to_string();
    if railway {
        recognition = recognition.replacen(
            "\n[[recognition]]",
            "\nforeign = [\"railway\"]\n\n[[recognition]]",
            1,
        ) + RECOGNITION_RAILWAY;
    }
    PolicySet::parse(
        ("pki.toml", include_str!("../../policies/pki.toml")),
        &sectors,
        (
            "cooperation.toml",
            include_str!("../../policies/cooperation.toml"),
        ),
        ("recognition.toml", &recognition),
        &[],
    )
    .unwrap()
}

fn pass() -> Passphrase {
    Passphrase::new(b"trust-list-test-passphrase".to_vec()).unwrap()
}

fn root(dir: &Path) -> Vec<u8> {
    // Each root its own name, as `root init --name` requires.
    let name = format!("Test Root {}", dir.display());
    root_init(dir, &policies(true), &pass(), None, &name).unwrap();
    std::fs::read(dir.join("ca/root.pem")).unwrap()
}

fn foreign(cert: &[u8], sectors: &[&str]) -> ForeignRoot {
    ForeignRoot {
        name: "r2.pem".into(),
        certificate: cert.to_vec(),
        sectors: sectors.iter().map(|s| s.to_string()).collect(),
    }
}

fn issue_one(dir: &Path, r2: &[u8]) -> Result<TrustListReport, CaError> {
    issue(
        dir,
        &policies(true),
        &pass(),
        None,
        &[foreign(r2, &["railway"])],
        OffsetDateTime::now_utc() + time::Duration::days(30),
    )
}

/// A sector's directory, as far as importing a list needs: the root.
fn sector_dir(root_pem: &[u8]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("ca")).unwrap();
    std::fs::write(d.path().join("ca/root.pem"), root_pem).unwrap();
    d
}

#[test]
fn a_list_issued_by_the_root_is_imported_and_replaced_only_by_a_newer_one() {
    let (r1, r2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let r1_pem = root(r1.path());
    let r2_pem = root(r2.path());
    let first = issue_one(r1.path(), &r2_pem).unwrap();
    assert_eq!(first.sequence, 1);
    assert_eq!(first.roots.len(), 1);
    assert_eq!(first.roots[0].sectors[0].as_str(), "railway");
    let second = issue_one(r1.path(), &r2_pem).unwrap();
    assert_eq!(second.sequence, 2);

    let s = sector_dir(&r1_pem);
    let got = import(s.path(), &policies(true), second.pem.as_bytes()).unwrap();
    assert_eq!(got.sequence, 2);
    let held = in_force(s.path(), OffsetDateTime::now_utc())
        .unwrap()
        .unwrap();
    let r2_der = der_of(&r2_pem, "CERTIFICATE", "r2").unwrap();
    assert!(held.list.entry_for(&r2_der).is_some());
    // What it holds is what was imported, byte for byte (snapshots carry it).
    assert_eq!(
        held.der,
        std::fs::read(s.path().join("ca").join(TRUST_LIST_FILE)).unwrap()
    );

    let e = import(s.path(), &policies(true), first.pem.as_bytes()).unwrap_err();
    assert!(e.to_string().contains("not newer"), "{e}");
    let e = import(s.path(), &policies(true), second.pem.as_bytes()).unwrap_err();
    assert!(e.to_string().contains("not newer"), "{e}");
    assert_eq!(
        in_force(s.path(), OffsetDateTime::now_utc())
            .unwrap()
            .unwrap()
            .list
            .sequence,
        2
    );
    // Past its nextUpdate the list recognises nothing.
    let later = OffsetDateTime::now_utc() + time::Duration::days(31);
    let e = in_force(s.path(), later).unwrap_err();
    assert!(e.to_string().contains("nextUpdate"), "{e}");
}

#[test]
fn a_list_signed_by_another_root_changes_nothing() {
    let (r1, r2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let r1_pem = root(r1.path());
    root(r2.path());
    // R2 lists R1: a valid list, but not this sector's root's.
    let theirs = issue_one(r2.path(), &r1_pem).unwrap();
    let s = sector_dir(&r1_pem);
    let e = import(s.path(), &policies(true), theirs.pem.as_bytes()).unwrap_err();
    assert!(e.to_string().contains("trust list"), "{e}");
    assert!(!s.path().join("ca").join(TRUST_LIST_FILE).exists());
    let e = import(s.path(), &policies(true), b"garbage").unwrap_err();
    assert!(e.to_string().contains("PEM nor DER"), "{e}");
    assert!(!s.path().join("ca").join(TRUST_LIST_FILE).exists());
}

#[test]
fn a_sector_without_recognition_rules_is_refused() {
    let (r1, r2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let r1_pem = root(r1.path());
    let r2_pem = root(r2.path());
    let list = issue_one(r1.path(), &r2_pem).unwrap();
    let s = sector_dir(&r1_pem);
    let e = import(s.path(), &policies(false), list.pem.as_bytes()).unwrap_err();
    assert!(e.to_string().contains("declare foreign"), "{e}");
    assert!(!s.path().join("ca").join(TRUST_LIST_FILE).exists());
}

#[test]
fn the_root_refuses_what_it_cannot_list() {
    let (r1, r2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let r1_pem = root(r1.path());
    let r2_pem = root(r2.path());
    let next = OffsetDateTime::now_utc() + time::Duration::days(30);
    let try_issue = |roots: &[ForeignRoot], next: OffsetDateTime| {
        issue(r1.path(), &policies(true), &pass(), None, roots, next)
            .unwrap_err()
            .to_string()
    };
    for (roots, why) in [
        (vec![foreign(&r1_pem, &["railway"])], "our own root"),
        (vec![foreign(&r2_pem, &["automotive"])], "own sectors"),
        (vec![foreign(&r2_pem, &["shipping"])], "declare"),
        (vec![foreign(&r2_pem, &[])], "--sector"),
        (vec![foreign(b"not a cert", &["railway"])], "PEM nor DER"),
        (
            vec![
                foreign(&r2_pem, &["railway"]),
                foreign(&r2_pem, &["railway"]),
            ],
            "twice",
        ),
    ] {
        let e = try_issue(&roots, next);
        assert!(e.contains(why), "{why}: {e}");
    }
    let e = try_issue(&[foreign(&r2_pem, &["railway"])], OffsetDateTime::now_utc());
    assert!(e.contains("nextUpdate"), "{e}");
    assert!(!r1.path().join("ca").join(TRUST_LIST_FILE).exists());
}

#[test]
fn a_foreign_root_with_our_roots_name_is_refused_at_issue_and_at_import() {
    let (r1, r2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    for dir in [r1.path(), r2.path()] {
        root_init(dir, &policies(true), &pass(), None, "Same Name Root CA").unwrap();
    }
    let r1_pem = std::fs::read(r1.path().join("ca/root.pem")).unwrap();
    let r2_pem = std::fs::read(r2.path().join("ca/root.pem")).unwrap();
    let e = issue_one(r1.path(), &r2_pem).unwrap_err().to_string();
    assert!(
        e.contains("is our own root's: two roots of one name cannot be told apart"),
        "{e}"
    );
    assert!(!r1.path().join("ca").join(TRUST_LIST_FILE).exists());

    // A list naming it anyway (signed by our root with its key, as a
    // trustca without this check would have) is refused at import.
    let now =
        OffsetDateTime::from_unix_timestamp(OffsetDateTime::now_utc().unix_timestamp()).unwrap();
    let own = der_of(&r1_pem, "CERTIFICATE", "r1").unwrap();
    let (_, own_cert) = X509Certificate::from_der(&own).unwrap();
    let list = TrustList {
        issuer: own_cert.subject().as_raw().to_vec(),
        sequence: 1,
        this_update: now,
        next_update: now + time::Duration::days(30),
        entries: vec![TrustListEntry {
            certificate: der_of(&r2_pem, "CERTIFICATE", "r2").unwrap(),
            sectors: vec![SectorName::new("railway").unwrap()],
        }],
    };
    let dir = r1.path().join("ca");
    let keys = CaKeys::new(
        Keystore::open(&dir, &pass()).unwrap(),
        None,
        &policies(true).pki,
    );
    let root = CaHierarchy::root_signer(&dir, &keys).unwrap();
    let tbs = list.tbs_der().unwrap();
    let sig = SigningKey::sign(root.issuer.key(), &tbs).unwrap();
    let der = TrustList::assemble(&tbs, ListSignatureAlgorithm::EcdsaSha256, &sig).unwrap();
    let pem = pem::encode(&pem::Pem::new(PEM_LABEL, der));
    let s = sector_dir(&r1_pem);
    let e = import(s.path(), &policies(true), pem.as_bytes())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("cannot be told apart") && e.contains("nothing changed"),
        "{e}"
    );
    assert!(!s.path().join("ca").join(TRUST_LIST_FILE).exists());
}
