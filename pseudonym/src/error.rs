//! The crate's single error type, [`PseudonymError`].
//!
//! Every fallible function in the crate returns `Result<T, PseudonymError>`.
//! Messages never contain secret material (seeds, scalars, plaintexts); they
//! name the field or the check that failed so the caller can log them.

/// Everything that can go wrong in the pseudonym cryptographic core.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PseudonymError {
    /// The operating system's random number generator (through ring's
    /// `SystemRandom`) failed to produce bytes.
    #[error("the system random number generator failed")]
    Random,

    /// A linkage seed was requested for a period before the period at which
    /// the chain (or revocation entry) starts; the chain is one-way, so
    /// earlier seeds cannot be computed.
    #[error(
        "period {requested} is before the chain's start period {start}; the chain only runs forward"
    )]
    PeriodBeforeChainStart {
        /// The period that was asked for.
        requested: u64,
        /// The period of the known seed.
        start: u64,
    },

    /// Walking a linkage chain forward would take more hash steps than the
    /// allowed maximum (a guard against denial of service by absurd periods).
    #[error(
        "walking the linkage chain from period {from} to {to} exceeds the limit of {max} steps"
    )]
    ChainTooLong {
        /// The period of the known seed.
        from: u64,
        /// The period that was asked for.
        to: u64,
        /// The maximum number of steps allowed.
        max: u64,
    },

    /// A `certificates_per_period` larger than the supported maximum was
    /// given to a revocation index or matcher (memory grows with it).
    #[error("certificates_per_period {requested} exceeds the maximum {max}")]
    TooManyCertificatesPerPeriod {
        /// The value asked for.
        requested: u32,
        /// The maximum supported.
        max: u32,
    },

    /// A butterfly key was asked for a period whose index does not fit the
    /// 32 bits IEEE 1609.2.1's expansion input gives `i`.
    #[error("period {0} does not fit the 32-bit i of the butterfly expansion")]
    PeriodOutOfRange(u64),

    /// A private scalar was zero or not below the P-256 group order `n`
    /// (`what` names the key: caterpillar, CA contribution, RA key, ...).
    #[error("invalid P-256 private scalar for {what}: zero or not below the group order")]
    InvalidScalar {
        /// Which key or value was rejected.
        what: &'static str,
    },

    /// A public key was not a valid uncompressed SEC1 P-256 point (wrong
    /// length, wrong tag, not on the curve, or the point at infinity).
    #[error(
        "invalid P-256 public key for {what}: expected a 65-byte uncompressed SEC1 point on the curve"
    )]
    InvalidPublicKey {
        /// Which key was rejected.
        what: &'static str,
    },

    /// A derived key came out as zero or the point at infinity. This happens
    /// with probability about 2^-256 for honest inputs and indicates a
    /// maliciously chosen CA contribution or caterpillar key.
    #[error("derived {what} is degenerate (zero scalar or point at infinity)")]
    DegenerateKey {
        /// Which derived key was degenerate.
        what: &'static str,
    },

    /// The private key the vehicle derived does not belong to the public key
    /// the CA certified for this (period, j): wrong contribution, wrong index,
    /// or a CA that did not use the vehicle's caterpillar key.
    #[error(
        "the derived private key for period {period}, j={j} does not match the CA-issued public key"
    )]
    KeyMismatch {
        /// The period index of the certificate.
        period: u64,
        /// The certificate index within the period.
        j: u32,
    },

    /// A PKCS#8 document was not the exact P-256 `ecPublicKey` v1 layout this
    /// crate writes (with the public key embedded), or its public key does
    /// not match its private scalar.
    #[error("invalid PKCS#8 document: {reason}")]
    InvalidPkcs8 {
        /// What was wrong with it.
        reason: &'static str,
    },

    /// A fixed-layout byte string (caterpillar, butterfly request, CA
    /// contribution, linkage chain state) had the wrong length.
    #[error("{what} must be exactly {expected} bytes, got {actual}")]
    InvalidLength {
        /// Which encoding was being decoded.
        what: &'static str,
        /// The required length.
        expected: usize,
        /// The length that was supplied.
        actual: usize,
    },

    /// Two linkage-seed releases were paired into one revocation but are for
    /// different periods; both linkage authorities must release the seed of
    /// the same period.
    #[error("linkage seed releases are for different periods ({first} and {second})")]
    ReleasePeriodMismatch {
        /// The first release's period.
        first: u64,
        /// The second release's period.
        second: u64,
    },

    /// Two linkage-seed releases were paired into one revocation but come
    /// from the same linkage authority; a linkage value needs both LAs.
    #[error("both linkage seed releases come from linkage authority {la_id:#06x}")]
    DuplicateLaId {
        /// The linkage authority identifier found twice.
        la_id: u16,
    },

    /// A period range ended before it started.
    #[error("period range {from}..={to} is empty (to is before from)")]
    InvalidPeriodRange {
        /// The first period asked for.
        from: u64,
        /// The last period asked for.
        to: u64,
    },

    /// A linkage revocation index would hold more values
    /// (revocations × periods × certificates per period) than allowed.
    #[error("linkage revocation index would hold {values} values, more than the maximum {max}")]
    RevocationIndexTooLarge {
        /// The number of values the request would need (saturating).
        values: u128,
        /// The maximum allowed.
        max: u64,
    },
}

/// Shorthand for results with [`PseudonymError`].
pub type Result<T, E = PseudonymError> = std::result::Result<T, E>;
