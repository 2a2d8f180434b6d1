//! The EU C-ITS station's own secrets (ETSI TS 102 941), kept in the sealed
//! pool state beside its tickets and never sent: the canonical key the
//! manufacturer registers (only its public key leaves the vehicle), the
//! enrolment credential with its key, and what the station trusts (the
//! root certificate, optionally a trust list manager's, and the
//! distribution centre it reads their lists from), given once and kept.

use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use crate::error::{PoolError, Result};
use crate::records::scalar_pkcs8;

/// The station's canonical identity, credential and trust anchors.
#[derive(Clone, Serialize, Deserialize)]
pub struct EtsiStation {
    /// The canonical identifier (`itsId` of the first enrolment): the
    /// device's URN.
    pub its_id: String,
    /// The canonical private key scalar, hex (secret).
    canonical_key: String,
    /// The current enrolment credential, once enrolled.
    pub enrolment: Option<EnrolmentCredential>,
    /// The root certificate the station trusts, COER hex (empty until
    /// given).
    pub root: String,
    /// A trust list manager's certificate, COER hex (empty: none).
    pub tlm: String,
    /// The distribution centre's base URL (empty until given).
    pub dc: String,
}

/// An enrolment credential and its private key.
#[derive(Clone, Serialize, Deserialize)]
pub struct EnrolmentCredential {
    /// The credential, COER hex.
    pub certificate: String,
    /// Its private key scalar, hex (secret).
    key: String,
}

/// A fresh P-256 private key scalar.
pub fn new_scalar() -> Result<Zeroizing<[u8; 32]>> {
    let key = trustca_pseudonym::P256PrivateKey::generate()
        .map_err(|_| PoolError::Crypto("the system random generator failed"))?;
    Ok(key.to_bytes())
}

impl EtsiStation {
    /// A station with canonical identifier `its_id` and a new canonical
    /// key made here.
    pub fn generate(its_id: &str) -> Result<Self> {
        Ok(Self {
            its_id: its_id.to_owned(),
            canonical_key: hex::encode(new_scalar()?.as_ref()),
            enrolment: None,
            root: String::new(),
            tlm: String::new(),
            dc: String::new(),
        })
    }

    /// The canonical key as PKCS#8 DER (secret).
    pub fn canonical_key_pkcs8(&self) -> Result<Zeroizing<Vec<u8>>> {
        scalar_pkcs8(&self.canonical_key)
    }

    /// The canonical public key as a DER `SubjectPublicKeyInfo`.
    pub fn canonical_public_spki(&self) -> Result<Vec<u8>> {
        let raw = Zeroizing::new(
            hex::decode(&self.canonical_key).map_err(|_| PoolError::corrupt_state("a key"))?,
        );
        let scalar: [u8; 32] = raw
            .as_slice()
            .try_into()
            .map_err(|_| PoolError::corrupt_state("a key"))?;
        let key = trustca_pseudonym::P256PrivateKey::from_bytes(&scalar)
            .map_err(|_| PoolError::corrupt_state("a key"))?;
        Ok(key.public_key().to_spki_der())
    }

    /// A hex field of the record as bytes (empty when not set).
    pub fn decode(field: &str) -> Result<Vec<u8>> {
        hex::decode(field).map_err(|_| PoolError::corrupt_state("a certificate"))
    }
}

impl EnrolmentCredential {
    /// The credential (COER) issued for the key `scalar`.
    pub fn new(certificate: &[u8], scalar: &[u8; 32]) -> Self {
        Self {
            certificate: hex::encode(certificate),
            key: hex::encode(scalar),
        }
    }

    /// Its key as PKCS#8 DER (secret).
    pub fn key_pkcs8(&self) -> Result<Zeroizing<Vec<u8>>> {
        scalar_pkcs8(&self.key)
    }
}

impl Drop for EtsiStation {
    fn drop(&mut self) {
        self.canonical_key.zeroize();
    }
}

impl Drop for EnrolmentCredential {
    fn drop(&mut self) {
        self.key.zeroize();
    }
}

impl std::fmt::Debug for EtsiStation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtsiStation")
            .field("its_id", &self.its_id)
            .field("canonical_key", &"<redacted>")
            .field("enrolled", &self.enrolment.is_some())
            .field("dc", &self.dc)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for EnrolmentCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrolmentCredential")
            .field("key", &"<redacted>")
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn keys_are_made_here_and_never_shown() {
        let a = EtsiStation::generate("urn:trustca:automotive:Acme:R:1").unwrap();
        let b = EtsiStation::generate("urn:trustca:automotive:Acme:R:1").unwrap();
        assert_ne!(a.canonical_key, b.canonical_key, "fresh randomness");
        assert_eq!(a.canonical_public_spki().unwrap().len(), 91);
        assert!(!a.canonical_key_pkcs8().unwrap().is_empty());
        let shown = format!("{a:?}");
        assert!(!shown.contains(&a.canonical_key), "{shown}");
        let ec = EnrolmentCredential::new(b"cert", &[7u8; 32]);
        assert!(!format!("{ec:?}").contains("0707"));
        assert!(ec.key_pkcs8().is_ok());
    }
}
