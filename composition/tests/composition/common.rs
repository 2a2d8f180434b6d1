//! The shipped policies and small helpers shared by the composition tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;

use trustca_composition::{CompositionPolicy, LiveLevel, System};
use trustca_model::{DeviceIdentity, SectorName, TrustLevel, TrustPolicy, TrustStatus};

pub fn sector(name: &str) -> SectorName {
    SectorName::new(name).unwrap_or_else(|e| panic!("{e}"))
}

pub fn trust_policy() -> Arc<TrustPolicy> {
    let sectors = [sector("automotive"), sector("hems"), sector("healthcare")];
    Arc::new(
        TrustPolicy::parse(
            (
                "cooperation.toml",
                include_str!("../../../policies/cooperation.toml"),
            ),
            (
                "recognition.toml",
                include_str!("../../../policies/recognition.toml"),
            ),
            &sectors,
        )
        .unwrap_or_else(|e| panic!("{e}")),
    )
}

pub fn policy() -> CompositionPolicy {
    CompositionPolicy::parse(
        "composition.toml",
        include_str!("../../../policies/composition.toml"),
        trust_policy(),
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

/// `urn:trustca:<sector>:Acme:<model>:<serial>`.
pub fn urn(sector: &str, model: &str, serial: &str) -> String {
    format!("urn:trustca:{sector}:Acme:{model}:{serial}")
}

pub fn key(urn: &str) -> String {
    DeviceIdentity::from_urn(urn)
        .unwrap_or_else(|e| panic!("{e}"))
        .key()
}

pub fn level(l: u8) -> TrustLevel {
    TrustLevel::new(i64::from(l)).unwrap_or_else(|e| panic!("{e}"))
}

pub fn active(l: u8) -> LiveLevel {
    LiveLevel {
        level: level(l),
        status: TrustStatus::Active,
    }
}

pub fn levels(entries: &[(&str, LiveLevel)]) -> BTreeMap<String, LiveLevel> {
    entries.iter().map(|(u, l)| (key(u), *l)).collect()
}

pub fn system(name: &str, home: &str, members: &[&str]) -> System {
    let p = policy();
    let mut s = System::new(name, sector(home)).unwrap_or_else(|e| panic!("{e}"));
    for m in members {
        s.add_member(m, &p).unwrap_or_else(|e| panic!("{e}"));
    }
    s
}
