//! The canonical DER body of a trust snapshot: sorting, encoding and the
//! strict decoder (`docs/trust-snapshot.asn1`).

use super::*;

impl TrustSnapshot {
    /// Sorts every list into the canonical order [`TrustSnapshot::to_der`]
    /// requires. Duplicates are kept (and then refused by `to_der`): two
    /// states for one device are a bug to report, not to hide.
    pub fn sort(&mut self) {
        self.sectors.sort();
        self.models.sort_by(SnapshotModel::order);
        self.devices
            .sort_by(|a, b| cmp_ci(&a.identity, &b.identity));
        self.revoked_certificates.sort();
        self.blocked_keys.sort();
        if let Some(s) = &mut self.systems {
            s.sort();
        }
    }

    /// Whether the snapshot speaks for `sector`: it is a known sector and
    /// within the scope.
    pub(crate) fn covers(&self, sector: &SectorName) -> bool {
        self.sectors.binary_search(sector).is_ok()
            && self.scope.as_ref().is_none_or(|s| s == sector)
    }

    /// Checks every invariant the decoder enforces, so nothing is encoded
    /// that would not decode: bounds, names, canonical order, no
    /// duplicates, every entry within the scope.
    pub fn validate(&self) -> Result<(), ModelError> {
        for (what, t) in [
            ("issued_at", self.issued_at),
            ("next_update", self.next_update),
        ] {
            if !(0..=9999).contains(&t.to_offset(time::UtcOffset::UTC).year()) {
                return Err(bad(format!("{what} year is out of range 0-9999")));
            }
        }
        if self.next_update < self.issued_at {
            return Err(bad("next_update is before issued_at"));
        }
        if self.sectors.is_empty() || self.sectors.len() > MAX_SECTORS {
            return Err(bad(format!("sectors must list 1-{MAX_SECTORS} names")));
        }
        strictly_sorted("sectors", &self.sectors, |a, b| a.cmp(b))?;
        if let Some(scope) = &self.scope
            && self.sectors.binary_search(scope).is_err()
        {
            return Err(bad(format!("scope {scope} is not among the sectors")));
        }
        for (what, p) in [
            ("cooperation policy", &self.cooperation_policy),
            ("recognition policy", &self.recognition_policy),
        ] {
            check_version_text(what, &p.version)?;
            if p.text.is_empty() || p.text.len() > MAX_POLICY_TEXT {
                return Err(bad(format!(
                    "{what} text must be 1-{MAX_POLICY_TEXT} bytes"
                )));
            }
        }
        for (what, n) in [
            ("models", self.models.len()),
            ("devices", self.devices.len()),
            ("revoked certificates", self.revoked_certificates.len()),
            ("blocked keys", self.blocked_keys.len()),
        ] {
            if n > MAX_ENTRIES {
                return Err(bad(format!(
                    "{what}: {n} entries, at most {MAX_ENTRIES} allowed"
                )));
            }
        }
        let outside = |what: &str, i: usize, sector: &SectorName| {
            bad(format!(
                "{what} {i}: sector {sector} is not covered by this snapshot (unknown or outside its scope)"
            ))
        };
        for (i, m) in self.models.iter().enumerate() {
            if !self.covers(&m.sector) {
                return Err(outside("model", i, &m.sector));
            }
            // The registry's own rules for names and ranges.
            ModelKey::new(
                m.sector.clone(),
                &m.manufacturer,
                &m.model,
                m.firmware.clone(),
            )
            .map_err(|e| bad(format!("model {i}: {e}")))?;
            FirmwareRange::parse(&m.firmware.to_string())
                .ok()
                .filter(|r| r == &m.firmware)
                .ok_or_else(|| bad(format!("model {i}: firmware range is not canonical")))?;
            check_version_text(&format!("model {i} policy"), &m.policy_version)?;
        }
        strictly_sorted("models", &self.models, SnapshotModel::order)?;
        for (i, d) in self.devices.iter().enumerate() {
            if d.identity.len() > MAX_IDENTITY {
                return Err(bad(format!(
                    "device {i}: identity longer than {MAX_IDENTITY} bytes"
                )));
            }
            let id = DeviceIdentity::from_urn(&d.identity)
                .map_err(|e| bad(format!("device {i}: {e}")))?;
            if !self.covers(&id.sector) {
                return Err(outside("device", i, &id.sector));
            }
        }
        strictly_sorted("devices", &self.devices, |a, b| {
            cmp_ci(&a.identity, &b.identity)
        })?;
        for (i, (sector, serial)) in self.revoked_certificates.iter().enumerate() {
            if !self.covers(sector) {
                return Err(outside("revoked certificate", i, sector));
            }
            if !valid_serial(serial) {
                return Err(bad(format!(
                    "revoked certificate {i}: serial must be 1-{MAX_SERIAL} octets of a minimal non-negative INTEGER"
                )));
            }
        }
        strictly_sorted(
            "revoked certificates",
            &self.revoked_certificates,
            |a, b| a.cmp(b),
        )?;
        strictly_sorted("blocked keys", &self.blocked_keys, |a, b| a.cmp(b))?;
        if let Some(s) = &self.systems {
            s.validate(self)?;
        }
        if let Some(l) = &self.trust_list {
            crate::snapshot_trust_list::validate(l)?;
        }
        crate::snapshot_trust_list::validate_crls(self)?;
        Ok(())
    }

