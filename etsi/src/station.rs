//! The ITS station's side of TS 102 941, without transport: it builds the
//! enrolment and authorization requests and opens the answers. trustca's
//! own tests and `trustca pseudonym request --profile etsi` use it; the
//! independent Python client in the tests does the same from the ASN.1
//! modules alone.

use ring::rand::{SecureRandom, SystemRandom};
use trustca_v2x::ts102941::{
    AuthorizationResponseCode, CERTIFICATE_FORMAT, EcSignature, EnrolmentResponseCode,
    EtsiTs102941Data, InnerAtRequest, InnerEcRequest, InnerResponse, PublicKeys, SharedAtRequest,
    SubjectAttributes,
};
use trustca_v2x::{
    Certificate, EncryptedData, EtsiSignedData, PsidSsp, PublicKeyP256, SignAs, SignedPayload,
    V2xSigner, encrypted_data, sha256, unsecured_data,
};

use crate::EtsiError;
use crate::envelope::{key_tag, open_answer, request_hash, sign_and_encrypt, time64};
use crate::profile::PSID_CERT_REQUEST;

/// A request on its way: the message to send and what opens its answer.
#[derive(Debug, Clone)]
pub struct PendingRequest {
    /// The `Ieee1609Dot2Data` to POST.
    pub message: Vec<u8>,
    /// The AES key the answer will be encrypted under.
    aes_key: [u8; 16],
    /// `requestHash` the answer must name.
    request_hash: [u8; 16],
}

impl PendingRequest {
    /// The signed `Ieee1609Dot2Data` inside an answer to this request
    /// (decrypted, not verified), for inspection.
    pub fn answer_plaintext(&self, answer: &[u8]) -> Result<Vec<u8>, EtsiError> {
        Ok(crate::envelope::encrypted(answer)?.open_with_psk(&self.aes_key)?)
    }
}

fn random<const N: usize>() -> Result<[u8; N], EtsiError> {
    let mut b = [0u8; N];
    SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| EtsiError::Profile("no randomness".into()))?;
    Ok(b)
}

/// Who signs the outer layer of an enrolment request.
#[derive(Clone, Copy)]
pub enum EnrolAs<'a> {
    /// First enrolment: the canonical key the manufacturer registered
    /// (signer `self`), with the canonical identifier.
    Canonical {
        /// The canonical identifier (`itsId`).
        its_id: &'a [u8],
        /// The canonical key.
        key: &'a dyn V2xSigner,
    },
    /// Re-enrolment: the current enrolment credential and its key (signer
    /// `digest`; `itsId` is the credential's HashedId8).
    Credential {
        /// The current enrolment credential.
        ec: &'a Certificate,
        /// Its key.
        key: &'a dyn V2xSigner,
    },
}

impl std::fmt::Debug for EnrolAs<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EnrolAs::Canonical { .. } => f.write_str("EnrolAs::Canonical"),
            EnrolAs::Credential { ec, .. } => {
                write!(f, "EnrolAs::Credential({:02x?})", ec.hashed_id8())
            }
        }
    }
}

/// An `EnrolmentRequestMessage` for the new key `new_key` (which signs the
/// inner proof of possession), to the EA `ea`, asking for
/// `app_permissions`.
pub fn enrolment_request(
    who: EnrolAs<'_>,
    new_key: &dyn V2xSigner,
    app_permissions: Vec<PsidSsp>,
    ea: &Certificate,
    now: i64,
) -> Result<PendingRequest, EtsiError> {
    let its_id = match who {
        EnrolAs::Canonical { its_id, .. } => its_id.to_vec(),
        EnrolAs::Credential { ec, .. } => ec.hashed_id8().to_vec(),
    };
    let inner = InnerEcRequest {
        its_id,
        certificate_format: CERTIFICATE_FORMAT,
        public_keys: PublicKeys {
            verification_key: PublicKeyP256::from_sec1(&new_key.public_key_sec1())?,
            encryption_key: None,
        },
        requested: SubjectAttributes {
            app_permissions,
            ..SubjectAttributes::default()
        },
    };
    let pop = EtsiSignedData::sign(
        SignedPayload::Data(&inner.to_coer()),
        PSID_CERT_REQUEST,
        time64(now)?,
        SignAs::SelfSigned,
        new_key,
    )?;
    let data = EtsiTs102941Data::EnrolmentRequest(pop).to_coer();
    let (signer, key) = match who {
        EnrolAs::Canonical { key, .. } => (SignAs::SelfSigned, key),
        EnrolAs::Credential { ec, key } => (SignAs::Digest(ec), key),
    };
    let aes_key = random()?;
    let message = sign_and_encrypt(&data, signer, key, Some(ea), &aes_key, now)?;
    Ok(PendingRequest {
        request_hash: request_hash(&message),
        message,
        aes_key,
    })
}

