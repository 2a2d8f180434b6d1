//! The registration authority's IEEE 1609.2.1 end-entity interface, without
//! transport: what a vehicle stack sends (`EeRaCertRequestSpdu`,
//! `EeRaDownloadRequestSpdu`) and what it gets back (`RaEeCertAckSpdu`, its
//! period's `AcaEeCertResponsePrivateSpdu`s, the certificate chain). The
//! HTTPS front end (`trustca-server`) maps [`EeRefusal`] to statuses.
//!
//! A vehicle is authenticated by its enrolment certificate: an explicit
//! 1609.2 certificate issued by the ECA this RA trusts, valid now, whose
//! `id` names the vehicle and whose `assuranceLevel` carries its trust
//! level. Requests are encrypted to this RA's certificate, signed by the
//! enrolment certificate, at most [`MAX_CLOCK_SKEW_SECS`] old, and never
//! accepted twice (the RA stores each request's hash). The tickets
//! themselves come from [`RegistrationAuthority::submit`] and `flush`,
//! exactly as for the gRPC interface. `docs/v2x-1609dot2dot1.md` is the
//! protocol.

use std::sync::Arc;

use trustca_pseudonym::{ButterflyRequest, ExpansionKey, P256PublicKey};
use trustca_store::Storage;
use trustca_v2x::{
    AdditionalParams, Certificate, CertificateId, CertificateType, EeRaCertRequest, EncryptedData,
    Ieee1609Dot2Content, RaEeCertAck, SECURITY_MGMT_PSID, ScmsPdu, SignedCertificateRequest,
    SignedSpdu, Signer, Time32, V2xSigner, decode_data, hashed_id8,
};

use crate::error::ScmsError;
use crate::registration::{RegistrationAuthority, SPACE, VehicleCredential};

/// Requests whose generation time is further than this from the RA's
/// clock are refused (replays are caught by hash within this window and
/// after it).
pub const MAX_CLOCK_SKEW_SECS: i64 = 300;
/// `e/` ‖ requestHash → handle (32) ‖ BE64(first period) ‖ BE32(periods).
const REQUEST_PREFIX: &[u8] = b"e/";

/// Why a vehicle's request was refused; nothing was stored.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EeRefusal {
    /// Not decodable, not canonical, or outside what the RA accepts.
    #[error("{0}")]
    Malformed(String),
    /// Not encrypted to this RA.
    #[error("the request is not encrypted to this registration authority's certificate")]
    WrongRecipient,
    /// The signer is not a valid enrolment certificate of the ECA.
    #[error("{0}")]
    NotAuthenticated(String),
    /// The vehicle may not have what it asked (revoked, level, permissions).
    #[error("{0}")]
    Forbidden(String),
    /// The same request was received before, or its periods are taken.
    #[error("{0}")]
    Conflict(String),
    /// The file asked for does not exist for this vehicle.
    #[error("no such file for this enrolment certificate")]
    NotFound,
    /// The tickets are not issued yet.
    #[error("the tickets are not ready yet; retry after {retry_after_secs} s")]
    NotReady {
        /// When to ask again.
        retry_after_secs: u64,
    },
    /// The RA failed (store, a peer authority): not the vehicle's fault.
    #[error("{0}")]
    Internal(#[from] ScmsError),
}

type Answer<T> = Result<T, EeRefusal>;

fn malformed(what: &str, e: impl std::fmt::Display) -> EeRefusal {
    EeRefusal::Malformed(format!("{what}: {e}"))
}

/// The RA's IEEE 1609.2.1 certificate and keys.
pub struct RaIdentity {
    /// The RA certificate (PSID 35 with `RaSsp`, an `encryptionKey`).
    pub certificate: Certificate,
    /// Signs acknowledgements.
    pub signer: Arc<dyn V2xSigner + Send + Sync>,
    /// The secret of the certificate's `encryptionKey`.
    pub decryption_key: zeroize::Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for RaIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RaIdentity")
            .field("certificate", &self.certificate.hashed_id8())
            .finish_non_exhaustive()
    }
}

