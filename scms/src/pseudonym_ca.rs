//! The pseudonym CA (authorization authority): signs IEEE 1609.2
//! authorization tickets for shuffled batches of requests from many
//! vehicles, and answers each request with an IEEE 1609.2.1
//! `AcaEeCertResponsePrivateSpdu`: the ticket and the CA's key contribution
//! encrypted to the vehicle's cocoon key, signed by this CA.
//!
//! What it receives per ticket ([`TicketRequest`]): a random request id, a
//! cocoon public key already expanded by the registration authority, the
//! period, the trust level, and two pre-linkage values sealed to it by the
//! linkage authorities. Nothing names or groups vehicles.
//!
//! What it stores, per ticket, in one commit per batch:
//! `t/` ‖ BE16(iCert) ‖ linkage value (9) → LA1's chain envelope (44) ‖
//! LA2's chain envelope (44) ‖ HashedId8 of the ticket (8): 96 bytes for
//! every ticket, none of which it can open. Its audit log gets one entry
//! per batch with the count, timed to the start of the hour.

use std::collections::HashSet;
use std::sync::Arc;

use trustca_pseudonym::{
    CaContribution, CertLinkageValue, LaId, LinkageRevocation, P256PublicKey, PreLinkageValue,
};
use trustca_store::{BlobAudit, KeyValue, Storage};
use trustca_v2x::{
    AcaEeCertResponse, CertProfile, Certificate, CertificateId, EncryptedData, LinkageData,
    PublicKeyP256, SECURITY_MGMT_PSID, ScmsPdu, SignedSpdu, Time32, ToBeSigned, V2xSigner,
    encrypted_data,
};

use crate::crl::{LinkageCrl, LinkageCrlParams};
use crate::envelope::{CHAIN_ENVELOPE_LEN, LinkKey, random_bytes};
use crate::error::{Result, ScmsError};
use crate::linkage_authority::{ChainEnvelope, EncryptedPlv, plv_aad};
use crate::profile::{MAX_PERIOD, TicketFormat, TicketProfile};
use crate::profile_slot::ProfileSlot;

/// Store space of the pseudonym CA.
pub const SPACE: &str = "v2x.pca";
const TICKET_PREFIX: &[u8] = b"t/";
const CRL_ENTRIES_KEY: &[u8] = b"l/entries";
/// Length of each per-ticket record.
pub const TICKET_RECORD_LEN: usize = 2 * CHAIN_ENVELOPE_LEN + 8;
/// Length of [`TicketRequest::to_bytes`].
pub const TICKET_REQUEST_LEN: usize = 16 + 65 + 8 + 1 + 2 * crate::envelope::ENCRYPTED_PLV_LEN;
/// Most requests in one batch.
pub const MAX_BATCH: usize = 50_000;
/// Audit entries are timed to the start of this window (seconds).
pub const AUDIT_WINDOW_SECS: i64 = 3600;
/// The name under which linkage-CRL numbers are allocated (one counter per
/// `iRev`, giving `indexWithinI`).
const CRL_COUNTER: &str = "v2x-linkage-crl";
/// How long a linkage CRL is current (`nextCrl - issueDate`).
pub const CRL_LIFETIME_SECS: i64 = 7 * 24 * 3600;

/// One ticket request as the registration authority forwards it.
#[derive(Debug, Clone)]
pub struct TicketRequest {
    /// Random per ticket; routes the response back, links nothing.
    pub request_id: [u8; 16],
    /// The cocoon key `B = A + f(k, i, j)·G` (the RA expanded it).
    pub cocoon: P256PublicKey,
    /// The period `i` (iCert).
    pub period: u64,
    /// The vehicle's live trust level.
    pub level: u8,
    /// The pre-linkage values of LA1 and LA2, sealed to this CA.
    pub plv: [EncryptedPlv; 2],
}