/// Opens the EA's `EnrolmentResponseMessage` to `pending`: the response
/// code and, when `ok`, the enrolment credential.
pub fn enrolment_response(
    pending: &PendingRequest,
    answer: &[u8],
    ea: &Certificate,
) -> Result<InnerResponse<EnrolmentResponseCode>, EtsiError> {
    match EtsiTs102941Data::from_coer(&open_answer(answer, &pending.aes_key, ea)?)? {
        EtsiTs102941Data::EnrolmentResponse(r) if r.request_hash == pending.request_hash => Ok(r),
        EtsiTs102941Data::EnrolmentResponse(_) => Err(EtsiError::Profile(
            "the response names another request".into(),
        )),
        _ => Err(EtsiError::Profile(
            "the answer is not an enrolment response".into(),
        )),
    }
}

/// An `AuthorizationRequestMessage` for the ticket key `ticket_key` to the
/// AA `aa`, with the `ecSignature` by the enrolment credential `ec` (key
/// `ec_key`) encrypted to the EA `ea`: the AA cannot read which credential
/// signed, the EA sees only the `keyTag`, not the ticket's key.
pub fn authorization_request(
    ticket_key: PublicKeyP256,
    app_permissions: Vec<PsidSsp>,
    ec: &Certificate,
    ec_key: &dyn V2xSigner,
    ea: &Certificate,
    aa: &Certificate,
    now: i64,
) -> Result<PendingRequest, EtsiError> {
    let public_keys = PublicKeys {
        verification_key: ticket_key,
        encryption_key: None,
    };
    let hmac_key = random()?;
    let shared = SharedAtRequest {
        ea_id: ea.hashed_id8(),
        key_tag: key_tag(&hmac_key, &public_keys),
        certificate_format: CERTIFICATE_FORMAT,
        requested: SubjectAttributes {
            app_permissions,
            ..SubjectAttributes::default()
        },
    };
    let ec_signed = EtsiSignedData::sign(
        SignedPayload::ExtDataHash(&sha256(&shared.to_coer())),
        PSID_CERT_REQUEST,
        time64(now)?,
        SignAs::Digest(ec),
        ec_key,
    )?;
    let ec_signature =
        EcSignature::Encrypted(EncryptedData::seal_to_certificate(ea, ec_signed.as_coer())?);
    let data = EtsiTs102941Data::AuthorizationRequest(InnerAtRequest {
        public_keys,
        hmac_key,
        shared,
        ec_signature,
    })
    .to_coer();
    // No proof of possession (AuthorizationRequestMessage): the request is
    // encrypted to the AA without an outer signature.
    let aes_key = random()?;
    let sealed = EncryptedData::seal_to_certificate_with_key(aa, &aes_key, &unsecured_data(&data))?;
    let message = encrypted_data(&sealed);
    Ok(PendingRequest {
        request_hash: request_hash(&message),
        message,
        aes_key,
    })
}

/// Opens the AA's `AuthorizationResponseMessage` to `pending`.
pub fn authorization_response(
    pending: &PendingRequest,
    answer: &[u8],
    aa: &Certificate,
) -> Result<InnerResponse<AuthorizationResponseCode>, EtsiError> {
    match EtsiTs102941Data::from_coer(&open_answer(answer, &pending.aes_key, aa)?)? {
        EtsiTs102941Data::AuthorizationResponse(r) if r.request_hash == pending.request_hash => {
            Ok(r)
        }
        EtsiTs102941Data::AuthorizationResponse(_) => Err(EtsiError::Profile(
            "the response names another request".into(),
        )),
        _ => Err(EtsiError::Profile(
            "the answer is not an authorization response".into(),
        )),
    }
}