/// The end-entity interface of one registration authority.
#[derive(Debug)]
pub struct EeInterface {
    ra: Arc<RegistrationAuthority>,
    identity: RaIdentity,
    eca: Certificate,
    chain: Vec<u8>,
    /// When the next batch is sent at the latest (for `nextDlTime`).
    batch_wait_secs: i64,
    /// The hash CRLs this RA holds (enrolment and CA certificates).
    hash_crls: Option<crate::hash_crl::HashCrlSet>,
}

impl EeInterface {
    /// The interface of `ra` with its 1609.2 `identity`, accepting
    /// enrolment certificates of `eca`; `chain` is served as the
    /// certificate download (root, ECA, ACA, RA, CRL signer).
    pub fn new(
        ra: Arc<RegistrationAuthority>,
        identity: RaIdentity,
        eca: Certificate,
        chain: &[Certificate],
        batch_wait_secs: i64,
    ) -> Self {
        Self {
            ra,
            identity,
            eca,
            // The first of the chain is the V2X root, the CRACA of every
            // certificate the RA checks.
            hash_crls: chain
                .first()
                .map(|root| crate::hash_crl::HashCrlSet::new(root.clone())),
            chain: trustca_v2x::certificates_to_coer(chain),
            batch_wait_secs,
        }
    }

    /// Takes a newer hash CRL (enrolment or CA certificates) after
    /// verifying it against the V2X root; from then on a request signed by
    /// an enrolment certificate it lists, or under an enrolment CA it
    /// lists, is refused. Returns whether it replaced the held list.
    pub fn accept_hash_crl(&self, crl: crate::hash_crl::HashCrl) -> Result<bool, ScmsError> {
        self.hash_crls
            .as_ref()
            .ok_or_else(|| ScmsError::Config("the RA has no V2X root to check CRLs with".into()))?
            .accept(crl)
    }

    /// The newest hash CRL of `series` this RA holds (served to vehicles
    /// that reach only the RA).
    pub fn hash_crl(&self, series: u16) -> Result<Option<crate::hash_crl::HashCrl>, ScmsError> {
        match &self.hash_crls {
            Some(set) => set.get(series),
            None => Ok(None),
        }
    }

    /// Refuses an enrolment certificate on a hash CRL, or one whose ECA is.
    fn not_on_hash_crl(&self, ec: &Certificate) -> Answer<()> {
        let Some(set) = &self.hash_crls else {
            return Ok(());
        };
        for (what, cert) in [
            ("the enrolment certificate", ec),
            ("its enrolment CA's certificate", &self.eca),
        ] {
            if let Some((series, serial)) = set.revoking(cert)? {
                return Err(EeRefusal::Forbidden(format!(
                    "{what} is revoked: listed on the hash CRL of crlSeries {series} (crlSerial {serial})"
                )));
            }
        }
        Ok(())
    }

    /// The COER `SequenceOfCertificate` served at the chain download.
    pub fn certificate_chain(&self) -> &[u8] {
        &self.chain
    }

    fn store(&self) -> Arc<dyn Storage> {
        self.ra.store()
    }

