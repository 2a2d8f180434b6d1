//! The V2X authorities (`trustca-scms`) in the server: how each is built
//! from its keys, peers and store, and its gRPC service.
//!
//! * **Separated** (`serve --role registration|pseudonym-ca|linkage-1|
//!   linkage-2`): one authority per process, from the directory `init
//!   --role` made on its own machine (`crate::v2x_role`): its own keys, its
//!   peers' public bundles, its own store. The registration authority
//!   reaches the others over mutual TLS with its own TLS certificate
//!   (`remote.rs`), the only role they serve for issuance.
//! * **In-process** (plain `trustca serve`): all four in the CA's process,
//!   each on its own sled store (`DATA/v2x/<role>/store`) but with their
//!   keys (`DATA/v2x/<role>/keys`) under the CA's directory and
//!   passphrase: no separation against whoever holds both. For trying
//!   things out.
//! * `deploy.rs` builds the services one process runs, in either mode.
//!
//! Errors of the authorities become gRPC statuses in [`status`], and only
//! there.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ring::hmac;
use tonic::{Request, Response, Status};
use trustca_api::caller;
use trustca_ca::{CaHierarchy, Keystore, Passphrase};
use trustca_proto::v1 as pb;
use trustca_pseudonym::{
    ButterflyRequest, LaId, LinkageRevocation, P256PrivateKey, P256PublicKey, SeedRelease,
};
use trustca_scms::deployment::LINK_LABEL;
use trustca_scms::pseudonym_ca::MAX_BATCH;
use trustca_scms::{
    BatchPolicy, ChainEnvelope, ChainId, LinkKey, LinkageAuthority, LinkageAuthorityApi,
    LinkageCrl, PseudonymCa, PseudonymCaApi, RegistrationAuthority, ScmsError, TicketProfile,
    TicketRequest, VehicleCredential,
};
use trustca_store::{SledStorage, Storage};
use trustca_v2x::{CertProfile, Certificate};

use crate::error::{Result, ServerError, io};
use crate::policies::PolicyFiles;

mod deploy;
pub(crate) mod ee_http;
mod enrolment;
pub(crate) mod hash_crls;
mod remote;
pub use deploy::RemoteAuthorities;
pub(crate) use deploy::{enrollment_service, in_process_services, role_services};
pub use enrolment::{ENROLMENT_POP_DOMAIN, EnrollmentCredentialService};
pub use remote::{RemoteLinkage, RemotePseudonymCa, RemoteTls};

/// Directory of the V2X authorities under the data directory.
pub const V2X_DIR: &str = "v2x";
/// Keystore entry of each authority's key.
const AUTHORITY_KEY: &str = "authority";
/// How often the registration authority checks whether a batch is due.
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(2);
/// Deadline of one call from the registration authority to another.
pub(crate) const REMOTE_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest response of the pseudonym CA (20 000 responses of ~430 bytes).
pub const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// One of the separated authorities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum V2xRole {
    /// The registration authority (vehicles talk to it).
    Registration,
    /// The pseudonym CA (authorization authority).
    PseudonymCa,
    /// Linkage authority 1.
    Linkage1,
    /// Linkage authority 2.
    Linkage2,
}

impl V2xRole {
    /// Every role.
    pub const ALL: [V2xRole; 4] = [
        Self::Registration,
        Self::PseudonymCa,
        Self::Linkage1,
        Self::Linkage2,
    ];

    /// The name on the command line and under `DATA/v2x/`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Registration => "registration",
            Self::PseudonymCa => "pseudonym-ca",
            Self::Linkage1 => "linkage-1",
            Self::Linkage2 => "linkage-2",
        }
    }

    /// Parses [`V2xRole::as_str`].
    pub fn parse(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                ServerError::Config(format!(
                    "unknown role {s:?}: expected registration, pseudonym-ca, linkage-1 or linkage-2"
                ))
            })
    }

    fn la_id(self) -> Option<LaId> {
        match self {
            Self::Linkage1 => Some(LaId(1)),
            Self::Linkage2 => Some(LaId(2)),
            _ => None,
        }
    }
}