    /// Canonical DER of the body (`docs/trust-snapshot.asn1`). Fails when
    /// [`TrustSnapshot::validate`] does (call [`TrustSnapshot::sort`] first).
    pub fn to_der(&self) -> Result<Vec<u8>, ModelError> {
        self.validate()?;
        let mut body = Vec::with_capacity(
            256 + self.cooperation_policy.text.len()
                + self.recognition_policy.text.len()
                + self.models.len() * 96
                + self.devices.len() * 64
                + self.revoked_certificates.len() * 32
                + self.blocked_keys.len() * 34,
        );
        let version = if self.trust_list.is_some() {
            VERSION_TRUST_LIST
        } else if self.systems.is_some() {
            VERSION_SYSTEMS
        } else {
            VERSION
        };
        der::write_small_uint(&mut body, der::TAG_INTEGER, version);
        der::write_small_uint(&mut body, der::TAG_INTEGER, self.serial);
        if let Some(scope) = &self.scope {
            der::write_tlv(&mut body, TAG_SCOPE, scope.as_str().as_bytes());
        }
        der::write_tlv(
            &mut body,
            der::TAG_GENERALIZED_TIME,
            &der::generalized_time(self.issued_at)?,
        );
        der::write_tlv(
            &mut body,
            der::TAG_GENERALIZED_TIME,
            &der::generalized_time(self.next_update)?,
        );
        let mut list = Vec::new();
        for s in &self.sectors {
            der::write_tlv(&mut list, der::TAG_UTF8, s.as_str().as_bytes());
        }
        der::write_tlv(&mut body, der::TAG_SEQUENCE, &list);
        for p in [&self.cooperation_policy, &self.recognition_policy] {
            let mut inner = Vec::with_capacity(p.text.len() + 80);
            der::write_tlv(&mut inner, der::TAG_UTF8, p.version.as_bytes());
            der::write_tlv(&mut inner, der::TAG_UTF8, p.text.as_bytes());
            der::write_tlv(&mut body, der::TAG_SEQUENCE, &inner);
        }
        list.clear();
        let mut entry = Vec::with_capacity(128);
        for m in &self.models {
            entry.clear();
            der::write_tlv(&mut entry, der::TAG_UTF8, m.sector.as_str().as_bytes());
            der::write_tlv(&mut entry, der::TAG_UTF8, m.manufacturer.as_bytes());
            der::write_tlv(&mut entry, der::TAG_UTF8, m.model.as_bytes());
            der::write_tlv(&mut entry, der::TAG_UTF8, m.firmware.to_string().as_bytes());
            der::write_small_uint(&mut entry, der::TAG_INTEGER, m.level.get() as u64);
            der::write_small_uint(&mut entry, der::TAG_ENUMERATED, model_status_code(m.status));
            der::write_small_uint(&mut entry, der::TAG_INTEGER, m.record_version);
            der::write_tlv(&mut entry, der::TAG_UTF8, m.policy_version.as_bytes());
            der::write_tlv(&mut list, der::TAG_SEQUENCE, &entry);
        }
        der::write_tlv(&mut body, der::TAG_SEQUENCE, &list);
        list.clear();
        for d in &self.devices {
            entry.clear();
            der::write_tlv(&mut entry, der::TAG_UTF8, d.identity.as_bytes());
            der::write_small_uint(&mut entry, der::TAG_INTEGER, d.level.get() as u64);
            der::write_small_uint(&mut entry, der::TAG_ENUMERATED, d.status.code());
            der::write_small_uint(&mut entry, der::TAG_INTEGER, d.record_version);
            der::write_tlv(&mut list, der::TAG_SEQUENCE, &entry);
        }
        der::write_tlv(&mut body, der::TAG_SEQUENCE, &list);
        list.clear();
        for (sector, serial) in &self.revoked_certificates {
            entry.clear();
            der::write_tlv(&mut entry, der::TAG_UTF8, sector.as_str().as_bytes());
            // The serial octets are already a minimal INTEGER (validated).
            der::write_tlv(&mut entry, der::TAG_INTEGER, serial);
            der::write_tlv(&mut list, der::TAG_SEQUENCE, &entry);
        }
        der::write_tlv(&mut body, der::TAG_SEQUENCE, &list);
        list.clear();
        for k in &self.blocked_keys {
            der::write_tlv(&mut list, TAG_OCTET_STRING, k);
        }
        der::write_tlv(&mut body, der::TAG_SEQUENCE, &list);
        if let Some(s) = &self.systems {
            s.encode(&mut body);
        }
        if let Some(l) = &self.trust_list {
            crate::snapshot_trust_list::encode(&mut body, l, &self.foreign_crls);
        }
        let mut out = Vec::with_capacity(body.len() + 6);
        der::write_tlv(&mut out, der::TAG_SEQUENCE, &body);
        Ok(out)
    }

