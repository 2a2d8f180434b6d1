//! What a revocation does, without transport: who may revoke, which
//! certificates a request names, the store's revocation (which moves
//! devices to `revoked` and blocks compromised keys in the same
//! transaction) and the sector CRL published right after. The gRPC
//! `Revocation` service (`trustca-api`) only converts messages.

use std::sync::Arc;

use time::OffsetDateTime;
use trustca_model::{CertificateKind, Credential, DeviceIdentity, SectorName};
use trustca_store::{Storage, StoreError};

use crate::CaError;
use crate::crl::reason_code;
use crate::enroll::EnrollmentEngine;
use crate::revocation::{CrlPublisher, PublishedCrl};

/// Longest note an operator may attach to a revocation.
const MAX_NOTE: usize = 512;

/// What a revocation names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevocationSubject {
    /// One certificate, DER: it must be the one this CA issued under its
    /// serial.
    Certificate(Vec<u8>),
    /// Every certificate of a device, by URN.
    Identity(String),
}

/// Revoke a certificate or a device.
#[derive(Debug, Clone)]
pub struct RevokeCommand {
    /// What to revoke.
    pub subject: RevocationSubject,
    /// RFC 5280 reason name (`keyCompromise`, ...); empty is unspecified.
    pub reason: String,
    /// Why, for the audit log (at most 512 bytes).
    pub note: String,
}

/// Revoke every certificate of a model's devices in a firmware range.
#[derive(Debug, Clone)]
pub struct BulkRevokeCommand {
    /// The sector.
    pub sector: String,
    /// The manufacturer.
    pub manufacturer: String,
    /// The model.
    pub model: String,
    /// Lowest firmware version included (empty: no lower bound).
    pub firmware_min: String,
    /// Highest firmware version included (empty: no upper bound).
    pub firmware_max: String,
    /// RFC 5280 reason name; empty is unspecified.
    pub reason: String,
    /// Why (required, 1-512 bytes).
    pub note: String,
}

/// Narrow a device's certificate: the same key and identity without some
/// capabilities; the wider certificate is revoked.
#[derive(Debug, Clone)]
pub struct RestrictCommand {
    /// The device, by URN.
    pub identity: String,
    /// The capabilities withdrawn (`server-auth`, `client-auth`).
    pub withdraw: Vec<String>,
    /// Why (required, 1-512 bytes).
    pub note: String,
}

/// What a partial revocation did.
#[derive(Debug, Clone)]
pub struct Restricted {
    /// The device.
    pub identity: DeviceIdentity,
    /// The narrower certificate and its chain, DER, leaf first.
    pub chain_der: Vec<Vec<u8>>,
    /// The serial of the wider certificate, now revoked.
    pub revoked_serial: Vec<u8>,
    /// The number of the CRL published after the change.
    pub crl_number: u64,
}

/// What a revocation changed.
#[derive(Debug, Clone)]
pub struct Revoked {
    /// The sector whose CRL now lists them.
    pub sector: SectorName,
    /// Serials newly revoked.
    pub serials: Vec<Vec<u8>>,
    /// Devices whose certificates were revoked (bulk revocation).
    pub devices: usize,
    /// The number of the CRL published after the change.
    pub crl_number: u64,
}

/// Revocation by operators: the rules, the store's change and the CRL.
#[derive(Debug, Clone)]
pub struct RevocationEngine {
    publisher: Arc<CrlPublisher>,
    storage: Arc<dyn Storage>,
    enrollment: Arc<EnrollmentEngine>,
}

impl RevocationEngine {
    /// The engine over the CA's store and CRL publisher.
    pub fn new(
        publisher: Arc<CrlPublisher>,
        storage: Arc<dyn Storage>,
        enrollment: Arc<EnrollmentEngine>,
    ) -> Self {
        Self {
            publisher,
            storage,
            enrollment,
        }
    }

    /// The CRL publisher (for `GetCrl`).
    pub fn publisher(&self) -> &Arc<CrlPublisher> {
        &self.publisher
    }

    /// The enrollment engine (partial revocation reissues through it).
    pub fn enrollment(&self) -> &Arc<EnrollmentEngine> {
        &self.enrollment
    }

