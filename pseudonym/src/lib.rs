//! The cryptographic core of trustca's V2X pseudonym certificates, modelled
//! on the US SCMS and the EU C-ITS PKI. Pure computation: no I/O, no
//! networking, no X.509 (the caller builds and signs certificates and lists).
//!
//! * [`linkage`]: per-vehicle one-way seed chains and the 16-byte linkage
//!   values put into certificates; revocation entries that recognise a
//!   vehicle's certificates from a period on and never before.
//! * [`prelinkage`]: IEEE 1609.2 / SCMS linkage values from two linkage
//!   authorities (9-byte `plv1 XOR plv2`), seed releases for revocation and
//!   a bounded revocation index.
//! * [`butterfly`]: butterfly key expansion on P-256; the CA derives
//!   unlinkable certificate keys from one caterpillar key and only the
//!   vehicle can compute the private keys.
//! * [`escrow`]: ECIES-style encryption to a resolution authority, so that
//!   pseudonymity-breaking secrets can be stored without the operator being
//!   able to read them.
//! * [`prl`]: the canonical signed-over encoding of pseudonym revocation
//!   lists and its strict decoder.
//! * [`keys`]: the P-256 key types and their SEC1, SubjectPublicKeyInfo and
//!   PKCS#8 encodings for ring and rcgen.
//!
//! All secret-holding types wipe themselves on drop (best effort: values
//! that were copied before, for example by the allocator, are not reached)
//! and print `<redacted>` in `Debug`. The constructions, byte layouts and test
//! vectors are documented in `docs/pseudonyms.md`.
#![forbid(unsafe_code)]

pub mod butterfly;
pub mod error;
pub mod escrow;
pub mod keys;
pub mod linkage;
pub mod prelinkage;
pub mod prl;

pub use butterfly::{
    BUTTERFLY_DOMAIN, BUTTERFLY_REQUEST_LEN, ButterflyRequest, CATERPILLAR_LEN, CaContribution,
    Caterpillar, EXPANSION_KEY_LEN, ExpansionKey, IssuedKey,
};
pub use error::{PseudonymError, Result};
pub use escrow::{
    ESCROW_INFO, ESCROW_OVERHEAD, ESCROW_VERSION, ResolutionAuthorityKey,
    ResolutionAuthorityPublicKey, open, seal,
};
pub use keys::{
    P256PrivateKey, P256PublicKey, PKCS8_LEN, SCALAR_LEN, SEC1_UNCOMPRESSED_LEN, SPKI_LEN,
};
pub use linkage::{
    LINKAGE_CHAIN_DOMAIN, LINKAGE_CHAIN_LEN, LINKAGE_SEED_LEN, LINKAGE_VALUE_DOMAIN,
    LINKAGE_VALUE_LEN, LinkageChain, LinkageSeed, LinkageValue, MAX_CERTIFICATES_PER_PERIOD,
    MAX_CHAIN_STEPS, MAX_LOOKAHEAD_PERIODS, RevocationEntry, RevocationIndex, RevocationMatch,
    RevocationMatcher, derive_seed, linkage_value, matches,
};
pub use prelinkage::{
    CertLinkageValue, LA_CHAIN_LEN, LA_SEED_LEN, LaChain, LaId, LaSeed, LinkageRevocation,
    LinkageRevocationIndex, MAX_INDEX_VALUES, PRE_LINKAGE_VALUE_LEN, PreLinkageValue,
    SEED_RELEASE_LEN, SeedRelease,
};
pub use prl::{
    MAX_PRL_ENTRIES, MAX_SECTOR_LEN, PRL_DOMAIN, PRL_ENTRY_LEN, PseudonymRevocationList,
};
