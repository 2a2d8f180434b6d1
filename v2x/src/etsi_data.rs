//! ETSI TS 103 097 signed data (`EtsiTs103097Data-Signed` and
//! `EtsiTs103097Data-SignedExternalPayload`) with the signers ETSI
//! TS 102 941 uses: `self` (a proof of possession, or an initial enrolment
//! signed with the canonical key), `digest` (the HashedId8 of a certificate
//! the recipient already holds: an enrolment credential, the EA's or AA's
//! certificate) or one `certificate`.
//!
//! ```text
//! Ieee1609Dot2Data { protocolVersion 3, content signedData SignedData {
//!   hashId sha256,
//!   tbsData { payload { data Ieee1609Dot2Data (unsecuredData) | extDataHash
//!             sha256HashedData }, headerInfo { psid, generationTime } },
//!   signer digest | certificate (one) | self,
//!   signature ecdsaNistP256Signature (x-only r) } }
//! ```
//!
//! The TS 103 097 profile requires `generationTime`; nothing else of the
//! header is written or accepted. The signature is the IEEE 1609.2 one
//! ([`crate::signing_message`]): over the COER of `tbsData` and the COER of
//! the signer's certificate (nothing for `self`).

use std::ops::Range;

use crate::V2xError;
use crate::cert::{CertProfile, Certificate};
use crate::coer::{Reader, Writer};
use crate::keys::{PublicKeyP256, V2xSigner, signing_message};
use crate::spdu::{MAX_SPDU_LEN, decode_x_only_signature, encode_signature, verify_with};

/// Who signs, when signing.
#[derive(Debug, Clone, Copy)]
pub enum SignAs<'a> {
    /// `self`: the key signs for itself (no certificate).
    SelfSigned,
    /// `digest`: the certificate's HashedId8 (the recipient holds it).
    Digest(&'a Certificate),
    /// `certificate`: the certificate itself.
    Certificate(&'a Certificate),
}

/// `SignerIdentifier`, as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EtsiSigner {
    /// `self`.
    SelfSigned,
    /// `digest`: a certificate's HashedId8.
    Digest([u8; 8]),
    /// `certificate` with exactly one certificate.
    Certificate(Box<Certificate>),
}

/// What the signature covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignedPayload<'a> {
    /// `data`: these octets, as `unsecuredData`.
    Data(&'a [u8]),
    /// `extDataHash`: SHA-256 of data carried elsewhere (the `ecSignature`
    /// of an authorization request covers the `SharedAtRequest` this way).
    ExtDataHash(&'a [u8; 32]),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Payload {
    Data(Range<usize>),
    ExtDataHash([u8; 32]),
}

/// A decoded or produced `EtsiTs103097Data` with `signedData`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtsiSignedData {
    encoded: Vec<u8>,
    tbs_range: Range<usize>,
    payload: Payload,
    psid: u64,
    generation_time: u64,
    signer: EtsiSigner,
    signature: [u8; 64],
}

impl EtsiSignedData {
    /// Signs `payload` under header `psid` and `generation_time` (TAI
    /// microseconds since 2004) with `key`, as `signer` says. For
    /// [`SignAs::Digest`] and [`SignAs::Certificate`] `key` must be the
    /// certificate's key; for [`SignAs::SelfSigned`] any key.
    pub fn sign(
        payload: SignedPayload<'_>,
        psid: u64,
        generation_time: u64,
        signer: SignAs<'_>,
        key: &dyn V2xSigner,
    ) -> Result<Self, V2xError> {
        let mut tbs = Writer::new();
        match payload {
            SignedPayload::Data(d) => {
                tbs.u8(0x40); // data present, no extDataHash, no extensions
                tbs.fixed(&crate::spdu::unsecured_data(d));
            }
            SignedPayload::ExtDataHash(h) => {
                tbs.u8(0x20);
                tbs.tag(0); // sha256HashedData
                tbs.fixed(h);
            }
        }
        tbs.u8(0x40); // HeaderInfo: generationTime only
        tbs.uint(psid);
        tbs.fixed(&generation_time.to_be_bytes());
        let signer_input: &[u8] = match signer {
            SignAs::SelfSigned => &[],
            SignAs::Digest(c) | SignAs::Certificate(c) => c.as_coer(),
        };
        let sig = key.sign_digest_input(&signing_message(&tbs.buf, signer_input))?;
        let mut w = Writer::new();
        w.u8(3);
        w.tag(1); // signedData
        w.u8(0); // sha256
        w.fixed(&tbs.buf);
        match signer {
            SignAs::Digest(c) => {
                w.tag(0);
                w.fixed(&c.hashed_id8());
            }
            SignAs::Certificate(c) => {
                w.tag(1);
                w.quantity(1);
                w.fixed(c.as_coer());
            }
            SignAs::SelfSigned => w.tag(2),
        }
        encode_signature(&mut w, &sig);
        Self::from_coer(&w.buf)
    }

