//! The ETSI TS 102 941 authorities in the server (`docs/v2x-etsi.md`):
//! where the enrolment authority finds stations and keeps the credentials
//! it issued, over the CA's store, and the HTTP front end of both
//! authorities ([`http`]).
//!
//! A station's canonical identifier is its device URN
//! (`urn:trustca:<sector>:<manufacturer>:<model>:<serial>`); its manufacturer
//! registers the canonical key for a device it enrolled
//! ([`register_canonical_key`], or over gRPC with its credential), and the EA reads the device's live trust
//! record, so the enrolment credential carries the car's trust level and a
//! revoked or suspended car gets none.

pub mod ceremony;
pub mod deploy;
pub mod http;
pub mod roles;
pub mod tlm;

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use trustca_etsi::EtsiError;
use trustca_etsi::ea::{CredentialRegister, Station, StationDirectory};
use trustca_model::{DeviceIdentity, TrustStatus};
use trustca_store::Storage;
use trustca_v2x::{CertProfile, Certificate, PublicKeyP256};

use crate::error::Result;

use trustca_ca::canonical_keys::CANONICAL_SPACE;
/// Record space of issued enrolment credentials, by HashedId8.
const CREDENTIAL_SPACE: &str = "etsi.credentials";

fn store_err(e: trustca_store::StoreError) -> EtsiError {
    EtsiError::Profile(format!("store: {e}"))
}

/// The device identity key of a canonical identifier (a device URN).
fn identity_key(its_id: &[u8]) -> Option<String> {
    let urn = std::str::from_utf8(its_id).ok()?;
    Some(DeviceIdentity::from_urn(urn).ok()?.key())
}

/// Registers `canonical_key` for the device `urn`, on behalf of
/// `manufacturer` (named by the operator, offline: `trustca etsi
/// register-canonical-key`; over the network the manufacturer's credential
/// names it, `Enrollment/RegisterCanonicalKey`): the device must be
/// enrolled and be that manufacturer's; a key once registered is never
/// replaced.
pub fn register_canonical_key(
    storage: &dyn Storage,
    manufacturer: &str,
    urn: &str,
    canonical_key: &PublicKeyP256,
    now: i64,
) -> Result<()> {
    let actor = format!("manufacturer:{manufacturer}");
    trustca_ca::canonical_keys::register_canonical_key(
        storage,
        manufacturer,
        &actor,
        urn,
        canonical_key,
        now,
    )?;
    Ok(())
}

/// Stations from the CA's store: the registered canonical key and the
/// device's live trust record.
#[derive(Debug)]
pub struct StoreStations(pub Arc<dyn Storage>);

impl StationDirectory for StoreStations {
    fn station(&self, its_id: &[u8]) -> std::result::Result<Option<Station>, EtsiError> {
        let Some(key) = identity_key(its_id) else {
            return Ok(None);
        };
        let Some(raw) = self
            .0
            .blob_get(CANONICAL_SPACE, key.as_bytes())
            .map_err(store_err)?
        else {
            return Ok(None);
        };
        let canonical_key = PublicKeyP256::from_sec1(&raw)?;
        let Some(trust) = self.0.trust_record(&key).map_err(store_err)? else {
            return Ok(None);
        };
        Ok(Some(Station {
            canonical_key,
            trust_level: trust.level,
            active: trust.status == TrustStatus::Active,
        }))
    }
}

#[derive(Serialize, Deserialize)]
struct CredentialRecord {
    /// The station's canonical identifier, hex.
    its_id: String,
    /// The credential's COER, hex.
    ec: String,
}

/// Issued enrolment credentials in a store.
#[derive(Debug)]
pub struct StoreCredentials(pub Arc<dyn Storage>);

impl CredentialRegister for StoreCredentials {
    fn record(&self, ec: &Certificate, its_id: &[u8]) -> std::result::Result<(), EtsiError> {
        let value = serde_json::to_vec(&CredentialRecord {
            its_id: hex::encode(its_id),
            ec: hex::encode(ec.as_coer()),
        })
        .map_err(|e| EtsiError::Profile(e.to_string()))?;
        let record = (ec.hashed_id8().to_vec(), value);
        self.0
            .blob_put(CREDENTIAL_SPACE, &[record], true, None)
            .map_err(store_err)
    }

    fn find(&self, id: [u8; 8]) -> std::result::Result<Option<(Certificate, Vec<u8>)>, EtsiError> {
        let Some(raw) = self.0.blob_get(CREDENTIAL_SPACE, &id).map_err(store_err)? else {
            return Ok(None);
        };
        let bad = |what: &str| EtsiError::Profile(format!("stored credential: {what}"));
        let r: CredentialRecord = serde_json::from_slice(&raw).map_err(|_| bad("not JSON"))?;
        let ec = hex::decode(&r.ec).map_err(|_| bad("not hex"))?;
        let its_id = hex::decode(&r.its_id).map_err(|_| bad("not hex"))?;
        let ec = Certificate::from_coer_in(CertProfile::EtsiTs103097, &ec)?;
        if ec.hashed_id8() != id {
            return Err(bad("filed under another HashedId8"));
        }
        Ok(Some((ec, its_id)))
    }
}
