//! Systems of linked devices inside a signed trust snapshot (version 2), so
//! that an offline decision about a system member caps it exactly as the
//! online `Decide` does: the composition policy in force, and each system's
//! name, sector, members and links. Every member's live state is listed in
//! the snapshot's `devices` (whether or not it differs from its
//! certificate), because the cap depends on the other members' levels.
//!
//! The evaluation itself is `trustca-composition`'s; this module only
//! carries the data and keeps its encoding canonical (sorted, no
//! duplicates), like the rest of the snapshot.

use std::cmp::Ordering;

use crate::der::{self, Reader};
use crate::snapshot::{EmbeddedPolicy, TrustSnapshot, cmp_ci};
use crate::{DeviceIdentity, ModelError, SectorName};

/// At most this many systems, members per system and links per system.
pub const MAX_SYSTEM_ENTRIES: usize = 1_000_000;
const MAX_NAME: usize = 64;
const MAX_TEXT: usize = 256;

fn bad(m: impl Into<String>) -> ModelError {
    ModelError::InvalidSnapshot(m.into())
}

/// The systems a snapshot carries and the scheme they are evaluated by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotSystems {
    /// `composition.toml` in force.
    pub composition_policy: EmbeddedPolicy,
    /// The systems, sorted by name.
    pub systems: Vec<SnapshotSystem>,
}

/// One system of linked devices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotSystem {
    /// Its name.
    pub name: String,
    /// The sector whose terms its combined level is given in.
    pub sector: SectorName,
    /// Member URNs as enrolled, sorted case-insensitively.
    pub members: Vec<String>,
    /// Links, sorted by (from, to, operation), URNs case-insensitively.
    pub links: Vec<SnapshotLink>,
}

/// `from` may invoke `operation` on `to` (URNs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotLink {
    /// The invoking device.
    pub from: String,
    /// The device acted on.
    pub to: String,
    /// The operation (a name of the embedded cooperation policy).
    pub operation: String,
}

impl SnapshotLink {
    fn order(&self, other: &Self) -> Ordering {
        cmp_ci(&self.from, &other.from)
            .then_with(|| cmp_ci(&self.to, &other.to))
            .then_with(|| self.operation.cmp(&other.operation))
    }
}

impl SnapshotSystems {
    /// Sorts every list into the canonical order.
    pub fn sort(&mut self) {
        self.systems.sort_by(|a, b| a.name.cmp(&b.name));
        for s in &mut self.systems {
            s.members.sort_by(|a, b| cmp_ci(a, b));
            s.links.sort_by(SnapshotLink::order);
        }
    }

    /// Checks what the decoder enforces: bounds, canonical order, every
    /// member a device of a covered sector that the snapshot lists, every
    /// link between members.
    pub(crate) fn validate(&self, snapshot: &TrustSnapshot) -> Result<(), ModelError> {
        let p = &self.composition_policy;
        if p.version.is_empty() || p.version.len() > 64 {
            return Err(bad("composition policy version must be 1-64 bytes"));
        }
        if p.text.is_empty() || p.text.len() > crate::snapshot::MAX_POLICY_TEXT {
            return Err(bad("composition policy text is empty or too long"));
        }
        if self.systems.len() > MAX_SYSTEM_ENTRIES {
            return Err(bad("too many systems"));
        }
        crate::snapshot::strictly_sorted("systems", &self.systems, |a, b| a.name.cmp(&b.name))?;
        for s in &self.systems {
            let ok = !s.name.is_empty()
                && s.name.len() <= MAX_NAME
                && s.name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
            if !ok {
                return Err(bad("a system name is malformed"));
            }
            if s.members.len() > MAX_SYSTEM_ENTRIES || s.links.len() > MAX_SYSTEM_ENTRIES {
                return Err(bad(format!("system {}: too many entries", s.name)));
            }
            let what = format!("system {} members", s.name);
            crate::snapshot::strictly_sorted(&what, &s.members, |a, b| cmp_ci(a, b))?;
            for m in &s.members {
                if m.len() > MAX_TEXT {
                    return Err(bad(format!("{what}: identity too long")));
                }
                let id = DeviceIdentity::from_urn(m).map_err(|e| bad(format!("{what}: {e}")))?;
                if !snapshot.covers(&id.sector) || snapshot.device(m).is_none() {
                    return Err(bad(format!(
                        "{what}: {m} is not a listed device of this snapshot"
                    )));
                }
            }
            let what = format!("system {} links", s.name);
            crate::snapshot::strictly_sorted(&what, &s.links, SnapshotLink::order)?;
            let member = |u: &str| s.members.binary_search_by(|m| cmp_ci(m, u)).is_ok();
            for l in &s.links {
                if !member(&l.from) || !member(&l.to) || l.operation.is_empty() {
                    return Err(bad(format!("{what}: a link between non-members")));
                }
                if l.operation.len() > MAX_TEXT {
                    return Err(bad(format!("{what}: operation name too long")));
                }
            }
        }
        Ok(())
    }

