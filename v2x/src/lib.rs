//! V2X certificates for trustca: IEEE 1609.2 explicit certificates in the
//! ETSI TS 103 097 `EtsiTs103097Certificate` profile, canonical OER (COER)
//! encoded and signed with ECDSA P-256 / SHA-256.
//!
//! * [`cert`]: the certificate types, the strict COER encoder and decoder
//!   for the supported subset, signing ([`Certificate::sign_root`],
//!   [`Certificate::issue`]) and verification
//!   ([`Certificate::verify_signed_by`]).
//! * [`validity`]: `Time32` (TAI seconds since 2004-01-01, with a leap
//!   second table), `Duration` and `ValidityPeriod`.
//! * [`keys`]: compressed P-256 public keys, SHA-256, [`hashed_id8`] and
//!   the IEEE 1609.2 signing input.
//!
//! The supported subset, the assurance-level mapping and the signing rule
//! are documented in `docs/v2x-certificates.md`.
#![forbid(unsafe_code)]

pub mod cert;
mod coer;
pub mod error;
pub mod keys;
pub mod validity;

pub use cert::{
    Certificate, CertificateId, EcdsaP256Signature, IssuerIdentifier, MAX_CERTIFICATE_LEN,
    PsidGroupPermissions, PsidSsp, PsidSspRange, RSigForm, Ssp, SspRange, SubjectAssurance,
    SubjectPermissions, ToBeSigned,
};
pub use error::V2xError;
pub use keys::{PublicKeyP256, hashed_id8, sha256, signing_message};
pub use validity::{Duration, Time32, ValidityPeriod};