fn role_dir(data: &Path, role: V2xRole) -> PathBuf {
    data.join(V2X_DIR).join(role.as_str())
}

fn pub_file(data: &Path, role: V2xRole) -> PathBuf {
    data.join(V2X_DIR).join(format!("{}.pub", role.as_str()))
}

fn scms(what: &str, e: ScmsError) -> ServerError {
    ServerError::Config(format!("{what}: {e}"))
}

/// Creates what is missing of the four authorities' keystores and public
/// key files. Returns the roles whose key was created.
pub(crate) fn init_authorities(data: &Path, passphrase: &Passphrase) -> Result<Vec<&'static str>> {
    let mut created = Vec::new();
    for role in V2xRole::ALL {
        let dir = role_dir(data, role).join("keys");
        if dir.join("keystore.toml").exists() {
            continue;
        }
        std::fs::create_dir_all(&dir)
            .map_err(|e| io(format_args!("cannot create {}", dir.display()), e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| io(format_args!("cannot restrict {}", dir.display()), e))?;
        }
        let keystore = Keystore::create(&dir, passphrase)?;
        let key = P256PrivateKey::generate().map_err(|e| ServerError::Config(e.to_string()))?;
        keystore.store(AUTHORITY_KEY, &key.to_pkcs8_der())?;
        let public = pub_file(data, role);
        std::fs::write(&public, key.public_key().to_sec1_uncompressed())
            .map_err(|e| io(format_args!("cannot write {}", public.display()), e))?;
        created.push(role.as_str());
    }
    Ok(created)
}

fn load_key(data: &Path, role: V2xRole, passphrase: &Passphrase) -> Result<P256PrivateKey> {
    let keystore = Keystore::open(&role_dir(data, role).join("keys"), passphrase)?;
    let der = keystore.load(AUTHORITY_KEY)?;
    P256PrivateKey::from_pkcs8_der(&der)
        .map_err(|e| ServerError::Config(format!("the {} key: {e}", role.as_str())))
}

fn load_public(data: &Path, role: V2xRole) -> Result<P256PublicKey> {
    let path = pub_file(data, role);
    let bytes =
        std::fs::read(&path).map_err(|e| io(format_args!("cannot read {}", path.display()), e))?;
    P256PublicKey::from_sec1_uncompressed(&bytes)
        .map_err(|e| ServerError::Config(format!("{}: {e}", path.display())))
}

fn open_store(data: &Path, role: V2xRole) -> Result<Arc<dyn Storage>> {
    Ok(Arc::new(SledStorage::open(
        &role_dir(data, role).join("store"),
    )?))
}

/// Seals the records of an authority's own store (`space`) under a key
/// derived from the authority's own key, so whoever can write that store
/// but holds no key of the authority cannot change a record, or put one
/// under another key, unnoticed (`trustca_store::RecordSeal`). The log
/// stays as coarse as it is: nothing in it names or counts a vehicle's
/// records, so a deleted record or an older copy put back is not caught
/// by this; what a revocation must survive is on signed CRLs. Records
/// from before are sealed once, at the first start with this build.
fn seal_role_store(
    store: &dyn Storage,
    key: &P256PrivateKey,
    role: V2xRole,
    space: &str,
) -> Result<()> {
    let seal = trustca_store::RecordSeal::new(&derived_secret(key, b"trustca-v2x-record-seal-v1"))
        .sealing_spaces(&[space]);
    let actor = format!("authority:{}", role.as_str());
    let sealed = trustca_store::install_record_seal(store, Arc::new(seal), &actor, now())?;
    if sealed > 0 {
        tracing::info!(
            role = role.as_str(),
            sealed,
            "records written before record seals sealed once"
        );
    }
    Ok(())
}

/// A secret derived from an authority's key for one purpose, so each
/// authority holds one key and its storage keys follow from it.
fn derived_secret(key: &P256PrivateKey, label: &[u8]) -> [u8; 32] {
    let hkey = hmac::Key::new(hmac::HMAC_SHA256, key.to_bytes().as_ref());
    let tag = hmac::sign(&hkey, label);
    let mut out = [0u8; 32];
    out.copy_from_slice(tag.as_ref());
    out
}

