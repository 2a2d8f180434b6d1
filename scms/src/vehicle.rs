//! The vehicle's side: turns the encrypted responses it downloads from the
//! registration authority into usable tickets. For each response it finds
//! which of its requested `(period, j)` the response is for (by the
//! recipient id, the HashedId8 of the cocoon key), decrypts it with the
//! cocoon private key only it can compute, derives the ticket's private key
//! `a + f(k, i, j) + c`, and checks that the key matches the certificate,
//! that the certificate is the pseudonym CA's and is for that period. A
//! registration authority that swapped, replayed or altered a response is
//! caught here.

use std::collections::HashMap;

use trustca_pseudonym::{CaContribution, Caterpillar, P256PrivateKey, P256PublicKey};
use trustca_v2x::{
    CertProfile, Certificate, CertificateId, EncryptedData, PublicKeyP256, response_key_id,
};

use crate::error::{Result, ScmsError};
use crate::pseudonym_ca::{RESPONSE_PLAINTEXT_LEN, to_v2x_key};

/// An authorization ticket with its private key.
#[derive(Debug)]
pub struct OpenedTicket {
    /// Its period.
    pub period: u64,
    /// Its index in the period.
    pub j: u32,
    /// The 1609.2 certificate.
    pub certificate: Certificate,
    /// The private key (never left the vehicle; the CA only knows `c`).
    pub private_key: P256PrivateKey,
}

/// Opens responses for one request of one vehicle.
pub struct TicketOpener<'a> {
    caterpillar: &'a Caterpillar,
    pseudonym_ca: &'a Certificate,
    candidates: HashMap<[u8; 8], (u64, u32, PublicKeyP256)>,
}

impl std::fmt::Debug for TicketOpener<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TicketOpener")
            .field("candidates", &self.candidates.len())
            .finish_non_exhaustive()
    }
}

impl<'a> TicketOpener<'a> {
    /// For tickets of `periods` periods from `first_period`, `per_period`
    /// each, issued by `pseudonym_ca`.
    pub fn new(
        caterpillar: &'a Caterpillar,
        pseudonym_ca: &'a Certificate,
        first_period: u64,
        periods: u32,
        per_period: u32,
    ) -> Result<Self> {
        let request = caterpillar.request();
        let slots: Vec<(u64, u32)> = (first_period..first_period + u64::from(periods))
            .flat_map(|p| (0..per_period).map(move |j| (p, j)))
            .collect();
        let keys = crate::parallel::map(
            &slots,
            |&(p, j)| -> Result<PublicKeyP256> { to_v2x_key(&request.cocoon_public_key(p, j)?) },
            || Err(ScmsError::Response("a worker thread panicked".into())),
        );
        let mut candidates = HashMap::with_capacity(slots.len());
        for ((period, j), key) in slots.into_iter().zip(keys) {
            let key = key?;
            candidates.insert(response_key_id(&key), (period, j, key));
        }
        Ok(Self {
            caterpillar,
            pseudonym_ca,
            candidates,
        })
    }

    /// [`TicketOpener::open`] for many responses, spread over the
    /// machine's cores; results in input order.
    pub fn open_all(&self, responses: &[Vec<u8>]) -> Vec<Result<OpenedTicket>> {
        crate::parallel::map(
            responses,
            |r| self.open(r),
            || Err(ScmsError::Response("a worker thread panicked".into())),
        )
    }

    /// Whether `encrypted` is addressed to one of this request's cocoon
    /// keys (without decrypting it): a vehicle holding several requests
    /// picks the opener with this, and skips responses of requests it has
    /// already completed.
    pub fn recognises(&self, encrypted: &[u8]) -> bool {
        EncryptedData::from_coer(encrypted).is_ok_and(|d| {
            d.recipients()
                .iter()
                .any(|r| self.candidates.contains_key(&r.recipient_id))
        })
    }

    /// Opens and checks one response.
    pub fn open(&self, encrypted: &[u8]) -> Result<OpenedTicket> {
        let data = EncryptedData::from_coer(encrypted)?;
        let (period, j, key) = data
            .recipients()
            .iter()
            .find_map(|r| self.candidates.get(&r.recipient_id))
            .copied()
            .ok_or_else(|| {
                ScmsError::Response("not encrypted to any of this request's keys".into())
            })?;
        let cocoon = self.caterpillar.cocoon_secret(period, j)?;
        let plain = zeroize::Zeroizing::new(data.open_with_response_key(&cocoon, &key)?);
        if plain.len() != RESPONSE_PLAINTEXT_LEN {
            return Err(ScmsError::Response(format!(
                "response of {} bytes",
                plain.len()
            )));
        }
        let contribution = CaContribution::from_bytes(&plain[..32])?;
        let len = usize::from(u16::from_be_bytes([plain[32], plain[33]]));
        let ticket = plain
            .get(34..34 + len)
            .ok_or_else(|| ScmsError::Response("ticket length exceeds the response".into()))?;
        if plain[34 + len..].iter().any(|b| *b != 0) {
            return Err(ScmsError::Response("non-zero padding".into()));
        }
        let certificate = Certificate::from_coer_in(CertProfile::Ieee1609Dot2, ticket)?;
        certificate.verify_signed_by(Some(self.pseudonym_ca))?;
        match &certificate.tbs().id {
            CertificateId::LinkageData(l) if u64::from(l.i_cert) == period => {}
            _ => {
                return Err(ScmsError::Response(format!(
                    "ticket is not for period {period}"
                )));
            }
        }
        let key = P256PublicKey::from_sec1_uncompressed(
            &certificate.tbs().verification_key.uncompressed()?,
        )?;
        let private_key = self
            .caterpillar
            .derive_and_check(period, j, &contribution, &key)?;
        Ok(OpenedTicket {
            period,
            j,
            certificate,
            private_key,
        })
    }
}
