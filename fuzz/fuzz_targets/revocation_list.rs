//! Pseudonym revocation lists downloaded by vehicles.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(prl) = trustca_pseudonym::PseudonymRevocationList::from_signed_bytes(data) {
        assert_eq!(prl.to_signed_bytes(), data);
    }
});