impl TicketRequest {
    /// Fixed-length wire form: id ‖ cocoon (65) ‖ BE64 period ‖ level ‖
    /// plv1 (81) ‖ plv2 (81).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(TICKET_REQUEST_LEN);
        out.extend_from_slice(&self.request_id);
        out.extend_from_slice(&self.cocoon.to_sec1_uncompressed());
        out.extend_from_slice(&self.period.to_be_bytes());
        out.push(self.level);
        out.extend_from_slice(&self.plv[0].0);
        out.extend_from_slice(&self.plv[1].0);
        out
    }

    /// Parses [`TicketRequest::to_bytes`].
    pub fn from_bytes(b: &[u8]) -> Result<Self> {
        if b.len() != TICKET_REQUEST_LEN {
            return Err(ScmsError::Malformed {
                what: "ticket request",
                reason: format!("{} bytes, expected {TICKET_REQUEST_LEN}", b.len()),
            });
        }
        let mut request_id = [0u8; 16];
        request_id.copy_from_slice(&b[..16]);
        let cocoon = P256PublicKey::from_sec1_uncompressed(&b[16..81])?;
        let mut period = [0u8; 8];
        period.copy_from_slice(&b[81..89]);
        let plv_len = crate::envelope::ENCRYPTED_PLV_LEN;
        Ok(Self {
            request_id,
            cocoon,
            period: u64::from_be_bytes(period),
            level: b[89],
            plv: [
                EncryptedPlv::from_slice(&b[90..90 + plv_len])?,
                EncryptedPlv::from_slice(&b[90 + plv_len..])?,
            ],
        })
    }
}

/// The answer to one [`TicketRequest`].
#[derive(Debug, Clone)]
pub struct TicketResponse {
    /// The request's id.
    pub request_id: [u8; 16],
    /// The COER `AcaEeCertResponsePrivateSpdu` (signed by this CA; the
    /// `AcaEeCertResponse` with the ticket and `c` inside is encrypted to
    /// the cocoon key), or why this request was refused.
    pub outcome: std::result::Result<Vec<u8>, String>,
}

pub(crate) fn to_v2x_key(key: &P256PublicKey) -> Result<PublicKeyP256> {
    Ok(PublicKeyP256::from_sec1(&key.to_sec1_uncompressed())?)
}

/// The pseudonym CA.
pub struct PseudonymCa {
    store: Arc<dyn Storage>,
    signer: Arc<dyn V2xSigner + Send + Sync>,
    certificate: Certificate,
    links: [(LaId, LinkKey); 2],
    /// The ticket profile in force (a policy reload replaces it).
    profile: ProfileSlot,
    crl_signer: Option<(Arc<dyn V2xSigner + Send + Sync>, Certificate)>,
}

impl std::fmt::Debug for PseudonymCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PseudonymCa")
            .field("certificate", &hex8(&self.certificate.hashed_id8()))
            .field("linkage_authorities", &[self.links[0].0, self.links[1].0])
            .finish_non_exhaustive()
    }
}

