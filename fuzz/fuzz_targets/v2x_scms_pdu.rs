//! What the IEEE 1609.2.1 interfaces parse from vehicles and authorities:
//! `Ieee1609Dot2Data` frames, signed SPDUs, signed certificate requests,
//! `ScmsPdu` messages and certificate sequences; never panic, and what
//! decodes re-encodes to the input.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = trustca_v2x::decode_data(data);
    if let Ok(s) = trustca_v2x::SignedSpdu::from_coer(data) {
        assert_eq!(s.as_coer(), data);
    }
    let _ = trustca_v2x::SignedCertificateRequest::from_coer(data, |b| {
        Ok(trustca_v2x::ScmsPdu::decode_prefix(b)?.1)
    });
    if let Ok(pdu) = trustca_v2x::ScmsPdu::from_coer(data) {
        let _ = pdu.to_coer();
    }
    if let Ok(certs) = trustca_v2x::certificates_from_coer(data) {
        assert_eq!(trustca_v2x::certificates_to_coer(&certs), data);
    }
});
