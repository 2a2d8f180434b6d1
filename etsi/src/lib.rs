//! The EU C-ITS trust model (the PRESERVE trial's car PKI as ETSI
//! specifies it) for trustca:
//!
//! * [`profile`]: the ETSI TS 103 097 certificate profiles of the root CA
//!   (permission to sign CTLs and CRLs), the enrolment and authorization
//!   authorities (with an `encryptionKey`), enrolment credentials and
//!   authorization tickets (id `none`, `cracaId` 000000H, `crlSeries` 0,
//!   the trust level as `assuranceLevel`, `appPermissions` from the ticket
//!   profile's table).
//! * [`ea`]: the enrolment authority (ETSI TS 102 941 enrolment and
//!   authorization validation), [`aa`]: the authorization authority,
//!   [`station`]: the ITS station's requests, [`envelope`]: the signing,
//!   encryption and hashing they share; [`trust_lists`]: the root's CTL
//!   and CRL. No transport: the server maps HTTP
//!   (`application/x-its-request`) onto them.
//!
//! Formats and the privacy argument: `docs/v2x-etsi.md`.
#![forbid(unsafe_code)]

pub mod aa;
pub mod ea;
pub mod envelope;
pub mod error;
pub mod memory;
pub mod profile;
pub mod station;
pub mod trust_lists;

pub use error::EtsiError;
