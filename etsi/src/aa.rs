//! The authorization authority, without transport: answers
//! `AuthorizationRequestMessage`s with TS 103 097 authorization tickets.
//! It checks the `keyTag` against the ticket's keys, has the station's
//! enrolment authority validate the `SharedAtRequest` and the encrypted
//! `ecSignature` (through the caller's [`EaLink`]: the AA cannot read that
//! signature, so it never learns which credential asked), and issues the
//! ticket for the trust level the EA confirmed, from the ticket profile's
//! permission table. The profile sits in a [`ProfileSlot`], read once per
//! request, so a policy reload that replaces it applies from the next
//! request and never inside one.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};

use ring::rand::{SecureRandom, SystemRandom};
use trustca_scms::{ProfileSlot, TicketProfile};
use trustca_v2x::ts102941::{
    AuthorizationResponseCode as At, EcSignature, EtsiTs102941Data, InnerAtRequest, InnerResponse,
    SubjectAttributes, ValidationRequest, ValidationResponseCode as Av,
};
use trustca_v2x::{Certificate, Ieee1609Dot2Content, SignAs, Time32, V2xSigner, decode_data};
use zeroize::Zeroizing;

use crate::EtsiError;
use crate::ea::{Answer, Unanswerable};
use crate::envelope::{
    AuthorityKeys, Recipient, key_tag, open_answer, request_hash, sign_and_seal,
};
use crate::profile::{authorization_ticket, narrow};

/// How the AA reaches an EA: sends an
/// `AuthorizationValidationRequestMessage` and returns the answer.
pub trait EaLink: Send + Sync {
    /// Sends `message` to the EA; the EA's answer, or why it did not come.
    fn validate(&self, message: &[u8]) -> Result<Vec<u8>, EtsiError>;
}

/// An EA the AA knows, and how to reach it.
#[derive(Clone)]
pub struct KnownEa {
    /// The EA's certificate (validation requests are encrypted to it).
    pub certificate: Certificate,
    /// The way to it.
    pub link: Arc<dyn EaLink>,
}

impl std::fmt::Debug for KnownEa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KnownEa")
            .field("certificate", &self.certificate.hashed_id8())
            .finish_non_exhaustive()
    }
}

/// The authorization authority.
pub struct AuthorizationAuthority {
    keys: AuthorityKeys,
    tickets: ProfileSlot,
    trust: RwLock<EaTrust>,
}

/// The EAs the AA accepts (from the installed CTL) and the CA
/// certificates the installed CRL revokes; replaced as a whole.
struct EaTrust {
    eas: Vec<Arc<TrustedEa>>,
    revoked: HashSet<[u8; 8]>,
}

/// An EA the AA accepts, with its HashedId8 and, as a recipient, its
/// encryption key and P1: worked out once, not at every request.
struct TrustedEa {
    ea: KnownEa,
    id: [u8; 8],
    /// `None` for a certificate without an `encryptionKey`: it cannot be
    /// asked (`aa-ea-cantreachea`).
    recipient: Option<Recipient>,
}

impl EaTrust {
    fn new(eas: Vec<KnownEa>, revoked: Vec<[u8; 8]>) -> Self {
        let eas = eas
            .into_iter()
            .map(|ea| {
                Arc::new(TrustedEa {
                    id: ea.certificate.hashed_id8(),
                    recipient: Recipient::of(&ea.certificate).ok(),
                    ea,
                })
            })
            .collect();
        Self {
            eas,
            revoked: revoked.into_iter().collect(),
        }
    }
}

impl std::fmt::Debug for AuthorizationAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthorizationAuthority")
            .field("certificate", &self.keys.certificate.hashed_id8())
            .finish_non_exhaustive()
    }
}

