//! Trust assertion bodies and signed answer files from untrusted peers.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(a) = trustca_model::TrustAssertion::from_der(data) {
        assert_eq!(a.to_der().ok().as_deref(), Some(data));
    }
    if let Ok(s) = trustca_model::SignedTrustAssertion::from_der(data) {
        assert_eq!(s.to_der(), data);
    }
});
