//! Signed trust assertions: what the trust database says about a device
//! (live level, status, record version, validity), signed by a trust
//! responder whose certificate the root issued — like an OCSP response, so
//! a device can verify it offline, cache it until `next_update`, and show it.
//!
//! The body is DER (`docs/trust-assertion.asn1`); the signature is ECDSA
//! P-256 with SHA-256 over the body's DER. Test vectors: `testdata/trust-assertion/`.
//!
//! Version 1 states the record. Version 2 adds what a system of linked
//! devices does to the device (`systemCap`): it is only ever sent beside a
//! version 1 assertion of the same record (`Decision.peer_system_assertion`
//! beside `peer_assertion`), so a verifier that knows only version 1 keeps
//! working on the field it reads.

use std::sync::Arc;

use bytes::Bytes;
use time::OffsetDateTime;

use crate::der::{self, Reader};
use crate::{ModelError, SectorName, TrustLevel, TrustStatus};

const VERSION: u64 = 1;
/// The version that carries a system cap.
const VERSION_SYSTEM: u64 = 2;
const MAX_TEXT: usize = 256;
/// A cap's reason names a path of URNs: longer than an identity.
const MAX_REASON: usize = 2048;

/// What a system of linked devices does to the device's level: in the
/// system, it is trusted at `effective_level` (never above `level`),
/// because of the weaker device `source`, for `reason`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SystemCapClaim {
    /// The system's name.
    pub system: String,
    /// The device's effective level there.
    pub effective_level: TrustLevel,
    /// The device whose level set the cap (URN).
    pub source: String,
    /// Why, with the path.
    pub reason: String,
}

/// The statement a trust responder signs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TrustAssertion {
    /// The device identity URN.
    pub identity: String,
    /// Its sector.
    pub sector: SectorName,
    /// Its live level.
    pub level: TrustLevel,
    /// Its live status.
    pub status: TrustStatus,
    /// The trust record version this states.
    pub record_version: u64,
    /// When it was signed.
    #[serde(with = "time::serde::rfc3339")]
    pub produced_at: OffsetDateTime,
    /// Until when it may be relied on.
    #[serde(with = "time::serde::rfc3339")]
    pub next_update: OffsetDateTime,
    /// The cap of a system of linked devices (version 2); None in version 1.
    pub system_cap: Option<SystemCapClaim>,
}

fn bad(m: impl Into<String>) -> ModelError {
    ModelError::InvalidAssertion(m.into())
}

impl TrustAssertion {
    /// DER of the body.
    pub fn to_der(&self) -> Result<Vec<u8>, ModelError> {
        if self.identity.is_empty() || self.identity.len() > MAX_TEXT {
            return Err(bad("identity must be 1-256 bytes"));
        }
        let mut body = Vec::with_capacity(160);
        let version = if self.system_cap.is_some() {
            VERSION_SYSTEM
        } else {
            VERSION
        };
        der::write_small_uint(&mut body, der::TAG_INTEGER, version);
        der::write_tlv(&mut body, der::TAG_UTF8, self.identity.as_bytes());
        der::write_tlv(&mut body, der::TAG_UTF8, self.sector.as_str().as_bytes());
        der::write_small_uint(&mut body, der::TAG_INTEGER, self.level.get() as u64);
        der::write_small_uint(&mut body, der::TAG_ENUMERATED, self.status.code());
        der::write_small_uint(&mut body, der::TAG_INTEGER, self.record_version);
        der::write_tlv(
            &mut body,
            der::TAG_GENERALIZED_TIME,
            &der::generalized_time(self.produced_at)?,
        );
        der::write_tlv(
            &mut body,
            der::TAG_GENERALIZED_TIME,
            &der::generalized_time(self.next_update)?,
        );
        if let Some(cap) = &self.system_cap {
            if cap.system.is_empty() || cap.system.len() > MAX_TEXT {
                return Err(bad("system name must be 1-256 bytes"));
            }
            if cap.source.is_empty() || cap.source.len() > MAX_TEXT {
                return Err(bad("cap source must be 1-256 bytes"));
            }
            if cap.reason.len() > MAX_REASON {
                return Err(bad("cap reason is limited to 2048 bytes"));
            }
            if cap.effective_level > self.level {
                return Err(bad("effective level above the live level"));
            }
            let mut inner = Vec::with_capacity(64 + cap.reason.len());
            der::write_tlv(&mut inner, der::TAG_UTF8, cap.system.as_bytes());
            der::write_small_uint(
                &mut inner,
                der::TAG_INTEGER,
                cap.effective_level.get() as u64,
            );
            der::write_tlv(&mut inner, der::TAG_UTF8, cap.source.as_bytes());
            der::write_tlv(&mut inner, der::TAG_UTF8, cap.reason.as_bytes());
            der::write_tlv(&mut body, der::TAG_CONTEXT_0_CONSTRUCTED, &inner);
        }
        let mut out = Vec::with_capacity(body.len() + 4);
        der::write_tlv(&mut out, der::TAG_SEQUENCE, &body);
        Ok(out)
    }