    /// `POST provision-pseudonym-certificate-batch`: queues the tickets and
    /// answers with the signed `RaEeCertAckSpdu`.
    pub fn certificate_request(&self, body: &[u8], now: i64) -> Answer<Vec<u8>> {
        let plain = self.decrypt(body)?;
        let Ieee1609Dot2Content::SignedCertificateRequest(inner) =
            decode_data(&plain).map_err(|e| malformed("the decrypted request", e))?
        else {
            return Err(EeRefusal::Malformed(
                "the decrypted request is not a signedCertificateRequest".into(),
            ));
        };
        let signed =
            SignedCertificateRequest::from_coer(inner, |b| Ok(ScmsPdu::decode_prefix(b)?.1))
                .map_err(|e| malformed("SignedCertificateRequest", e))?;
        let Signer::Certificate(ec) = signed.signer() else {
            return Err(EeRefusal::NotAuthenticated(
                "the request must be signed by an enrolment certificate".into(),
            ));
        };
        let vehicle = self.authenticate(ec, now)?;
        signed.verify(&ec.tbs().verification_key).map_err(|_| {
            EeRefusal::NotAuthenticated("the request's signature does not verify".into())
        })?;
        // Before the RA's own vehicle record: the CRL is what every RA
        // (and any other relying party) can check.
        self.not_on_hash_crl(ec)?;
        let ScmsPdu::EeRaCertRequest(request) =
            ScmsPdu::from_coer(signed.tbs_request()).map_err(|e| malformed("tbsRequest", e))?
        else {
            return Err(EeRefusal::Malformed(
                "tbsRequest is not an eeRaCertRequest".into(),
            ));
        };
        fresh(request.generation_time, now)?;
        let (butterfly, first, periods) = self.check_request(&request, &vehicle, now)?;
        let request_hash = hashed_id8(body);
        let key = [REQUEST_PREFIX, &request_hash[..]].concat();
        if self
            .store()
            .blob_get(SPACE, &key)
            .map_err(ScmsError::from)?
            .is_some()
        {
            return Err(EeRefusal::Conflict(
                "this request was received before (replayed)".into(),
            ));
        }
        self.ra
            .submit(&vehicle, &butterfly, Some(first), periods, now)
            .map_err(refusal)?;
        let mut record = self.ra.handle(&vehicle.id).0.to_vec();
        record.extend_from_slice(&first.to_be_bytes());
        record.extend_from_slice(&periods.to_be_bytes());
        self.store()
            .blob_put(SPACE, &[(key, record)], true, None)
            .map_err(ScmsError::from)?;
        // Sends at once if the batch is now due (as the gRPC interface
        // does); otherwise the RA's timer does. A failed send is retried by
        // the timer: the request is queued either way.
        let sent = match self.ra.flush(now, false) {
            Ok(_) => self.ra.queued().1 == 0,
            Err(e) => {
                tracing::warn!(error = %e, "V2X batch not sent; the timer retries");
                false
            }
        };
        let ready_at = if sent {
            now
        } else {
            now + self.batch_wait_secs
        };
        let ack = ScmsPdu::RaEeCertAck(RaEeCertAck {
            generation_time: time32(now)?,
            request_hash,
            first_i: u16::try_from(first).ok(),
            next_dl_time: time32(ready_at)?,
        });
        Ok(self.sign(&ack.to_coer(), now)?)
    }

    /// `GET download` with `Download-Req`: the period's responses, named
    /// `<i hex>_<j hex>.oer`.
    pub fn download(&self, request: &[u8], now: i64) -> Answer<Vec<(String, Vec<u8>)>> {
        let plain = self.decrypt(request)?;
        let signed =
            SignedSpdu::from_coer(&plain).map_err(|e| malformed("the download request", e))?;
        if signed.psid() != SECURITY_MGMT_PSID {
            return Err(EeRefusal::Malformed(
                "the download request's psid is not 35".into(),
            ));
        }
        let vehicle = self.authenticate(signed.signer(), now)?;
        signed.verify().map_err(|_| {
            EeRefusal::NotAuthenticated("the download request's signature does not verify".into())
        })?;
        self.not_on_hash_crl(signed.signer())?;
        let ScmsPdu::EeRaDownloadRequest(dl) = ScmsPdu::from_coer(signed.payload())
            .map_err(|e| malformed("the download request", e))?
        else {
            return Err(EeRefusal::Malformed(
                "the payload is not an eeRaDownloadRequest".into(),
            ));
        };
        fresh(dl.generation_time, now)?;
        let (request_hash, i) = parse_filename(&dl.filename)?;
        let key = [REQUEST_PREFIX, &request_hash[..]].concat();
        let record = self
            .store()
            .blob_get(SPACE, &key)
            .map_err(ScmsError::from)?
            .ok_or(EeRefusal::NotFound)?;
        let (handle, span) = record.split_at(32);
        let first = u64::from_be_bytes(span[..8].try_into().map_err(|_| EeRefusal::NotFound)?);
        let periods = u32::from_be_bytes(span[8..12].try_into().map_err(|_| EeRefusal::NotFound)?);
        if handle != self.ra.handle(&vehicle.id).0
            || !(first..first + u64::from(periods)).contains(&i)
        {
            return Err(EeRefusal::NotFound);
        }
        let responses = self
            .ra
            .download_period(&vehicle, i)
            .map_err(EeRefusal::from)?;
        if responses.is_empty() {
            return Err(EeRefusal::NotReady {
                retry_after_secs: self.batch_wait_secs.max(1) as u64,
            });
        }
        Ok(responses
            .into_iter()
            .map(|(j, r)| (format!("{i:x}_{j:x}.oer"), r))
            .collect())
    }

