//! Where a long-lived component reads the policies in force.
//!
//! A server loads its policy files once and swaps the whole set on a
//! reload (`trustca_server`'s `Policies`). Engines built at start hold a
//! [`PolicySource`] instead of a copy, and read it per request, so a
//! reload takes effect at once for every component, never only at the
//! next start. A component built from a fixed set (a test, the bench, an
//! offline tool) passes that set: `Arc<PolicySet>` is a source that never
//! changes.

use std::sync::Arc;

use crate::PolicySet;

/// The policies in force, read whenever a decision needs them.
pub trait PolicySource: Send + Sync {
    /// The set in force now (a whole version, never a mix of two).
    fn current(&self) -> Arc<PolicySet>;
}

impl PolicySource for Arc<PolicySet> {
    fn current(&self) -> Arc<PolicySet> {
        Arc::clone(self)
    }
}