    /// Strict COER decoding of a whole `Ieee1609Dot2Data` (at most
    /// [`MAX_SPDU_LEN`] octets); the signature is not checked here.
    pub fn from_coer(bytes: &[u8]) -> Result<Self, V2xError> {
        if bytes.len() > MAX_SPDU_LEN {
            return Err(V2xError::Limit("signed data longer than 64 KiB"));
        }
        let mut r = Reader::new(bytes);
        if r.u8()? != 3 {
            return Err(V2xError::Invalid {
                offset: 0,
                what: "Ieee1609Dot2Data version is not 3",
            });
        }
        if r.tag()? != 1 {
            return Err(V2xError::Invalid {
                offset: 1,
                what: "not signedData",
            });
        }
        if r.enumerated()? != 0 {
            return Err(V2xError::Unsupported("hash other than SHA-256"));
        }
        let tbs_start = r.pos();
        let payload = decode_payload(&mut r)?;
        if r.preamble(7)? != 0x40 {
            return Err(V2xError::Profile(
                "the header must carry generationTime and nothing else but the psid",
            ));
        }
        let psid = r.uint()?;
        let generation_time = u64::from_be_bytes(r.array()?);
        let tbs_range = tbs_start..r.pos();
        let signer = decode_signer(&mut r, bytes)?;
        let sig = decode_x_only_signature(&mut r)?;
        if r.remaining() != 0 {
            return Err(V2xError::TrailingBytes(r.remaining()));
        }
        let mut signature = [0u8; 64];
        signature[..32].copy_from_slice(&sig.r);
        signature[32..].copy_from_slice(&sig.s);
        Ok(Self {
            encoded: bytes.to_vec(),
            tbs_range,
            payload,
            psid,
            generation_time,
            signer,
            signature,
        })
    }

    /// Checks a `self` signature with `key` (the key the signer claims).
    pub fn verify_self(&self, key: &PublicKeyP256) -> Result<(), V2xError> {
        if self.signer != EtsiSigner::SelfSigned {
            return Err(V2xError::IssuerMismatch("the signer is not self"));
        }
        self.verify_with(key, &[])
    }

    /// Checks a signature by `cert` (signer `digest` naming it, or
    /// `certificate` carrying it).
    pub fn verify_by(&self, cert: &Certificate) -> Result<(), V2xError> {
        let named = match &self.signer {
            EtsiSigner::Digest(d) => *d == cert.hashed_id8(),
            EtsiSigner::Certificate(c) => c.as_coer() == cert.as_coer(),
            EtsiSigner::SelfSigned => false,
        };
        if !named {
            return Err(V2xError::IssuerMismatch(
                "the signer is not the given certificate",
            ));
        }
        self.verify_with(&cert.tbs().verification_key, cert.as_coer())
    }

    fn verify_with(&self, key: &PublicKeyP256, signer: &[u8]) -> Result<(), V2xError> {
        let sig = crate::cert::EcdsaP256Signature {
            r_form: crate::cert::RSigForm::XOnly,
            r: self.signature[..32]
                .try_into()
                .map_err(|_| V2xError::BadSignature)?,
            s: self.signature[32..]
                .try_into()
                .map_err(|_| V2xError::BadSignature)?,
        };
        verify_with(key, &self.encoded[self.tbs_range.clone()], signer, &sig)
    }

    /// The signed octets (`data`), or `None` for an external payload.
    pub fn data(&self) -> Option<&[u8]> {
        match &self.payload {
            Payload::Data(range) => Some(&self.encoded[range.clone()]),
            Payload::ExtDataHash(_) => None,
        }
    }

    /// The `extDataHash`, or `None` when the data is carried.
    pub fn ext_data_hash(&self) -> Option<&[u8; 32]> {
        match &self.payload {
            Payload::ExtDataHash(h) => Some(h),
            Payload::Data(_) => None,
        }
    }

    /// `headerInfo.psid`.
    pub fn psid(&self) -> u64 {
        self.psid
    }

    /// `headerInfo.generationTime` (TAI microseconds since 2004).
    pub fn generation_time(&self) -> u64 {
        self.generation_time
    }

    /// Who signed.
    pub fn signer(&self) -> &EtsiSigner {
        &self.signer
    }

    /// The COER encoding.
    pub fn as_coer(&self) -> &[u8] {
        &self.encoded
    }
}

