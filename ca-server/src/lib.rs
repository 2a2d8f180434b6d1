//! The trustca CA engine: the CA hierarchy and its encrypted keys,
//! certificate profiles, CSR checks, issuance of long-term device
//! certificates and role credentials, revocation and CRLs. No transport:
//! the gRPC services over it are `trustca-api`'s.
#![forbid(unsafe_code)]

pub mod attestation;
mod authority_tls;
mod ca_keys;
pub mod canonical_keys;
pub mod ceremony;
mod crl;
mod csr;
mod enroll;
mod error;
mod hierarchy;
mod issuer;
mod keystore;
pub mod pkcs11;
mod revocation;
mod revoke;
pub mod rollover;
pub mod root_crl;
mod sector_import;
mod service_certs;
pub mod trust_list;
mod unary;
pub mod v2x_ca;

pub use authority_tls::{AuthorityTlsRequest, IssuedCertificate};
pub use ca_keys::{CaKey, CaKeys, TokenRecord};
pub use crl::{REASONS, RevokedEntry, build_crl, reason_code};
pub use csr::{MAX_CSR_BYTES, VerifiedCsr, verify_csr};
pub use enroll::{
    DeviceAttributes, EnrollmentEngine, EnrollmentOutcome, EnrollmentRequest, actor,
    refuse_blocked_key,
};
pub use error::CaError;
pub use hierarchy::{AUDIT_SIGNERS_DIR, CaHierarchy, InitReport, IssuedCredential, certs_to_pem};
pub use issuer::{SigningCa, generate_key, rcgen_algorithm};
pub use keystore::{Keystore, Passphrase};
pub use pkcs11::{Pkcs11Key, Pkcs11Pin, Pkcs11Settings, Pkcs11Token};
pub use revocation::{CrlPublisher, PublishedCrl};
pub use revoke::{
    BulkRevokeCommand, RestrictCommand, Restricted, RevocationEngine, RevocationSubject,
    RevokeCommand, Revoked,
};
