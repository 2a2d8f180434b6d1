//! The gRPC services of the V2X authorities (RA, pseudonym CA, linkage
//! authorities): requests converted, the engine called off the async
//! runtime, its errors mapped to statuses by the crate's one mapping.

use std::sync::{Arc, Mutex};

use tonic::{Request, Response, Status};
use trustca_proto::v1 as pb;
use trustca_pseudonym::{ButterflyRequest, LinkageRevocation, SeedRelease};
use trustca_scms::pseudonym_ca::MAX_BATCH;
use trustca_scms::{
    ChainEnvelope, ChainId, LinkageAuthority, LinkageCrl, PseudonymCa, RegistrationAuthority,
    ScmsError, TicketRequest, VehicleCredential,
};
use trustca_v2x::{CertProfile, Certificate};

use super::{HashCrls, blocking, now};
use crate::caller;

fn bytes16(b: &[u8], what: &'static str) -> Result<[u8; 16], Status> {
    <[u8; 16]>::try_from(b)
        .map_err(|_| Status::invalid_argument(format!("{what} must be 16 bytes, got {}", b.len())))
}

fn crl_response(crl: &LinkageCrl) -> pb::LinkageCrlResponse {
    pb::LinkageCrlResponse {
        crl: crl.as_bytes().to_vec(),
    }
}

// ---------------------------------------------------------------------------
// Registration authority service
// ---------------------------------------------------------------------------

/// `V2xRegistration`: what vehicles and operators ask the RA.
#[derive(Debug)]
pub struct RegistrationService {
    ra: Arc<RegistrationAuthority>,
    pca_certificate: Vec<u8>,
    /// In the CA's process: where a revoked vehicle's enrolment
    /// certificates are listed too.
    hash_crls: Option<Arc<dyn HashCrls>>,
}

impl RegistrationService {
    /// Serves `ra`; `pca_certificate` is the COER issuer certificate
    /// vehicles verify their tickets against.
    pub fn new(ra: Arc<RegistrationAuthority>, pca_certificate: Vec<u8>) -> Self {
        Self {
            ra,
            pca_certificate,
            hash_crls: None,
        }
    }

    /// Revoking a vehicle also lists its enrolment certificates on the
    /// hash CRL of `hash_crls` (the enrolment CA in the same process).
    pub fn with_hash_crls(mut self, hash_crls: Arc<dyn HashCrls>) -> Self {
        self.hash_crls = Some(hash_crls);
        self
    }
}

pub(crate) fn vehicle_of(
    credential: &trustca_model::Credential,
    sector: &str,
) -> Result<VehicleCredential, Status> {
    if credential.sector.as_str() != sector {
        return Err(Status::permission_denied(format!(
            "authorization tickets are for the {sector} sector; this credential is of {}",
            credential.sector
        )));
    }
    let level = credential
        .extension
        .level
        .map(|l| l.get())
        .ok_or_else(|| Status::permission_denied("the credential carries no trust level"))?;
    let id = credential
        .identity
        .as_ref()
        .map(|i| i.to_string())
        .unwrap_or_else(|| credential.name.clone());
    Ok(VehicleCredential { id, level })
}

#[tonic::async_trait]
impl pb::v2x_registration_server::V2xRegistration for RegistrationService {
    async fn get_ticket_profile(
        &self,
        _request: Request<pb::GetTicketProfileRequest>,
    ) -> Result<Response<pb::TicketProfileInfo>, Status> {
        let p = self.ra.profile();
        let t = now();
        Ok(Response::new(pb::TicketProfileInfo {
            version: p.version.clone(),
            sector: p.sector.clone(),
            epoch: p.epoch,
            period_hours: u32::from(p.period_hours),
            overlap_hours: u32::from(p.overlap_hours),
            certificates_per_period: p.certificates_per_period,
            max_periods_per_request: p.max_periods_per_request,
            max_periods_ahead: p.max_periods_ahead,
            min_level: u32::from(p.min_level),
            crl_series: u32::from(p.crl_series),
            permissions: p
                .permissions
                .iter()
                .map(|r| pb::TicketPermission {
                    min_level: u32::from(r.min_level),
                    psid: r.psid,
                    ssp: r.ssp.clone().unwrap_or_default(),
                })
                .collect(),
            current_period: p.period_at(t).unwrap_or(0),
            server_time: t,
            pseudonym_ca_certificate: self.pca_certificate.clone(),
        }))
    }