    /// Opens a request encrypted to this RA's certificate.
    fn decrypt(&self, body: &[u8]) -> Answer<Vec<u8>> {
        let Ieee1609Dot2Content::Encrypted(data) =
            decode_data(body).map_err(|e| malformed("the request", e))?
        else {
            return Err(EeRefusal::Malformed(
                "the request is not encryptedData".into(),
            ));
        };
        let me = self.identity.certificate.hashed_id8();
        if !data.recipients().iter().any(|r| r.recipient_id == me) {
            return Err(EeRefusal::WrongRecipient);
        }
        open(
            &data,
            &self.identity.decryption_key,
            &self.identity.certificate,
        )
    }

    /// The vehicle an enrolment certificate names, if it is one of the ECA's
    /// valid now.
    fn authenticate(&self, ec: &Certificate, now: i64) -> Answer<VehicleCredential> {
        let deny = |why: &str| EeRefusal::NotAuthenticated(format!("enrolment certificate {why}"));
        ec.verify_signed_by(Some(&self.eca))
            .map_err(|_| deny("is not issued by this RA's enrolment CA"))?;
        let t = time32(now)?;
        if !ec.tbs().validity.contains(t) {
            return Err(deny("is not valid now"));
        }
        if ec.tbs().cert_request_permissions.is_none() {
            return Err(deny("carries no certRequestPermissions"));
        }
        let CertificateId::Name(id) = &ec.tbs().id else {
            return Err(deny("does not name a vehicle"));
        };
        let level = ec
            .tbs()
            .assurance_level
            .and_then(|a| a.trust_level())
            .ok_or_else(|| deny("carries no trust level"))?;
        Ok(VehicleCredential {
            id: id.clone(),
            level,
        })
    }

    /// The butterfly parameters and the periods an `EeRaCertRequest` asks
    /// for, if the RA grants them.
    fn check_request(
        &self,
        request: &EeRaCertRequest,
        vehicle: &VehicleCredential,
        now: i64,
    ) -> Answer<(ButterflyRequest, u64, u32)> {
        if request.cert_type != CertificateType::Explicit {
            return Err(EeRefusal::Malformed(
                "only explicit tickets are issued".into(),
            ));
        }
        let tbs = &request.tbs_cert;
        if tbs.craca_id != [0; 3] || tbs.crl_series != 0 {
            return Err(EeRefusal::Malformed(
                "tbsCert cracaId must be 000000 and crlSeries 0".into(),
            ));
        }
        let Some(AdditionalParams::Unified(k)) = request.additional_params else {
            return Err(EeRefusal::Malformed(
                "additionalParams must be unified butterfly keys (original, compactUnified and a single encryptionKey are not supported)".into(),
            ));
        };
        let profile = self.ra.profile();
        let granted = profile.permissions_for(vehicle.level).map_err(refusal)?;
        for wanted in tbs.app_permissions.iter().flatten() {
            if !granted.iter().any(|g| g.psid == wanted.psid) {
                return Err(EeRefusal::Forbidden(format!(
                    "PSID {} is not granted to tickets of trust level {}",
                    wanted.psid, vehicle.level
                )));
            }
        }
        let start = tbs.validity.start.to_unix();
        let end = start + tbs.validity.duration.as_seconds() as i64;
        let current = profile.period_at(now).ok_or_else(|| {
            EeRefusal::Internal(ScmsError::Profile("clock before the epoch".into()))
        })?;
        let last = profile
            .period_at(end - 1)
            .filter(|l| end > now && *l >= current)
            .ok_or_else(|| {
                EeRefusal::Malformed("the requested validity period is in the past".into())
            })?;
        let first = profile.period_at(start).unwrap_or(current).max(current);
        let periods = u32::try_from(last - first + 1)
            .ok()
            .filter(|n| *n <= profile.max_periods_per_request)
            .ok_or_else(|| {
                EeRefusal::Forbidden(format!(
                    "at most {} periods per request",
                    profile.max_periods_per_request
                ))
            })?;
        let caterpillar = P256PublicKey::from_sec1_uncompressed(
            &tbs.verification_key
                .uncompressed()
                .map_err(|e| malformed("verificationKey", e))?,
        )
        .map_err(|e| malformed("verificationKey", e))?;
        Ok((
            ButterflyRequest::new(caterpillar, ExpansionKey::from_bytes(k)),
            first,
            periods,
        ))
    }

