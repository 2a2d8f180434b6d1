//! Hash-based IEEE 1609.2 CRLs (`fullHashCrl`): revoked enrolment
//! certificates and revoked V2X CA certificates, each listed by its
//! HashedId10 with its expiry, the way US SCMS's CRL generator lists
//! certificates that have no linkage data.
//!
//! * [`HashCrlRegister`] is the CRL generator's state in the enrolment CA's
//!   store: which enrolment certificates were issued to which vehicle
//!   (recorded at issuance, so a revoked vehicle's certificates can be
//!   found), and which certificates are revoked, per `crlSeries`. Every
//!   change is written with its audit entry in one commit; `crlSerial`s
//!   come from the store's CRL number counter (`v2x-hash-crl-<series>`),
//!   so replicas sharing a store never reuse one.
//! * [`HashCrl`] is a signed list: built from the register (entries whose
//!   certificate has expired drop off, IEEE 1609.2 7.3.3), parsed strictly,
//!   verified against the CRACA, and asked whether it lists a certificate.
//!
//! A certificate is covered by the list of its own `cracaId` and
//! `crlSeries`, so each revoked certificate goes on the series it names;
//! the series numbers themselves are the CA's (`docs/pseudonyms.md`).

use std::collections::HashMap;
use std::sync::Arc;

use trustca_store::{BlobAudit, Storage};
use trustca_v2x::{
    Certificate, CrlBody, CrlContents, HashIdCrl, HashRevocation, SecuredCrl, Time32, V2xSigner,
};

use crate::error::{Result, ScmsError};

/// The record space of the register in the enrolment CA's store.
pub const SPACE: &str = "v2x.hash-crl";
/// `i/` ‖ SHA-256(vehicle id) ‖ HashedId10 → BE16 crlSeries ‖ BE32 expiry:
/// an enrolment certificate issued to the vehicle.
const ISSUED: &[u8] = b"i/";
/// `r/` ‖ BE16 crlSeries ‖ HashedId10 → BE32 expiry ‖ BE64 revocation time.
const REVOKED: &[u8] = b"r/";
/// `v/` ‖ SHA-256(vehicle id) → BE64 revocation time: the vehicle may not
/// enrol again (a new enrolment certificate would be on no list).
const VEHICLE_REVOKED: &[u8] = b"v/";

fn vehicle_revoked_key(vehicle: &str) -> Vec<u8> {
    [
        VEHICLE_REVOKED,
        &trustca_v2x::sha256(vehicle.as_bytes())[..],
    ]
    .concat()
}

fn vehicle_prefix(vehicle: &str) -> Vec<u8> {
    [ISSUED, &trustca_v2x::sha256(vehicle.as_bytes())[..]].concat()
}

fn revoked_key(series: u16, id: &[u8; 10]) -> Vec<u8> {
    [REVOKED, &series.to_be_bytes()[..], &id[..]].concat()
}

fn malformed(what: &'static str, len: usize) -> ScmsError {
    ScmsError::Malformed {
        what,
        reason: format!("{len} bytes"),
    }
}

/// The CRL generator's register over the enrolment CA's store.
pub struct HashCrlRegister {
    store: Arc<dyn Storage>,
}

impl std::fmt::Debug for HashCrlRegister {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashCrlRegister").finish_non_exhaustive()
    }
}

impl HashCrlRegister {
    /// The register in `store` (space [`SPACE`]).
    pub fn new(store: Arc<dyn Storage>) -> Self {
        Self { store }
    }

    /// Records that `certificate` (an enrolment certificate) was issued to
    /// `vehicle`, so that revoking the vehicle lists it.
    pub fn record_issued(&self, vehicle: &str, certificate: &Certificate, now: i64) -> Result<()> {
        let entry = HashRevocation::of(certificate)?;
        let key = [vehicle_prefix(vehicle), entry.id.to_vec()].concat();
        let mut value = certificate.tbs().crl_series.to_be_bytes().to_vec();
        value.extend_from_slice(&entry.expiry.0.to_be_bytes());
        let audit = BlobAudit {
            actor: "eca".into(),
            kind: "v2x.enrolment-certificate.issued".into(),
            subject: vehicle.into(),
            detail: serde_json::json!({ "hashed_id10": hex::encode(entry.id) }).to_string(),
            at: now,
        };
        self.store
            .blob_put(SPACE, &[(key, value)], false, Some(&audit))?;
        Ok(())
    }

