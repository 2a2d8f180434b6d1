//! Policy files are operator input: any text gets a value or a precise error.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = trustca_model::SectorPolicy::parse("fuzz.toml", text);
        let sectors = [trustca_model::SectorName::new("automotive").ok()].into_iter().flatten().collect::<Vec<_>>();
        let _ = trustca_model::TrustPolicy::parse(("c.toml", text), ("r.toml", text), &sectors);
    }
});
