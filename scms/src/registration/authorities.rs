//! What the RA asks of the linkage authorities and the pseudonym CA, as
//! traits: in-process authorities implement them here, remote ones over gRPC.

use super::*;

/// What the RA asks of a linkage authority (in-process or over gRPC).
pub trait LinkageAuthorityApi: Send + Sync + std::fmt::Debug {
    /// The authority's id.
    fn la_id(&self) -> LaId;
    /// New chains from `first_period`; audited there with `actor`.
    fn create_chains(
        &self,
        first_period: u64,
        count: usize,
        actor: &str,
        now: i64,
    ) -> Result<Vec<ChainId>>;
    /// Sealed pre-linkage values `j = 0..count` of each of `periods`
    /// periods from `first_period`, period-major; audited with `actor`.
    fn pre_linkage_values(
        &self,
        chain: &ChainId,
        first_period: u64,
        periods: u32,
        count: u32,
        actor: &str,
        now: i64,
    ) -> Result<Vec<EncryptedPlv>>;
    /// Releases the chain's seed from `from_period` (revocation).
    fn release(
        &self,
        chain: &ChainId,
        from_period: u64,
        actor: &str,
        now: i64,
    ) -> Result<SeedRelease>;
}

impl LinkageAuthorityApi for LinkageAuthority {
    fn la_id(&self) -> LaId {
        LinkageAuthority::la_id(self)
    }
    fn create_chains(
        &self,
        first_period: u64,
        count: usize,
        actor: &str,
        now: i64,
    ) -> Result<Vec<ChainId>> {
        LinkageAuthority::create_chains(self, first_period, count, actor, now)
    }
    fn pre_linkage_values(
        &self,
        chain: &ChainId,
        first_period: u64,
        periods: u32,
        count: u32,
        actor: &str,
        now: i64,
    ) -> Result<Vec<EncryptedPlv>> {
        LinkageAuthority::pre_linkage_values(self, chain, first_period, periods, count, actor, now)
    }
    fn release(
        &self,
        chain: &ChainId,
        from_period: u64,
        actor: &str,
        now: i64,
    ) -> Result<SeedRelease> {
        LinkageAuthority::release(self, chain, from_period, actor, now)
    }
}

/// What the RA asks of the pseudonym CA.
pub trait PseudonymCaApi: Send + Sync + std::fmt::Debug {
    /// Issues a shuffled batch.
    fn issue_batch(&self, batch: &[TicketRequest], now: i64) -> Result<Vec<TicketResponse>>;
    /// Adds a revocation to the linkage CRL; returns the new signed CRL.
    fn add_revocation(
        &self,
        revocation: LinkageRevocation,
        actor: &str,
        now: i64,
    ) -> Result<LinkageCrl>;
    /// The current linkage CRL (for vehicles downloading it from the RA);
    /// a pseudonym CA without a CRL signer has none.
    fn current_crl(&self, now: i64) -> Result<LinkageCrl> {
        let _ = now;
        Err(ScmsError::NotFound("linkage CRL"))
    }
}

impl PseudonymCaApi for PseudonymCa {
    fn issue_batch(&self, batch: &[TicketRequest], now: i64) -> Result<Vec<TicketResponse>> {
        PseudonymCa::issue_batch(self, batch, now)
    }
    fn add_revocation(
        &self,
        revocation: LinkageRevocation,
        actor: &str,
        now: i64,
    ) -> Result<LinkageCrl> {
        self.revoke(revocation, actor, now)
    }
    fn current_crl(&self, now: i64) -> Result<LinkageCrl> {
        PseudonymCa::current_crl(self, now)
    }
}
