//! Trust snapshot bodies and signed snapshot files, fetched from a
//! distribution point or passed around by untrusted peers.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The encoding is canonical: whatever decodes re-encodes to the input.
    if let Ok(s) = trustca_model::TrustSnapshot::from_der(data) {
        assert_eq!(s.to_der().ok().as_deref(), Some(data));
    }
    if let Ok(s) = trustca_model::SignedSnapshot::from_der(data) {
        assert_eq!(s.to_der(), data);
    }
});
