//! The enrolment authority, without transport: answers
//! `EnrolmentRequestMessage`s from ITS stations and
//! `AuthorizationValidationRequestMessage`s from authorization
//! authorities. Who a station is (its canonical key, registered by its
//! manufacturer, and its live trust level) comes from a
//! [`StationDirectory`]; the credentials it issued are kept in a
//! [`CredentialRegister`]. It never sees a ticket's key: a validation
//! request carries only the `keyTag`.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};

use trustca_v2x::ts102941::{
    CERTIFICATE_FORMAT, EcSignature, EnrolmentResponseCode as Ec, EtsiTs102941Data, InnerEcRequest,
    InnerResponse, SubjectAttributes, ValidationRequest, ValidationResponse,
    ValidationResponseCode as Av,
};
use trustca_v2x::{
    Certificate, Duration, EtsiSignedData, EtsiSigner, PublicKeyP256, SubjectAssurance, Time32,
    V2xSigner, ValidityPeriod, sha256,
};

use crate::EtsiError;
use crate::envelope::{AuthorityKeys, is_fresh, request_hash};
use crate::profile::{PSID_CERT_REQUEST, enrolment_credential};
use crate::trust_lists::read_crl;

/// A station as its manufacturer registered it, with its live level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Station {
    /// The canonical key that signs its first enrolment request.
    pub canonical_key: PublicKeyP256,
    /// Its live trust level (1..=5), which its credential carries.
    pub trust_level: u8,
    /// False when revoked or not yet active: enrolment is refused.
    pub active: bool,
}

/// Where the EA finds stations by canonical identifier.
pub trait StationDirectory: Send + Sync {
    /// The station with canonical identifier `its_id`, if registered.
    fn station(&self, its_id: &[u8]) -> Result<Option<Station>, EtsiError>;
}

/// The enrolment credentials the EA issued, by HashedId8.
pub trait CredentialRegister: Send + Sync {
    /// Records `ec`, issued to the station `its_id`.
    fn record(&self, ec: &Certificate, its_id: &[u8]) -> Result<(), EtsiError>;
    /// The credential with HashedId8 `id` and its station's identifier.
    fn find(&self, id: [u8; 8]) -> Result<Option<(Certificate, Vec<u8>)>, EtsiError>;
}

pub use crate::envelope::{Answer, Unanswerable};

/// How long an enrolment credential is valid (never past the EA).
pub const CREDENTIAL_SECONDS: i64 = 3 * 365 * 86_400;

/// The enrolment authority.
pub struct EnrolmentAuthority {
    keys: AuthorityKeys,
    /// The root that certifies AAs allowed to ask for validation.
    root: Certificate,
    stations: Arc<dyn StationDirectory>,
    credentials: Arc<dyn CredentialRegister>,
    /// The root's CRL in force (see [`EnrolmentAuthority::install_crl`]).
    crl: RwLock<Revoked>,
    /// SHA-256 of the AA certificates whose signature by the root has
    /// been checked: an AA asks for every ticket, and its certificate's
    /// signature, unlike its revocation and validity, cannot change.
    verified_aas: RwLock<HashSet<[u8; 32]>>,
}

/// At most this many verified AA certificates are remembered (a CTL lists
/// a handful); past it the set starts again.
const MAX_VERIFIED_AAS: usize = 256;

/// The CA certificates the installed CRL revokes.
#[derive(Debug, Default)]
struct Revoked {
    /// The CRL's `thisUpdate` (unix seconds): an older list is refused.
    this_update: i64,
    ids: HashSet<[u8; 8]>,
}

impl std::fmt::Debug for EnrolmentAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrolmentAuthority")
            .field("certificate", &self.keys.certificate.hashed_id8())
            .finish_non_exhaustive()
    }
}

/// A refusal on the way to an answer.
type Refused<C> = Result<(), C>;