    fn sign(&self, pdu: &[u8], now: i64) -> Result<Vec<u8>, ScmsError> {
        let t = time32(now).map_err(|_| ScmsError::Profile("clock out of range".into()))?;
        Ok(SignedSpdu::sign(
            pdu,
            SECURITY_MGMT_PSID,
            Some(u64::from(t.0) * 1_000_000),
            &self.identity.certificate,
            self.identity.signer.as_ref(),
        )?
        .as_coer()
        .to_vec())
    }
}

fn open(data: &EncryptedData, secret: &[u8; 32], cert: &Certificate) -> Answer<Vec<u8>> {
    data.open_as_certificate(secret, cert).map_err(|_| {
        EeRefusal::Malformed(
            "the request names this RA as recipient but does not decrypt with its key".into(),
        )
    })
}

fn time32(t: i64) -> Answer<Time32> {
    Time32::from_unix(t).map_err(|e| EeRefusal::Internal(e.into()))
}

fn fresh(generation_time: Time32, now: i64) -> Answer<()> {
    if (generation_time.to_unix() - now).abs() > MAX_CLOCK_SKEW_SECS {
        return Err(EeRefusal::Malformed(format!(
            "generationTime is more than {MAX_CLOCK_SKEW_SECS} s from the RA's clock"
        )));
    }
    Ok(())
}

/// `<16 hex of requestHash>_<i in hex>.zip`.
fn parse_filename(name: &str) -> Answer<([u8; 8], u64)> {
    let bad = || {
        EeRefusal::Malformed(format!(
            "filename {name:?} is not <requestHash hex>_<i hex>.zip"
        ))
    };
    let stem = name.strip_suffix(".zip").ok_or_else(bad)?;
    let (hash, i) = stem.split_once('_').ok_or_else(bad)?;
    let hash: [u8; 8] = hex::decode(hash)
        .ok()
        .and_then(|h| h.try_into().ok())
        .ok_or_else(bad)?;
    let i = u64::from_str_radix(i, 16).map_err(|_| bad())?;
    Ok((hash, i))
}

/// The RA's own refusals of a vehicle, as the interface reports them.
fn refusal(e: ScmsError) -> EeRefusal {
    match e {
        ScmsError::Revoked { .. } | ScmsError::LevelTooLow { .. } => {
            EeRefusal::Forbidden(e.to_string())
        }
        ScmsError::Profile(m) if m.contains("already") => EeRefusal::Conflict(m),
        ScmsError::Profile(m) => EeRefusal::Forbidden(m),
        other => EeRefusal::Internal(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filenames_parse_strictly() {
        assert_eq!(
            parse_filename("0102030405060708_41a.zip").unwrap(),
            ([1, 2, 3, 4, 5, 6, 7, 8], 0x41a)
        );
        for bad in [
            "0102030405060708_41a",
            "01020304_1.zip",
            "zz02030405060708_1.zip",
            "0102030405060708_.zip",
        ] {
            assert!(parse_filename(bad).is_err(), "{bad}");
        }
    }
}
