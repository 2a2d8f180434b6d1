//! Systems of linked devices and their combined security level.
//!
//! A [`System`] is a named set of enrolled devices and the links between
//! them: a link `from → to` with an operation says that `from` may invoke
//! that operation on `to`. A device that a weaker device can reach through
//! such links is no stronger than what that weaker device lends it: the
//! [`CompositionPolicy`] (`policies/composition.toml`) says by how much, by
//! the depth of the operations on the path and its number of hops, with
//! cross-sector recognition applied at every hop. [`evaluate`] gives each
//! member's effective level with the path that set its cap, and the
//! system's combined level.
//!
//! This crate does no I/O and knows no transport: the trust database reads
//! the live levels, stores systems and serves them.
#![forbid(unsafe_code)]

mod error;
mod evaluate;
mod offline;
mod policy;
mod system;

pub use error::CompositionError;
pub use evaluate::{Cap, Combined, Evaluation, LiveLevel, MemberEvaluation, PathHop, evaluate};
pub use offline::{snapshot_cap, snapshot_policy};
pub use policy::{CombinedMethod, CompositionPolicy};
pub use system::{Link, Member, System, SystemRecord};
