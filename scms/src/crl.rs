//! The signed linkage-seed revocation list (linkage CRL).
//!
//! IEEE 1609.2's linkage-based CRL (`CrlContents` with `LinkageIdTypes`)
//! lives in the IEEE 1609.2 CRL modules, which are not among the published
//! modules this project tests against (`shared/spec/v2x-asn1`), so this is
//! a trustca format carrying the same content: per revoked vehicle, both
//! linkage authorities' ids and seeds for the period revocation starts
//! ([`LinkageRevocation`]). Signed by the pseudonym CA with the IEEE 1609.2
//! rule (SHA-256 of the to-be-signed bytes with SHA-256 of the signer's
//! COER certificate). Layout (big-endian):
//!
//! ```text
//! tbs  = "TLCRL" 01 ‖ crlSeries (2) ‖ crlNumber (8) ‖ thisUpdate Time32 (4)
//!        ‖ nextUpdate Time32 (4) ‖ count (4) ‖ count × (release1 (26) ‖ release2 (26))
//! crl  = tbs ‖ signer HashedId8 (8) ‖ r (32) ‖ s (32)
//! release = laId (2) ‖ period (8) ‖ seed (16)
//! ```

use ring::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};
use trustca_pseudonym::{LinkageRevocation, SEED_RELEASE_LEN, SeedRelease};
use trustca_v2x::{Certificate, CertificateId, Time32, V2xSigner, signing_message};

use crate::error::{Result, ScmsError};

const MAGIC: &[u8; 6] = b"TLCRL\x01";
const HEADER_LEN: usize = 6 + 2 + 8 + 4 + 4 + 4;
const ENTRY_LEN: usize = 2 * SEED_RELEASE_LEN;
/// Most entries a linkage CRL may hold.
pub const MAX_ENTRIES: usize = 100_000;

/// A parsed, signature-carrying linkage CRL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkageCrl {
    /// The CRL series (written in every ticket as `crlSeries`).
    pub crl_series: u16,
    /// Monotonic CRL number.
    pub crl_number: u64,
    /// Issue time.
    pub this_update: Time32,
    /// When the next list is due.
    pub next_update: Time32,
    /// Revoked vehicles.
    pub entries: Vec<LinkageRevocation>,
    /// HashedId8 of the signing pseudonym CA certificate.
    pub signer: [u8; 8],
    bytes: Vec<u8>,
    tbs_len: usize,
}

pub(crate) fn decode_entries(b: &[u8]) -> Result<Vec<LinkageRevocation>> {
    if !b.len().is_multiple_of(ENTRY_LEN) || b.len() / ENTRY_LEN > MAX_ENTRIES {
        return Err(ScmsError::Malformed {
            what: "linkage CRL entries",
            reason: format!("{} bytes", b.len()),
        });
    }
    b.chunks_exact(ENTRY_LEN)
        .map(|e| {
            Ok(LinkageRevocation::new(
                SeedRelease::from_bytes(&e[..SEED_RELEASE_LEN])?,
                SeedRelease::from_bytes(&e[SEED_RELEASE_LEN..])?,
            )?)
        })
        .collect()
}

