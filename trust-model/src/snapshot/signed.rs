//! A signed snapshot as published: signing, PEM and verification of the
//! signature, the signer chain and freshness.

use super::*;

/// A body, its signature and the signer's chain, as published (PEM
/// [`PEM_LABEL`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedSnapshot {
    /// DER of a [`TrustSnapshot`], exactly as signed.
    pub body: Vec<u8>,
    /// ECDSA P-256 SHA-256 signature (ASN.1) over `body`.
    pub signature: Vec<u8>,
    /// Signer certificate chain, DER, leaf first.
    pub signer_chain: Vec<Vec<u8>>,
}

impl SignedSnapshot {
    /// Encodes and signs `snapshot` with the signer's key (a root-issued
    /// service certificate's, e.g. the trust responder's).
    pub fn sign(
        snapshot: &TrustSnapshot,
        key: &dyn crate::StatementSigner,
        signer_chain: Vec<Vec<u8>>,
    ) -> Result<Self, ModelError> {
        // Verifiers check P-256 only (as for trust assertions): refuse to
        // publish a file nobody could verify.
        if key.algorithm() != crate::StatementAlgorithm::EcdsaP256Sha256 {
            return Err(bad(
                "snapshots are signed with ECDSA P-256 SHA-256; the signer's key is another curve",
            ));
        }
        let body = snapshot.to_der()?;
        let signature = key.sign(&body).map_err(|e| bad(e.to_string()))?;
        Ok(Self {
            body,
            signature,
            signer_chain,
        })
    }

    /// Verifies the signer chain to `root` (the leaf must be a root-issued
    /// trustca service certificate), the signature over the body as
    /// received, then decodes the body and checks it is current at `now`:
    /// not issued more than 5 minutes ahead, and — unless `allow_stale` —
    /// not past its `next_update`. Returns the snapshot.
    pub fn verify(
        &self,
        root: &[u8],
        now: OffsetDateTime,
        oid: &ExtensionOid,
        allow_stale: bool,
    ) -> Result<TrustSnapshot, ModelError> {
        let chain = crate::verify_chain(&self.signer_chain, &[], root, now, oid)
            .map_err(|e| bad(format!("signer certificate: {e}")))?;
        match &chain.extension {
            Some(ext) if ext.kind == CertificateKind::Service => {}
            Some(ext) => {
                return Err(bad(format!(
                    "signer holds {} certificate; snapshots are signed by a root-issued trustca service certificate",
                    ext.kind.with_article()
                )));
            }
            None => {
                return Err(bad(
                    "signer certificate is not a trustca service certificate",
                ));
            }
        }
        let leaf = self
            .signer_chain
            .first()
            .ok_or_else(|| bad("no signer certificate"))?;
        let (_, cert) = x509_parser::parse_x509_certificate(leaf)
            .map_err(|_| bad("signer certificate does not parse"))?;
        let key = cert.public_key().subject_public_key.data.as_ref();
        // The bytes as received: re-encoding first could verify a
        // different (normalised) body than the one that was signed.
        ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_ASN1, key)
            .verify(&self.body, &self.signature)
            .map_err(|_| bad("signature does not verify (tampered or wrong signer)"))?;
        let s = TrustSnapshot::from_der(&self.body)?;
        if now + FUTURE_SKEW < s.issued_at {
            return Err(bad(format!(
                "snapshot {} is issued in the future ({}); check the clock",
                s.serial,
                rfc3339(s.issued_at)
            )));
        }
        if now > s.next_update && !allow_stale {
            return Err(bad(format!(
                "snapshot {} is stale: its next_update {} has passed; fetch a newer one or allow stale snapshots explicitly",
                s.serial,
                rfc3339(s.next_update)
            )));
        }
        Ok(s)
    }

    /// DER: SEQUENCE { body, signature OCTET STRING, SEQUENCE OF Certificate }.
    pub fn to_der(&self) -> Vec<u8> {
        der::SignedEnvelope::to_der(&self.body, &self.signature, &self.signer_chain)
    }

    /// Strict inverse of [`SignedSnapshot::to_der`]. The body is kept as
    /// received; it is decoded by [`SignedSnapshot::verify`].
    pub fn from_der(input: &[u8]) -> Result<Self, ModelError> {
        let e = der::SignedEnvelope::from_der(input, "signed snapshot").map_err(bad)?;
        Ok(Self {
            body: e.body,
            signature: e.signature,
            signer_chain: e.chain,
        })
    }
}