    /// Strictly decodes a body.
    pub fn from_der(input: &[u8]) -> Result<Self, ModelError> {
        let mut outer = Reader::new(input);
        let body = outer.read(der::TAG_SEQUENCE).map_err(bad)?;
        if !outer.is_empty() {
            return Err(bad("trailing bytes after the assertion"));
        }
        let mut r = Reader::new(body);
        let version = r.read_small_uint(der::TAG_INTEGER).map_err(bad)?;
        if version != VERSION && version != VERSION_SYSTEM {
            return Err(bad(format!("unsupported version {version}")));
        }
        let identity = r.read_utf8().map_err(bad)?.to_owned();
        let sector = SectorName::new(r.read_utf8().map_err(bad)?)?;
        let level =
            TrustLevel::new(r.read_small_uint(der::TAG_INTEGER).map_err(bad)?.min(99) as i64)?;
        let code = r.read_small_uint(der::TAG_ENUMERATED).map_err(bad)?;
        let status =
            TrustStatus::from_code(code).ok_or_else(|| bad(format!("unknown status {code}")))?;
        let record_version = r.read_small_uint(der::TAG_INTEGER).map_err(bad)?;
        let produced_at =
            der::parse_generalized_time(r.read(der::TAG_GENERALIZED_TIME).map_err(bad)?)
                .map_err(bad)?;
        let next_update =
            der::parse_generalized_time(r.read(der::TAG_GENERALIZED_TIME).map_err(bad)?)
                .map_err(bad)?;
        // Version 2 has the cap and version 1 has none: either way the
        // version says exactly what follows.
        let system_cap = if version == VERSION_SYSTEM {
            let inner = r.read(der::TAG_CONTEXT_0_CONSTRUCTED).map_err(bad)?;
            let mut c = Reader::new(inner);
            let system = c.read_utf8().map_err(bad)?.to_owned();
            let effective_level =
                TrustLevel::new(c.read_small_uint(der::TAG_INTEGER).map_err(bad)?.min(99) as i64)?;
            let source = c.read_utf8().map_err(bad)?.to_owned();
            let reason = c.read_utf8().map_err(bad)?.to_owned();
            if !c.is_empty() {
                return Err(bad("trailing bytes inside the system cap"));
            }
            if system.is_empty() || source.is_empty() || effective_level > level {
                return Err(bad(
                    "system cap without a system or source, or above the live level",
                ));
            }
            Some(SystemCapClaim {
                system,
                effective_level,
                source,
                reason,
            })
        } else {
            None
        };
        if !r.is_empty() {
            return Err(bad("trailing bytes inside the assertion"));
        }
        if identity.is_empty() || next_update < produced_at {
            return Err(bad("empty identity or next_update before produced_at"));
        }
        Ok(Self {
            identity,
            sector,
            level,
            status,
            record_version,
            produced_at,
            next_update,
            system_cap,
        })
    }
}

/// A body, its signature and the responder's chain, as stored in an answer
/// file (PEM `TRUSTCA TRUST ASSERTION`). Cloning one copies no bytes: the
/// body and signature are reference-counted and the chain is the
/// responder's one shared value, so a cached assertion goes into every
/// answer about its device without a copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedTrustAssertion {
    /// DER of a [`TrustAssertion`].
    pub body: Bytes,
    /// ECDSA P-256 SHA-256 signature (ASN.1) over `body`.
    pub signature: Bytes,
    /// Responder certificate chain, DER, leaf first.
    pub responder_chain: ResponderChain,
}

/// A responder's certificate chain, DER, leaf first: one value per
/// responder key, shared by every assertion it signs (a clone counts a
/// reference). The chain is about 1.5 KB against about 400 bytes of body
/// and signature, so holding it once is what keeps a cache of assertions
/// small and an answer free of copies.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ResponderChain(Arc<[Bytes]>);

impl ResponderChain {
    /// The chain's bytes, counted once however many assertions share it.
    pub fn byte_len(&self) -> usize {
        self.0.iter().map(Bytes::len).sum()
    }