    /// Appends `[1] SEQUENCE { compositionPolicy, systems }` contents.
    pub(crate) fn encode(&self, body: &mut Vec<u8>) {
        let mut inner = Vec::new();
        let mut policy = Vec::new();
        der::write_tlv(
            &mut policy,
            der::TAG_UTF8,
            self.composition_policy.version.as_bytes(),
        );
        der::write_tlv(
            &mut policy,
            der::TAG_UTF8,
            self.composition_policy.text.as_bytes(),
        );
        der::write_tlv(&mut inner, der::TAG_SEQUENCE, &policy);
        let mut list = Vec::new();
        for s in &self.systems {
            let mut entry = Vec::new();
            der::write_tlv(&mut entry, der::TAG_UTF8, s.name.as_bytes());
            der::write_tlv(&mut entry, der::TAG_UTF8, s.sector.as_str().as_bytes());
            let mut members = Vec::new();
            for m in &s.members {
                der::write_tlv(&mut members, der::TAG_UTF8, m.as_bytes());
            }
            der::write_tlv(&mut entry, der::TAG_SEQUENCE, &members);
            let mut links = Vec::new();
            for l in &s.links {
                let mut link = Vec::new();
                der::write_tlv(&mut link, der::TAG_UTF8, l.from.as_bytes());
                der::write_tlv(&mut link, der::TAG_UTF8, l.to.as_bytes());
                der::write_tlv(&mut link, der::TAG_UTF8, l.operation.as_bytes());
                der::write_tlv(&mut links, der::TAG_SEQUENCE, &link);
            }
            der::write_tlv(&mut entry, der::TAG_SEQUENCE, &links);
            der::write_tlv(&mut list, der::TAG_SEQUENCE, &entry);
        }
        der::write_tlv(&mut inner, der::TAG_SEQUENCE, &list);
        der::write_tlv(body, der::TAG_CONTEXT_1_CONSTRUCTED, &inner);
    }

    /// Reads what [`SnapshotSystems::encode`] wrote (validated by the
    /// snapshot's own check afterwards).
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, ModelError> {
        let mut inner = Reader::new(r.read(der::TAG_CONTEXT_1_CONSTRUCTED).map_err(bad)?);
        let mut p = Reader::new(inner.read(der::TAG_SEQUENCE).map_err(bad)?);
        let composition_policy = EmbeddedPolicy {
            version: p.read_utf8().map_err(bad)?.to_owned(),
            text: p.read_utf8().map_err(bad)?.to_owned(),
        };
        if !p.is_empty() {
            return Err(bad("trailing bytes in the composition policy"));
        }
        let mut list = Reader::new(inner.read(der::TAG_SEQUENCE).map_err(bad)?);
        let mut systems = Vec::new();
        while !list.is_empty() {
            if systems.len() >= MAX_SYSTEM_ENTRIES {
                return Err(bad("too many systems"));
            }
            systems.push(read_system(&mut list)?);
        }
        if !inner.is_empty() {
            return Err(bad("trailing bytes after the systems"));
        }
        Ok(Self {
            composition_policy,
            systems,
        })
    }
}