fn decode_payload(r: &mut Reader<'_>) -> Result<Payload, V2xError> {
    match r.preamble(3)? {
        0x40 => {
            let at = r.pos();
            if r.u8()? != 3 || r.tag()? != 0 {
                return Err(V2xError::Invalid {
                    offset: at,
                    what: "payload data is not a version 3 unsecuredData",
                });
            }
            let data = r.octets()?;
            let end = r.pos();
            Ok(Payload::Data(end - data.len()..end))
        }
        0x20 => match r.tag()? {
            0 => Ok(Payload::ExtDataHash(r.array()?)),
            _ => Err(V2xError::Unsupported("extDataHash other than SHA-256")),
        },
        _ => Err(V2xError::Profile(
            "SignedDataPayload must be data or extDataHash alone",
        )),
    }
}

fn decode_signer(r: &mut Reader<'_>, bytes: &[u8]) -> Result<EtsiSigner, V2xError> {
    let at = r.pos();
    match r.tag()? {
        0 => Ok(EtsiSigner::Digest(r.array()?)),
        1 => {
            if r.quantity()? != 1 {
                return Err(V2xError::Profile("signer must be exactly one certificate"));
            }
            let (cert, used) =
                Certificate::decode_prefix(CertProfile::EtsiTs103097, &bytes[r.pos()..])?;
            r.take(used)?;
            Ok(EtsiSigner::Certificate(Box::new(cert)))
        }
        2 => Ok(EtsiSigner::SelfSigned),
        _ => Err(V2xError::Invalid {
            offset: at,
            what: "unknown SignerIdentifier alternative",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};

    fn key() -> EcdsaKeyPair {
        let rng = SystemRandom::new();
        let alg = &ECDSA_P256_SHA256_FIXED_SIGNING;
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
        EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap()
    }

    #[test]
    fn self_signed_data_round_trips_and_verifies_only_with_its_key() {
        let k = key();
        let pk = PublicKeyP256::from_sec1(k.public_key().as_ref()).unwrap();
        let s = EtsiSignedData::sign(
            SignedPayload::Data(b"hello"),
            623,
            42,
            SignAs::SelfSigned,
            &k,
        )
        .unwrap();
        let d = EtsiSignedData::from_coer(s.as_coer()).unwrap();
        assert_eq!(d, s);
        assert_eq!(d.data(), Some(&b"hello"[..]));
        assert_eq!((d.psid(), d.generation_time()), (623, 42));
        d.verify_self(&pk).unwrap();
        let other = PublicKeyP256::from_sec1(key().public_key().as_ref()).unwrap();
        assert!(matches!(d.verify_self(&other), Err(V2xError::BadSignature)));
        // One flipped payload bit breaks the signature.
        let mut bad = s.as_coer().to_vec();
        let at = bad.iter().position(|&b| b == b'h').unwrap();
        bad[at] ^= 1;
        let bad = EtsiSignedData::from_coer(&bad).unwrap();
        assert!(bad.verify_self(&pk).is_err());
    }

    #[test]
    fn external_payloads_carry_only_the_hash() {
        let k = key();
        let h = [7u8; 32];
        let s = EtsiSignedData::sign(
            SignedPayload::ExtDataHash(&h),
            623,
            1,
            SignAs::SelfSigned,
            &k,
        )
        .unwrap();
        assert_eq!(s.data(), None);
        assert_eq!(s.ext_data_hash(), Some(&h));
        assert_eq!(EtsiSignedData::from_coer(s.as_coer()).unwrap(), s);
    }

    #[test]
    fn malformed_signed_data_is_refused_not_panicked_on() {
        let k = key();
        let s = EtsiSignedData::sign(SignedPayload::Data(b"x"), 623, 1, SignAs::SelfSigned, &k)
            .unwrap();
        let bytes = s.as_coer();
        for n in 0..bytes.len() {
            assert!(
                EtsiSignedData::from_coer(&bytes[..n]).is_err(),
                "prefix {n}"
            );
        }
        let mut long = bytes.to_vec();
        long.push(0);
        assert!(matches!(
            EtsiSignedData::from_coer(&long),
            Err(V2xError::TrailingBytes(1))
        ));
        let mut no_time = bytes.to_vec();
        // The header preamble follows version, content and hashId (3
        // octets), the payload's preamble (1) and its unsecuredData
        // (version, tag, length: 3, and the one data octet).
        let pre = 3 + 1 + 3 + 1;
        assert_eq!(no_time[pre], 0x40);
        no_time[pre] = 0;
        assert!(EtsiSignedData::from_coer(&no_time).is_err());
    }
}