    /// Whether `vehicle` was revoked (then it may not enrol again).
    pub fn vehicle_revoked(&self, vehicle: &str) -> Result<bool> {
        Ok(self
            .store
            .blob_get(SPACE, &vehicle_revoked_key(vehicle))?
            .is_some())
    }

    /// Puts every enrolment certificate issued to `vehicle` and not yet
    /// expired on the list of its `crlSeries`, and marks the vehicle so
    /// that it cannot enrol again. Returns how many certificates are
    /// listed now for the vehicle (revoking again is harmless).
    pub fn revoke_vehicle(&self, vehicle: &str, actor: &str, now: i64) -> Result<usize> {
        let t = Time32::from_unix(now)?;
        let mut records = vec![(vehicle_revoked_key(vehicle), now.to_be_bytes().to_vec())];
        let mut listed = 0;
        let mut ids = Vec::new();
        // One vehicle's enrolment certificates: a few by construction.
        for (key, value) in self.store.blob_scan(SPACE, &vehicle_prefix(vehicle))? {
            let (Some(id), Ok(v)) = (
                key.get(key.len().saturating_sub(10)..)
                    .and_then(|b| <[u8; 10]>::try_from(b).ok()),
                <[u8; 6]>::try_from(value.as_slice()),
            ) else {
                return Err(malformed(
                    "issued enrolment certificate record",
                    value.len(),
                ));
            };
            let series = u16::from_be_bytes([v[0], v[1]]);
            let expiry = u32::from_be_bytes([v[2], v[3], v[4], v[5]]);
            if expiry < t.0 {
                continue;
            }
            records.push(revocation_record(series, &id, expiry, now));
            ids.push(hex::encode(id));
            listed += 1;
        }
        let audit = BlobAudit {
            actor: actor.into(),
            kind: "v2x.enrolment-certificate.revoked".into(),
            subject: vehicle.into(),
            detail: serde_json::json!({ "hashed_id10": ids }).to_string(),
            at: now,
        };
        self.store.blob_put(SPACE, &records, false, Some(&audit))?;
        Ok(listed)
    }

    /// Puts `certificate` (a V2X CA certificate) on the list of its
    /// `crlSeries`, with the operator's `reason` in the audit entry.
    pub fn revoke_certificate(
        &self,
        certificate: &Certificate,
        reason: &str,
        actor: &str,
        now: i64,
    ) -> Result<HashRevocation> {
        let entry = HashRevocation::of(certificate)?;
        if entry.expiry < Time32::from_unix(now)? {
            return Err(ScmsError::Profile(
                "the certificate has expired; no CRL lists it".into(),
            ));
        }
        let series = certificate.tbs().crl_series;
        let audit = BlobAudit {
            actor: actor.into(),
            kind: "v2x.ca-certificate.revoked".into(),
            subject: hex::encode(certificate.hashed_id8()),
            detail: serde_json::json!({
                "hashed_id10": hex::encode(entry.id),
                "crl_series": series,
                "reason": reason,
            })
            .to_string(),
            at: now,
        };
        self.store.blob_put(
            SPACE,
            &[revocation_record(series, &entry.id, entry.expiry.0, now)],
            false,
            Some(&audit),
        )?;
        Ok(entry)
    }