fn read_system(list: &mut Reader<'_>) -> Result<SnapshotSystem, ModelError> {
    let mut e = Reader::new(list.read(der::TAG_SEQUENCE).map_err(bad)?);
    let name = e.read_utf8().map_err(bad)?.to_owned();
    let sector = SectorName::new(e.read_utf8().map_err(bad)?)
        .map_err(|x| bad(format!("system {name}: {x}")))?;
    let mut members = Vec::new();
    let mut m = Reader::new(e.read(der::TAG_SEQUENCE).map_err(bad)?);
    while !m.is_empty() {
        if members.len() >= MAX_SYSTEM_ENTRIES {
            return Err(bad("too many members"));
        }
        members.push(m.read_utf8().map_err(bad)?.to_owned());
    }
    let mut links = Vec::new();
    let mut l = Reader::new(e.read(der::TAG_SEQUENCE).map_err(bad)?);
    while !l.is_empty() {
        if links.len() >= MAX_SYSTEM_ENTRIES {
            return Err(bad("too many links"));
        }
        let mut one = Reader::new(l.read(der::TAG_SEQUENCE).map_err(bad)?);
        let link = SnapshotLink {
            from: one.read_utf8().map_err(bad)?.to_owned(),
            to: one.read_utf8().map_err(bad)?.to_owned(),
            operation: one.read_utf8().map_err(bad)?.to_owned(),
        };
        if !one.is_empty() {
            return Err(bad("trailing bytes in a link"));
        }
        links.push(link);
    }
    if !e.is_empty() {
        return Err(bad("trailing bytes in a system"));
    }
    Ok(SnapshotSystem {
        name,
        sector,
        members,
        links,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::snapshot::DeviceState;
    use crate::{TrustLevel, TrustStatus};

    const HUB: &str = "urn:trustca:hems:Acme:HB-1:SN7";
    const PLUG: &str = "urn:trustca:hems:Acme:Plug:P1";

    pub(crate) fn with_system() -> TrustSnapshot {
        let mut s = crate::snapshot::tests::sample();
        s.devices.push(DeviceState {
            identity: PLUG.into(),
            level: TrustLevel::new(2).unwrap(),
            status: TrustStatus::Active,
            record_version: 1,
        });
        s.systems = Some(SnapshotSystems {
            composition_policy: EmbeddedPolicy {
                version: "k1".into(),
                text: "version = \"k1\"\n".into(),
            },
            systems: vec![SnapshotSystem {
                name: "house-1".into(),
                sector: SectorName::new("hems").unwrap(),
                members: vec![PLUG.into(), HUB.into()],
                links: vec![SnapshotLink {
                    from: PLUG.into(),
                    to: HUB.into(),
                    operation: "remote-control".into(),
                }],
            }],
        });
        s.sort();
        s
    }

    #[test]
    fn systems_make_version_2_and_round_trip_canonically() {
        let s = with_system();
        let der = s.to_der().unwrap();
        assert_eq!(der[4..7], [0x02, 0x01, 0x02], "version 2");
        let back = TrustSnapshot::from_der(&der).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.to_der().unwrap(), der);
        for cut in (0..der.len()).step_by(7) {
            assert!(TrustSnapshot::from_der(&der[..cut]).is_err());
        }
        // Without systems it is version 1, as before.
        let mut v1 = s.clone();
        v1.systems = None;
        let der1 = v1.to_der().unwrap();
        assert_eq!(der1[4..7], [0x02, 0x01, 0x01]);
        // A version 2 body without its systems does not decode.
        let mut v2_without = der1.clone();
        v2_without[6] = 2;
        assert!(TrustSnapshot::from_der(&v2_without).is_err());
    }

    #[test]
    fn members_must_be_listed_and_links_between_members() {
        let mut s = with_system();
        s.devices.retain(|d| d.identity != PLUG);
        assert!(
            s.to_der()
                .unwrap_err()
                .to_string()
                .contains("not a listed device")
        );
        let mut s = with_system();
        if let Some(sys) = s.systems.as_mut() {
            sys.systems[0].links[0].to = "urn:trustca:hems:Acme:Other:O1".into();
        }
        assert!(s.to_der().unwrap_err().to_string().contains("non-members"));
        let mut s = with_system();
        if let Some(sys) = s.systems.as_mut() {
            sys.systems[0].members.reverse();
        }
        assert!(s.to_der().unwrap_err().to_string().contains("order"));
    }
}
