//! A linkage authority (LA1 or LA2): holds one seed chain per random chain
//! id, hands out pre-linkage values sealed to the pseudonym CA, and takes
//! part in resolution and revocation.
//!
//! Its store holds, per chain, `c/` ‖ chain id (16) → the chain's seed
//! sealed under the LA's own storage key (fixed length). It never learns
//! which vehicle a chain belongs to (the registration authority keeps
//! that), never sees a certificate, and alone cannot compute a linkage
//! value: `lv = plv1 ⊕ plv2` needs the other LA's value.
//!
//! Each pre-linkage value travels as an [`EncryptedPlv`]: sealed under the
//! key this LA shares with the pseudonym CA, bound to the LA id and the
//! period, and carrying a [`ChainEnvelope`] (the chain id sealed under this
//! LA's storage key, fresh nonce each time) that the pseudonym CA keeps for
//! resolution and cannot open.

use std::sync::Arc;

use serde_json::json;

use trustca_pseudonym::{LA_CHAIN_LEN, LaChain, LaId, PreLinkageValue, SeedRelease};
use trustca_store::{BlobAudit, Storage};

use crate::envelope::{CHAIN_ENVELOPE_LEN, ENCRYPTED_PLV_LEN, LinkKey, random_bytes};
use crate::error::{Result, ScmsError};

/// Store space of every linkage authority.
pub const SPACE: &str = "v2x.linkage";
const CHAIN_PREFIX: &[u8] = b"c/";
const CHAIN_AAD: &[u8] = b"trustca-la-chain-v1";
const ENVELOPE_AAD: &[u8] = b"trustca-la-chain-envelope-v1";
const PLV_AAD: &[u8] = b"trustca-plv-v1";
/// Most pre-linkage values one call returns (a vehicle-year is 1 040).
pub const MAX_PLVS_PER_CALL: u32 = 20_000;

/// A chain's random identifier (known to this LA and the registration
/// authority only).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChainId(pub [u8; 16]);

impl std::fmt::Debug for ChainId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ChainId(")?;
        for b in &self.0[..4] {
            write!(f, "{b:02x}")?;
        }
        write!(f, "…)")
    }
}

/// A chain id sealed by a linkage authority to itself (44 bytes; a fresh
/// nonce every time, so two envelopes of one chain look unrelated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainEnvelope(pub [u8; CHAIN_ENVELOPE_LEN]);

/// A pre-linkage value sealed to the pseudonym CA (81 bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncryptedPlv(pub [u8; ENCRYPTED_PLV_LEN]);

impl EncryptedPlv {
    /// Parses 81 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self> {
        <[u8; ENCRYPTED_PLV_LEN]>::try_from(bytes)
            .map(Self)
            .map_err(|_| ScmsError::Malformed {
                what: "encrypted pre-linkage value",
                reason: format!("{} bytes, expected {ENCRYPTED_PLV_LEN}", bytes.len()),
            })
    }
}

/// The AAD of an [`EncryptedPlv`]: which LA made it, for which period.
pub(crate) fn plv_aad(la_id: LaId, period: u64) -> Vec<u8> {
    let mut aad = PLV_AAD.to_vec();
    aad.extend_from_slice(&la_id.0.to_be_bytes());
    aad.extend_from_slice(&period.to_be_bytes());
    aad
}

/// One linkage authority with its own store and keys.
#[derive(Debug)]
pub struct LinkageAuthority {
    la_id: LaId,
    store: Arc<dyn Storage>,
    storage_key: LinkKey,
    pca_link: LinkKey,
}

impl LinkageAuthority {
    /// An LA with id `la_id`, its own `store`, its own `storage_key` and
    /// the transport key it shares with the pseudonym CA.
    pub fn new(
        la_id: LaId,
        store: Arc<dyn Storage>,
        storage_key: LinkKey,
        pca_link: LinkKey,
    ) -> Self {
        Self {
            la_id,
            store,
            storage_key,
            pca_link,
        }
    }

    /// This authority's own store.
    pub fn store(&self) -> Arc<dyn Storage> {
        Arc::clone(&self.store)
    }

    /// This LA's id.
    pub fn la_id(&self) -> LaId {
        self.la_id
    }

    /// Creates `count` chains starting at `first_period`, durably, with one
    /// audit entry naming the caller and the count only.
    pub fn create_chains(
        &self,
        first_period: u64,
        count: usize,
        actor: &str,
        now: i64,
    ) -> Result<Vec<ChainId>> {
        if count == 0 || count > 10_000 {
            return Err(ScmsError::Profile("1..=10000 chains per call".into()));
        }
        let mut ids = Vec::with_capacity(count);
        let mut records = Vec::with_capacity(count);
        for _ in 0..count {
            let id = ChainId(random_bytes()?);
            let chain = LaChain::generate(self.la_id, first_period)?;
            records.push((chain_key(&id), self.seal_chain(&id, &chain)?));
            ids.push(id);
        }
        let audit = self.audit(
            actor,
            "linkage.chains.created",
            json!({ "count": count }),
            now,
        );
        self.store.blob_put(SPACE, &records, true, Some(&audit))?;
        Ok(ids)
    }

