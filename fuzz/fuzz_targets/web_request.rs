//! What a web client controls (trustca-web): label ids, query strings and
//! percent-encoded path segments, and what ends up escaped on a page.
#![no_main]
use libfuzzer_sys::fuzz_target;
use trustca_web::html::esc;
use trustca_web::label_id::LabelIds;
use trustca_web::respond::{percent_decode, query_pairs};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let ids = LabelIds::from_secret(&[7; 32]);
    if let Some(identity) = ids.open(text) {
        // Only ids this key made open, and they are canonical.
        assert_eq!(ids.id_for(&identity), text);
    }
    for (k, v) in query_pairs(Some(text)) {
        assert!(!esc(&k).contains('<') && !esc(&v).contains('"'));
    }
    if let Some(decoded) = percent_decode(text, false) {
        assert!(!esc(&decoded).contains('>'));
    }
});
