//! What the separated V2X authorities parse from each other: ticket
//! requests (pseudonym CA), linkage CRLs (relying parties), seed releases
//! and pre-linkage envelopes; never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = trustca_scms::TicketRequest::from_bytes(data);
    if let Ok(crl) = trustca_scms::LinkageCrl::from_bytes(data) {
        assert_eq!(crl.as_bytes(), data);
    }
    let _ = trustca_scms::EncryptedPlv::from_slice(data);
    let _ = trustca_pseudonym::SeedRelease::from_bytes(data);
});
