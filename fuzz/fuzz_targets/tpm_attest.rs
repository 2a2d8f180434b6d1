//! TPMS_ATTEST as devices send it: decode, never panic, round-trip.
#![no_main]
use libfuzzer_sys::fuzz_target;
use trustca_attestation::attest::TpmAttest;

fuzz_target!(|data: &[u8]| {
    if let Ok(a) = TpmAttest::decode(data) {
        assert_eq!(a.encode(), data);
    }
});