    /// Strictly decodes a body: canonical DER only, known version, every
    /// [`TrustSnapshot::validate`] rule. `from_der(b)?.to_der()? == b`.
    pub fn from_der(input: &[u8]) -> Result<Self, ModelError> {
        let mut outer = Reader::new(input);
        let body = outer.read(der::TAG_SEQUENCE).map_err(bad)?;
        if !outer.is_empty() {
            return Err(bad("trailing bytes after the snapshot"));
        }
        let mut r = Reader::new(body);
        let version = r.read_small_uint(der::TAG_INTEGER).map_err(bad)?;
        if ![VERSION, VERSION_SYSTEMS, VERSION_TRUST_LIST].contains(&version) {
            return Err(bad(format!("unsupported version {version}")));
        }
        let serial = r.read_small_uint(der::TAG_INTEGER).map_err(bad)?;
        let scope = if r.peek_tag() == Some(TAG_SCOPE) {
            let text = std::str::from_utf8(r.read(TAG_SCOPE).map_err(bad)?)
                .map_err(|_| bad("scope is not valid UTF-8"))?;
            Some(sector(text, "scope")?)
        } else {
            None
        };
        let issued_at = read_time(&mut r)?;
        let next_update = read_time(&mut r)?;
        let mut sectors = Vec::new();
        let mut list = Reader::new(r.read(der::TAG_SEQUENCE).map_err(bad)?);
        while !list.is_empty() {
            if sectors.len() >= MAX_SECTORS {
                return Err(bad(format!("more than {MAX_SECTORS} sectors")));
            }
            sectors.push(sector(list.read_utf8().map_err(bad)?, "sectors")?);
        }
        let cooperation_policy = read_policy(&mut r)?;
        let recognition_policy = read_policy(&mut r)?;
        let models = read_list(&mut r, "models", |e| {
            let sector = sector(e.read_utf8().map_err(bad)?, "model")?;
            let manufacturer = e.read_utf8().map_err(bad)?.to_owned();
            let model = e.read_utf8().map_err(bad)?.to_owned();
            let firmware = FirmwareRange::parse(e.read_utf8().map_err(bad)?)
                .map_err(|x| bad(format!("model: {x}")))?;
            let level = read_level(e)?;
            let code = e.read_small_uint(der::TAG_ENUMERATED).map_err(bad)?;
            let status = model_status_from_code(code)
                .ok_or_else(|| bad(format!("unknown model status {code}")))?;
            let record_version = e.read_small_uint(der::TAG_INTEGER).map_err(bad)?;
            let policy_version = e.read_utf8().map_err(bad)?.to_owned();
            Ok(SnapshotModel {
                sector,
                manufacturer,
                model,
                firmware,
                level,
                status,
                record_version,
                policy_version,
            })
        })?;
        let devices = read_list(&mut r, "devices", |e| {
            let identity = e.read_utf8().map_err(bad)?.to_owned();
            let level = read_level(e)?;
            let code = e.read_small_uint(der::TAG_ENUMERATED).map_err(bad)?;
            let status = TrustStatus::from_code(code)
                .ok_or_else(|| bad(format!("unknown device status {code}")))?;
            let record_version = e.read_small_uint(der::TAG_INTEGER).map_err(bad)?;
            Ok(DeviceState {
                identity,
                level,
                status,
                record_version,
            })
        })?;
        let revoked_certificates = read_list(&mut r, "revoked certificates", |e| {
            let sector = sector(e.read_utf8().map_err(bad)?, "revoked certificate")?;
            let serial = e.read(der::TAG_INTEGER).map_err(bad)?.to_vec();
            Ok((sector, serial))
        })?;
        let mut blocked_keys = Vec::new();
        let mut list = Reader::new(r.read(der::TAG_SEQUENCE).map_err(bad)?);
        while !list.is_empty() {
            if blocked_keys.len() >= MAX_ENTRIES {
                return Err(bad(format!(
                    "blocked keys: more than {MAX_ENTRIES} entries"
                )));
            }
            let k: [u8; 32] = list
                .read(TAG_OCTET_STRING)
                .map_err(bad)?
                .try_into()
                .map_err(|_| bad("a blocked key fingerprint must be 32 bytes (SHA-256)"))?;
            blocked_keys.push(k);
        }
        // Version 2 has the systems, version 3 may have them and has the
        // trust list, version 1 has neither.
        let systems = match version {
            VERSION_SYSTEMS => Some(crate::snapshot_systems::SnapshotSystems::decode(&mut r)?),
            VERSION_TRUST_LIST if r.peek_tag() == Some(der::TAG_CONTEXT_1_CONSTRUCTED) => {
                Some(crate::snapshot_systems::SnapshotSystems::decode(&mut r)?)
            }
            _ => None,
        };
        let (trust_list, foreign_crls) = if version == VERSION_TRUST_LIST {
            let (list, crls) = crate::snapshot_trust_list::decode(&mut r)?;
            (Some(list), crls)
        } else {
            (None, Vec::new())
        };
        if !r.is_empty() {
            return Err(bad("trailing bytes inside the snapshot"));
        }
        let s = Self {
            serial,
            scope,
            issued_at,
            next_update,
            sectors,
            cooperation_policy,
            recognition_policy,
            models,
            devices,
            revoked_certificates,
            blocked_keys,
            systems,
            trust_list,
            foreign_crls,
        };
        s.validate()?;
        Ok(s)
    }

