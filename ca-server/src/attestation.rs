//! Hardware key attestation at enrollment (issue 25): the TPM manufacturer
//! roots registered per sector (durable, audited), the single-use
//! challenges handed to devices, and the check of a TPM's certification of
//! the key in a request. The TPM structures are parsed and verified by
//! `trustca-attestation`; this module adds state, roles and statuses.
//!
//! Binding the AK to the EK: the challenge is a credential made to the EK
//! for the AK's name (`TPM2_MakeCredential`), hiding a fresh secret. Only
//! the TPM that holds the EK's private key, with that AK loaded, recovers
//! it (`TPM2_ActivateCredential`), and the AK must then sign a
//! certification of the new key with the secret as qualifying data. The
//! secret thus proves three things at once: the AK lives in the TPM whose
//! EK certificate was checked, the certification is fresh, and it is
//! answered once (the challenge is consumed on first use).
//!
//! Open challenges live in the store (`Storage::challenge_put` /
//! `challenge_take`), keyed by a digest of their id and holding a digest of
//! their secret, not the secret: they survive a restart, every replica
//! sharing a PostgreSQL store can take one another issued, the store's
//! atomic take makes them single-use across replicas, and a reader of the
//! store cannot answer them.

use std::sync::Arc;
use std::time::Duration;

use ring::rand::{SecureRandom, SystemRandom};
use time::OffsetDateTime;
use trustca_attestation::attest::TpmAttest;
use trustca_attestation::public::TpmPublic;
use trustca_attestation::verify::{KeyAttestation, check_ak, verify_key_attestation};
use trustca_attestation::{AttestationError, credential, ek};
use trustca_model::{AttestationFormat, Credential, SectorName, VerifiedAttestation};
use trustca_store::{BlobAudit, Storage};

use crate::CaError;
use crate::enroll::actor;

/// The store's record space of registered roots: key `sector/sha256-hex`.
pub const ROOTS_SPACE: &str = "attestation.roots";
/// How long a challenge may be answered.
pub const CHALLENGE_LIFETIME: Duration = Duration::from_secs(300);
/// At most this many challenges wait for an answer at once.
pub const MAX_PENDING: usize = 10_000;
/// At most this many roots per sector.
pub const MAX_ROOTS: usize = 64;

/// A registered TPM manufacturer root.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AttestationRoot {
    /// The sector it is registered for.
    pub sector: String,
    /// SHA-256 of the certificate, lower-case hex.
    pub sha256: String,
    /// The certificate's subject, for people.
    pub subject: String,
    /// Its notAfter, RFC 3339.
    pub not_after: String,
    /// `kind:name` of the operator who added it.
    pub added_by: String,
    /// Unix time it was added.
    pub added_at: i64,
    /// The certificate, DER.
    pub der: Vec<u8>,
    /// Set when removed: `(by, at)`. Removed roots stay as tombstones, so
    /// the record space keeps what was trusted when.
    pub removed: Option<(String, i64)>,
}

/// What a device sends with its enrollment request.
#[derive(Debug, Clone, Default)]
pub struct TpmKeyAttestation {
    /// The challenge answered.
    pub challenge_id: Vec<u8>,
    /// The key's `TPM2B_PUBLIC`.
    pub key_public: Vec<u8>,
    /// The `TPMS_ATTEST`.
    pub attest: Vec<u8>,
    /// The AK's `TPMT_SIGNATURE`.
    pub signature: Vec<u8>,
}

/// A challenge handed out.
#[derive(Debug, Clone)]
pub struct IssuedChallenge {
    /// Its id.
    pub id: [u8; 16],
    /// `TPM2B_ID_OBJECT`.
    pub credential_blob: Vec<u8>,
    /// `TPM2B_ENCRYPTED_SECRET`.
    pub encrypted_secret: Vec<u8>,
    /// When it can no longer be answered.
    pub expires_at: OffsetDateTime,
}

/// An open challenge as the store keeps it.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct StoredChallenge {
    sector: String,
    /// The AK's `TPM2B_PUBLIC`.
    ak: Vec<u8>,
    /// SHA-256 of the secret.
    secret_sha256: Vec<u8>,
}

/// A challenge taken from the store, still live.
#[derive(Debug)]
struct Pending {
    secret_sha256: Vec<u8>,
    ak: TpmPublic,
}

