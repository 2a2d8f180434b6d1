//! IEEE 1609.2 certificates as received from the air or a file, in both
//! profiles: decode strictly, re-encode identically, never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use trustca_v2x::{CertProfile, Certificate};

fuzz_target!(|data: &[u8]| {
    for profile in [CertProfile::EtsiTs103097, CertProfile::Ieee1609Dot2] {
        if let Ok(c) = Certificate::from_coer_in(profile, data) {
            assert_eq!(c.as_coer(), data);
        }
    }
});
