//! An issuance group prepared outside sled's lock and applied inside it.
//!
//! sled runs every write transaction under one process-wide lock, and
//! every plain read waits for it: while a group of 256 issuances ran its
//! rules inside the transaction (encoding, seals, digests, audit entries:
//! two thirds of the commit's CPU), the signing workers' reads for the
//! next group, the auth layer's and `Decide`'s reads all stood still.
//!
//! So the rules run first on a [`Staging`]: it reads the trees directly,
//! remembers every value it read, and keeps its writes in memory. The
//! transaction then only reads those keys again and, when every value is
//! still the one the rules saw, writes the staged bytes. The rules are a
//! function of what they read and of the group, so the writes are exactly
//! what they would have written inside the transaction; when anything
//! read has changed since (another write committed between the two), the
//! staging is dropped and the rules run inside the transaction as before.

use std::cell::RefCell;
use std::collections::BTreeMap;

use super::txn::{TreeId, Trees};
use super::*;

/// A key of one of the write trees.
type TreeKey = (TreeId, Vec<u8>);

/// The rules' reads and writes over the trees, outside any transaction.
pub(super) struct Staging<'a> {
    store: &'a SledStorage,
    /// Every key read from a tree (not from the staged writes), with the
    /// value it had then.
    read: RefCell<BTreeMap<TreeKey, Option<sled::IVec>>>,
    /// The writes, the last one per key, as a transaction keeps them.
    written: RefCell<BTreeMap<TreeKey, sled::IVec>>,
}

impl<'a> Staging<'a> {
    pub(super) fn new(store: &'a SledStorage) -> Self {
        Self {
            store,
            read: RefCell::default(),
            written: RefCell::default(),
        }
    }

    /// Inside the transaction: writes the staged bytes if every key read
    /// still holds what was read, and says whether it did. Nothing is
    /// written otherwise.
    pub(super) fn apply(&self, view: &WriteView) -> Result<bool, Abort> {
        for ((tree, key), seen) in self.read.borrow().iter() {
            if Trees::get(view, *tree, key)? != *seen {
                return Ok(false);
            }
        }
        for ((tree, key), value) in self.written.borrow().iter() {
            Trees::insert(view, *tree, key, value.to_vec())?;
        }
        Ok(true)
    }

    fn tree(&self, tree: TreeId) -> &sled::Tree {
        let s = self.store;
        match tree {
            TreeId::Certs => &s.certs,
            TreeId::Devices => &s.devices,
            TreeId::Trust => &s.trust,
            TreeId::History => &s.history,
            TreeId::Audit => &s.audit,
            TreeId::Meta => &s.meta,
            TreeId::Fingerprints => &s.fingerprints,
            TreeId::Revoked => &s.revoked,
            TreeId::Blobs => &s.blobs,
            TreeId::BlockedKeys => &s.blocked_keys,
            TreeId::Heads => &s.heads,
        }
    }
}

impl Trees for Staging<'_> {
    fn get(&self, tree: TreeId, key: &[u8]) -> Result<Option<sled::IVec>, Abort> {
        let at = (tree, key.to_vec());
        if let Some(value) = self.written.borrow().get(&at) {
            return Ok(Some(value.clone()));
        }
        if let Some(seen) = self.read.borrow().get(&at) {
            return Ok(seen.clone());
        }
        let seen = self.tree(tree).get(key)?;
        self.read.borrow_mut().insert(at, seen.clone());
        Ok(seen)
    }

    fn insert(&self, tree: TreeId, key: &[u8], value: Vec<u8>) -> Result<(), Abort> {
        self.written
            .borrow_mut()
            .insert((tree, key.to_vec()), value.into());
        Ok(())
    }
}
