//! Trust levels 1 (lowest) to 5 (highest), as the source documents show them
//! (Lv.3, Lv.4, Lv.5).

use std::fmt;

use crate::ModelError;

/// A trust level, always within 1..=5.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct TrustLevel(u8);

impl TrustLevel {
    /// The lowest level.
    pub const MIN: Self = Self(1);
    /// The highest level.
    pub const MAX: Self = Self(5);

    /// Checks that `value` is within 1..=5.
    pub fn new(value: i64) -> Result<Self, ModelError> {
        if (1..=5).contains(&value) {
            Ok(Self(value as u8))
        } else {
            Err(ModelError::LevelOutOfRange(value))
        }
    }

    /// The level as a number.
    pub fn get(self) -> u8 {
        self.0
    }

    /// The level as the source documents write it (`Lv.3`): a word, not
    /// formatted, so a decision's reasons are built without the formatting
    /// machinery.
    pub fn label(self) -> &'static str {
        match self.0 {
            1 => "Lv.1",
            2 => "Lv.2",
            3 => "Lv.3",
            4 => "Lv.4",
            _ => "Lv.5",
        }
    }

    /// This level lowered by `steps`, never below 1.
    pub fn lowered_by(self, steps: u8) -> Self {
        Self(self.0.saturating_sub(steps).max(1))
    }
}

impl fmt::Display for TrustLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

impl<'de> serde::Deserialize<'de> for TrustLevel {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = i64::deserialize(d)?;
        Self::new(v).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range() {
        assert!(TrustLevel::new(0).is_err());
        assert!(TrustLevel::new(6).is_err());
        assert_eq!(TrustLevel::new(3).unwrap().get(), 3);
        assert_eq!(TrustLevel::new(2).unwrap().lowered_by(5).get(), 1);
        assert_eq!(TrustLevel::new(4).unwrap().to_string(), "Lv.4");
    }

    #[test]
    fn every_level_has_its_label() {
        for n in 1..=5 {
            let level = TrustLevel::new(n).unwrap();
            assert_eq!(level.label(), format!("Lv.{n}"));
        }
    }
}
