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

    pub(crate) fn code(self) -> u64 {
        match self {
            Self::Active => 0,
            Self::Suspended => 1,
            Self::Revoked => 2,
            Self::Retired => 3,
        }
    }

    pub(crate) fn from_code(code: u64) -> Option<Self> {
        [Self::Active, Self::Suspended, Self::Revoked, Self::Retired]
            .into_iter()
            .find(|s| s.code() == code)
    }
}
