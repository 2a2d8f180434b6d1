//! The RFC 6962 / RFC 9162 §2.1 hashing primitives.
//!
//! * leaf hash: `SHA-256(0x00 || entry bytes)`
//! * node hash: `SHA-256(0x01 || left || right)`
//! * root of the empty tree: `SHA-256("")`
//!
//! The distinct one-byte prefixes keep leaves and interior nodes in separate
//! domains, so no leaf can be passed off as a subtree (second-preimage defence).

use ring::digest::{Context, SHA256};

/// Length in bytes of every hash in the tree (SHA-256).
pub const HASH_LEN: usize = 32;

/// A SHA-256 tree hash (leaf, interior node or root).
pub type Hash = [u8; HASH_LEN];

const LEAF_PREFIX: u8 = 0x00;
const NODE_PREFIX: u8 = 0x01;

fn finish(ctx: Context) -> Hash {
    let digest = ctx.finish();
    let mut out = [0u8; HASH_LEN];
    out.copy_from_slice(digest.as_ref());
    out
}

/// The leaf hash of one log entry: `SHA-256(0x00 || entry)`.
#[must_use]
pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut ctx = Context::new(&SHA256);
    ctx.update(&[LEAF_PREFIX]);
    ctx.update(entry);
    finish(ctx)
}

/// The hash of an interior node: `SHA-256(0x01 || left || right)`.
#[must_use]
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut ctx = Context::new(&SHA256);
    ctx.update(&[NODE_PREFIX]);
    ctx.update(left);
    ctx.update(right);
    finish(ctx)
}

/// The Merkle Tree Hash of the empty tree: `SHA-256("")`
/// (`e3b0c442…7852b855`).
#[must_use]
pub fn empty_root() -> Hash {
    finish(Context::new(&SHA256))
}

/// The largest power of two strictly smaller than `n` (the RFC 9162 split point `k`).
/// Requires `n >= 2`; returns 1 for smaller inputs.
pub(crate) fn split_point(n: u64) -> u64 {
    if n < 2 {
        return 1;
    }
    // n >= 2, so n - 1 >= 1 and the shift is at most 63.
    1u64 << (63 - (n - 1).leading_zeros())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_point_is_largest_power_of_two_below() {
        for n in 2u64..2000 {
            let k = split_point(n);
            assert!(k.is_power_of_two());
            assert!(k < n && 2 * k >= n, "n={n} k={k}");
        }
        assert_eq!(split_point(u64::MAX), 1 << 63);
        assert_eq!(split_point((1 << 63) + 1), 1 << 63);
        assert_eq!(split_point(1 << 63), 1 << 62);
    }

    #[test]
    fn empty_root_is_sha256_of_nothing() {
        assert_eq!(
            hex::encode(empty_root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
