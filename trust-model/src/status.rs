//! The live status of a device in the trust database.

/// Where a device stands now, whatever its certificate says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum TrustStatus {
    /// In good standing.
    Active,
    /// Temporarily not trusted (e.g. an anomaly under investigation).
    Suspended,
    /// Permanently not trusted.
    Revoked,
    /// Disposed of or replaced by a successor; the record is kept.
    Retired,
}

impl TrustStatus {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Suspended => "suspended",
            Self::Revoked => "revoked",
            Self::Retired => "retired",
        }
    }

    /// The status `word` names (lower-case, as [`TrustStatus::as_str`]).
    pub fn parse(word: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == word)
    }

    /// Every status.
    pub const ALL: [Self; 4] = [Self::Active, Self::Suspended, Self::Revoked, Self::Retired];

    pub(crate) fn code(self) -> u64 {
        match self {
            Self::Active => 0,
            Self::Suspended => 1,
            Self::Revoked => 2,
            Self::Retired => 3,
        }
    }

    pub(crate) fn from_code(code: u64) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.code() == code)
    }
}

impl std::fmt::Display for TrustStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for TrustStatus {
    type Err = crate::ModelError;

    fn from_str(word: &str) -> Result<Self, Self::Err> {
        Self::parse(word).ok_or_else(|| crate::ModelError::UnknownWord {
            what: "trust status",
            word: crate::sector::truncate(word),
            known: "active, suspended, revoked, retired".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// Every status reads back from its word and its stored code; other
    /// words are refused by name.
    #[test]
    fn words_and_codes_round_trip() {
        for s in TrustStatus::ALL {
            assert_eq!(s.as_str().parse::<TrustStatus>(), Ok(s));
            assert_eq!(s.to_string(), s.as_str());
            assert_eq!(TrustStatus::from_code(s.code()), Some(s));
        }
        let e = "Active".parse::<TrustStatus>().unwrap_err().to_string();
        assert_eq!(
            e,
            "unknown trust status \"Active\"; known: active, suspended, revoked, retired"
        );
        assert_eq!(TrustStatus::from_code(4), None);
    }
}
