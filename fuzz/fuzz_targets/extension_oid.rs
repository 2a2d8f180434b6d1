//! The trust-level OID setting (`pki.toml`, `--extension-oid`): parsing
//! never panics, and whatever it accepts prints back to the same text and
//! encodes to DER content that re-decodes to the same arcs.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(oid) = trustca_model::extension::ExtensionOid::parse(text) {
        assert_eq!(oid.to_string(), text);
        assert!(oid.arcs().iter().all(|a| *a < 1 << 31));
        let mut arcs = Vec::new();
        let mut v: u64 = 0;
        for b in oid.der_content() {
            v = (v << 7) | u64::from(b & 0x7f);
            if b & 0x80 == 0 {
                if arcs.is_empty() {
                    let first = (v / 40).min(2);
                    arcs.push(first);
                    arcs.push(v - 40 * first);
                } else {
                    arcs.push(v);
                }
                v = 0;
            }
        }
        assert_eq!(arcs, oid.arcs());
    }
});