/// Roots and challenges.
pub struct AttestationBook {
    storage: Arc<dyn Storage>,
    rng: SystemRandom,
}

impl std::fmt::Debug for AttestationBook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttestationBook").finish_non_exhaustive()
    }
}

/// The status an attestation failure gets: malformed or unsupported
/// structures are the caller's mistake (InvalidArgument); everything that
/// fails to prove the key is a refusal (PermissionDenied).
fn refused(e: AttestationError) -> CaError {
    match e {
        AttestationError::Malformed { .. } | AttestationError::Unsupported(_) => {
            CaError::InvalidRequest(format!("attestation: {e}"))
        }
        AttestationError::Credential(m) => CaError::Signing(m),
        other => CaError::AttestationRefused(other.to_string()),
    }
}

fn sha256(data: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, data)
        .as_ref()
        .to_vec()
}

fn root_key(sector: &str, sha256: &str) -> Vec<u8> {
    format!("{sector}/{sha256}").into_bytes()
}

impl AttestationBook {
    /// A book over `storage`.
    pub fn new(storage: Arc<dyn Storage>) -> Self {
        Self {
            storage,
            rng: SystemRandom::new(),
        }
    }

    fn check_sector(caller: &Credential, sector: &SectorName) -> Result<(), CaError> {
        if caller.may_act_for(sector) {
            Ok(())
        } else {
            Err(CaError::PermissionDenied(format!(
                "{} {} is not authorized for sector {sector}",
                caller.kind.as_str(),
                caller.name
            )))
        }
    }

    /// Every root record of `sector`, removed ones included.
    fn records(&self, sector: &SectorName) -> Result<Vec<AttestationRoot>, CaError> {
        let prefix = format!("{sector}/").into_bytes();
        // A sector's attestation roots: a handful of vendors' CAs.
        self.storage
            .blob_scan(ROOTS_SPACE, &prefix)?
            .into_iter()
            .map(|(_, v)| {
                serde_json::from_slice(&v).map_err(|e| {
                    CaError::Signing(format!("stored attestation root does not parse: {e}"))
                })
            })
            .collect()
    }

    /// The roots in force for `sector`.
    pub fn roots(&self, sector: &SectorName) -> Result<Vec<AttestationRoot>, CaError> {
        Ok(self
            .records(sector)?
            .into_iter()
            .filter(|r| r.removed.is_none())
            .collect())
    }

    fn write(
        &self,
        caller: &Credential,
        root: &AttestationRoot,
        kind: &str,
    ) -> Result<(), CaError> {
        let value = serde_json::to_vec(root)
            .map_err(|e| CaError::Signing(format!("encoding the root: {e}")))?;
        self.storage.blob_put(
            ROOTS_SPACE,
            &[(root_key(&root.sector, &root.sha256), value)],
            false,
            Some(&BlobAudit {
                actor: actor(caller),
                kind: kind.to_owned(),
                subject: format!("{}/{}", root.sector, root.sha256),
                detail: serde_json::json!({
                    "sector": root.sector,
                    "sha256": root.sha256,
                    "subject": root.subject,
                })
                .to_string(),
                at: OffsetDateTime::now_utc().unix_timestamp(),
            }),
        )?;
        Ok(())
    }