    /// Revokes one certificate or every certificate of a device (blocking:
    /// run it off the I/O threads).
    pub fn revoke(&self, caller: &Credential, cmd: RevokeCommand) -> Result<Revoked, CaError> {
        require_operator(caller, "revocation")?;
        let reason = reason_of(&cmd.reason)?;
        if cmd.note.len() > MAX_NOTE {
            return Err(CaError::InvalidRequest(format!(
                "note is limited to {MAX_NOTE} bytes"
            )));
        }
        let (sector, serials) = self.serials_of(&cmd.subject)?;
        require_sector(caller, &sector)?;
        let changed = self.commit(&serials, reason, caller, &cmd.note, &sector)?;
        tracing::info!(rpc = "Revoke", operator = %caller.name, %sector, count = changed.0.len(), reason, outcome = "revoked");
        Ok(Revoked {
            sector,
            serials: changed.0,
            devices: 0,
            crl_number: changed.1.number,
        })
    }

    /// Revokes every certificate of a model's devices in a firmware range
    /// (blocking).
    pub fn bulk_revoke(
        &self,
        caller: &Credential,
        cmd: BulkRevokeCommand,
    ) -> Result<Revoked, CaError> {
        require_operator(caller, "bulk revocation")?;
        let sector = SectorName::new(&cmd.sector)?;
        self.publisher.policies().sector(sector.as_str())?;
        require_sector(caller, &sector)?;
        if cmd.manufacturer.is_empty() || cmd.model.is_empty() {
            return Err(CaError::InvalidRequest(
                "manufacturer and model are required".into(),
            ));
        }
        require_note(&cmd.note)?;
        let reason = reason_of(&cmd.reason)?;
        trustca_model::firmware::check_range(&cmd.firmware_min, &cmd.firmware_max)
            .map_err(CaError::InvalidRequest)?;
        let prefix = format!("{}/{}/{}/", sector, cmd.manufacturer, cmd.model).to_ascii_lowercase();
        // A page of devices at a time: a model may have a million; only
        // the matching devices' serials are kept.
        let mut devices = 0usize;
        let mut serials: Vec<Vec<u8>> = Vec::new();
        for d in trustca_store::device_pages(self.storage.as_ref(), &prefix) {
            let d = d?;
            if !trustca_model::firmware::in_range(
                &d.firmware_version,
                &cmd.firmware_min,
                &cmd.firmware_max,
            ) {
                continue;
            }
            devices += 1;
            serials.extend(
                d.certificates
                    .iter()
                    .filter_map(|h| trustca_model::hexfmt::decode(h)),
            );
        }
        let (changed, crl) = self.commit(&serials, reason, caller, &cmd.note, &sector)?;
        tracing::info!(rpc = "BulkRevoke", operator = %caller.name, %sector, devices, certificates = changed.len(), outcome = "revoked");
        Ok(Revoked {
            sector,
            serials: changed,
            devices,
            crl_number: crl.number,
        })
    }

    /// Partial revocation: checks the caller and the note, issues the
    /// narrower certificate, then revokes the wider one (privilegeWithdrawn)
    /// and publishes the sector's CRL on the blocking pool.
    pub async fn restrict(
        self: &Arc<Self>,
        caller: &Arc<Credential>,
        cmd: RestrictCommand,
    ) -> Result<Restricted, CaError> {
        let identity = self.check_restrict(caller, &cmd.identity, &cmd.note)?;
        let (outcome, old_serial) = self
            .enrollment
            .reissue_narrower(caller, &identity, &cmd.withdraw)
            .await?;
        let engine = Arc::clone(self);
        let who = Arc::clone(caller);
        let sector = identity.sector.clone();
        let serial = old_serial.clone();
        let note = format!(
            "partial revocation ({}): {}",
            cmd.withdraw.join(","),
            cmd.note
        );
        let crl = tokio::task::spawn_blocking(move || {
            engine.withdraw_replaced(&who, &sector, &serial, &note)
        })
        .await
        .map_err(|e| CaError::Signing(format!("revocation task failed: {e}")))??;
        Ok(Restricted {
            identity,
            chain_der: outcome.chain_der,
            revoked_serial: old_serial,
            crl_number: crl.number,
        })
    }