impl LinkageCrl {
    /// Encodes and signs a list.
    pub fn sign(
        crl_series: u16,
        crl_number: u64,
        this_update: i64,
        next_update: i64,
        entries: Vec<LinkageRevocation>,
        signer_certificate: &Certificate,
        signer: &dyn V2xSigner,
    ) -> Result<Self> {
        if entries.len() > MAX_ENTRIES {
            return Err(ScmsError::Profile(format!(
                "at most {MAX_ENTRIES} CRL entries"
            )));
        }
        let this_update = Time32::from_unix(this_update)?;
        let next_update = Time32::from_unix(next_update)?;
        let mut tbs = Vec::with_capacity(HEADER_LEN + entries.len() * ENTRY_LEN);
        tbs.extend_from_slice(MAGIC);
        tbs.extend_from_slice(&crl_series.to_be_bytes());
        tbs.extend_from_slice(&crl_number.to_be_bytes());
        tbs.extend_from_slice(&this_update.0.to_be_bytes());
        tbs.extend_from_slice(&next_update.0.to_be_bytes());
        tbs.extend_from_slice(&(entries.len() as u32).to_be_bytes());
        for e in &entries {
            tbs.extend_from_slice(&e.first.to_bytes());
            tbs.extend_from_slice(&e.second.to_bytes());
        }
        let signature =
            signer.sign_digest_input(&signing_message(&tbs, signer_certificate.as_coer()))?;
        let tbs_len = tbs.len();
        let signer_id = signer_certificate.hashed_id8();
        let mut bytes = tbs;
        bytes.extend_from_slice(&signer_id);
        bytes.extend_from_slice(&signature);
        Ok(Self {
            crl_series,
            crl_number,
            this_update,
            next_update,
            entries,
            signer: signer_id,
            bytes,
            tbs_len,
        })
    }

    /// The encoding.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Parses strictly (no trailing bytes, bounded count). The signature is
    /// not checked here: call [`LinkageCrl::verify`].
    pub fn from_bytes(b: &[u8]) -> Result<Self> {
        let bad = |reason: &str| ScmsError::Malformed {
            what: "linkage CRL",
            reason: reason.into(),
        };
        if b.len() < HEADER_LEN + 72 || &b[..6] != MAGIC {
            return Err(bad("too short or not a trustca linkage CRL"));
        }
        let u16_at = |i: usize| u16::from_be_bytes([b[i], b[i + 1]]);
        let u32_at = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let mut number = [0u8; 8];
        number.copy_from_slice(&b[8..16]);
        let count = u32_at(24) as usize;
        if count > MAX_ENTRIES {
            return Err(bad("too many entries"));
        }
        let tbs_len = HEADER_LEN + count * ENTRY_LEN;
        if b.len() != tbs_len + 72 {
            return Err(bad("length does not match the entry count"));
        }
        let entries = decode_entries(&b[HEADER_LEN..tbs_len])?;
        let mut signer = [0u8; 8];
        signer.copy_from_slice(&b[tbs_len..tbs_len + 8]);
        Ok(Self {
            crl_series: u16_at(6),
            crl_number: u64::from_be_bytes(number),
            this_update: Time32(u32_at(16)),
            next_update: Time32(u32_at(20)),
            entries,
            signer,
            bytes: b.to_vec(),
            tbs_len,
        })
    }

    /// Verifies the signature over the bytes as received against the
    /// pseudonym CA's certificate.
    pub fn verify(&self, signer_certificate: &Certificate) -> Result<()> {
        if self.signer != signer_certificate.hashed_id8() {
            return Err(ScmsError::Response(
                "CRL signed by another certificate".into(),
            ));
        }
        let key = signer_certificate.tbs().verification_key.uncompressed()?;
        let msg = signing_message(&self.bytes[..self.tbs_len], signer_certificate.as_coer());
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, key)
            .verify(&msg, &self.bytes[self.tbs_len + 8..])
            .map_err(|_| ScmsError::Response("linkage CRL signature does not verify".into()))
    }

    /// Whether `ticket` (an authorization ticket with linkage data) is
    /// revoked by this list: its linkage value matches an entry for its
    /// period, `j` below `certificates_per_period`.
    pub fn revokes(&self, ticket: &Certificate, certificates_per_period: u32) -> Result<bool> {
        let CertificateId::LinkageData(link) = &ticket.tbs().id else {
            return Ok(false);
        };
        let lv = trustca_pseudonym::CertLinkageValue(link.linkage_value);
        for e in &self.entries {
            if e.matches(u64::from(link.i_cert), &lv, certificates_per_period)?
                .is_some()
            {
                return Ok(true);
            }
        }
        Ok(false)
    }
}