    async fn request_tickets(
        &self,
        request: Request<pb::RequestTicketsRequest>,
    ) -> Result<Response<pb::RequestTicketsResponse>, Status> {
        let credential = caller(&request)?;
        let vehicle = vehicle_of(&credential, &self.ra.profile().sector)?;
        let msg = request.into_inner();
        let butterfly = ButterflyRequest::from_bytes(&msg.butterfly_request)
            .map_err(|e| Status::invalid_argument(format!("butterfly_request: {e}")))?;
        let first = msg.has_first_period.then_some(msg.first_period);
        let periods = msg.periods;
        let ra = Arc::clone(&self.ra);
        let t = now();
        let (queued, waiting) = blocking(move || {
            let queued = ra.submit(&vehicle, &butterfly, first, periods, t)?;
            let waiting = ra.queued();
            // Sends at once if the batch is now due; otherwise the timer does.
            ra.flush(t, false)?;
            Ok((queued, waiting))
        })
        .await?;
        let p = self.ra.profile();
        Ok(Response::new(pb::RequestTicketsResponse {
            queued,
            first_period: first.or_else(|| p.period_at(t)).unwrap_or(0),
            periods,
            certificates_per_period: p.certificates_per_period,
            waiting_vehicles: waiting.0 as u32,
            waiting_requests: waiting.1 as u32,
        }))
    }

    async fn download_tickets(
        &self,
        request: Request<pb::DownloadTicketsRequest>,
    ) -> Result<Response<pb::DownloadTicketsResponse>, Status> {
        let credential = caller(&request)?;
        let vehicle = vehicle_of(&credential, &self.ra.profile().sector)?;
        let ra = Arc::clone(&self.ra);
        let responses = blocking(move || ra.download(&vehicle)).await?;
        Ok(Response::new(pb::DownloadTicketsResponse { responses }))
    }

    async fn revoke_vehicle(
        &self,
        request: Request<pb::RevokeVehicleRequest>,
    ) -> Result<Response<pb::LinkageCrlResponse>, Status> {
        let actor = caller(&request)?.name.clone();
        let msg = request.into_inner();
        if msg.vehicle.is_empty() {
            return Err(Status::invalid_argument("vehicle is empty"));
        }
        let ra = Arc::clone(&self.ra);
        let hash_crls = self.hash_crls.clone();
        let crl = blocking(move || {
            let crl = ra.revoke_vehicle(
                &msg.vehicle,
                msg.from_period,
                msg.include_past,
                &actor,
                now(),
            )?;
            if let Some(h) = hash_crls {
                h.revoke_vehicle(&msg.vehicle, &actor).map_err(|e| {
                    ScmsError::Response(format!(
                        "the linkage CRL lists the vehicle, but its enrolment certificates are not listed ({e}); retry with `trustca v2x revoke-enrolment`"
                    ))
                })?;
            }
            Ok(crl)
        })
        .await?;
        Ok(Response::new(crl_response(&crl)))
    }

    async fn identify_vehicle(
        &self,
        request: Request<pb::IdentifyVehicleRequest>,
    ) -> Result<Response<pb::IdentifyVehicleResponse>, Status> {
        let actor = caller(&request)?.name.clone();
        let msg = request.into_inner();
        let chains = [
            ChainId(bytes16(&msg.first_chain, "first_chain")?),
            ChainId(bytes16(&msg.second_chain, "second_chain")?),
        ];
        let case = case_reference(&msg.case_reference)?;
        let ra = Arc::clone(&self.ra);
        let (_, vehicle) =
            blocking(move || ra.vehicle_for_chains(chains, &actor, &case, now())).await?;
        Ok(Response::new(pb::IdentifyVehicleResponse { vehicle }))
    }
}

fn case_reference(s: &str) -> Result<String, Status> {
    if s.is_empty() || s.len() > 128 || s.chars().any(char::is_control) {
        return Err(Status::invalid_argument(
            "case_reference must be 1..=128 printable characters",
        ));
    }
    Ok(s.to_owned())
}

// ---------------------------------------------------------------------------
// Pseudonym CA service
// ---------------------------------------------------------------------------

