//! Federation between sector trust databases, as the engine sees it: a
//! query about a device of a sector this instance is not authoritative for
//! goes to that sector's database through [`PeerDatabases`]. For a sector
//! under a foreign root the engine names the root the trust list lists for
//! it, which the peer's TLS certificate must chain to. The engine verifies
//! the signed answer against that root (or ours) itself; how the question
//! travels (gRPC over mutual TLS, with deadlines and a short cache) is the
//! api crate's `Federation`.

use std::future::Future;
use std::pin::Pin;

use trustca_model::SectorName;

use crate::TrustDbError;
use crate::msg::{GetTrustRequest, TrustAnswer};

/// A peer database's answer, on its way.
pub type PeerAnswer<'a> =
    Pin<Box<dyn Future<Output = Result<TrustAnswer, TrustDbError>> + Send + 'a>>;

/// The trust databases of other sectors.
pub trait PeerDatabases: Send + Sync + std::fmt::Debug {
    /// Whether a peer database is configured for `sector`.
    fn serves(&self, sector: &SectorName) -> bool;

    /// Asks `sector`'s database about `request`; `cache_key` identifies the
    /// subject (e.g. the certificate fingerprint). `foreign_root` (DER) is
    /// the listed root of a sector under another root, which the peer's TLS
    /// certificate must then chain to instead of ours. A peer that does not
    /// answer in time is [`TrustDbError::Unreachable`]; one that does not
    /// know the device, [`TrustDbError::NotFound`].
    fn get_trust<'a>(
        &'a self,
        sector: &'a SectorName,
        foreign_root: Option<&'a [u8]>,
        cache_key: Vec<u8>,
        request: GetTrustRequest,
    ) -> PeerAnswer<'a>;
}