impl EnrolmentAuthority {
    /// An EA with its certificate (with an `encryptionKey`), signing key,
    /// the secret of its encryption key, the root that certifies the AAs
    /// it answers, and its two registers.
    pub fn new(
        certificate: Certificate,
        signer: Arc<dyn V2xSigner + Send + Sync>,
        encryption_secret: [u8; 32],
        root: Certificate,
        stations: Arc<dyn StationDirectory>,
        credentials: Arc<dyn CredentialRegister>,
    ) -> Self {
        Self {
            keys: AuthorityKeys::new(certificate, signer, encryption_secret),
            root,
            stations,
            credentials,
            crl: RwLock::new(Revoked::default()),
            verified_aas: RwLock::new(HashSet::new()),
        }
    }

    /// Puts the root's CRL `bytes` in force (checked against the root):
    /// an AA it revokes gets `invalidaa`, and if it revokes this EA, every
    /// enrolment and validation is refused (`deniedrequest`). A list older
    /// than the one in force is refused. Returns how many it revokes.
    pub fn install_crl(&self, bytes: &[u8]) -> Result<usize, EtsiError> {
        let crl = read_crl(bytes, &self.root)?;
        let mut held = self
            .crl
            .write()
            .map_err(|_| EtsiError::Profile("the CRL in force is poisoned".into()))?;
        let this_update = crl.this_update.to_unix();
        if this_update < held.this_update {
            return Err(EtsiError::Profile(format!(
                "the CRL's thisUpdate {this_update} is older than the one in force ({})",
                held.this_update
            )));
        }
        *held = Revoked {
            this_update,
            ids: crl.entries.into_iter().collect(),
        };
        Ok(held.ids.len())
    }

    /// Whether the CRL in force revokes `id` (a poisoned lock counts as
    /// revoked: refuse rather than trust).
    fn revoked(&self, id: &[u8; 8]) -> bool {
        self.crl.read().map_or(true, |c| c.ids.contains(id))
    }

    /// Whether the CRL in force revokes this EA itself.
    pub fn is_revoked(&self) -> bool {
        self.revoked(&self.keys.id)
    }

    /// Whether the EA may answer at `now`: not revoked, and its own
    /// certificate valid (an outdated EA certificate issues nothing).
    fn in_service(&self, now: i64) -> bool {
        let cert = &self.keys.certificate;
        !self.is_revoked() && Time32::from_unix(now).is_ok_and(|t| cert.tbs().validity.contains(t))
    }

    /// The EA's certificate.
    pub fn certificate(&self) -> &Certificate {
        &self.keys.certificate
    }

    /// Answers an `EnrolmentRequestMessage`: an enrolment credential
    /// carrying the station's live trust level, or a response code. Nothing
    /// is recorded for a refused request.
    pub fn answer_enrolment(&self, message: &[u8], now: i64) -> Result<Answer<Ec>, Unanswerable> {
        let (aes_key, plain) = self.keys.open(message)?;
        let hash = request_hash(message);
        let (code, certificate) = match self.enrol(&plain, now) {
            Ok(ec) => (Ec::Ok, Some(ec)),
            Err(code) => (code, None),
        };
        let data = EtsiTs102941Data::EnrolmentResponse(InnerResponse {
            request_hash: hash,
            response_code: code,
            certificate,
        });
        let message = self.keys.answer(&data, &aes_key, now)?;
        Ok(Answer { message, code })
    }

