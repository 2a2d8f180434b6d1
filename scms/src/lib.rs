//! SCMS-style separated authorities for V2X pseudonym certificates
//! (authorization tickets in IEEE 1609.2 format), so that no single
//! operator's store can link a vehicle's pseudonyms.
//!
//! | authority | module | knows | never sees |
//! |---|---|---|---|
//! | registration authority (RA) | [`registration`] | the vehicle (by its enrollment credential), its butterfly request, its two chain ids | certificates, certificate keys, linkage values |
//! | pseudonym CA (PCA) | [`pseudonym_ca`] | certificates, linkage values | vehicles, chain ids, which requests came from one vehicle |
//! | linkage authority 1 / 2 (LA) | [`linkage_authority`] | its own seed chains by random chain id | vehicles, certificates, the other LA's values |
//!
//! A request travels vehicle → RA (authenticated; butterfly expansion,
//! pre-linkage values fetched from both LAs) → shuffled batch of many
//! vehicles → PCA (combines the two pre-linkage values into the 9-byte
//! linkage value, adds its own key contribution, signs, encrypts each
//! response to the vehicle's cocoon key) → RA (stores the ciphertexts for
//! the vehicle) → vehicle ([`vehicle`]: decrypts, derives the private key,
//! checks the certificate).
//!
//! [`resolution`] identifies the vehicle behind a misbehaving certificate
//! only with all four authorities, each contributing one piece and
//! auditing it in its own store; revoking a vehicle publishes both LAs'
//! seeds from a period on in an IEEE 1609.2 linkage CRL signed by the CRL
//! signer ([`crl`]), which links only its certificates of that period and
//! later; its enrolment certificates (and revoked CA certificates) go on a
//! hash-based CRL ([`hash_crl`]) that the RA refuses.
//!
//! Every authority takes its own [`trustca_store::Storage`]: separate
//! stores (and, with `trustca serve --role`, separate processes) are what
//! makes the privacy hold. The threat model is in `docs/pseudonyms.md`.
#![forbid(unsafe_code)]

pub mod crl;
pub mod deployment;
pub mod eca_interface;
pub mod ee_interface;
pub mod ee_requests;
mod envelope;
pub mod error;
pub mod hash_crl;
pub mod linkage_authority;
mod parallel;
pub mod profile;
pub mod profile_slot;
pub mod pseudonym_ca;
pub mod registration;
pub mod resolution;
pub mod vehicle;

pub use crl::{LinkageCrl, LinkageCrlParams};
pub use deployment::LocalDeployment;
pub use eca_interface::{EcaIdentity, answer_enrolment_request};
pub use ee_interface::{EeInterface, EeRefusal, RaIdentity};
pub use envelope::{CHAIN_ENVELOPE_LEN, ENCRYPTED_PLV_LEN, LinkKey};
pub use error::ScmsError;
pub use hash_crl::{HashCrl, HashCrlRegister, HashCrlSet};
pub use linkage_authority::{ChainEnvelope, ChainId, EncryptedPlv, LinkageAuthority};
pub use profile::{TicketFormat, TicketProfile};
pub use profile_slot::ProfileSlot;
pub use pseudonym_ca::{PseudonymCa, TicketRequest, TicketResponse};
pub use registration::{
    BatchPolicy, LinkageAuthorityApi, PseudonymCaApi, RegistrationAuthority, VehicleCredential,
    VehicleHandle,
};
pub use vehicle::{OpenedTicket, TicketOpener};