/// The ticket profile of a policy set (`v2x-tickets.toml`, else the
/// shipped default).
pub fn ticket_profile(files: &PolicyFiles) -> Result<TicketProfile> {
    match files.iter().find(|(n, _)| n == "v2x-tickets.toml") {
        Some((_, text)) => TicketProfile::from_toml(text)
            .map_err(|e| ServerError::Policy(format!("v2x-tickets.toml: {e}"))),
        None => Ok(TicketProfile::default()),
    }
}

/// Opens a linkage authority of the single-process deployment from
/// `DATA/v2x/<role>/`.
pub(crate) fn linkage_authority(
    data: &Path,
    role: V2xRole,
    passphrase: &Passphrase,
) -> Result<LinkageAuthority> {
    linkage_authority_with(
        role,
        &load_key(data, role, passphrase)?,
        &load_public(data, V2xRole::PseudonymCa)?,
        open_store(data, role)?,
    )
}

/// A linkage authority over its own key, the pseudonym CA's public key and
/// its own store.
pub(crate) fn linkage_authority_with(
    role: V2xRole,
    key: &P256PrivateKey,
    pca: &P256PublicKey,
    store: Arc<dyn Storage>,
) -> Result<LinkageAuthority> {
    let la_id = role.la_id().ok_or_else(|| {
        ServerError::Config(format!("{} is not a linkage authority", role.as_str()))
    })?;
    seal_role_store(
        store.as_ref(),
        key,
        role,
        trustca_scms::linkage_authority::SPACE,
    )?;
    let own = key.public_key();
    let link = LinkKey::agree(key, pca, &own, pca, LINK_LABEL)
        .map_err(|e| scms("linkage transport key", e))?;
    let storage = LinkKey::from_bytes(&derived_secret(key, b"trustca-la-storage-v1"))
        .map_err(|e| scms("linkage storage key", e))?;
    Ok(LinkageAuthority::new(la_id, store, storage, link))
}

/// Opens the pseudonym CA of the single-process deployment: the V2X
/// authorization-authority key and certificate made by `init`, its
/// transport keys with both linkage authorities, and its own store.
pub(crate) fn pseudonym_ca(
    data: &Path,
    hierarchy: &CaHierarchy,
    passphrase: &Passphrase,
    profile: TicketProfile,
) -> Result<PseudonymCa> {
    let (signer, certificate) = trustca_ca::v2x_ca::authorization_authority(data, hierarchy)?;
    let (crl_key, crl_certificate) = trustca_ca::v2x_ca::crl_signer(data, hierarchy)?;
    pseudonym_ca_with(
        Arc::new(signer),
        certificate,
        (Arc::new(crl_key), crl_certificate),
        &load_key(data, V2xRole::PseudonymCa, passphrase)?,
        [
            load_public(data, V2xRole::Linkage1)?,
            load_public(data, V2xRole::Linkage2)?,
        ],
        open_store(data, V2xRole::PseudonymCa)?,
        profile,
    )
}

/// A V2X signing key with its certificate.
type SignerWithCertificate = (Arc<dyn trustca_v2x::V2xSigner + Send + Sync>, Certificate);

/// A pseudonym CA over its ticket signer and certificate, its CRL signer,
/// its own key, the two linkage authorities' public keys and its own store.
pub(crate) fn pseudonym_ca_with(
    signer: Arc<dyn trustca_v2x::V2xSigner + Send + Sync>,
    certificate: Certificate,
    crl_signer: SignerWithCertificate,
    key: &P256PrivateKey,
    linkage: [P256PublicKey; 2],
    store: Arc<dyn Storage>,
    profile: TicketProfile,
) -> Result<PseudonymCa> {
    profile
        .check_issuable(&certificate)
        .map_err(|e| ServerError::Policy(format!("v2x-tickets.toml: {e}")))?;
    seal_role_store(
        store.as_ref(),
        key,
        V2xRole::PseudonymCa,
        trustca_scms::pseudonym_ca::SPACE,
    )?;
    let own = key.public_key();
    let [la1, la2] = linkage;
    let link = |la: &P256PublicKey| {
        LinkKey::agree(key, la, la, &own, LINK_LABEL).map_err(|e| scms("linkage transport key", e))
    };
    let links = [(LaId(1), link(&la1)?), (LaId(2), link(&la2)?)];
    let (crl_signer, crl_certificate) = crl_signer;
    PseudonymCa::new(store, signer, certificate, links, profile)
        .with_crl_signer(crl_signer, crl_certificate)
        .map_err(|e| scms("CRL signer", e))
}

