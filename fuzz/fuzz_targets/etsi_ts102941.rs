//! ETSI TS 102 941 messages as an EA or AA receives them after
//! decryption: `EtsiTs102941Data`, `InnerEcRequest` and ETSI signed data
//! decode strictly and re-encode identically, and a pre-shared-key
//! `EncryptedData` never panics when opened; never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use trustca_v2x::ts102941::{EtsiTs102941Data, InnerEcRequest};
use trustca_v2x::{EncryptedData, EtsiSignedData};

fuzz_target!(|data: &[u8]| {
    if let Ok(d) = EtsiTs102941Data::from_coer(data) {
        assert_eq!(d.to_coer(), data);
    }
    if let Ok(r) = InnerEcRequest::from_coer(data) {
        assert_eq!(r.to_coer(), data);
    }
    if let Ok(s) = EtsiSignedData::from_coer(data) {
        assert_eq!(s.as_coer(), data);
        let _ = s.data();
    }
    if let Ok(e) = EncryptedData::from_coer(data) {
        assert_eq!(e.to_coer(), data);
        let _ = e.open_with_psk(&[7u8; 16]);
    }
});