    /// Checks a partial revocation before the narrower certificate is
    /// issued: an operator of the device's sector, with a note.
    pub fn check_restrict(
        &self,
        caller: &Credential,
        identity: &str,
        note: &str,
    ) -> Result<DeviceIdentity, CaError> {
        require_operator(caller, "partial revocation")?;
        let identity = DeviceIdentity::from_urn(identity)?;
        require_sector(caller, &identity.sector)?;
        require_note(note)?;
        Ok(identity)
    }

    /// Revokes the wider certificate a partial revocation replaced
    /// (privilegeWithdrawn) and publishes the sector's CRL (blocking).
    pub fn withdraw_replaced(
        &self,
        caller: &Credential,
        sector: &SectorName,
        old_serial: &[u8],
        note: &str,
    ) -> Result<PublishedCrl, CaError> {
        const PRIVILEGE_WITHDRAWN: u8 = 9;
        let serials = [old_serial.to_vec()];
        let (_, crl) = self.commit(&serials, PRIVILEGE_WITHDRAWN, caller, note, sector)?;
        Ok(crl)
    }

    /// The sector and serials a subject names.
    fn serials_of(
        &self,
        subject: &RevocationSubject,
    ) -> Result<(SectorName, Vec<Vec<u8>>), CaError> {
        match subject {
            RevocationSubject::Certificate(der) => {
                let (_, cert) = x509_parser::parse_x509_certificate(der)
                    .map_err(|_| CaError::InvalidRequest("certificate does not parse".into()))?;
                let serial = cert.raw_serial().to_vec();
                let record = self.storage.certificate(&serial)?.ok_or_else(|| {
                    CaError::InvalidRequest("this CA did not issue that certificate".into())
                })?;
                if &record.der != der {
                    return Err(CaError::InvalidRequest(
                        "certificate does not match the one issued under its serial".into(),
                    ));
                }
                Ok((SectorName::new(&record.sector)?, vec![serial]))
            }
            RevocationSubject::Identity(urn) => {
                let identity = DeviceIdentity::from_urn(urn)?;
                let device = self
                    .storage
                    .device(&identity.key())?
                    .ok_or_else(|| CaError::Store(StoreError::NotEnrolled(urn.clone())))?;
                let serials = device
                    .certificates
                    .iter()
                    .filter_map(|h| trustca_model::hexfmt::decode(h))
                    .collect();
                Ok((identity.sector, serials))
            }
        }
    }

    /// The store's revocation, then the sector's CRL. The store moves a
    /// device left without a valid certificate to `revoked` and blocks
    /// compromised keys in the same transaction.
    fn commit(
        &self,
        serials: &[Vec<u8>],
        reason: u8,
        caller: &Credential,
        note: &str,
        sector: &SectorName,
    ) -> Result<(Vec<Vec<u8>>, PublishedCrl), CaError> {
        let actor = crate::enroll::actor(caller);
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let changed = self.storage.revoke(serials, reason, &actor, note, now)?;
        // The CRL reported is the one listing the (first) certificate
        // revoked: after a rollover, its own CA generation's.
        let crl = self
            .publisher
            .publish_listing(sector, serials.first().map(Vec::as_slice))?;
        Ok((changed.into_iter().map(|c| c.serial).collect(), crl))
    }
}

fn require_operator(caller: &Credential, what: &str) -> Result<(), CaError> {
    if caller.kind == CertificateKind::Operator {
        return Ok(());
    }
    Err(CaError::PermissionDenied(format!(
        "{what} needs an operator credential; the caller holds {} certificate",
        caller.kind.with_article()
    )))
}

fn require_sector(caller: &Credential, sector: &SectorName) -> Result<(), CaError> {
    if caller.may_act_for(sector) {
        return Ok(());
    }
    Err(CaError::PermissionDenied(format!(
        "operator {} is not authorized for sector {sector}",
        caller.name
    )))
}

fn require_note(note: &str) -> Result<(), CaError> {
    if note.trim().is_empty() || note.len() > MAX_NOTE {
        return Err(CaError::InvalidRequest(format!(
            "a note (1-{MAX_NOTE} bytes) saying why is required"
        )));
    }
    Ok(())
}

fn reason_of(name: &str) -> Result<u8, CaError> {
    if name.is_empty() {
        Ok(0)
    } else {
        reason_code(name)
    }
}