    /// The certificates as owned vectors, for code that verifies them.
    pub fn to_vecs(&self) -> Vec<Vec<u8>> {
        self.0.iter().map(|c| c.to_vec()).collect()
    }
}

impl std::ops::Deref for ResponderChain {
    type Target = [Bytes];

    fn deref(&self) -> &[Bytes] {
        &self.0
    }
}

impl From<Vec<Bytes>> for ResponderChain {
    fn from(certs: Vec<Bytes>) -> Self {
        Self(certs.into())
    }
}

impl From<Vec<Vec<u8>>> for ResponderChain {
    fn from(certs: Vec<Vec<u8>>) -> Self {
        Self(certs.into_iter().map(Bytes::from).collect())
    }
}

/// PEM label of an answer file.
pub const PEM_LABEL: &str = "TRUSTCA TRUST ASSERTION";

impl SignedTrustAssertion {
    /// Signs `assertion` with the responder's key; the assertion shares
    /// `responder_chain`.
    pub fn sign(
        assertion: &TrustAssertion,
        key: &dyn crate::StatementSigner,
        responder_chain: &ResponderChain,
    ) -> Result<Self, ModelError> {
        let body = assertion.to_der()?;
        let signature = key.sign(&body).map_err(|e| bad(e.to_string()))?;
        Ok(Self {
            body: body.into(),
            signature: signature.into(),
            responder_chain: responder_chain.clone(),
        })
    }

    /// Verifies the responder chain to `root` (a root-issued service
    /// certificate for OCSP-style signing), the signature, and that the
    /// assertion is current at `now`. Returns the assertion.
    pub fn verify(
        &self,
        root: &[u8],
        now: OffsetDateTime,
        oid: &crate::extension::ExtensionOid,
    ) -> Result<TrustAssertion, ModelError> {
        self.verify_with_responder(root, now, oid).map(|(a, _)| a)
    }

    /// [`SignedTrustAssertion::verify`], and the assertion must be about
    /// `sector` and signed by that sector's own responder: a responder
    /// certificate its sector CA issued. How one sector's database checks
    /// another's answer, so that no instance (nor a root-issued service
    /// key copied around) can speak for a sector it does not run.
    pub fn verify_from_sector(
        &self,
        root: &[u8],
        now: OffsetDateTime,
        oid: &crate::extension::ExtensionOid,
        sector: &SectorName,
    ) -> Result<TrustAssertion, ModelError> {
        let (a, responder) = self.verify_with_responder(root, now, oid)?;
        if &responder != sector {
            return Err(bad(format!(
                "signed by the {responder} responder, not by the {sector} sector's own"
            )));
        }
        if &a.sector != sector {
            return Err(bad(format!("answer is about sector {}", a.sector)));
        }
        Ok(a)
    }