    /// Parses the embedded policies against the embedded sector names and
    /// checks that each declares the version the snapshot states.
    pub fn policy(&self) -> Result<TrustPolicy, ModelError> {
        let policy = TrustPolicy::parse(
            ("snapshot cooperation policy", &self.cooperation_policy.text),
            ("snapshot recognition policy", &self.recognition_policy.text),
            &self.sectors,
        )
        .map_err(|e| bad(format!("embedded policy: {e}")))?;
        for (what, declared, parsed) in [
            (
                "cooperation",
                &self.cooperation_policy.version,
                &policy.cooperation_version,
            ),
            (
                "recognition",
                &self.recognition_policy.version,
                &policy.recognition_version,
            ),
        ] {
            if declared != parsed {
                return Err(bad(format!(
                    "the {what} policy text is version {parsed:?} but the snapshot states {declared:?}"
                )));
            }
        }
        Ok(policy)
    }

    /// The listed state of a device, by identity URN (case-insensitively).
    pub fn device(&self, identity_urn: &str) -> Option<&DeviceState> {
        self.devices
            .binary_search_by(|d| cmp_ci(&d.identity, identity_urn))
            .ok()
            .map(|i| &self.devices[i])
    }

    /// Whether the certificate with this serial (DER INTEGER content
    /// octets) in `sector` is revoked.
    pub fn is_certificate_revoked(&self, sector: &SectorName, serial: &[u8]) -> bool {
        self.revoked_certificates
            .binary_search_by(|(s, n)| (s, n.as_slice()).cmp(&(sector, serial)))
            .is_ok()
    }

