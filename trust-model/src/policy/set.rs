//! Every policy an instance runs with, validated together.

use super::*;

/// Every policy a trustca instance runs with, validated together.
#[derive(Debug, Clone)]
pub struct PolicySet {
    /// `pki.toml`.
    pub pki: PkiPolicy,
    /// One policy per sector, by name.
    pub sectors: BTreeMap<SectorName, SectorPolicy>,
    /// `cooperation.toml` and `recognition.toml`.
    pub trust: crate::TrustPolicy,
    /// `detection/<sector>.toml`.
    pub detection: crate::DetectionPolicy,
}

impl PolicySet {
    /// Builds a set from `pki.toml` and the sector files, given as
    /// (file name, text) pairs. Refuses duplicate sectors and a file whose
    /// name does not match the sector it declares.
    pub fn parse(
        pki: (&str, &str),
        sector_files: &[(String, String)],
        cooperation: (&str, &str),
        recognition: (&str, &str),
        detection_files: &[(String, String)],
    ) -> Result<Self, ModelError> {
        let pki = PkiPolicy::parse(pki.0, pki.1)?;
        let mut sectors = BTreeMap::new();
        for (file, text) in sector_files {
            let policy = SectorPolicy::parse(file, text)?;
            let stem = std::path::Path::new(file)
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default();
            if stem != policy.sector.as_str() {
                return Err(policy_error(
                    file,
                    1,
                    format!(
                        "file declares sector {:?}; name the file {}.toml",
                        policy.sector.as_str(),
                        policy.sector
                    ),
                ));
            }
            if sectors.insert(policy.sector.clone(), policy).is_some() {
                return Err(policy_error(file, 1, "sector defined twice"));
            }
        }
        if sectors.is_empty() {
            return Err(policy_error("sectors/", 0, "no sector policies found"));
        }
        let names: Vec<SectorName> = sectors.keys().cloned().collect();
        let trust = crate::TrustPolicy::parse(cooperation, recognition, &names)?;
        let detection = crate::DetectionPolicy::parse(detection_files, &names)?;
        Ok(Self {
            pki,
            sectors,
            trust,
            detection,
        })
    }

    /// The policy of `sector`.
    pub fn sector(&self, sector: &str) -> Result<&SectorPolicy, ModelError> {
        SectorName::new(sector)
            .ok()
            .and_then(|s| self.sectors.get(&s))
            .ok_or_else(|| ModelError::UnknownSector(crate::sector::truncate(sector)))
    }
}