    /// Registers `der` as a TPM manufacturer root of `sector` (audit
    /// `attestation-root.added`). It must be a CA certificate.
    pub fn add_root(
        &self,
        caller: &Credential,
        sector: &SectorName,
        der: &[u8],
    ) -> Result<AttestationRoot, CaError> {
        Self::check_sector(caller, sector)?;
        if der.is_empty() || der.len() > ek::MAX_CERT_BYTES {
            return Err(CaError::InvalidRequest(format!(
                "certificate_der must be 1-{} bytes of DER",
                ek::MAX_CERT_BYTES
            )));
        }
        let (rest, cert) = x509_parser::parse_x509_certificate(der).map_err(|_| {
            CaError::InvalidRequest("certificate_der is not a DER X.509 certificate".into())
        })?;
        if !rest.is_empty() {
            return Err(CaError::InvalidRequest(
                "certificate_der has trailing bytes".into(),
            ));
        }
        if !cert.is_ca() {
            return Err(CaError::InvalidRequest(
                "the certificate is not a CA certificate (basicConstraints cA)".into(),
            ));
        }
        if webpki::anchor_from_trusted_cert(&rustls_pki_types::CertificateDer::from(der)).is_err() {
            return Err(CaError::InvalidRequest(
                "the certificate cannot serve as a trust anchor".into(),
            ));
        }
        let sha256 = trustca_model::hexfmt::encode(
            ring::digest::digest(&ring::digest::SHA256, der).as_ref(),
        );
        let current = self.roots(sector)?;
        if current.iter().any(|r| r.sha256 == sha256) {
            return Err(CaError::AlreadyRegistered(format!(
                "{sha256} is already an attestation root of {sector}"
            )));
        }
        if current.len() >= MAX_ROOTS {
            return Err(CaError::LimitExceeded(format!(
                "at most {MAX_ROOTS} attestation roots per sector"
            )));
        }
        let root = AttestationRoot {
            sector: sector.to_string(),
            sha256,
            subject: cert.subject().to_string(),
            not_after: cert
                .validity()
                .not_after
                .to_datetime()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            added_by: actor(caller),
            added_at: OffsetDateTime::now_utc().unix_timestamp(),
            der: der.to_vec(),
            removed: None,
        };
        self.write(caller, &root, "attestation-root.added")?;
        Ok(root)
    }

    /// Removes the root `sha256` of `sector` (audit
    /// `attestation-root.removed`); challenges already issued stay valid
    /// until they expire.
    pub fn remove_root(
        &self,
        caller: &Credential,
        sector: &SectorName,
        sha256: &str,
    ) -> Result<AttestationRoot, CaError> {
        Self::check_sector(caller, sector)?;
        let mut root = self
            .roots(sector)?
            .into_iter()
            .find(|r| r.sha256 == sha256)
            .ok_or_else(|| {
                CaError::NotFound(format!(
                    "no attestation root {} in sector {sector}",
                    sha256.chars().take(64).collect::<String>()
                ))
            })?;
        root.removed = Some((actor(caller), OffsetDateTime::now_utc().unix_timestamp()));
        self.write(caller, &root, "attestation-root.removed")?;
        Ok(root)
    }

    /// The roots of `sectors` (the caller's own when `sector` is empty).
    pub fn list_roots(
        &self,
        caller: &Credential,
        sector: Option<&SectorName>,
    ) -> Result<Vec<AttestationRoot>, CaError> {
        let sectors: Vec<SectorName> = match sector {
            Some(s) => {
                Self::check_sector(caller, s)?;
                vec![s.clone()]
            }
            None => caller.sectors.clone(),
        };
        let mut out = Vec::new();
        for s in &sectors {
            out.extend(self.roots(s)?);
        }
        Ok(out)
    }

    /// Step 1: checks the EK chain and the AK, and makes the credential.
    pub fn challenge(
        &self,
        caller: &Credential,
        sector: &SectorName,
        ek_chain: &[Vec<u8>],
        ak_public: &[u8],
    ) -> Result<IssuedChallenge, CaError> {
        Self::check_sector(caller, sector)?;
        let ak = TpmPublic::from_tpm2b(ak_public).map_err(refused)?;
        check_ak(&ak).map_err(refused)?;
        let roots: Vec<Vec<u8>> = self.roots(sector)?.into_iter().map(|r| r.der).collect();
        if roots.is_empty() {
            return Err(CaError::NotConfigured(format!(
                "no TPM manufacturer root is registered for sector {sector}; an operator adds one with `trustca attestation-root add`"
            )));
        }
        let now = OffsetDateTime::now_utc();
        let ek_key = ek::verify_ek_chain(ek_chain, &roots, now.unix_timestamp().max(0) as u64)
            .map_err(refused)?;
        let mut secret = [0u8; 32];
        let mut id = [0u8; 16];
        self.rng
            .fill(&mut secret)
            .and_then(|()| self.rng.fill(&mut id))
            .map_err(|_| CaError::Signing("no randomness".into()))?;
        let made = credential::make_credential(
            &ek_key.modulus,
            &ek_key.exponent,
            &ak.name(),
            &secret,
            &self.rng,
        )
        .map_err(refused)?;
        let record = serde_json::to_vec(&StoredChallenge {
            sector: sector.to_string(),
            ak: ak_public.to_vec(),
            secret_sha256: sha256(&secret),
        })
        .map_err(|e| CaError::Signing(format!("encoding the challenge: {e}")))?;
        let expires = now + CHALLENGE_LIFETIME;
        let stored = self.storage.challenge_put(
            &sha256(&id),
            &record,
            expires.unix_timestamp(),
            now.unix_timestamp(),
            MAX_PENDING,
        )?;
        if !stored {
            return Err(CaError::LimitExceeded(format!(
                "{MAX_PENDING} challenges wait for an answer; answer or let them expire"
            )));
        }
        Ok(IssuedChallenge {
            id,
            credential_blob: made.id_object,
            encrypted_secret: made.encrypted_secret,
            expires_at: expires,
        })
    }

