//! The TS 102 941 envelopes shared by stations and authorities: a
//! request is signed (`EtsiTs103097Data-Signed`) and encrypted to the
//! recipient's certificate under an AES key the sender keeps; the answer
//! is signed by the authority and encrypted under that same key
//! (`pskRecipInfo`). Also the request hash, times and the `keyTag`.

use std::sync::Arc;

use ring::hmac;
use trustca_v2x::ts102941::{EtsiTs102941Data, PublicKeys, key_tag_input};
use trustca_v2x::{
    Certificate, EncryptedData, EtsiSignedData, Ieee1609Dot2Content, PublicKeyP256, RecipientKind,
    SignAs, SignedPayload, Time32, V2xError, V2xSigner, decode_data, encrypted_data, sha256,
};
use zeroize::Zeroizing;

use crate::EtsiError;
use crate::profile::PSID_CERT_REQUEST;

/// How far a request's `generationTime` may be from the authority's clock.
pub const MAX_CLOCK_SKEW_SECS: i64 = 300;

/// `requestHash`: the leftmost 16 octets of SHA-256 over the request
/// message as received.
pub fn request_hash(message: &[u8]) -> [u8; 16] {
    let mut h = [0u8; 16];
    h.copy_from_slice(&sha256(message)[..16]);
    h
}

/// Unix time `now` as a `Time64` (TAI microseconds since 2004-01-01).
pub fn time64(now: i64) -> Result<u64, EtsiError> {
    Ok(u64::from(Time32::from_unix(now)?.0) * 1_000_000)
}

/// Whether `generation_time` (Time64) lies within
/// [`MAX_CLOCK_SKEW_SECS`] of unix time `now`.
pub fn is_fresh(generation_time: u64, now: i64) -> bool {
    match Time32::from_unix(now) {
        Ok(t) => {
            let sent = (generation_time / 1_000_000) as i64;
            (sent - i64::from(t.0)).abs() <= MAX_CLOCK_SKEW_SECS
        }
        Err(_) => false,
    }
}

/// The `keyTag` of `keys` under `hmac_key`: HMAC-SHA-256 over the COER
/// `PublicVerificationKey` and, if present, `PublicEncryptionKey`,
/// truncated to 16 octets (TS 102 941 clause 6.2.3.3.1).
pub fn key_tag(hmac_key: &[u8; 32], keys: &PublicKeys) -> [u8; 16] {
    let tag = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, hmac_key),
        &key_tag_input(keys),
    );
    let mut t = [0u8; 16];
    t.copy_from_slice(&tag.as_ref()[..16]);
    t
}

/// Signs `data` (a COER `EtsiTs102941Data`) under PSID 623 and encrypts
/// the signed data under `aes_key`: to `recipient` (a request) or, when
/// `recipient` is `None`, as an answer under the request's key.
pub fn sign_and_encrypt(
    data: &[u8],
    signer: SignAs<'_>,
    key: &dyn V2xSigner,
    recipient: Option<&Certificate>,
    aes_key: &[u8; 16],
    now: i64,
) -> Result<Vec<u8>, EtsiError> {
    match recipient {
        Some(cert) => sign_and_seal(data, signer, key, &Recipient::of(cert)?, aes_key, now),
        None => {
            let signed = sign(data, signer, key, now)?;
            Ok(encrypted_data(&EncryptedData::seal_with_psk(
                aes_key,
                signed.as_coer(),
            )?))
        }
    }
}

/// `data` signed under PSID 623 at `now`.
fn sign(
    data: &[u8],
    signer: SignAs<'_>,
    key: &dyn V2xSigner,
    now: i64,
) -> Result<EtsiSignedData, EtsiError> {
    Ok(EtsiSignedData::sign(
        SignedPayload::Data(data),
        PSID_CERT_REQUEST,
        time64(now)?,
        signer,
        key,
    )?)
}

/// A certificate as the recipient of `certRecipInfo`: its encryption key,
/// HashedId8 and ECIES parameter P1 (SHA-256 of its encoding), worked out
/// once for an authority's own certificate or an EA its AA knows, not at
/// every request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Recipient {
    pub(crate) key: PublicKeyP256,
    pub(crate) id: [u8; 8],
    pub(crate) p1: [u8; 32],
}

impl Recipient {
    /// `cert` as a recipient; it must carry an `encryptionKey`.
    pub(crate) fn of(cert: &Certificate) -> Result<Self, V2xError> {
        Ok(Self {
            key: cert.tbs().encryption_key.ok_or(V2xError::NoEncryptionKey)?,
            id: cert.hashed_id8(),
            p1: sha256(cert.as_coer()),
        })
    }

