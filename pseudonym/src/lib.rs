//! The cryptographic core of trustca's V2X pseudonyms (IEEE 1609.2
//! authorization tickets), modelled on the US SCMS. Pure computation: no
//! I/O, no networking, no certificate encoding (the caller builds and signs
//! tickets and lists).
//!
//! * [`prelinkage`]: IEEE 1609.2 / SCMS linkage values from two linkage
//!   authorities (9-byte `plv1 XOR plv2`), seed releases for revocation and
//!   a bounded revocation index.
//! * [`butterfly`]: butterfly key expansion on P-256; the CA derives
//!   unlinkable certificate keys from one caterpillar key and only the
//!   vehicle can compute the private keys.
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
pub mod keys;
pub mod prelinkage;

pub use butterfly::{
    BUTTERFLY_REQUEST_LEN, ButterflyRequest, CATERPILLAR_LEN, CaContribution, Caterpillar,
    EXPANSION_KEY_LEN, ExpansionKey, IssuedKey,
};
pub use error::{PseudonymError, Result};
pub use keys::{
    P256PrivateKey, P256PublicKey, PKCS8_LEN, SCALAR_LEN, SEC1_UNCOMPRESSED_LEN, SPKI_LEN,
};
pub use prelinkage::{
    CertLinkageValue, LA_CHAIN_LEN, LA_SEED_LEN, LaChain, LaId, LaSeed, LinkageRevocation,
    LinkageRevocationIndex, MAX_CERTIFICATES_PER_PERIOD, MAX_CHAIN_STEPS, MAX_INDEX_VALUES,
    PRE_LINKAGE_VALUE_LEN, PreLinkageValue, SEED_RELEASE_LEN, SeedRelease,
};
