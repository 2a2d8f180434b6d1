//! The vehicle's side: turns the responses it downloads from the
//! registration authority (IEEE 1609.2.1 `AcaEeCertResponsePrivateSpdu`s)
//! into usable tickets. It checks the pseudonym CA's signature on each,
//! then finds
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
    Certificate, CertificateId, EncryptedData, Ieee1609Dot2Content, PublicKeyP256,
    SECURITY_MGMT_PSID, ScmsPdu, SignedSpdu, decode_data, response_key_id,
};

use crate::error::{Result, ScmsError};
use crate::pseudonym_ca::to_v2x_key;

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

    /// Whether `response` is addressed to one of this request's cocoon
    /// keys (without decrypting it): a vehicle holding several requests
    /// picks the opener with this, and skips responses of requests it has
    /// already completed.
    pub fn recognises(&self, response: &[u8]) -> bool {
        SignedSpdu::from_coer(response)
            .ok()
            .and_then(|s| encrypted_payload(&s).ok())
            .is_some_and(|d| {
                d.recipients()
                    .iter()
                    .any(|r| self.candidates.contains_key(&r.recipient_id))
            })
    }

    /// Opens and checks one `AcaEeCertResponsePrivateSpdu`.
    pub fn open(&self, response: &[u8]) -> Result<OpenedTicket> {
        let signed = SignedSpdu::from_coer(response)?;
        // IEEE 1609.2.1: signed by the ACA that issued the ticket inside.
        if signed.signer().as_coer() != self.pseudonym_ca.as_coer() {
            return Err(ScmsError::Response(
                "response not signed by the pseudonym CA".into(),
            ));
        }
        if signed.psid() != SECURITY_MGMT_PSID {
            return Err(ScmsError::Response("response psid is not 35".into()));
        }
        signed.verify()?;
        let data = encrypted_payload(&signed)?;
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
        let ScmsPdu::AcaEeCertResponse(answer) = ScmsPdu::from_coer(&plain)? else {
            return Err(ScmsError::Response(
                "response is not an AcaEeCertResponse".into(),
            ));
        };
        let c = answer
            .private_key_info
            .ok_or_else(|| ScmsError::Response("response without privateKeyInfo".into()))?;
        let contribution = CaContribution::from_bytes(&c)?;
        let certificate = answer.certificate;
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

/// The `EncryptedData` a signed response carries.
fn encrypted_payload(signed: &SignedSpdu) -> Result<EncryptedData> {
    match decode_data(signed.payload())? {
        Ieee1609Dot2Content::Encrypted(d) => Ok(d),
        _ => Err(ScmsError::Response(
            "response payload is not encryptedData".into(),
        )),
    }
}
