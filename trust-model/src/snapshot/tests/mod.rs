//! Unit and property tests of the snapshot codec, signature and offline
//! decisions, by subject: the codec and its rejections (`codec`), random
//! bodies (`properties`), the signed file (`signed`) and offline decisions
//! (`offline`). Here: the sample snapshot (the published vector) and the
//! fixtures every part shares; `pki` makes the certificates.

use super::*;
use time::macros::datetime;

mod codec;
mod offline;
pub(crate) mod pki;
mod properties;
mod signed;

pub(crate) const COOP: &str = r#"version = "c1"
depths = ["none", "observe", "exchange", "control"]
[operations]
read-telemetry = "observe"
remote-control = "control"
[[rule]]
name = "hems-local"
caller = "hems"
peer = "hems"
min_levels = { observe = [2, 2], exchange = [3, 3], control = [4, 4] }
"#;
const RECOG: &str = "version = \"r1\"\n";

fn sn(s: &str) -> SectorName {
    SectorName::new(s).unwrap()
}

fn lv(n: i64) -> TrustLevel {
    TrustLevel::new(n).unwrap()
}

/// The embedded cooperation (c1) and recognition (r1) policies of every
/// test snapshot.
fn policies() -> (EmbeddedPolicy, EmbeddedPolicy) {
    (
        EmbeddedPolicy {
            version: "c1".into(),
            text: COOP.into(),
        },
        EmbeddedPolicy {
            version: "r1".into(),
            text: RECOG.into(),
        },
    )
}

/// The snapshot of the published vector (testdata/trust-snapshot).
pub(crate) fn sample() -> TrustSnapshot {
    TrustSnapshot {
        serial: 7,
        scope: Some(sn("hems")),
        issued_at: datetime!(2026-11-23 10:00 UTC),
        next_update: datetime!(2026-11-24 10:00 UTC),
        sectors: vec![sn("automotive"), sn("hems")],
        cooperation_policy: policies().0,
        recognition_policy: policies().1,
        models: vec![
            SnapshotModel {
                sector: sn("hems"),
                manufacturer: "Acme".into(),
                model: "HB-1".into(),
                firmware: FirmwareRange::parse("1.0..1.4.9").unwrap(),
                level: lv(4),
                status: ModelStatus::Certified,
                record_version: 2,
                policy_version: "2026.11-1".into(),
            },
            SnapshotModel {
                sector: sn("hems"),
                manufacturer: "Acme".into(),
                model: "HB-1".into(),
                firmware: FirmwareRange::parse("1.5..").unwrap(),
                level: lv(3),
                status: ModelStatus::Provisional,
                record_version: 1,
                policy_version: "2026.11-1".into(),
            },
        ],
        devices: vec![DeviceState {
            identity: "urn:trustca:hems:Acme:HB-1:SN7".into(),
            level: lv(4),
            status: TrustStatus::Suspended,
            record_version: 3,
        }],
        revoked_certificates: vec![(sn("hems"), vec![0x00, 0x80, 0x01])],
        blocked_keys: vec![[0xab; 32]],
        systems: None,
        trust_list: None,
        foreign_crls: Vec::new(),
    }
}

/// The time the signed-snapshot and offline-decision tests run at.
const NOW: OffsetDateTime = datetime!(2026-11-23 12:00 UTC);
