//! The one error type of this crate.

/// What went wrong in the domain model: a malformed name, a value out of
/// range, an extension that does not decode, evidence or a policy that is
/// not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// A sector name is empty, too long or has characters outside `[a-z0-9-]`.
    #[error("invalid sector name {0:?}: use 1-32 characters of a-z, 0-9 and '-'")]
    InvalidSectorName(String),
    /// A trust level outside 1..=5.
    #[error("trust level {0} is out of range: levels are 1 to 5")]
    LevelOutOfRange(i64),
    /// A device attribute (manufacturer, model, serial, firmware) is malformed.
    #[error("invalid {field} {value:?}: {reason}")]
    InvalidAttribute {
        /// Which attribute.
        field: &'static str,
        /// The value as given (truncated to 80 characters).
        value: String,
        /// What is allowed.
        reason: &'static str,
    },
    /// An OID for the trust-level extension is malformed or unusable.
    #[error("invalid trust-level extension OID {value:?}: {reason}")]
    InvalidOid {
        /// The OID as given (truncated to 80 characters).
        value: String,
        /// What is wrong.
        reason: String,
    },
    /// The trust-level extension is not valid DER of the published module.
    #[error("malformed trust-level extension: {0}")]
    MalformedExtension(String),
    /// An evidence item is of a type this sector does not know, or malformed.
    #[error("evidence: {0}")]
    InvalidEvidence(String),
    /// A sector named in a request or certificate is not in the policies.
    #[error("unknown sector {0:?}")]
    UnknownSector(String),
    /// A policy file does not parse or breaks a rule; carries file, line, reason.
    #[error("{file}:{line}: {reason}")]
    InvalidPolicy {
        /// The policy file, as named by the caller.
        file: String,
        /// 1-based line of the offending item (0 when not known).
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// A word of a closed vocabulary (an anomaly kind, an evidence type)
    /// that is not one of its words.
    #[error("unknown {what} {word:?}; known: {known}")]
    UnknownWord {
        /// What the word should have been.
        what: &'static str,
        /// The word as given (truncated to 80 characters).
        word: String,
        /// The known words.
        known: String,
    },
    /// A decision was asked for an operation no policy names.
    #[error("unknown operation {0:?}")]
    UnknownOperation(String),
    /// A certificate chain does not verify (with the reason).
    #[error("{0}")]
    InvalidChain(String),
    /// A certificate revocation list does not parse, is not signed by the
    /// certificate's issuer, or is not fresh.
    #[error("CRL: {0}")]
    InvalidCrl(String),
    /// A signed trust assertion does not decode or verify.
    #[error("trust assertion: {0}")]
    InvalidAssertion(String),
    /// A certificate presented as a credential is not one trustca issued.
    #[error("credential: {0}")]
    InvalidCredential(String),
    /// A signed trust snapshot does not decode, is not canonical, or does
    /// not verify (bad signature, wrong signer, stale, from the future).
    #[error("trust snapshot: {0}")]
    InvalidSnapshot(String),
    /// A trust list (the root operator's signed list of recognised foreign
    /// roots) does not decode, is not signed by this root, or is stale.
    #[error("trust list: {0}")]
    InvalidTrustList(String),
}
