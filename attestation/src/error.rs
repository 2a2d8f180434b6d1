//! The one error type of the crate: what was wrong with an attestation,
//! precisely enough for the caller to map it to a status and a message.

/// Why an attestation or a TPM structure was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AttestationError {
    /// A TPM structure does not parse: the structure and the reason.
    #[error("malformed {structure}: {reason}")]
    Malformed {
        /// The TPM structure, e.g. `TPMT_PUBLIC`.
        structure: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// The structure parses but uses something this verifier does not
    /// support (an algorithm, a curve, an attestation type).
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The attestation's signature does not verify under the AK.
    #[error("the attestation signature does not verify under the attestation key")]
    BadSignature,
    /// The certified object is not the key of the request.
    #[error("the attestation certifies another key: {0}")]
    WrongKey(String),
    /// The qualifying data is not the server's challenge.
    #[error("the attestation is not over this server's challenge (qualifying data differs)")]
    WrongNonce,
    /// A key's attributes do not show a non-exportable TPM key.
    #[error("key attributes refused: {0}")]
    Attributes(String),
    /// The EK certificate chain does not verify to a registered root.
    #[error("EK certificate chain refused: {0}")]
    EkChain(String),
    /// The credential could not be made (bad EK key, no randomness).
    #[error("cannot make the credential: {0}")]
    Credential(String),
}

impl AttestationError {
    pub(crate) fn malformed(structure: &'static str, reason: impl Into<String>) -> Self {
        Self::Malformed {
            structure,
            reason: reason.into(),
        }
    }
}
