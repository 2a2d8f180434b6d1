//! Sector names: the industries (automotive, hems, healthcare, ...) that each
//! run their own sub-CA and trust-level database.

use std::fmt;

use crate::ModelError;

/// A validated sector name: 1-32 characters of `[a-z0-9-]`, not starting or
/// ending with '-'. Being DNS-label safe lets it appear in name constraints.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct SectorName(String);

impl SectorName {
    /// Validates `name` as a sector name.
    pub fn new(name: &str) -> Result<Self, ModelError> {
        let ok = !name.is_empty()
            && name.len() <= 32
            && !name.starts_with('-')
            && !name.ends_with('-')
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if ok {
            Ok(Self(name.to_owned()))
        } else {
            Err(ModelError::InvalidSectorName(truncate(name)))
        }
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SectorName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for SectorName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::new(&s).map_err(serde::de::Error::custom)
    }
}

pub(crate) fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_rejects() {
        assert!(SectorName::new("automotive").is_ok());
        assert!(SectorName::new("hems-2").is_ok());
        for bad in ["", "Automotive", "a b", "-x", "x-", "a.b", &"a".repeat(33)] {
            assert!(SectorName::new(bad).is_err(), "{bad:?} accepted");
        }
    }
}
