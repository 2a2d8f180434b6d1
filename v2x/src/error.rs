//! The one error type of this crate.

/// Everything that can go wrong while encoding, decoding, signing or
/// verifying V2X certificates, or encrypting and decrypting V2X data.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum V2xError {
    /// The input ended before the structure being decoded was complete.
    #[error("truncated COER input: needed {needed} more byte(s) at offset {offset}")]
    Truncated {
        /// Byte offset at which more input was needed.
        offset: usize,
        /// How many bytes were missing.
        needed: usize,
    },
    /// Bytes were left over after a complete certificate.
    #[error("{0} trailing byte(s) after the certificate")]
    TrailingBytes(usize),
    /// An encoding that OER allows but canonical OER (COER) forbids, such as
    /// a long-form length that fits the short form or a DEFAULT value that
    /// is encoded explicitly.
    #[error("non-canonical COER encoding at offset {offset}: {what}")]
    NonCanonical {
        /// Byte offset of the offending field.
        offset: usize,
        /// What was wrong.
        what: &'static str,
    },
    /// The bytes are not a valid encoding of the type (bad tag, bad value,
    /// violated size constraint).
    #[error("invalid COER encoding at offset {offset}: {what}")]
    Invalid {
        /// Byte offset of the offending field.
        offset: usize,
        /// What was wrong.
        what: &'static str,
    },
    /// A valid IEEE 1609.2 construct that this crate does not implement
    /// (for example geographic regions or Brainpool keys).
    #[error("unsupported IEEE 1609.2 feature: {0}")]
    Unsupported(&'static str),
    /// A valid IEEE 1609.2 certificate that violates the ETSI TS 103 097
    /// `EtsiTs103097Certificate` profile.
    #[error("violates the ETSI TS 103 097 certificate profile: {0}")]
    Profile(&'static str),
    /// A length, count or value exceeds the limits this crate accepts.
    #[error("limit exceeded: {0}")]
    Limit(&'static str),
    /// A value given to a builder or conversion is out of range.
    #[error("value out of range: {0}")]
    OutOfRange(&'static str),
    /// A certificate to be issued would lie wholly outside its issuer's
    /// validity period (it would start at or after the issuer's end, or end
    /// at or before its start), so it cannot be clamped into it.
    #[error("validity outside the issuer's: {0}")]
    OutsideIssuerValidity(&'static str),
    /// A public key is not a valid P-256 point.
    #[error("invalid P-256 public key")]
    InvalidKey,
    /// The signing key is unusable (for example not a P-256 key) or signing
    /// failed.
    #[error("signing failed: {0}")]
    Signing(&'static str),
    /// The signature does not verify under the issuer's key.
    #[error("signature verification failed")]
    BadSignature,
    /// The certificate names a different issuer than the one given.
    #[error("issuer mismatch: {0}")]
    IssuerMismatch(&'static str),
    /// Encrypting failed (no randomness, or the AES-CCM implementation
    /// refused).
    #[error("encryption failed: {0}")]
    Encryption(&'static str),
    /// Decrypting `EncryptedData` failed: wrong key or P1, a changed
    /// wrapped key, tag, nonce or ciphertext. One error for all of these.
    #[error("decryption failed")]
    Decryption,
    /// No recipient of the `EncryptedData` has the given recipient id.
    #[error("no recipient with the given id")]
    NoRecipient,
    /// The recipient certificate has no `encryptionKey`.
    #[error("the certificate has no encryption key")]
    NoEncryptionKey,
}
