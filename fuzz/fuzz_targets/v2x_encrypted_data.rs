//! IEEE 1609.2 EncryptedData as a vehicle downloads it: decode strictly,
//! re-encode identically, and try to open with a fixed key; never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use trustca_v2x::EncryptedData;

fuzz_target!(|data: &[u8]| {
    if let Ok(e) = EncryptedData::from_coer(data) {
        assert_eq!(e.to_coer(), data);
        let secret = [7u8; 32];
        if let Some(r) = e.recipients().first() {
            let _ = e.open(&secret, r.recipient_id, &trustca_v2x::P1_EMPTY);
        }
    }
});