/// Opens the registration authority over its own key and store and the
/// given linkage authorities and pseudonym CA (in-process or remote).
pub(crate) fn registration_authority(
    key: &P256PrivateKey,
    store: Arc<dyn Storage>,
    linkage: [Arc<dyn LinkageAuthorityApi>; 2],
    pca: Arc<dyn PseudonymCaApi>,
    profile: TicketProfile,
    policy: BatchPolicy,
) -> Result<RegistrationAuthority> {
    seal_role_store(
        store.as_ref(),
        key,
        V2xRole::Registration,
        trustca_scms::registration::SPACE,
    )?;
    RegistrationAuthority::new(
        store,
        &derived_secret(key, b"trustca-ra-secret-v1"),
        linkage,
        pca,
        profile,
        policy,
    )
    .map_err(|e| scms("registration authority", e))
}

/// An authority's error as a gRPC status: the class is the authority's,
/// the code the one mapping every service uses.
pub(crate) fn status(e: ScmsError) -> Status {
    trustca_proto::status(e.class(), e.to_string())
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> std::result::Result<T, ScmsError> + Send + 'static,
) -> std::result::Result<T, Status> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Status::internal(format!("task failed: {e}")))?
        .map_err(status)
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn bytes16(b: &[u8], what: &'static str) -> std::result::Result<[u8; 16], Status> {
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
    hash_crls: Option<Arc<hash_crls::HashCrlPublisher>>,
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
    pub(crate) fn with_hash_crls(mut self, hash_crls: Arc<hash_crls::HashCrlPublisher>) -> Self {
        self.hash_crls = Some(hash_crls);
        self
    }
}

pub(crate) fn vehicle_of(
    credential: &trustca_model::Credential,
    sector: &str,
) -> std::result::Result<VehicleCredential, Status> {
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
    ) -> std::result::Result<Response<pb::TicketProfileInfo>, Status> {
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
    ) -> std::result::Result<Response<pb::RequestTicketsResponse>, Status> {
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
    ) -> std::result::Result<Response<pb::DownloadTicketsResponse>, Status> {
        let credential = caller(&request)?;
        let vehicle = vehicle_of(&credential, &self.ra.profile().sector)?;
        let ra = Arc::clone(&self.ra);
        let responses = blocking(move || ra.download(&vehicle)).await?;
        Ok(Response::new(pb::DownloadTicketsResponse { responses }))
    }

    async fn revoke_vehicle(
        &self,
        request: Request<pb::RevokeVehicleRequest>,
    ) -> std::result::Result<Response<pb::LinkageCrlResponse>, Status> {
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
    ) -> std::result::Result<Response<pb::IdentifyVehicleResponse>, Status> {
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

fn case_reference(s: &str) -> std::result::Result<String, Status> {
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
    ) -> std::result::Result<Response<pb::IssueTicketsResponse>, Status> {
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
            .collect::<std::result::Result<Vec<_>, _>>()?;
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
    ) -> std::result::Result<Response<pb::LinkageCrlResponse>, Status> {
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
    ) -> std::result::Result<Response<pb::ResolutionEnvelopesResponse>, Status> {
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
    ) -> std::result::Result<Response<pb::LinkageCrlResponse>, Status> {
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

    fn pick(&self, la_id: u32) -> std::result::Result<Arc<LinkageAuthority>, Status> {
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
    ) -> std::result::Result<Response<pb::CreateChainsResponse>, Status> {
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
    ) -> std::result::Result<Response<pb::PreLinkageValuesResponse>, Status> {
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
    ) -> std::result::Result<Response<pb::ReleaseSeedResponse>, Status> {
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
    ) -> std::result::Result<Response<pb::OpenEnvelopeResponse>, Status> {
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
