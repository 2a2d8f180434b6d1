//! TPM 2.0 key attestation, with no I/O and no transport.
//!
//! A device proves that the key in its certificate request lives in a TPM:
//! its attestation key (AK) certifies the new key (`TPM2_Certify` or
//! `TPM2_CertifyCreation`) with the server's nonce as qualifying data, and
//! the AK is bound to the TPM's endorsement key (EK), whose certificate
//! chains to a registered TPM manufacturer root. This crate holds:
//!
//! - strict codecs for the TPM structures involved (`TPMT_PUBLIC` in
//!   [`public`], `TPMS_ATTEST` in [`attest`], `TPMT_SIGNATURE` in
//!   [`signature`]), each refusing trailing bytes, unknown selectors and
//!   oversize fields;
//! - the server side of credential activation, `MakeCredential` to an RSA
//!   EK ([`credential`]), which binds the AK to the EK;
//! - EK certificate chain verification against registered roots ([`ek`]);
//! - the whole check of one key attestation ([`verify`]).

#![forbid(unsafe_code)]

pub mod attest;
pub mod credential;
pub mod ek;
mod error;
pub mod public;
pub mod signature;
pub mod verify;
mod wire;

pub use error::AttestationError;