    /// Verifies as [`SignedTrustAssertion::verify`] and returns the sector
    /// named by the responder's certificate (`trustca` for a root-issued one).
    fn verify_with_responder(
        &self,
        root: &[u8],
        now: OffsetDateTime,
        oid: &crate::extension::ExtensionOid,
    ) -> Result<(TrustAssertion, SectorName), ModelError> {
        let chain = crate::verify_chain(&self.responder_chain.to_vecs(), &[], root, now, oid)
            .map_err(|e| bad(format!("responder certificate: {e}")))?;
        let responder = match chain.extension {
            Some(ext) if ext.kind == crate::CertificateKind::Service => ext.sector,
            _ => {
                return Err(bad(
                    "responder certificate is not a trustca service certificate",
                ));
            }
        };
        let leaf = self
            .responder_chain
            .first()
            .ok_or_else(|| bad("no responder certificate"))?;
        let (_, cert) = x509_parser::parse_x509_certificate(leaf)
            .map_err(|_| bad("responder certificate does not parse"))?;
        let key = cert.public_key().subject_public_key.data.as_ref();
        ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_ASN1, key)
            .verify(&self.body, &self.signature)
            .map_err(|_| bad("signature does not verify (tampered or wrong responder)"))?;
        let a = TrustAssertion::from_der(&self.body)?;
        if now > a.next_update {
            return Err(bad(format!("expired at {}", a.next_update)));
        }
        if now + time::Duration::minutes(5) < a.produced_at {
            return Err(bad("produced in the future"));
        }
        Ok((a, responder))
    }

    /// DER: SEQUENCE { body, signature OCTET STRING, SEQUENCE OF certificate }.
    pub fn to_der(&self) -> Vec<u8> {
        der::SignedEnvelope::to_der(&self.body, &self.signature, &self.responder_chain)
    }

    /// Strict inverse of [`SignedTrustAssertion::to_der`].
    pub fn from_der(input: &[u8]) -> Result<Self, ModelError> {
        let e = der::SignedEnvelope::from_der(input, "signed assertion").map_err(bad)?;
        Ok(Self {
            body: e.body.into(),
            signature: e.signature.into(),
            responder_chain: e.chain.into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> TrustAssertion {
        TrustAssertion {
            identity: "urn:trustca:hems:Acme:HB-1:SN7".into(),
            sector: SectorName::new("hems").unwrap(),
            level: TrustLevel::new(4).unwrap(),
            status: TrustStatus::Suspended,
            record_version: 3,
            produced_at: time::macros::datetime!(2026-11-23 10:00 UTC),
            next_update: time::macros::datetime!(2026-11-23 11:00 UTC),
            system_cap: None,
        }
    }

    #[test]
    fn a_system_cap_is_version_2_and_version_1_stays_byte_for_byte() {
        let mut capped = sample();
        capped.system_cap = Some(SystemCapClaim {
            system: "house-1".into(),
            effective_level: TrustLevel::new(2).unwrap(),
            source: "urn:trustca:hems:Acme:Plug-2:P1".into(),
            reason: "capped at Lv.2 by the plug".into(),
        });
        let der = capped.to_der().unwrap();
        let version = der.windows(2).position(|w| w == [0x02, 0x01]).unwrap();
        assert_eq!(der[version + 2], 2, "version 2");
        assert_eq!(TrustAssertion::from_der(&der).unwrap(), capped);
        for cut in 0..der.len() {
            assert!(TrustAssertion::from_der(&der[..cut]).is_err());
        }
        // A version 2 body without its cap, or a cap above the live level,
        // does not decode.
        let mut v2_without = sample().to_der().unwrap();
        v2_without[4] = 2;
        assert!(TrustAssertion::from_der(&v2_without).is_err());
        let mut above = capped.clone();
        if let Some(c) = above.system_cap.as_mut() {
            c.effective_level = TrustLevel::new(5).unwrap();
        }
        assert!(above.to_der().is_err());
    }

    #[test]
    fn round_trip_and_published_vector() {
        let der = sample().to_der().unwrap();
        assert_eq!(TrustAssertion::from_der(&der).unwrap(), sample());
        let vector = include_str!("../testdata/trust-assertion/suspended-lv4.hex");
        assert_eq!(hex::encode(&der), vector.trim());
    }

    #[test]
    fn rejects_truncation_trailing_and_bad_values() {
        let der = sample().to_der().unwrap();
        for cut in 0..der.len() {
            assert!(TrustAssertion::from_der(&der[..cut]).is_err());
        }
        let mut trailing = der.clone();
        trailing.push(0);
        assert!(TrustAssertion::from_der(&trailing).is_err());
        let mut bad_status = der.clone();
        let pos = bad_status
            .windows(3)
            .position(|w| w == [0x0a, 0x01, 0x01])
            .unwrap();
        bad_status[pos + 2] = 9;
        assert!(
            TrustAssertion::from_der(&bad_status)
                .unwrap_err()
                .to_string()
                .contains("status")
        );
    }

    #[test]
    fn signed_round_trip_detects_tampering() {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = ring::signature::EcdsaKeyPair::generate_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            &rng,
        )
        .unwrap();
        let key = ring::signature::EcdsaKeyPair::from_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            pkcs8.as_ref(),
            &rng,
        )
        .unwrap();
        let chain = ResponderChain::from(vec![vec![0x30, 0x00]]);
        let signed = SignedTrustAssertion::sign(&sample(), &key, &chain).unwrap();
        assert_eq!(signed.responder_chain, chain);
        let der = signed.to_der();
        assert_eq!(SignedTrustAssertion::from_der(&der).unwrap(), signed);
        use ring::signature::KeyPair;
        let public = key.public_key().as_ref().to_vec();
        let ok = ring::signature::UnparsedPublicKey::new(
            &ring::signature::ECDSA_P256_SHA256_ASN1,
            &public,
        );
        assert!(ok.verify(&signed.body, &signed.signature).is_ok());
        let mut tampered = signed.clone();
        let mut body = tampered.body.to_vec();
        let n = body.len();
        body[n - 3] ^= 1;
        tampered.body = body.into();
        assert!(ok.verify(&tampered.body, &tampered.signature).is_err());
        let mut trailing = der;
        trailing.push(0);
        assert!(SignedTrustAssertion::from_der(&trailing).is_err());
    }
}
