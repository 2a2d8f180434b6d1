//! Unit tests of the ETSI key ceremony: revocation through the lists,
//! install checks, key separation, base URLs.

#![allow(clippy::unwrap_used)]

use super::*;

fn pass() -> Passphrase {
    Passphrase::new(b"unit-test-passphrase".to_vec()).unwrap()
}

fn tickets() -> TicketProfile {
    TicketProfile::from_toml(include_str!("../../../policies/v2x-tickets-etsi.toml")).unwrap()
}

/// A root and an EA certified by it, in `base/root` and `base/ea`.
fn root_and_ea(base: &Path, now: i64) -> (PathBuf, PathBuf) {
    let (root, ea) = (base.join("root"), base.join("ea"));
    root_init(&root, "r", &pass(), now).unwrap();
    authority_init(&ea, EtsiRole::Ea, "ea-1", "http://ea.example:8480", &pass()).unwrap();
    let request = std::fs::read(ea.join(REQUEST_FILE)).unwrap();
    let cert = root_sign(&root, &pass(), &request, &tickets(), now).unwrap();
    let root_bytes = std::fs::read(root.join(ROOT_FILE)).unwrap();
    let files = Install {
        root: Some(&root_bytes),
        certificate: Some(cert.as_coer()),
        ..Install::default()
    };
    install(&ea, &files).unwrap();
    (root, ea)
}

#[test]
fn revocation_moves_an_authority_from_the_ctl_to_the_crl() {
    let base = tempfile::tempdir().unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let (root, ea) = root_and_ea(base.path(), now);
    let root_cert = EtsiDir::open(&root).unwrap().root().unwrap();
    let ctl = root_sign_ctl(&root, &pass(), None, 86_400, now).unwrap();
    assert_eq!(ctl.names, ["ea-1"]);
    assert_eq!(ctl.next_update, now + 86_400);
    let read = trust_lists::read_rca_ctl(&ctl.bytes, &root_cert).unwrap();
    assert_eq!(read.commands.len(), 1);
    let id = root_revoke(&root, "ea-1").unwrap();
    assert_eq!(
        id,
        EtsiDir::open(&ea)
            .unwrap()
            .certificate()
            .unwrap()
            .hashed_id8()
    );
    let crl = root_sign_crl(&root, &pass(), 86_400, now).unwrap();
    let read = trust_lists::read_crl(&crl.bytes, &root_cert).unwrap();
    assert_eq!(read.entries, [id]);
    assert!(
        root_sign_ctl(&root, &pass(), None, 86_400, now)
            .unwrap()
            .names
            .is_empty()
    );
    assert!(root_revoke(&root, "nobody").is_err());
}

#[test]
fn install_refuses_what_the_root_did_not_sign_and_writes_nothing() {
    let base = tempfile::tempdir().unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let (root, ea) = root_and_ea(base.path(), now);
    let other = base.path().join("other");
    root_init(&other, "o", &pass(), now).unwrap();
    let foreign = root_sign_crl(&other, &pass(), 86_400, now).unwrap();
    let dc = base.path().join("dc");
    dc_init(&dc, "dc").unwrap();
    let root_bytes = std::fs::read(root.join(ROOT_FILE)).unwrap();
    let files = Install {
        root: Some(&root_bytes),
        crl: Some(&foreign.bytes),
        ..Install::default()
    };
    let err = install(&dc, &files).unwrap_err().to_string();
    assert!(err.contains("--crl"), "{err}");
    assert!(!dc.join(ROOT_FILE).exists(), "nothing written");
    // Another root is refused once one is installed.
    let other_root = std::fs::read(other.join(ROOT_FILE)).unwrap();
    let files = Install {
        root: Some(&other_root),
        ..Install::default()
    };
    assert!(
        install(&ea, &files)
            .unwrap_err()
            .to_string()
            .contains("another root")
    );
    // The root's directory installs nothing; a DC has no certificate.
    assert!(install(&root, &Install::default()).is_err());
}

#[test]
fn a_directory_with_a_key_not_its_own_is_refused() {
    let base = tempfile::tempdir().unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let (root, ea) = root_and_ea(base.path(), now);
    EtsiDir::open(&ea).unwrap().check_own_keys_only().unwrap();
    std::fs::copy(root.join("keys/root.key"), ea.join("keys/root.key")).unwrap();
    let err = EtsiDir::open(&ea)
        .unwrap()
        .check_own_keys_only()
        .unwrap_err();
    assert!(err.to_string().contains("belongs offline"), "{err}");
    // init refuses a directory that holds anything.
    assert!(root_init(&ea, "again", &pass(), now).is_err());
}

#[test]
fn base_urls_are_scheme_and_host_only() {
    check_base_url("http://ea.example:8480").unwrap();
    check_base_url("https://ea.example/").unwrap();
    for bad in ["ea.example", "http://", "http://h/path", "ftp://h"] {
        assert!(check_base_url(bad).is_err(), "{bad}");
    }
}