    /// Consumes the challenge `id` (whatever the outcome: it is answered
    /// once) and returns it while it is live.
    fn take(&self, id: &[u8], sector: &SectorName) -> Result<Pending, CaError> {
        let id: [u8; 16] = id.try_into().map_err(|_| {
            CaError::InvalidRequest("tpm_attestation.challenge_id must be 16 bytes".into())
        })?;
        let (record, expires) = self.storage.challenge_take(&sha256(&id))?.ok_or_else(|| {
            CaError::ChallengeUnusable(
                "unknown or already answered; get a new one with GetEnrollmentChallenge".into(),
            )
        })?;
        if expires <= OffsetDateTime::now_utc().unix_timestamp() {
            return Err(CaError::ChallengeUnusable(format!(
                "expired (a challenge lives {} s); get a new one",
                CHALLENGE_LIFETIME.as_secs()
            )));
        }
        let stored: StoredChallenge = serde_json::from_slice(&record)
            .map_err(|e| CaError::Signing(format!("stored challenge does not parse: {e}")))?;
        if stored.sector != sector.as_str() {
            return Err(CaError::InvalidRequest(format!(
                "the challenge was issued for sector {}, not {sector}",
                stored.sector
            )));
        }
        Ok(Pending {
            secret_sha256: stored.secret_sha256,
            ak: TpmPublic::from_tpm2b(&stored.ak).map_err(refused)?,
        })
    }