    /// The entries of series `series` whose certificates have not expired
    /// at `now`, in HashedId10 order (expired ones drop off the list; their
    /// records stay in the store for the audit trail).
    pub fn entries(&self, series: u16, now: i64) -> Result<Vec<HashRevocation>> {
        let t = Time32::from_unix(now)?;
        let prefix = [REVOKED, &series.to_be_bytes()[..]].concat();
        let mut out = Vec::new();
        // A page at a time: expired entries stay in the store for good, so
        // the series' records only grow.
        for item in trustca_store::blob_pages(
            self.store.as_ref(),
            SPACE,
            &prefix,
            trustca_store::STORE_PAGE,
        ) {
            let (key, value) = item?;
            let (Ok(id), Some(expiry)) = (
                <[u8; 10]>::try_from(&key[prefix.len()..]),
                value
                    .get(..4)
                    .and_then(|b| <[u8; 4]>::try_from(b).ok())
                    .map(u32::from_be_bytes),
            ) else {
                return Err(malformed("hash CRL entry", value.len()));
            };
            if expiry >= t.0 {
                out.push(HashRevocation {
                    id,
                    expiry: Time32(expiry),
                });
            }
        }
        out.sort_by_key(|e| e.id);
        Ok(out)
    }

    /// Signs the current list of `series` with the next `crlSerial`, valid
    /// from `now` until `now + validity_secs` (`nextCrl`).
    pub fn sign(
        &self,
        series: u16,
        signer_certificate: &Certificate,
        signer: &dyn V2xSigner,
        now: i64,
        validity_secs: i64,
    ) -> Result<HashCrl> {
        let entries = self.entries(series, now)?;
        // Allocated (durably, atomically) before signing: no two lists of
        // a series share a serial, even from two replicas.
        let serial = self
            .store
            .next_crl_number(&format!("v2x-hash-crl-{series}"))?;
        let serial = u32::try_from(serial)
            .map_err(|_| ScmsError::Profile(format!("crlSerial of series {series} exhausted")))?;
        HashCrl::sign(
            series,
            serial,
            entries,
            signer_certificate,
            signer,
            (now, now + validity_secs),
        )
    }
}

fn revocation_record(series: u16, id: &[u8; 10], expiry: u32, now: i64) -> (Vec<u8>, Vec<u8>) {
    let mut value = expiry.to_be_bytes().to_vec();
    value.extend_from_slice(&now.to_be_bytes());
    (revoked_key(series, id), value)
}

/// A signed hash-based CRL (`SecuredCrl` with `fullHashCrl`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashCrl {
    /// `crlSeries`.
    pub crl_series: u16,
    /// `crlSerial`.
    pub crl_serial: u32,
    /// `crlCraca`.
    pub crl_craca: [u8; 8],
    /// `issueDate`.
    pub this_update: Time32,
    /// `nextCrl`.
    pub next_update: Time32,
    /// The revoked certificates.
    pub entries: Vec<HashRevocation>,
    secured: SecuredCrl,
}

impl HashCrl {
    /// Signs a full hash CRL of `entries` (those expired at the issue date
    /// left out) with the CRL signer; `times` = (`issueDate`, `nextCrl`),
    /// Unix time. `crlCraca` is what the signer's `CrlSsp` names, and the
    /// signer must be permitted `series`.
    pub fn sign(
        series: u16,
        serial: u32,
        entries: Vec<HashRevocation>,
        signer_certificate: &Certificate,
        signer: &dyn V2xSigner,
        times: (i64, i64),
    ) -> Result<Self> {
        let issue_date = Time32::from_unix(times.0)?;
        let entries: Vec<_> = entries
            .into_iter()
            .filter(|e| e.expiry >= issue_date)
            .collect();
        if entries.len() > crate::crl::MAX_ENTRIES {
            return Err(ScmsError::Profile(format!(
                "at most {} CRL entries",
                crate::crl::MAX_ENTRIES
            )));
        }
        let contents = CrlContents {
            crl_series: series,
            crl_craca: crate::crl::crl_craca(signer_certificate)?,
            issue_date,
            next_crl: Time32::from_unix(times.1)?,
            priority: None,
            body: CrlBody::FullHash(HashIdCrl {
                crl_serial: serial,
                entries,
            }),
        };
        Self::from_secured(SecuredCrl::sign(&contents, signer_certificate, signer)?)
    }

    /// Parses strictly (a `SecuredCrl` with a full hash CRL). The signature
    /// is not checked here: call [`HashCrl::verify`].
    pub fn from_bytes(b: &[u8]) -> Result<Self> {
        Self::from_secured(SecuredCrl::from_coer(b)?)
    }