    fn enrol(&self, plain: &[u8], now: i64) -> Result<Certificate, Ec> {
        // A revoked or outdated EA issues nothing more.
        check(self.in_service(now), Ec::DeniedRequest)?;
        let outer = EtsiSignedData::from_coer(plain).map_err(|_| Ec::BadContentType)?;
        let data = outer.data().ok_or(Ec::BadContentType)?;
        let Ok(EtsiTs102941Data::EnrolmentRequest(pop)) = EtsiTs102941Data::from_coer(data) else {
            return Err(Ec::BadContentType);
        };
        let request = InnerEcRequest::from_coer(pop.data().ok_or(Ec::CantParse)?)
            .map_err(|_| Ec::CantParse)?;
        // Proof of possession of the new key.
        let new_key = request.public_keys.verification_key;
        pop.verify_self(&new_key)
            .map_err(|_| Ec::InvalidSignature)?;
        if request.certificate_format != CERTIFICATE_FORMAT {
            return Err(Ec::IncompleteRequest);
        }
        if outer.psid() != PSID_CERT_REQUEST || pop.psid() != PSID_CERT_REQUEST {
            return Err(Ec::BadContentType);
        }
        if !is_fresh(outer.generation_time(), now) {
            return Err(Ec::DeniedRequest);
        }
        let its_id = self.authenticate(&outer, &request.its_id, now)?;
        let station = self
            .stations
            .station(&its_id)
            .map_err(|_| Ec::DeniedRequest)?;
        let station = station.ok_or(Ec::UnknownIts)?;
        if !station.active {
            return Err(Ec::BadItsStatus);
        }
        let tbs = enrolment_credential(new_key, credential_validity(now)?, station.trust_level)
            .map_err(|_| Ec::BadItsStatus)?;
        let ec = Certificate::issue_with(tbs, &self.keys.certificate, self.keys.signer.as_ref())
            .map_err(|_| Ec::DeniedRequest)?;
        self.credentials
            .record(&ec, &its_id)
            .map_err(|_| Ec::DeniedRequest)?;
        Ok(ec)
    }

    /// Checks the outer signature: by the registered canonical key (first
    /// enrolment, signer `self`) or by a credential this EA issued and
    /// that is still valid (re-enrolment, signer `digest`). Returns the
    /// station's canonical identifier.
    fn authenticate(&self, outer: &EtsiSignedData, its_id: &[u8], now: i64) -> Result<Vec<u8>, Ec> {
        match outer.signer() {
            EtsiSigner::SelfSigned => {
                let station = self
                    .stations
                    .station(its_id)
                    .map_err(|_| Ec::DeniedRequest)?;
                let station = station.ok_or(Ec::UnknownIts)?;
                outer
                    .verify_self(&station.canonical_key)
                    .map_err(|_| Ec::InvalidSignature)?;
                Ok(its_id.to_vec())
            }
            EtsiSigner::Digest(id) => {
                let (ec, station_id) = self.current_credential(*id, now).map_err(|c| match c {
                    Av::UnknownIts => Ec::UnknownIts,
                    _ => Ec::BadItsStatus,
                })?;
                if its_id != id.as_slice() {
                    return Err(Ec::IncompleteRequest);
                }
                outer.verify_by(&ec).map_err(|_| Ec::InvalidSignature)?;
                Ok(station_id)
            }
            EtsiSigner::Certificate(_) => Err(Ec::BadContentType),
        }
    }

    /// A credential this EA issued, valid at `now`, and its station.
    fn current_credential(&self, id: [u8; 8], now: i64) -> Result<(Certificate, Vec<u8>), Av> {
        let found = self.credentials.find(id).map_err(|_| Av::DeniedRequest)?;
        let (ec, station) = found.ok_or(Av::UnknownIts)?;
        let valid = Time32::from_unix(now).is_ok_and(|t| ec.tbs().validity.contains(t));
        if !valid {
            return Err(Av::DeniedRequest);
        }
        Ok((ec, station))
    }

    /// Answers an `AuthorizationValidationRequestMessage` from an AA: checks
    /// the station's `ecSignature` over the `SharedAtRequest` and confirms
    /// the station's live trust level and the permissions it asked for.
    pub fn answer_validation(&self, message: &[u8], now: i64) -> Result<Answer<Av>, Unanswerable> {
        let (aes_key, plain) = self.keys.open(message)?;
        let (code, confirmed) = match self.validate(&plain, now) {
            Ok(attributes) => (Av::Ok, Some(attributes)),
            Err(code) => (code, None),
        };
        let data = EtsiTs102941Data::ValidationResponse(ValidationResponse {
            request_hash: request_hash(message),
            response_code: code,
            confirmed,
        });
        let message = self.keys.answer(&data, &aes_key, now)?;
        Ok(Answer { message, code })
    }

