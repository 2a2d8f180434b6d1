//! Signed tree heads read back from storage or received from a log.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = trustca_audit::SignedTreeHead::from_bytes(data) {
        assert_eq!(h.to_bytes(), data);
    }
    let _ = trustca_audit::MerkleFrontier::from_bytes(data);
});
