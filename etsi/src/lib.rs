//! The EU C-ITS trust model (the PRESERVE trial's car PKI as ETSI
//! specifies it) for trustca:
//!
//! * [`profile`]: the ETSI TS 103 097 certificate profiles of the root CA
//!   (permission to sign CTLs and CRLs), the enrolment and authorization
//!   authorities (with an `encryptionKey`), enrolment credentials and
//!   authorization tickets (id `none`, `cracaId` 000000H, `crlSeries` 0,
//!   the trust level as `assuranceLevel`, `appPermissions` from the ticket
//!   profile's table).
//!
//! Formats and the privacy argument: `docs/v2x-etsi.md`.
#![forbid(unsafe_code)]

pub mod error;
pub mod profile;

pub use error::EtsiError;