impl AuthorizationAuthority {
    /// An AA with its certificate (with an `encryptionKey`), signing key,
    /// encryption secret, ticket profile (`etsi-ts-103-097`, checked against
    /// the certificate's issue permissions) and the EAs it accepts.
    pub fn new(
        certificate: Certificate,
        signer: Arc<dyn V2xSigner + Send + Sync>,
        encryption_secret: [u8; 32],
        tickets: TicketProfile,
        eas: Vec<KnownEa>,
    ) -> Result<Self, EtsiError> {
        tickets.check_issuable(&certificate)?;
        if tickets.format != trustca_scms::TicketFormat::EtsiTs103097 {
            return Err(EtsiError::Profile(format!(
                "the AA issues \"etsi-ts-103-097\" tickets; the profile is {:?}",
                tickets.format.as_str()
            )));
        }
        Ok(Self {
            keys: AuthorityKeys::new(certificate, signer, encryption_secret),
            tickets: ProfileSlot::from(tickets),
            trust: RwLock::new(EaTrust::new(eas, Vec::new())),
        })
    }

    /// Replaces the EAs this AA accepts and the revoked CA certificates
    /// (HashedId8), as a newly installed CTL and CRL say: an EA the CRL
    /// revokes gets `its-aa-invalidea`, one no longer listed
    /// `its-aa-unknownea`. Requests in flight keep the set they started with.
    pub fn replace_trust(&self, eas: Vec<KnownEa>, revoked: Vec<[u8; 8]>) {
        let fresh = EaTrust::new(eas, revoked);
        match self.trust.write() {
            Ok(mut held) => *held = fresh,
            Err(poisoned) => *poisoned.into_inner() = fresh,
        }
    }

    /// The EA `ea_id` if this AA accepts it at `now`.
    fn known_ea(&self, ea_id: [u8; 8], now: i64) -> Result<Arc<TrustedEa>, At> {
        let trust = self.trust.read().map_err(|_| At::ItsAaUnknownEa)?;
        if trust.revoked.contains(&ea_id) {
            return Err(At::ItsAaInvalidEa);
        }
        let ea = trust
            .eas
            .iter()
            .find(|e| e.id == ea_id)
            .ok_or(At::ItsAaUnknownEa)?;
        // An outdated (expired or not yet valid) EA certificate.
        let validity = &ea.ea.certificate.tbs().validity;
        if !Time32::from_unix(now).is_ok_and(|t| validity.contains(t)) {
            return Err(At::ItsAaInvalidEa);
        }
        Ok(Arc::clone(ea))
    }

    /// The AA's certificate.
    pub fn certificate(&self) -> &Certificate {
        &self.keys.certificate
    }

    /// The ticket profile in force, for a policy reload to replace
    /// ([`ProfileSlot::replace`] refuses a profile that moves what issued
    /// tickets carry, the ticket format among them).
    pub fn profile_slot(&self) -> &ProfileSlot {
        &self.tickets
    }

    /// Answers an `AuthorizationRequestMessage`: a ticket, or a response
    /// code. Nothing is recorded.
    pub fn answer(&self, message: &[u8], now: i64) -> Result<Answer<At>, Unanswerable> {
        let (aes_key, plain) = self.keys.open(message)?;
        let (code, certificate) = match self.authorize(&plain, now) {
            Ok(at) => (At::Ok, Some(at)),
            Err(code) => (code, None),
        };
        let data = EtsiTs102941Data::AuthorizationResponse(InnerResponse {
            request_hash: request_hash(message),
            response_code: code,
            certificate,
        });
        let message = self.keys.answer(&data, &aes_key, now)?;
        Ok(Answer { message, code })
    }

