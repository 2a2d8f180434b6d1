//! A system: a named set of enrolled devices and the links between them,
//! kept acyclic and within the policy's size limits by every change.
//!
//! Members are keyed by identity key (lower-case `sector/manufacturer/
//! model/serial`), so two spellings of one device are one member; the URN
//! as enrolled is kept for answers. Members and links are ordered sets, so
//! a system's evaluation does not depend on the order of changes.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};
use trustca_model::{DeviceIdentity, SectorName};

use crate::{CompositionError, CompositionPolicy};

/// A member device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Identity key (lower-case).
    pub key: String,
    /// URN as enrolled.
    pub urn: String,
    /// Its sector.
    pub sector: SectorName,
}

/// `from` may invoke `operation` on `to` (identity keys).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Link {
    /// The invoking device.
    pub from: String,
    /// The device acted on.
    pub to: String,
    /// The operation, a name of `cooperation.toml`.
    pub operation: String,
}

impl std::fmt::Display for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} -{}-> {}", self.from, self.operation, self.to)
    }
}

/// A system as stored: plain data, checked again when read
/// ([`System::from_record`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemRecord {
    /// Name.
    pub name: String,
    /// The sector whose terms the combined level is given in.
    pub sector: String,
    /// Member URNs as enrolled.
    pub members: Vec<String>,
    /// Links by identity key.
    pub links: Vec<Link>,
    /// Incremented by every change.
    pub version: u64,
}

/// A named set of devices and links, acyclic and within the limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct System {
    name: String,
    sector: SectorName,
    members: BTreeMap<String, Member>,
    links: BTreeSet<Link>,
    version: u64,
}

fn check_name(name: &str) -> Result<(), CompositionError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(CompositionError::InvalidName(
            name.chars().take(80).collect(),
        ))
    }
}

impl System {
    /// An empty system named `name`, whose combined level is given in
    /// `sector`'s terms.
    pub fn new(name: &str, sector: SectorName) -> Result<Self, CompositionError> {
        check_name(name)?;
        Ok(Self {
            name: name.to_owned(),
            sector,
            members: BTreeMap::new(),
            links: BTreeSet::new(),
            version: 0,
        })
    }

    /// Rebuilds a stored system, checking it as if every member and link
    /// were added again.
    pub fn from_record(
        record: &SystemRecord,
        policy: &CompositionPolicy,
    ) -> Result<Self, CompositionError> {
        let inconsistent = |e: CompositionError| CompositionError::Inconsistent {
            system: record.name.clone(),
            reason: e.to_string(),
        };
        let mut s = Self::new(&record.name, SectorName::new(&record.sector)?)?;
        for urn in &record.members {
            let identity = DeviceIdentity::from_urn(urn).map_err(|e| inconsistent(e.into()))?;
            // A stored system is read whatever today's limits say: a lower
            // limit refuses growth, never the systems already there.
            s.insert_member(&identity, urn);
        }
        for link in &record.links {
            s.check_link(link, policy, false).map_err(inconsistent)?;
            s.links.insert(link.clone());
        }
        s.version = record.version;
        Ok(s)
    }

    /// The stored form.
    pub fn to_record(&self) -> SystemRecord {
        SystemRecord {
            name: self.name.clone(),
            sector: self.sector.to_string(),
            members: self.members.values().map(|m| m.urn.clone()).collect(),
            links: self.links.iter().cloned().collect(),
            version: self.version,
        }
    }

    /// Name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The sector whose terms the combined level is given in.
    pub fn sector(&self) -> &SectorName {
        &self.sector
    }

    /// Version, incremented by the registry with every stored change.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Sets the version (the registry's, when it stores a change).
    pub fn set_version(&mut self, version: u64) {
        self.version = version;
    }

    /// Members by identity key.
    pub fn members(&self) -> &BTreeMap<String, Member> {
        &self.members
    }

    /// Links, ordered.
    pub fn links(&self) -> &BTreeSet<Link> {
        &self.links
    }

    /// Whether the device with identity key `key` is a member.
    pub fn is_member(&self, key: &str) -> bool {
        self.members.contains_key(key)
    }

    fn insert_member(&mut self, identity: &DeviceIdentity, urn: &str) -> bool {
        let key = identity.key();
        if self.members.contains_key(&key) {
            return false;
        }
        self.members.insert(
            key.clone(),
            Member {
                key,
                urn: urn.to_owned(),
                sector: identity.sector.clone(),
            },
        );
        true
    }