    fn validate(&self, plain: &[u8], now: i64) -> Result<SubjectAttributes, Av> {
        check(self.in_service(now), Av::DeniedRequest)?;
        let outer = EtsiSignedData::from_coer(plain).map_err(|_| Av::BadContentType)?;
        let EtsiSigner::Certificate(aa) = outer.signer() else {
            return Err(Av::InvalidAa);
        };
        check(self.root_signed(aa), Av::InvalidAa)?;
        check(!self.revoked(&aa.hashed_id8()), Av::InvalidAa)?;
        let valid_now = Time32::from_unix(now).is_ok_and(|t| aa.tbs().validity.contains(t));
        check(valid_now, Av::InvalidAa)?;
        outer.verify_by(aa).map_err(|_| Av::InvalidAaSignature)?;
        let data = outer.data().ok_or(Av::BadContentType)?;
        let Ok(EtsiTs102941Data::ValidationRequest(request)) = EtsiTs102941Data::from_coer(data)
        else {
            return Err(Av::BadContentType);
        };
        let ValidationRequest {
            shared,
            ec_signature,
        } = request;
        check(shared.ea_id == self.keys.id, Av::WrongEa)?;
        let signed = match ec_signature {
            EcSignature::Encrypted(e) => {
                let plain = self.keys.open_inner(&e).map_err(|_| Av::DecryptionFailed)?;
                EtsiSignedData::from_coer(&plain).map_err(|_| Av::CantParse)?
            }
            EcSignature::Signed(s) => s,
        };
        let EtsiSigner::Digest(ec_id) = signed.signer() else {
            return Err(Av::InvalidSignature);
        };
        let (ec, its_id) = self.current_credential(*ec_id, now)?;
        signed.verify_by(&ec).map_err(|_| Av::InvalidSignature)?;
        check(
            signed.ext_data_hash() == Some(&sha256(&shared.to_coer())),
            Av::InvalidSignature,
        )?;
        check(signed.psid() == PSID_CERT_REQUEST, Av::InvalidSignature)?;
        check(is_fresh(signed.generation_time(), now), Av::DeniedRequest)?;
        let station = self
            .stations
            .station(&its_id)
            .map_err(|_| Av::DeniedRequest)?;
        let station = station.ok_or(Av::UnknownIts)?;
        check(station.active, Av::DeniedPermissions)?;
        // The live level, not the one in the credential: a downgrade since
        // enrolment reaches the next ticket.
        let level = SubjectAssurance::from_trust_level(station.trust_level)
            .map_err(|_| Av::DeniedPermissions)?;
        Ok(SubjectAttributes {
            assurance_level: Some(level),
            ..shared.requested
        })
    }
}

impl EnrolmentAuthority {
    /// Whether the root signed the AA certificate `aa` (checked once per
    /// certificate, then remembered).
    fn root_signed(&self, aa: &Certificate) -> bool {
        let digest = sha256(aa.as_coer());
        if self.verified_aas.read().is_ok_and(|v| v.contains(&digest)) {
            return true;
        }
        if aa.verify_signed_by(Some(&self.root)).is_err() {
            return false;
        }
        if let Ok(mut verified) = self.verified_aas.write() {
            if verified.len() >= MAX_VERIFIED_AAS {
                verified.clear();
            }
            verified.insert(digest);
        }
        true
    }
}

fn check<C>(ok: bool, code: C) -> Refused<C> {
    if ok { Ok(()) } else { Err(code) }
}

fn credential_validity(now: i64) -> Result<ValidityPeriod, Ec> {
    Ok(ValidityPeriod {
        start: Time32::from_unix(now).map_err(|_| Ec::DeniedRequest)?,
        duration: Duration::Hours((CREDENTIAL_SECONDS / 3600) as u16),
    })
}