    fn authorize(&self, plain: &[u8], now: i64) -> Result<Certificate, At> {
        let Ok(Ieee1609Dot2Content::Unsecured(data)) = decode_data(plain) else {
            return Err(At::ItsAaBadContentType);
        };
        let Ok(EtsiTs102941Data::AuthorizationRequest(request)) = EtsiTs102941Data::from_coer(data)
        else {
            return Err(At::ItsAaCantParse);
        };
        let InnerAtRequest {
            public_keys,
            hmac_key,
            shared,
            ec_signature,
        } = request;
        if key_tag(&hmac_key, &public_keys) != shared.key_tag {
            return Err(At::ItsAaKeysDontMatch);
        }
        // A clear ecSignature would tell the AA which credential asked.
        if !matches!(ec_signature, EcSignature::Encrypted(_)) {
            return Err(At::ItsAaIncompleteRequest);
        }
        let ea = self.known_ea(shared.ea_id, now)?;
        let confirmed = self.validate(
            &ea,
            ValidationRequest {
                shared,
                ec_signature,
            },
            now,
        )?;
        let level = confirmed
            .assurance_level
            .and_then(|a| a.trust_level())
            .ok_or(At::DeniedPermissions)?;
        let tickets = self.tickets.current();
        let period = tickets.period_at(now).ok_or(At::ItsAaOutOfSyncRequest)?;
        let mut tbs = authorization_ticket(&tickets, public_keys.verification_key, level, period)
            .map_err(|_| At::ItsAaDeniedPermissions)?;
        let granted = tbs.app_permissions.take().unwrap_or_default();
        tbs.app_permissions =
            Some(narrow(&granted, &confirmed.app_permissions).ok_or(At::ItsAaDeniedPermissions)?);
        Certificate::issue_with(tbs, &self.keys.certificate, self.keys.signer.as_ref())
            .map_err(|_| At::ItsAaDeniedPermissions)
    }

    /// Asks `ea` to validate; the attributes it confirmed, or the
    /// authorization response code for its refusal.
    fn validate(
        &self,
        ea: &TrustedEa,
        request: ValidationRequest,
        now: i64,
    ) -> Result<SubjectAttributes, At> {
        let data = EtsiTs102941Data::ValidationRequest(request).to_coer();
        let mut aes_key = Zeroizing::new([0u8; 16]);
        SystemRandom::new()
            .fill(&mut aes_key[..])
            .map_err(|_| At::AaEaCantReachEa)?;
        let recipient = ea.recipient.as_ref().ok_or(At::AaEaCantReachEa)?;
        let message = sign_and_seal(
            &data,
            SignAs::Certificate(&self.keys.certificate),
            self.keys.signer.as_ref(),
            recipient,
            &aes_key,
            now,
        )
        .map_err(|_| At::AaEaCantReachEa)?;
        let answer = ea
            .ea
            .link
            .validate(&message)
            .map_err(|_| At::AaEaCantReachEa)?;
        let data =
            open_answer(&answer, &aes_key, &ea.ea.certificate).map_err(|_| At::EaAaCantParse)?;
        let Ok(EtsiTs102941Data::ValidationResponse(response)) = EtsiTs102941Data::from_coer(&data)
        else {
            return Err(At::EaAaBadContentType);
        };
        if response.request_hash != request_hash(&message) {
            return Err(At::EaAaCantParse);
        }
        match (response.response_code, response.confirmed) {
            (Av::Ok, Some(confirmed)) => Ok(confirmed),
            (code, _) => Err(authorization_code(code)),
        }
    }
}

/// The authorization response code for an EA's validation refusal.
fn authorization_code(code: Av) -> At {
    match code {
        Av::CantParse => At::EaAaCantParse,
        Av::BadContentType => At::EaAaBadContentType,
        Av::ImNotTheRecipient => At::EaAaImNotTheRecipient,
        Av::UnknownEncryptionAlgorithm => At::EaAaUnknownEncryptionAlgorithm,
        Av::DecryptionFailed => At::EaAaDecryptionFailed,
        Av::InvalidAa => At::InvalidAa,
        Av::InvalidAaSignature => At::InvalidAaSignature,
        Av::WrongEa => At::WrongEa,
        Av::UnknownIts => At::UnknownIts,
        Av::InvalidSignature => At::InvalidSignature,
        Av::InvalidEncryptionKey => At::InvalidEncryptionKey,
        Av::DeniedTooManyCerts => At::DeniedTooManyCerts,
        _ => At::DeniedPermissions,
    }
}