/// `V2xPseudonymCa`.
#[derive(Debug)]
pub struct PseudonymCaService {
    pca: Arc<PseudonymCa>,
    /// The last list served or signed here: when, its bytes, its entries.
    latest: Mutex<Option<(i64, Vec<u8>, usize)>>,
}

/// A published linkage CRL is re-signed (new number, new times) after this long.
const CRL_REISSUE_SECS: i64 = 24 * 3600;

impl PseudonymCaService {
    /// Serves `pca`.
    pub fn new(pca: Arc<PseudonymCa>) -> Self {
        Self {
            pca,
            latest: Mutex::new(None),
        }
    }

    fn remember(&self, crl: &LinkageCrl, at: i64) {
        if let Ok(mut l) = self.latest.lock() {
            *l = Some((at, crl.as_bytes().to_vec(), crl.revocations));
        }
    }
}

#[tonic::async_trait]
impl pb::v2x_pseudonym_ca_server::V2xPseudonymCa for PseudonymCaService {
    async fn issue_tickets(
        &self,
        request: Request<pb::IssueTicketsRequest>,
    ) -> Result<Response<pb::IssueTicketsResponse>, Status> {
        let msg = request.into_inner();
        if msg.requests.len() > MAX_BATCH {
            return Err(Status::invalid_argument(format!(
                "at most {MAX_BATCH} requests per batch, got {}",
                msg.requests.len()
            )));
        }
        let batch = msg
            .requests
            .iter()
            .enumerate()
            .map(|(i, r)| {
                TicketRequest::from_bytes(r)
                    .map_err(|e| Status::invalid_argument(format!("request {i}: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let pca = Arc::clone(&self.pca);
        let responses = blocking(move || pca.issue_batch(&batch, now())).await?;
        Ok(Response::new(pb::IssueTicketsResponse {
            outcomes: responses
                .into_iter()
                .map(|r| match r.outcome {
                    Ok(encrypted) => pb::TicketOutcome {
                        request_id: r.request_id.to_vec(),
                        encrypted_response: encrypted,
                        error: String::new(),
                    },
                    Err(error) => pb::TicketOutcome {
                        request_id: r.request_id.to_vec(),
                        encrypted_response: Vec::new(),
                        error,
                    },
                })
                .collect(),
        }))
    }

    async fn add_revocation(
        &self,
        request: Request<pb::AddRevocationRequest>,
    ) -> Result<Response<pb::LinkageCrlResponse>, Status> {
        let actor = caller(&request)?.name.clone();
        let msg = request.into_inner();
        let parse = |b: &[u8], what: &str| {
            SeedRelease::from_bytes(b).map_err(|e| Status::invalid_argument(format!("{what}: {e}")))
        };
        let revocation =
            LinkageRevocation::new(parse(&msg.first, "first")?, parse(&msg.second, "second")?)
                .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let pca = Arc::clone(&self.pca);
        let t = now();
        let crl = blocking(move || pca.revoke(revocation, &actor, t)).await?;
        self.remember(&crl, t);
        Ok(Response::new(crl_response(&crl)))
    }

    async fn resolution_envelopes(
        &self,
        request: Request<pb::ResolutionEnvelopesRequest>,
    ) -> Result<Response<pb::ResolutionEnvelopesResponse>, Status> {
        let actor = caller(&request)?.name.clone();
        let msg = request.into_inner();
        let case = case_reference(&msg.case_reference)?;
        let ticket = Certificate::from_coer_in(CertProfile::Ieee1609Dot2, &msg.ticket)
            .map_err(|e| Status::invalid_argument(format!("ticket: {e}")))?;
        let pca = Arc::clone(&self.pca);
        let [a, b] =
            blocking(move || pca.resolution_envelopes(&ticket, &actor, &case, now())).await?;
        Ok(Response::new(pb::ResolutionEnvelopesResponse {
            first: a.0.to_vec(),
            second: b.0.to_vec(),
        }))
    }

    async fn get_linkage_crl(
        &self,
        _request: Request<pb::GetLinkageCrlRequest>,
    ) -> Result<Response<pb::LinkageCrlResponse>, Status> {
        let t = now();
        let cached = self.latest.lock().ok().and_then(|l| l.clone());
        let pca = Arc::clone(&self.pca);
        // A revocation can reach the pseudonym CA without this service (the
        // registration authority in the same process calls it directly), so
        // the cached list is served only while no entry was added since.
        let (bytes, fresh) = blocking(move || {
            let count = pca.revocation_count()?;
            if let Some((at, bytes, entries)) = cached
                && t - at < CRL_REISSUE_SECS
                && entries == count
            {
                return Ok((bytes, None));
            }
            let crl = pca.current_crl(t)?;
            Ok((crl.as_bytes().to_vec(), Some(crl)))
        })
        .await?;
        if let Some(crl) = &fresh {
            self.remember(crl, t);
        }
        Ok(Response::new(pb::LinkageCrlResponse { crl: bytes }))
    }
}

// ---------------------------------------------------------------------------
// Linkage authority service
// ---------------------------------------------------------------------------

/// `V2xLinkage`: one linkage authority, or both in a single-process
/// deployment (requests name theirs by `la_id`).
#[derive(Debug)]
pub struct LinkageService {
    las: Vec<Arc<LinkageAuthority>>,
}

impl LinkageService {
    /// Serves `las`.
    pub fn new(las: Vec<Arc<LinkageAuthority>>) -> Self {
        Self { las }
    }

    fn pick(&self, la_id: u32) -> Result<Arc<LinkageAuthority>, Status> {
        let found = if la_id == 0 && self.las.len() == 1 {
            self.las.first()
        } else {
            self.las.iter().find(|l| u32::from(l.la_id().0) == la_id)
        };
        found
            .cloned()
            .ok_or_else(|| Status::not_found(format!("no linkage authority {la_id} here")))
    }
}

#[tonic::async_trait]
impl pb::v2x_linkage_server::V2xLinkage for LinkageService {
    async fn create_chains(
        &self,
        request: Request<pb::CreateChainsRequest>,
    ) -> Result<Response<pb::CreateChainsResponse>, Status> {
        let actor = caller(&request)?.name.clone();
        let msg = request.into_inner();
        let la = self.pick(msg.la_id)?;
        let ids =
            blocking(move || la.create_chains(msg.first_period, msg.count as usize, &actor, now()))
                .await?;
        Ok(Response::new(pb::CreateChainsResponse {
            chain_ids: ids.iter().map(|c| c.0.to_vec()).collect(),
        }))
    }

    async fn pre_linkage_values(
        &self,
        request: Request<pb::PreLinkageValuesRequest>,
    ) -> Result<Response<pb::PreLinkageValuesResponse>, Status> {
        let actor = caller(&request)?.name.clone();
        let msg = request.into_inner();
        let chain = ChainId(bytes16(&msg.chain_id, "chain_id")?);
        let la = self.pick(msg.la_id)?;
        let periods = msg.periods.max(1);
        let values = blocking(move || {
            la.pre_linkage_values(&chain, msg.period, periods, msg.count, &actor, now())
        })
        .await?;
        Ok(Response::new(pb::PreLinkageValuesResponse {
            values: values.iter().map(|v| v.0.to_vec()).collect(),
        }))
    }

    async fn release_seed(
        &self,
        request: Request<pb::ReleaseSeedRequest>,
    ) -> Result<Response<pb::ReleaseSeedResponse>, Status> {
        let actor = caller(&request)?.name.clone();
        let msg = request.into_inner();
        let chain = ChainId(bytes16(&msg.chain_id, "chain_id")?);
        let la = self.pick(msg.la_id)?;
        let release = blocking(move || la.release(&chain, msg.from_period, &actor, now())).await?;
        Ok(Response::new(pb::ReleaseSeedResponse {
            release: release.to_bytes().to_vec(),
        }))
    }

    async fn open_envelope(
        &self,
        request: Request<pb::OpenEnvelopeRequest>,
    ) -> Result<Response<pb::OpenEnvelopeResponse>, Status> {
        let actor = caller(&request)?.name.clone();
        let msg = request.into_inner();
        let case = case_reference(&msg.case_reference)?;
        let envelope = <[u8; trustca_scms::CHAIN_ENVELOPE_LEN]>::try_from(msg.envelope.as_slice())
            .map(ChainEnvelope)
            .map_err(|_| Status::invalid_argument("envelope has the wrong length"))?;
        let la = self.pick(msg.la_id)?;
        let chain = blocking(move || la.open_envelope(&envelope, &actor, &case, now())).await?;
        Ok(Response::new(pb::OpenEnvelopeResponse {
            chain_id: chain.0.to_vec(),
        }))
    }
}