    /// Whether a key (by [`crate::key_fingerprint`]) is blocked.
    pub fn is_key_blocked(&self, key_fingerprint: &[u8; 32]) -> bool {
        self.blocked_keys.binary_search(key_fingerprint).is_ok()
    }

    /// The model record covering `firmware_version` of a model
    /// (manufacturer and model compare case-insensitively).
    pub fn model_for(
        &self,
        sector: &SectorName,
        manufacturer: &str,
        model: &str,
        firmware_version: &str,
    ) -> Option<&SnapshotModel> {
        let prefix = |m: &SnapshotModel| {
            cmp_ci(m.sector.as_str(), sector.as_str())
                .then_with(|| cmp_ci(&m.manufacturer, manufacturer))
                .then_with(|| cmp_ci(&m.model, model))
        };
        let start = self.models.partition_point(|m| prefix(m) == Ordering::Less);
        self.models[start..]
            .iter()
            .take_while(|m| prefix(m) == Ordering::Equal)
            .find(|m| m.firmware.contains(firmware_version))
    }
}

fn sector(text: &str, what: &str) -> Result<SectorName, ModelError> {
    SectorName::new(text).map_err(|e| bad(format!("{what}: {e}")))
}

fn read_time(r: &mut Reader<'_>) -> Result<OffsetDateTime, ModelError> {
    der::parse_generalized_time(r.read(der::TAG_GENERALIZED_TIME).map_err(bad)?).map_err(bad)
}

fn read_level(r: &mut Reader<'_>) -> Result<TrustLevel, ModelError> {
    let v = r.read_small_uint(der::TAG_INTEGER).map_err(bad)?;
    TrustLevel::new(v.min(99) as i64).map_err(|e| bad(e.to_string()))
}

fn read_policy(r: &mut Reader<'_>) -> Result<EmbeddedPolicy, ModelError> {
    let mut p = Reader::new(r.read(der::TAG_SEQUENCE).map_err(bad)?);
    let version = p.read_utf8().map_err(bad)?.to_owned();
    let text = p.read_utf8().map_err(bad)?.to_owned();
    if !p.is_empty() {
        return Err(bad("trailing bytes inside an embedded policy"));
    }
    Ok(EmbeddedPolicy { version, text })
}

/// Reads `SEQUENCE OF SEQUENCE { ... }`, each entry with `entry`, which
/// must consume it whole; at most [`MAX_ENTRIES`] entries.
fn read_list<T>(
    r: &mut Reader<'_>,
    what: &str,
    entry: impl Fn(&mut Reader<'_>) -> Result<T, ModelError>,
) -> Result<Vec<T>, ModelError> {
    let mut list = Reader::new(r.read(der::TAG_SEQUENCE).map_err(bad)?);
    let mut out = Vec::new();
    while !list.is_empty() {
        if out.len() >= MAX_ENTRIES {
            return Err(bad(format!("{what}: more than {MAX_ENTRIES} entries")));
        }
        let mut e = Reader::new(list.read(der::TAG_SEQUENCE).map_err(bad)?);
        let item = entry(&mut e).map_err(|x| bad(format!("{what} {}: {x}", out.len())))?;
        if !e.is_empty() {
            return Err(bad(format!(
                "{what} {}: trailing bytes inside the entry",
                out.len()
            )));
        }
        out.push(item);
    }
    Ok(out)
}