    /// `plaintext` encrypted to this recipient under `aes_key`.
    pub(crate) fn seal(
        &self,
        aes_key: &[u8; 16],
        plaintext: &[u8],
    ) -> Result<EncryptedData, V2xError> {
        EncryptedData::seal_with_key(
            &self.key,
            self.id,
            RecipientKind::Certificate,
            &self.p1,
            aes_key,
            plaintext,
        )
    }
}

/// [`sign_and_encrypt`] to a prepared [`Recipient`].
pub(crate) fn sign_and_seal(
    data: &[u8],
    signer: SignAs<'_>,
    key: &dyn V2xSigner,
    recipient: &Recipient,
    aes_key: &[u8; 16],
    now: i64,
) -> Result<Vec<u8>, EtsiError> {
    let signed = sign(data, signer, key, now)?;
    Ok(encrypted_data(&recipient.seal(aes_key, signed.as_coer())?))
}

/// The `EncryptedData` of an `Ieee1609Dot2Data` message.
pub fn encrypted(message: &[u8]) -> Result<EncryptedData, V2xError> {
    match decode_data(message)? {
        Ieee1609Dot2Content::Encrypted(e) => Ok(e),
        _ => Err(V2xError::Profile("the message is not encryptedData")),
    }
}

/// Opens an answer sealed under `aes_key`, checks that `authority` signed
/// it under PSID 623, and returns the signed `EtsiTs102941Data` octets.
pub fn open_answer(
    message: &[u8],
    aes_key: &[u8; 16],
    authority: &Certificate,
) -> Result<Vec<u8>, EtsiError> {
    let plain = encrypted(message)?.open_with_psk(aes_key)?;
    let signed = EtsiSignedData::from_coer(&plain)?;
    signed.verify_by(authority)?;
    if signed.psid() != PSID_CERT_REQUEST {
        return Err(EtsiError::Profile(
            "the answer is not signed under PSID 623".into(),
        ));
    }
    signed
        .data()
        .map(<[u8]>::to_vec)
        .ok_or_else(|| EtsiError::Profile("the answer carries no data".into()))
}

/// Why a message got no answer at all: it could not be decrypted, so no
/// key exists to encrypt an answer under (TS 102 941 answers everything
/// else with a response code).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unanswerable(pub &'static str);

/// An answer and the response code it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer<C> {
    /// The `Ieee1609Dot2Data` to return.
    pub message: Vec<u8>,
    /// Its response code.
    pub code: C,
}

/// An authority's certificate (with an `encryptionKey`), signing key and
/// encryption secret: what opens the requests sent to it and signs its
/// answers.
pub(crate) struct AuthorityKeys {
    pub(crate) certificate: Certificate,
    pub(crate) signer: Arc<dyn V2xSigner + Send + Sync>,
    pub(crate) encryption_secret: Zeroizing<[u8; 32]>,
    /// The certificate's HashedId8 and SHA-256 (the ECIES P1 of requests
    /// encrypted to it), hashed once.
    pub(crate) id: [u8; 8],
    p1: [u8; 32],
}

impl AuthorityKeys {
    pub(crate) fn new(
        certificate: Certificate,
        signer: Arc<dyn V2xSigner + Send + Sync>,
        encryption_secret: [u8; 32],
    ) -> Self {
        Self {
            id: certificate.hashed_id8(),
            p1: sha256(certificate.as_coer()),
            certificate,
            signer,
            encryption_secret: Zeroizing::new(encryption_secret),
        }
    }

    /// Decrypts `message` as its recipient: the AES key and the plaintext.
    pub(crate) fn open(
        &self,
        message: &[u8],
    ) -> Result<(Zeroizing<[u8; 16]>, Vec<u8>), Unanswerable> {
        let data = encrypted(message).map_err(|_| Unanswerable("not an encryptedData message"))?;
        data.open_keeping_key(&self.encryption_secret, self.id, &self.p1)
            .map_err(|e| match e {
                V2xError::NoRecipient => Unanswerable("this authority is not the recipient"),
                _ => Unanswerable("the message does not decrypt"),
            })
    }

    /// Decrypts `data`, encrypted to this authority (the `ecSignature`
    /// inside a validation request).
    pub(crate) fn open_inner(&self, data: &EncryptedData) -> Result<Vec<u8>, V2xError> {
        data.open(&self.encryption_secret, self.id, &self.p1)
    }

    /// `data` signed by this authority (signer `digest`) and encrypted
    /// under the request's `aes_key`.
    pub(crate) fn answer(
        &self,
        data: &EtsiTs102941Data,
        aes_key: &[u8; 16],
        now: i64,
    ) -> Result<Vec<u8>, Unanswerable> {
        sign_and_encrypt(
            &data.to_coer(),
            SignAs::Digest(&self.certificate),
            self.signer.as_ref(),
            None,
            aes_key,
            now,
        )
        .map_err(|_| Unanswerable("the authority could not sign its answer"))
    }
}