    /// Step 3: verifies a TPM's certification of the request's key
    /// (`spki_der`: the CSR's SubjectPublicKeyInfo).
    pub fn verify(
        &self,
        att: &TpmKeyAttestation,
        sector: &SectorName,
        spki_der: &[u8],
    ) -> Result<VerifiedAttestation, CaError> {
        let pending = self.take(&att.challenge_id, sector)?;
        let point = x509_parser::prelude::FromDer::from_der(spki_der)
            .map(
                |(_, spki): (_, x509_parser::x509::SubjectPublicKeyInfo<'_>)| {
                    spki.subject_public_key.data.to_vec()
                },
            )
            .map_err(|_| CaError::InvalidCsr("its public key does not parse".into()))?;
        // The store holds the secret's digest: the qualifying data is the
        // secret when it hashes to it; otherwise the check is made against
        // a value the attestation cannot carry (one byte longer), so the
        // refusal comes in the verifier's order (signature, then nonce).
        let mut nonce = TpmAttest::decode(&att.attest).map_err(refused)?.extra_data;
        if sha256(&nonce) != pending.secret_sha256 {
            nonce.push(0);
        }
        let verified = verify_key_attestation(
            &pending.ak,
            KeyAttestation {
                key_public: &att.key_public,
                attest: &att.attest,
                signature: &att.signature,
            },
            &nonce,
            &point,
        )
        .map_err(refused)?;
        let format = AttestationFormat::parse(verified.format)
            .ok_or_else(|| CaError::Signing("unknown attestation format".into()))?;
        Ok(VerifiedAttestation { format })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use trustca_model::FailureClass;

    const AK: &[u8] = include_bytes!("../../attestation/testdata/swtpm/ak.pub");

    fn book() -> (tempfile::TempDir, AttestationBook) {
        let dir = tempfile::tempdir().unwrap();
        let store = trustca_store::SledStorage::open(dir.path()).unwrap();
        (dir, AttestationBook::new(Arc::new(store)))
    }

    /// Stores an open challenge `id` of automotive expiring at unix time
    /// `expires`, as [`AttestationBook::challenge`] does.
    fn put(book: &AttestationBook, id: [u8; 16], expires: i64) {
        let record = serde_json::to_vec(&StoredChallenge {
            sector: "automotive".into(),
            ak: AK.to_vec(),
            secret_sha256: sha256(&[7; 32]),
        })
        .unwrap();
        assert!(
            book.storage
                .challenge_put(&sha256(&id), &record, expires, now(), MAX_PENDING)
                .unwrap()
        );
    }

    fn now() -> i64 {
        OffsetDateTime::now_utc().unix_timestamp()
    }

    fn live() -> i64 {
        now() + CHALLENGE_LIFETIME.as_secs() as i64
    }

    /// A stale answer is refused as expired, and a challenge is answered
    /// once whatever the outcome: the stale one is gone too.
    #[test]
    fn stale_and_replayed_challenges_are_refused() {
        let (_dir, book) = book();
        let sector = SectorName::new("automotive").unwrap();
        put(&book, [1; 16], now() - 1);
        let e = book.take(&[1; 16], &sector).unwrap_err();
        assert!(
            matches!(&e, CaError::ChallengeUnusable(m) if m.contains("expired")),
            "{e}"
        );
        let e = book.take(&[1; 16], &sector).unwrap_err();
        assert!(
            matches!(&e, CaError::ChallengeUnusable(m) if m.contains("already answered")),
            "{e}"
        );
        assert_eq!(e.class(), FailureClass::FailedPrecondition);

        put(&book, [2; 16], live());
        let other = SectorName::new("hems").unwrap();
        assert!(matches!(
            book.take(&[2; 16], &other),
            Err(CaError::InvalidRequest(_))
        ));
        put(&book, [3; 16], live());
        let p = book.take(&[3; 16], &sector).unwrap();
        assert_eq!(p.secret_sha256, sha256(&[7; 32]));
        assert!(book.take(&[3; 16], &sector).is_err());
        assert!(matches!(
            book.take(&[3; 15], &sector),
            Err(CaError::InvalidRequest(_))
        ));
    }

    /// Open challenges are in the store: a book over the reopened store
    /// (a restarted server) takes one the first book issued, once.
    #[test]
    fn challenges_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = trustca_store::SledStorage::open(dir.path()).unwrap();
            put(&AttestationBook::new(Arc::new(store)), [4; 16], live());
        }
        let store = trustca_store::SledStorage::open(dir.path()).unwrap();
        let book = AttestationBook::new(Arc::new(store));
        let sector = SectorName::new("automotive").unwrap();
        assert!(book.take(&[4; 16], &sector).is_ok());
        assert!(book.take(&[4; 16], &sector).is_err());
    }

    /// At most MAX_PENDING open challenges; expired ones make room.
    #[test]
    fn the_open_challenge_limit_holds_and_expired_ones_make_room() {
        let (_dir, book) = book();
        let record = b"{}";
        let put = |i: u32, expires: i64| {
            book.storage
                .challenge_put(&i.to_be_bytes(), record, expires, now(), 3)
                .unwrap()
        };
        assert!(put(1, now() - 1));
        assert!(put(2, live()));
        assert!(put(3, live()));
        // Full, but one is expired: it is dropped for the new one.
        assert!(put(4, live()));
        assert!(!put(5, live()));
        assert!(
            book.storage
                .challenge_take(&1u32.to_be_bytes())
                .unwrap()
                .is_none()
        );
        assert!(
            book.storage
                .challenge_take(&2u32.to_be_bytes())
                .unwrap()
                .is_some()
        );
        assert!(put(5, live()));
    }

    #[test]
    fn refusals_map_to_failure_classes() {
        let code = |e: AttestationError| refused(e).class();
        assert_eq!(
            code(AttestationError::WrongNonce),
            FailureClass::PermissionDenied
        );
        assert_eq!(
            code(AttestationError::BadSignature),
            FailureClass::PermissionDenied
        );
        assert_eq!(
            code(AttestationError::EkChain("x".into())),
            FailureClass::PermissionDenied
        );
        assert_eq!(
            code(AttestationError::Unsupported("x".into())),
            FailureClass::InvalidArgument
        );
    }
}
