//! A key's or an AK's TPM2B_PUBLIC as devices send it: decode, never panic,
//! and what decodes re-encodes to the same bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use trustca_attestation::public::TpmPublic;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = TpmPublic::from_tpm2b(data) {
        assert_eq!(p.encode(), data[2..]);
        let _ = p.name();
        let _ = p.ec_point();
    }
});
