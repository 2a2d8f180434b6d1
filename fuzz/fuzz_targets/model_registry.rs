//! The model registry's parsers of untrusted text: firmware ranges as a
//! client sends them (`--firmware 1.0..1.9`) and stored model records as
//! a damaged store may hold them. Neither may panic; a parsed range must
//! print back to itself and contain its own bounds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trustca_model::{FirmwareRange, ModelRecord};

fuzz_target!(|data: &[u8]| {
    let _ = ModelRecord::from_bytes(data);
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(range) = FirmwareRange::parse(text)
    {
        let again = FirmwareRange::parse(&range.to_string()).expect("a printed range parses");
        assert_eq!(again, range);
        for bound in [&range.min, &range.max] {
            if !bound.is_empty() {
                assert!(range.contains(bound));
            }
        }
    }
});