    /// Pre-linkage values `j = 0..count` of each of `periods` periods from
    /// `first_period` for `chain` (period-major), each sealed to the
    /// pseudonym CA with a fresh chain envelope. Handing them out is
    /// audited with the caller and the counts, never the chain.
    pub fn pre_linkage_values(
        &self,
        chain: &ChainId,
        first_period: u64,
        periods: u32,
        count: u32,
        actor: &str,
        now: i64,
    ) -> Result<Vec<EncryptedPlv>> {
        let total = u64::from(periods) * u64::from(count);
        if periods == 0 || count == 0 || total > u64::from(MAX_PLVS_PER_CALL) {
            return Err(ScmsError::Profile(format!(
                "1..={MAX_PLVS_PER_CALL} values per call (periods × count)"
            )));
        }
        let last = first_period
            .checked_add(u64::from(periods) - 1)
            .ok_or_else(|| ScmsError::Profile("period out of range".into()))?;
        let seeds = self.load_chain(chain)?;
        let mut out = Vec::with_capacity(total as usize);
        for period in first_period..=last {
            let aad = plv_aad(self.la_id, period);
            for plv in seeds.pre_linkage_values(period, count)? {
                out.push(self.seal_plv(chain, &plv, &aad)?);
            }
        }
        let audit = self.audit(
            actor,
            "linkage.values.handed-out",
            json!({ "first_period": first_period, "periods": periods, "count": count }),
            now,
        );
        self.store.blob_put(SPACE, &[], false, Some(&audit))?;
        Ok(out)
    }

    fn audit(&self, actor: &str, kind: &str, detail: serde_json::Value, now: i64) -> BlobAudit {
        BlobAudit {
            actor: actor.into(),
            kind: kind.into(),
            subject: format!("la-{}", self.la_id.0),
            detail: detail.to_string(),
            at: now,
        }
    }

    fn seal_plv(&self, chain: &ChainId, plv: &PreLinkageValue, aad: &[u8]) -> Result<EncryptedPlv> {
        let envelope = self.storage_key.seal(ENVELOPE_AAD, &chain.0)?;
        let mut plain = zeroize::Zeroizing::new(Vec::with_capacity(9 + CHAIN_ENVELOPE_LEN));
        plain.extend_from_slice(&plv.0);
        plain.extend_from_slice(&envelope);
        EncryptedPlv::from_slice(&self.pca_link.seal(aad, &plain)?)
    }

    /// Resolution step: opens a chain envelope the pseudonym CA kept for a
    /// certificate, audited with the case reference and who asked.
    pub fn open_envelope(
        &self,
        envelope: &ChainEnvelope,
        actor: &str,
        case: &str,
        now: i64,
    ) -> Result<ChainId> {
        let id = self.open_chain_envelope(envelope)?;
        // The chain must be one of ours (a forged envelope cannot open, but
        // a deleted chain should not resolve either).
        self.load_chain(&id)?;
        let audit = self.audit(
            actor,
            "linkage.resolution.opened",
            json!({ "case": case }),
            now,
        );
        self.store.blob_put(SPACE, &[], false, Some(&audit))?;
        Ok(id)
    }

    pub(crate) fn open_chain_envelope(&self, envelope: &ChainEnvelope) -> Result<ChainId> {
        let plain = self
            .storage_key
            .open(ENVELOPE_AAD, &envelope.0, "chain envelope")?;
        let id = <[u8; 16]>::try_from(&plain[..]).map_err(|_| ScmsError::Envelope {
            what: "chain envelope",
        })?;
        Ok(ChainId(id))
    }

    /// Revocation step: publishes the chain's seed for `from_period`, from
    /// which every later seed follows and no earlier one.
    pub fn release(
        &self,
        chain: &ChainId,
        from_period: u64,
        actor: &str,
        now: i64,
    ) -> Result<SeedRelease> {
        let seeds = self.load_chain(chain)?;
        let release = seeds.release(from_period)?;
        let audit = self.audit(
            actor,
            "linkage.seed.released",
            json!({ "from_period": from_period }),
            now,
        );
        self.store.blob_put(SPACE, &[], false, Some(&audit))?;
        Ok(release)
    }

    fn seal_chain(&self, id: &ChainId, chain: &LaChain) -> Result<Vec<u8>> {
        let mut aad = CHAIN_AAD.to_vec();
        aad.extend_from_slice(&id.0);
        self.storage_key.seal(&aad, chain.to_bytes().as_ref())
    }

    fn load_chain(&self, id: &ChainId) -> Result<LaChain> {
        let sealed = self
            .store
            .blob_get(SPACE, &chain_key(id))?
            .ok_or(ScmsError::NotFound("linkage chain"))?;
        let mut aad = CHAIN_AAD.to_vec();
        aad.extend_from_slice(&id.0);
        let plain = self
            .storage_key
            .open(&aad, &sealed, "stored linkage chain")?;
        if plain.len() != LA_CHAIN_LEN {
            return Err(ScmsError::Malformed {
                what: "stored linkage chain",
                reason: format!("{} bytes", plain.len()),
            });
        }
        Ok(LaChain::from_bytes(&plain)?)
    }
}

fn chain_key(id: &ChainId) -> Vec<u8> {
    let mut k = CHAIN_PREFIX.to_vec();
    k.extend_from_slice(&id.0);
    k
}
