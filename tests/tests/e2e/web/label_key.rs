//! The label id key at rest: in the CA's encrypted keystore, never on disk
//! in the clear; a plaintext key of an earlier version is moved in (so
//! printed labels keep working) and a conflicting one refuses the start.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::kit::*;
use crate::common::*;

/// The path of a printed label's URL (the port changes with every start).
fn path_of(url: &str) -> String {
    let rest = url.strip_prefix("https://").unwrap();
    rest[rest.find('/').unwrap()..].to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_label_id_key_is_encrypted_at_rest_and_printed_ids_survive_restarts() {
    let ca = TestCa::init();
    // A data directory from an earlier version: the key in the clear.
    let legacy_key = [0x5au8; 32];
    let web_dir = ca.data().join("web");
    std::fs::create_dir_all(&web_dir).unwrap();
    std::fs::write(web_dir.join("label-id.key"), legacy_key).unwrap();
    let mut w = world_in(ca, "hems", "hub", "SN-0001", "2.1.0", hems_lv5()).await;

    // Moved into the keystore: the plaintext file is gone, and the
    // keystore's file is an encrypted PEM that holds the key in no form.
    assert!(!web_dir.join("label-id.key").exists());
    let sealed = std::fs::read(w.ca.data().join("ca/web-label-id.key")).unwrap();
    let text = String::from_utf8(sealed.clone()).unwrap();
    assert!(
        text.starts_with("-----BEGIN TRUSTCA ENCRYPTED PRIVATE KEY-----"),
        "{text}"
    );
    assert!(!sealed.windows(32).any(|w| w == legacy_key));
    let der = pem::parse(&text).unwrap().into_contents();
    assert!(!der.windows(32).any(|w| w == legacy_key));
    assert!(!text.to_ascii_lowercase().contains(&hex::encode(legacy_key)));

    let (url, _) = label_url(&w);
    let printed = path_of(&url);
    let resolves = |w: &World| {
        let (code, _, _) = w
            .curl
            .get(&format!("https://{}{printed}", w.web), None, &[]);
        code
    };
    assert_eq!(resolves(&w), 200);

    // A restart opens the key from the keystore: the printed id resolves.
    w.ca.stop().await;
    w.web = start_with_web(&mut w.ca).await;
    assert_eq!(resolves(&w), 200);
    assert_eq!(path_of(&label_url(&w).0), printed);

    // The id was made with the migrated key: a directory that has only the
    // plaintext key again gives the same id.
    w.ca.stop().await;
    std::fs::remove_file(w.ca.data().join("ca/web-label-id.key")).unwrap();
    std::fs::write(web_dir.join("label-id.key"), legacy_key).unwrap();
    w.web = start_with_web(&mut w.ca).await;
    assert_eq!(path_of(&label_url(&w).0), printed);

    // A plaintext key that differs from the keystore's refuses the start
    // and names the file; nothing is removed.
    w.ca.stop().await;
    std::fs::write(web_dir.join("label-id.key"), [0x11u8; 32]).unwrap();
    let Err(err) = try_start_with_web(&w.ca).await else {
        panic!("a conflicting plaintext key must refuse the start");
    };
    assert!(err.to_string().contains("label-id.key"), "{err}");
    assert!(err.to_string().contains("differ"), "{err}");
    assert!(web_dir.join("label-id.key").exists());
    std::fs::remove_file(web_dir.join("label-id.key")).unwrap();
    w.web = start_with_web(&mut w.ca).await;
    assert_eq!(resolves(&w), 200);
}