    fn from_secured(secured: SecuredCrl) -> Result<Self> {
        let c = secured.contents();
        let CrlBody::FullHash(h) = &c.body else {
            return Err(ScmsError::Malformed {
                what: "hash CRL",
                reason: "not a full hash-based CRL".into(),
            });
        };
        Ok(Self {
            crl_series: c.crl_series,
            crl_serial: h.crl_serial,
            crl_craca: c.crl_craca,
            this_update: c.issue_date,
            next_update: c.next_crl,
            entries: h.entries.clone(),
            secured,
        })
    }

    /// Verifies the list against the CRACA `craca` (the V2X root): the
    /// signature over the bytes as received with the carried CRL signer
    /// certificate, whose `CrlSsp` must permit this series and name
    /// `craca` (and which must be issued by it when the SSP says
    /// `issuerIsCraca`).
    pub fn verify(&self, craca: &Certificate) -> Result<()> {
        Ok(self.secured.verify(Some(craca))?)
    }

    /// Whether the list covers `certificate` (same `cracaId` and
    /// `crlSeries`) and lists it by HashedId10.
    pub fn lists(&self, certificate: &Certificate) -> bool {
        let tbs = certificate.tbs();
        tbs.crl_series == self.crl_series
            && tbs.craca_id == self.crl_craca[5..]
            && self.lists_id(&trustca_v2x::hashed_id10(certificate.as_coer()))
    }

    /// Whether `id` (a HashedId10) is on the list.
    pub fn lists_id(&self, id: &[u8; 10]) -> bool {
        self.entries.iter().any(|e| &e.id == id)
    }

    /// The COER encoding of the `SecuredCrl`.
    pub fn as_bytes(&self) -> &[u8] {
        self.secured.as_coer()
    }

    /// The CRL signer certificate the list carries.
    pub fn signer_certificate(&self) -> &Certificate {
        self.secured.signer()
    }
}

/// The newest verified hash CRL of each series a relying party (the
/// registration authority) holds, to refuse listed certificates.
#[derive(Debug)]
pub struct HashCrlSet {
    craca: Certificate,
    lists: std::sync::RwLock<HashMap<u16, HashCrl>>,
}

impl HashCrlSet {
    /// An empty set for lists of the CRACA `craca` (the V2X root).
    pub fn new(craca: Certificate) -> Self {
        Self {
            craca,
            lists: Default::default(),
        }
    }

    /// Takes `crl` if it verifies against the CRACA and is not older than
    /// the list of its series already held (a lower `crlSerial` is
    /// refused, so an old list cannot be replayed to un-revoke). Returns
    /// whether it replaced the held one.
    pub fn accept(&self, crl: HashCrl) -> Result<bool> {
        crl.verify(&self.craca)?;
        let mut lists = self
            .lists
            .write()
            .map_err(|_| ScmsError::Response("the CRL set lock is poisoned".into()))?;
        match lists.get(&crl.crl_series) {
            Some(held) if held.crl_serial > crl.crl_serial => Err(ScmsError::Response(format!(
                "CRL series {} serial {} is older than the held serial {}",
                crl.crl_series, crl.crl_serial, held.crl_serial
            ))),
            Some(held) if held == &crl => Ok(false),
            _ => {
                lists.insert(crl.crl_series, crl);
                Ok(true)
            }
        }
    }

    /// The held list of `series`, if any.
    pub fn get(&self, series: u16) -> Result<Option<HashCrl>> {
        let lists = self
            .lists
            .read()
            .map_err(|_| ScmsError::Response("the CRL set lock is poisoned".into()))?;
        Ok(lists.get(&series).cloned())
    }

    /// The list (series, serial) that revokes `certificate`, if any.
    pub fn revoking(&self, certificate: &Certificate) -> Result<Option<(u16, u32)>> {
        let lists = self
            .lists
            .read()
            .map_err(|_| ScmsError::Response("the CRL set lock is poisoned".into()))?;
        Ok(lists
            .get(&certificate.tbs().crl_series)
            .filter(|crl| crl.lists(certificate))
            .map(|crl| (crl.crl_series, crl.crl_serial)))
    }
}
