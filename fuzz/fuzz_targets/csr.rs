//! PKCS#10 requests as sent by manufacturers: parse and verify, never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = trustca_ca::verify_csr(data);
});