    /// Adds a device (its URN as enrolled); false if it already is a member.
    pub fn add_member(
        &mut self,
        urn: &str,
        policy: &CompositionPolicy,
    ) -> Result<bool, CompositionError> {
        let identity = DeviceIdentity::from_urn(urn)?;
        if self.members.contains_key(&identity.key()) {
            return Ok(false);
        }
        if self.members.len() >= policy.max_devices {
            return Err(CompositionError::TooLarge {
                what: "devices",
                limit: policy.max_devices,
            });
        }
        Ok(self.insert_member(&identity, urn))
    }

    /// Adds a link between two members: not to itself, with a known
    /// operation, not twice, within the link limit, and closing no cycle.
    pub fn add_link(
        &mut self,
        link: Link,
        policy: &CompositionPolicy,
    ) -> Result<(), CompositionError> {
        self.check_link(&link, policy, true)?;
        if self.links.len() >= policy.max_links {
            return Err(CompositionError::TooLarge {
                what: "links",
                limit: policy.max_links,
            });
        }
        self.links.insert(link);
        Ok(())
    }

    fn check_link(
        &self,
        link: &Link,
        policy: &CompositionPolicy,
        operation_must_be_known: bool,
    ) -> Result<(), CompositionError> {
        for end in [&link.from, &link.to] {
            if !self.members.contains_key(end) {
                return Err(CompositionError::NotAMember {
                    system: self.name.clone(),
                    device: end.clone(),
                });
            }
        }
        if link.from == link.to {
            return Err(CompositionError::SelfLink(link.from.clone()));
        }
        if operation_must_be_known && policy.trust().operation_depth(&link.operation).is_none() {
            return Err(CompositionError::UnknownOperation(
                link.operation.chars().take(80).collect(),
            ));
        }
        if self.links.contains(link) {
            return Err(CompositionError::DuplicateLink {
                system: self.name.clone(),
                link: link.to_string(),
            });
        }
        if let Some(mut back) = self.path(&link.to, &link.from) {
            back.insert(0, link.from.clone());
            return Err(CompositionError::Cycle(back));
        }
        Ok(())
    }

    /// Removes a link.
    pub fn remove_link(&mut self, link: &Link) -> Result<(), CompositionError> {
        if self.links.remove(link) {
            Ok(())
        } else {
            Err(CompositionError::NoSuchLink {
                system: self.name.clone(),
                link: link.to_string(),
            })
        }
    }

    /// A path `from → … → to` along links (identity keys), breadth first,
    /// or None.
    fn path(&self, from: &str, to: &str) -> Option<Vec<String>> {
        let mut previous: BTreeMap<&str, &str> = BTreeMap::new();
        let mut queue = VecDeque::from([from]);
        let mut seen = BTreeSet::from([from]);
        while let Some(at) = queue.pop_front() {
            if at == to {
                let mut path = vec![to.to_owned()];
                let mut cur = to;
                while let Some(p) = previous.get(cur) {
                    path.push((*p).to_owned());
                    cur = p;
                }
                path.reverse();
                return Some(path);
            }
            for l in self.links_from(at) {
                if seen.insert(&l.to) {
                    previous.insert(&l.to, at);
                    queue.push_back(&l.to);
                }
            }
        }
        None
    }

    /// Links leaving `key` (a range of the ordered set: links sort by
    /// `from` first).
    pub fn links_from<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a Link> + 'a {
        let start = Link {
            from: key.to_owned(),
            to: String::new(),
            operation: String::new(),
        };
        self.links.range(start..).take_while(move |l| l.from == key)
    }

    /// The part of the system that can affect `key`: the members that reach
    /// it in at most `max_hops` links, and the links among them. `key`'s
    /// effective level is the same in it as in the whole system, for a
    /// fraction of the work.
    pub fn upstream_of(&self, key: &str, max_hops: usize) -> System {
        let mut into: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for l in &self.links {
            into.entry(&l.to).or_default().push(&l.from);
        }
        let mut keep: BTreeSet<&str> = BTreeSet::new();
        let mut frontier = vec![key];
        if self.members.contains_key(key) {
            keep.insert(key);
        }
        for _ in 0..max_hops {
            let mut next = Vec::new();
            for at in frontier {
                for from in into.get(at).into_iter().flatten() {
                    if keep.insert(from) {
                        next.push(*from);
                    }
                }
            }
            if next.is_empty() {
                break;
            }
            frontier = next;
        }
        System {
            name: self.name.clone(),
            sector: self.sector.clone(),
            members: self
                .members
                .iter()
                .filter(|(k, _)| keep.contains(k.as_str()))
                .map(|(k, m)| (k.clone(), m.clone()))
                .collect(),
            links: self
                .links
                .iter()
                .filter(|l| keep.contains(l.from.as_str()) && keep.contains(l.to.as_str()))
                .cloned()
                .collect(),
            version: self.version,
        }
    }
}