fn hex8(b: &[u8; 8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl PseudonymCa {
    /// A pseudonym CA with its own store, its 1609.2 certificate and
    /// signing key, and the transport keys it shares with LA1 and LA2,
    /// issuing under `profile` (a fixed one, or the server's slot that a
    /// policy reload replaces).
    pub fn new(
        store: Arc<dyn Storage>,
        signer: Arc<dyn V2xSigner + Send + Sync>,
        certificate: Certificate,
        links: [(LaId, LinkKey); 2],
        profile: impl Into<ProfileSlot>,
    ) -> Self {
        Self {
            store,
            signer,
            certificate,
            links,
            profile: profile.into(),
            crl_signer: None,
        }
    }

    /// Signs linkage CRLs with the CRL signer `certificate` (PSID 256, its
    /// `CrlSsp` permitting the profile's `crl_series`) and its key. Without
    /// one, [`PseudonymCa::revoke`] and [`PseudonymCa::current_crl`]
    /// refuse: an authorization authority may not sign CRLs.
    pub fn with_crl_signer(
        mut self,
        signer: Arc<dyn V2xSigner + Send + Sync>,
        certificate: Certificate,
    ) -> Result<Self> {
        let ssp = trustca_v2x::CrlSsp::of(&certificate)?
            .ok_or_else(|| ScmsError::Config("the CRL signer certificate lacks PSID 256".into()))?;
        let crl_series = self.profile.current().crl_series;
        if !ssp.crls.contains(&crl_series) {
            return Err(ScmsError::Config(format!(
                "the CRL signer may not sign CRL series {crl_series} (the ticket profile's)"
            )));
        }
        if certificate.issuer() != self.certificate.issuer() {
            return Err(ScmsError::Config(
                "the CRL signer and the pseudonym CA have different issuers (CRACAs)".into(),
            ));
        }
        self.crl_signer = Some((signer, certificate));
        Ok(self)
    }

    /// This authority's own store.
    pub fn store(&self) -> Arc<dyn Storage> {
        Arc::clone(&self.store)
    }

    /// This CA's certificate (the issuer of every ticket).
    pub fn certificate(&self) -> &Certificate {
        &self.certificate
    }

    /// The profile in force now.
    pub fn profile(&self) -> Arc<TicketProfile> {
        self.profile.current()
    }

    /// Where a policy reload puts a new profile for this CA.
    pub fn profile_slot(&self) -> &ProfileSlot {
        &self.profile
    }

    /// Issues a batch: every accepted ticket's record is durable before
    /// any response is returned. A refused request gets its reason and
    /// changes nothing; the others are issued. A request for a ticket
    /// already issued (same period and linkage value: the same vehicle
    /// asking twice for a period, in this batch or an earlier one) is
    /// refused on its own, so that it cannot fail everyone's batch.
    pub fn issue_batch(&self, batch: &[TicketRequest], now: i64) -> Result<Vec<TicketResponse>> {
        if batch.len() > MAX_BATCH {
            return Err(ScmsError::Profile(format!(
                "at most {MAX_BATCH} requests per batch"
            )));
        }
        // One version of the profile for the whole batch.
        let profile = self.profile.current();
        let mut responses = Vec::with_capacity(batch.len());
        let mut records: Vec<KeyValue> = Vec::with_capacity(batch.len());
        let mut keys = HashSet::with_capacity(batch.len());
        for (request, issued) in batch.iter().zip(self.issue_parallel(batch, &profile, now)) {
            // A second ticket with the same period and linkage value (a
            // request sent twice) is refused on its own: the first one wins.
            let issued = issued.and_then(|(record, encrypted)| {
                if keys.contains(&record.0) || self.store.blob_get(SPACE, &record.0)?.is_some() {
                    return Err(ScmsError::Profile(format!(
                        "a ticket of period {} with this linkage value was already issued",
                        request.period
                    )));
                }
                keys.insert(record.0.clone());
                Ok((record, encrypted))
            });
            match issued {
                Ok((record, encrypted)) => {
                    records.push(record);
                    responses.push(TicketResponse {
                        request_id: request.request_id,
                        outcome: Ok(encrypted),
                    });
                }
                Err(e) => responses.push(TicketResponse {
                    request_id: request.request_id,
                    outcome: Err(e.to_string()),
                }),
            }
        }
        if !records.is_empty() {
            let window = now - now.rem_euclid(AUDIT_WINDOW_SECS);
            let audit = BlobAudit {
                actor: "pseudonym-ca".into(),
                kind: "v2x.tickets.issued".into(),
                subject: profile.sector.clone(),
                detail: serde_json::json!({
                    "count": records.len(),
                    "window_start": window,
                    "window_seconds": AUDIT_WINDOW_SECS,
                    "profile": profile.version,
                })
                .to_string(),
                at: window,
            };
            self.store.blob_put(SPACE, &records, true, Some(&audit))?;
        }
        Ok(responses)
    }

    /// `issue_one` for every request, spread over the machine's cores (the
    /// signing key and the store are shared; each ticket is independent).
    fn issue_parallel(
        &self,
        batch: &[TicketRequest],
        profile: &TicketProfile,
        now: i64,
    ) -> Vec<Result<(KeyValue, Vec<u8>)>> {
        crate::parallel::map(
            batch,
            |r| self.issue_one(r, profile, now),
            || Err(ScmsError::Response("a worker thread panicked".into())),
        )
    }

    fn issue_one(
        &self,
        request: &TicketRequest,
        profile: &TicketProfile,
        now: i64,
    ) -> Result<(KeyValue, Vec<u8>)> {
        if request.period > MAX_PERIOD {
            return Err(ScmsError::Profile("period does not fit iCert".into()));
        }
        let mut plvs = [PreLinkageValue([0; 9]); 2];
        let mut envelopes = Vec::with_capacity(2 * CHAIN_ENVELOPE_LEN);
        for (k, (la_id, key)) in self.links.iter().enumerate() {
            let plain = key.open(
                &plv_aad(*la_id, request.period),
                &request.plv[k].0,
                "pre-linkage value",
            )?;
            if plain.len() != 9 + CHAIN_ENVELOPE_LEN {
                return Err(ScmsError::Envelope {
                    what: "pre-linkage value",
                });
            }
            plvs[k].0.copy_from_slice(&plain[..9]);
            envelopes.extend_from_slice(&plain[9..]);
        }
        // Linked SCMS tickets cannot be in the TS 103 097 profile (it
        // forbids linkageData ids): an EU deployment issues through
        // trustca-etsi's authorization authority instead.
        if profile.format != TicketFormat::ScmsIeee1609Dot2 {
            return Err(ScmsError::Profile(format!(
                "the ticket profile is {:?}; the SCMS pseudonym CA issues only \"scms-ieee-1609.2\" tickets",
                profile.format.as_str()
            )));
        }
        let lv = CertLinkageValue::combine(&plvs[0], &plvs[1]);
        let (contribution, certified) = CaContribution::generate_certified(&request.cocoon)?;
        let tbs = ToBeSigned::linked_authorization_ticket(
            to_v2x_key(&certified)?,
            profile.validity(request.period)?,
            profile.permissions_for(request.level)?,
            profile.assurance(request.level)?,
            LinkageData {
                i_cert: request.period as u16,
                linkage_value: lv.0,
                group_linkage_value: None,
            },
            profile.crl_series,
        );
        // The CRACA is the pseudonym CA's own (the V2X root): the linkage
        // CRL is signed under it.
        let tbs = ToBeSigned {
            craca_id: self.certificate.tbs().craca_id,
            ..tbs
        };
        let ticket = Certificate::issue_in(
            CertProfile::Ieee1609Dot2,
            tbs,
            &self.certificate,
            self.signer.as_ref(),
        )?;
        let encrypted = self.respond(&ticket, &contribution, &request.cocoon, now)?;
        let mut value = envelopes;
        value.extend_from_slice(&ticket.hashed_id8());
        Ok(((ticket_key(request.period as u16, &lv), value), encrypted))
    }

    /// The `AcaEeCertResponsePrivateSpdu` for one ticket (IEEE 1609.2.1
    /// 8.2): `AcaEeCertResponse { ticket, privateKeyInfo = c }` encrypted
    /// to the cocoon key (`rekRecipInfo`: it is the response key the
    /// vehicle's butterfly request named), then signed by this CA, the
    /// ticket's issuer. Its length follows the ticket's permission set; the
    /// registration authority, which holds it, knows the vehicle's level
    /// anyway.
    fn respond(
        &self,
        ticket: &Certificate,
        contribution: &CaContribution,
        cocoon: &P256PublicKey,
        now: i64,
    ) -> Result<Vec<u8>> {
        let generation_time = Time32::from_unix(now)?;
        let response = zeroize::Zeroizing::new(
            ScmsPdu::AcaEeCertResponse(AcaEeCertResponse {
                generation_time,
                certificate: ticket.clone(),
                private_key_info: Some(*contribution.to_bytes()),
            })
            .to_coer(),
        );
        let encrypted = EncryptedData::seal_to_response_key(&to_v2x_key(cocoon)?, &response)?;
        let signed = SignedSpdu::sign(
            &encrypted_data(&encrypted),
            SECURITY_MGMT_PSID,
            Some(u64::from(generation_time.0) * 1_000_000),
            &self.certificate,
            self.signer.as_ref(),
        )?;
        Ok(signed.as_coer().to_vec())
    }

    /// Resolution step 1: the two chain envelopes kept for `ticket`, for the
    /// linkage authorities to open. Audited with the case reference.
    pub fn resolution_envelopes(
        &self,
        ticket: &Certificate,
        actor: &str,
        case: &str,
        now: i64,
    ) -> Result<[ChainEnvelope; 2]> {
        let CertificateId::LinkageData(link) = &ticket.tbs().id else {
            return Err(ScmsError::Malformed {
                what: "ticket",
                reason: "its id is not linkageData".into(),
            });
        };
        let record = self
            .store
            .blob_get(
                SPACE,
                &ticket_key(link.i_cert, &CertLinkageValue(link.linkage_value)),
            )?
            .ok_or(ScmsError::NotFound("ticket issued by this pseudonym CA"))?;
        if record.len() != TICKET_RECORD_LEN
            || record[2 * CHAIN_ENVELOPE_LEN..] != ticket.hashed_id8()
        {
            return Err(ScmsError::NotFound("ticket issued by this pseudonym CA"));
        }
        let mut first = [0u8; CHAIN_ENVELOPE_LEN];
        let mut second = [0u8; CHAIN_ENVELOPE_LEN];
        first.copy_from_slice(&record[..CHAIN_ENVELOPE_LEN]);
        second.copy_from_slice(&record[CHAIN_ENVELOPE_LEN..2 * CHAIN_ENVELOPE_LEN]);
        let audit = BlobAudit {
            actor: actor.into(),
            kind: "v2x.resolution.envelopes".into(),
            subject: hex8(&ticket.hashed_id8()),
            detail: serde_json::json!({ "case": case }).to_string(),
            at: now,
        };
        self.store.blob_put(SPACE, &[], false, Some(&audit))?;
        Ok([ChainEnvelope(first), ChainEnvelope(second)])
    }

    /// Adds a revocation (both linkage authorities' seeds) and signs the
    /// new linkage CRL with this CA's key; the entry list and the CRL
    /// number are durable before the CRL is returned.
    pub fn revoke(
        &self,
        revocation: LinkageRevocation,
        actor: &str,
        now: i64,
    ) -> Result<LinkageCrl> {
        let mut entries = self.crl_entries()?;
        if !entries.contains(&revocation) {
            entries.push(revocation);
        }
        let mut stored = Vec::with_capacity(entries.len() * 52);
        for e in &entries {
            stored.extend_from_slice(&e.first.to_bytes());
            stored.extend_from_slice(&e.second.to_bytes());
        }
        let audit = BlobAudit {
            actor: actor.into(),
            kind: "v2x.linkage.revoked".into(),
            subject: self.profile.current().sector.clone(),
            detail: serde_json::json!({ "entries": entries.len() }).to_string(),
            at: now,
        };
        self.store.blob_put(
            SPACE,
            &[(CRL_ENTRIES_KEY.to_vec(), stored)],
            false,
            Some(&audit),
        )?;
        self.sign_crl(entries, now)
    }

    /// How many revocations the linkage CRL holds (it only grows): a
    /// cached list with fewer entries is out of date.
    pub fn revocation_count(&self) -> Result<usize> {
        Ok(self.crl_entries()?.len())
    }

    /// The current linkage CRL, freshly signed with a new number.
    pub fn current_crl(&self, now: i64) -> Result<LinkageCrl> {
        let entries = self.crl_entries()?;
        self.sign_crl(entries, now)
    }

    fn sign_crl(&self, entries: Vec<LinkageRevocation>, now: i64) -> Result<LinkageCrl> {
        let (signer, certificate) = self
            .crl_signer
            .as_ref()
            .ok_or_else(|| ScmsError::Config("this pseudonym CA has no CRL signer".into()))?;
        let p = self.profile.current();
        let i_rev = p.period_at(now).unwrap_or(0).min(MAX_PERIOD);
        let number = self
            .store
            .next_crl_number(&format!("{CRL_COUNTER}/{i_rev}"))?;
        let params = LinkageCrlParams {
            crl_series: p.crl_series,
            i_rev: i_rev as u16,
            index_within_i: number.saturating_sub(1).min(255) as u8,
            jmax: u8::try_from(p.certificates_per_period)
                .map_err(|_| ScmsError::Config("certificates_per_period above 255".into()))?,
            i_max: (i_rev + u64::from(p.max_periods_ahead)).min(MAX_PERIOD) as u16,
            this_update: now,
            next_update: now + CRL_LIFETIME_SECS,
        };
        LinkageCrl::sign(params, &entries, certificate, signer.as_ref())
    }

    fn crl_entries(&self) -> Result<Vec<LinkageRevocation>> {
        let Some(stored) = self.store.blob_get(SPACE, CRL_ENTRIES_KEY)? else {
            return Ok(Vec::new());
        };
        crate::crl::decode_entries(&stored)
    }

    /// A fresh random request id (for callers building requests).
    pub fn new_request_id() -> Result<[u8; 16]> {
        random_bytes()
    }
}

fn ticket_key(i_cert: u16, lv: &CertLinkageValue) -> Vec<u8> {
    let mut k = TICKET_PREFIX.to_vec();
    k.extend_from_slice(&i_cert.to_be_bytes());
    k.extend_from_slice(&lv.0);
    k
}
