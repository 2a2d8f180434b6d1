//! TPMT_SIGNATURE as devices send it: decode, never panic, round-trip.
#![no_main]
use libfuzzer_sys::fuzz_target;
use trustca_attestation::signature::TpmSignature;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = TpmSignature::decode(data) {
        assert_eq!(s.encode(), data);
    }
});
