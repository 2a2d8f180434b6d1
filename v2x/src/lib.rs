//! V2X certificates for trustca: IEEE 1609.2 explicit certificates in the
//! ETSI TS 103 097 `EtsiTs103097Certificate` profile (or, for SCMS
//! pseudonym certificates with linkage values, plain IEEE 1609.2: see
//! [`CertProfile`]), canonical OER (COER) encoded and signed with ECDSA
//! P-256 / SHA-256; and IEEE 1609.2 encrypted data.
//!
//! * [`cert`]: the certificate types, the strict COER encoder and decoder
//!   for the supported subset, signing ([`Certificate::sign_root`],
//!   [`Certificate::issue`]) and verification
//!   ([`Certificate::verify_signed_by`]).
//! * [`validity`]: `Time32` (TAI seconds since 2004-01-01, with a leap
//!   second table), `Duration` and `ValidityPeriod`.
//! * [`keys`]: compressed P-256 public keys, SHA-256, [`hashed_id8`] and
//!   the IEEE 1609.2 signing input, and [`V2xSigner`] for keys held
//!   elsewhere ([`Certificate::sign_root_with`], [`Certificate::issue_with`]).
//! * [`crl`]: IEEE 1609.2 CRLs: the CRL signer's [`CrlSsp`], linkage and
//!   hash CRL contents and the signed [`SecuredCrl`].
//! * [`spdu`]: `Ieee1609Dot2Data` framing: unsecured, [`SignedSpdu`],
//!   encrypted, [`SignedCertificateRequest`].
//! * [`scms_pdu`]: the IEEE 1609.2.1 [`ScmsPdu`] messages between vehicles,
//!   the enrolment CA, the registration authority and the pseudonym CA.
//! * [`period`]: [`PeriodClock`], the one definition of ticket periods.
//! * [`encrypted`]: IEEE 1609.2 `EncryptedData` (ECIES P-256 key wrapping,
//!   AES-128-CCM), [`EncryptedData::seal`] and [`EncryptedData::open`].
//!
//! The supported subset, the assurance-level mapping and the signing rule
//! are documented in `docs/v2x-certificates.md`.
//!
//! ```
//! use ring::rand::SystemRandom;
//! use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
//! use trustca_v2x::*;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let rng = SystemRandom::new();
//! let new_key = || -> Result<EcdsaKeyPair, Box<dyn std::error::Error>> {
//!     let alg = &ECDSA_P256_SHA256_FIXED_SIGNING;
//!     let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).map_err(|e| e.to_string())?;
//!     Ok(EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).map_err(|e| e.to_string())?)
//! };
//! let (root_key, at_key) = (new_key()?, new_key()?);
//! let validity = ValidityPeriod {
//!     start: Time32::from_datetime(time::macros::datetime!(2026-01-01 0:00 UTC))?,
//!     duration: Duration::Years(5),
//! };
//! let root = Certificate::sign_root(
//!     ToBeSigned::ca(
//!         "root.example",
//!         PublicKeyP256::from_sec1(root_key.public_key().as_ref())?,
//!         validity,
//!         vec![PsidGroupPermissions::all(1, PsidGroupPermissions::EE_APP)],
//!     ),
//!     &root_key,
//! )?;
//! let ticket = Certificate::issue(
//!     ToBeSigned::authorization_ticket(
//!         PublicKeyP256::from_sec1(at_key.public_key().as_ref())?,
//!         ValidityPeriod { duration: Duration::Hours(168), ..validity },
//!         vec![PsidSsp { psid: 36, ssp: Some(Ssp::Bitmap(vec![0x01, 0xff, 0xfc])) }],
//!     ),
//!     &root,
//!     &root_key,
//! )?;
//! let received = Certificate::from_coer(&ticket.to_coer())?;
//! received.verify_signed_by(Some(&root))?;
//! assert_eq!(received.issuer(), IssuerIdentifier::Sha256AndDigest(root.hashed_id8()));
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

pub mod cert;
mod coer;
pub mod crl;
pub mod encrypted;
pub mod error;
pub mod etsi_data;
pub mod keys;
pub mod period;
pub mod scms_pdu;
pub mod spdu;
pub mod trust_lists;
pub mod ts102941;
pub mod validity;

pub use cert::{
    CertProfile, Certificate, CertificateId, EcdsaP256Signature, GroupLinkageValue,
    IssuerIdentifier, LinkageData, MAX_CERTIFICATE_LEN, MAX_CERTIFICATE_SEQUENCE,
    PsidGroupPermissions, PsidSsp, PsidSspRange, RSigForm, Ssp, SspRange, SubjectAssurance,
    SubjectPermissions, ToBeSigned, certificates_from_coer, certificates_to_coer,
};
pub use crl::{
    CRL_PSID, CracaType, CrlBody, CrlContents, CrlSsp, HashIdCrl, HashRevocation, IMaxGroup,
    IndividualRevocation, JMaxGroup, LaGroup, LinkageValueCrl, SecuredCrl, hashed_id10,
};
pub use encrypted::{
    EciesP256EncryptedKey, EncryptedData, MAX_ENCRYPTED_DATA_LEN, MAX_RECIPIENTS, P1_EMPTY,
    PkRecipientInfo, RecipientKind, encryption_public_key, psk_id, response_key_id,
};
pub use error::V2xError;
pub use etsi_data::{EtsiSignedData, EtsiSigner, SignAs, SignedPayload};
pub use keys::{PublicKeyP256, V2xSigner, hashed_id8, sha256, signing_message};
pub use period::PeriodClock;
pub use scms_pdu::{
    ACA_SSP, AcaEeCertResponse, AdditionalParams, CertificateType, ECA_SSP, EcaEeCertResponse,
    EeEcaCertRequest, EeRaCertRequest, EeRaDownloadRequest, RA_SSP, RaEeCertAck,
    SECURITY_MGMT_PSID, ScmsPdu,
};
pub use spdu::{
    Ieee1609Dot2Content, MAX_SPDU_LEN, SignedCertificateRequest, SignedSpdu, Signer, decode_data,
    encrypted_data, signed_certificate_request_data, unsecured_data,
};
pub use validity::{Duration, Time32, ValidityPeriod};
