//! The trust-level extension decoder must never panic, and whatever it
//! accepts must re-encode to the same bytes (one encoding per value).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(ext) = trustca_model::TrustLevelExtension::from_der(data) {
        assert_eq!(ext.to_der().ok().as_deref(), Some(data));
    }
});
