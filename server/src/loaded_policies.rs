//! The policies of a running server, discovered and loaded once.
//!
//! [`Policies::load`] finds the policy directory (`--policies`, else the
//! data directory's copy, else the embedded defaults, `crate::policies`),
//! reads and validates every file once, and every component is built from
//! that one [`PolicyVersion`]. A reload (SIGHUP, `ReloadPolicy`) reads the
//! same source again, validates the whole set first, and only then
//! replaces the version every component reads, in one swap. The
//! enrollment engine, the CRL publisher and the model registry read it per
//! request ([`trustca_model::PolicySource`]); the components that keep a
//! copy of their own (the trust engine, the systems registry, the web front
//! end's `web.toml` with its rate limits and session lengths, the V2X
//! authorities' ticket profile `v2x-tickets.toml`) follow the new version
//! before the reload returns. A bad file on reload changes nothing: the
//! running version stays and the error is returned. Components may also
//! refuse a version before it is taken ([`Policies::check_before`]): the
//! V2X authorities refuse one that moves what issued tickets carry.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use trustca_model::PolicySet;

use crate::error::Result;
use crate::policies::{self, PolicyFiles};

/// One loaded and validated version of the policy files.
#[derive(Debug)]
pub struct PolicyVersion {
    /// 1 at start, one more on every reload that was taken.
    pub number: u64,
    /// The files as read (relative name, text).
    pub files: PolicyFiles,
    /// The parsed and validated set.
    pub set: Arc<PolicySet>,
}

/// A component that keeps its own copy of part of the policies and takes
/// it from every new version (an `Err` is logged; validation happened
/// before, so it means the component refused what the set accepted).
pub type Follower = Box<dyn Fn(&PolicyVersion) -> std::result::Result<(), String> + Send + Sync>;

/// A component's check of a new version before it is taken: an `Err`
/// refuses the whole reload with that message, and nothing changes.
pub type Check = Follower;

/// The policies in force, shared by every component (cloning is cheap).
#[derive(Clone)]
pub struct Policies {
    inner: Arc<Inner>,
}

struct Inner {
    explicit: Option<PathBuf>,
    data: PathBuf,
    current: RwLock<Arc<PolicyVersion>>,
    /// Held for a whole reload, so two reloads never interleave and the
    /// followers take versions in order.
    followers: Mutex<Vec<Follower>>,
    /// Run on every new version before it is taken.
    checks: Mutex<Vec<Check>>,
}

impl std::fmt::Debug for Policies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policies")
            .field("explicit", &self.inner.explicit)
            .field("data", &self.inner.data)
            .field("version", &self.current().number)
            .finish()
    }
}

impl trustca_model::PolicySource for Policies {
    fn current(&self) -> Arc<PolicySet> {
        self.set()
    }
}

impl Policies {
    /// Finds and loads the policies of a server over `data` (`explicit`:
    /// `--policies`).
    pub fn load(explicit: Option<&Path>, data: &Path) -> Result<Self> {
        let (files, set) = policies::resolve(explicit, Some(data))?;
        Ok(Self {
            inner: Arc::new(Inner {
                explicit: explicit.map(Path::to_path_buf),
                data: data.to_path_buf(),
                current: RwLock::new(Arc::new(PolicyVersion {
                    number: 1,
                    files,
                    set: Arc::new(set),
                })),
                followers: Mutex::new(Vec::new()),
                checks: Mutex::new(Vec::new()),
            }),
        })
    }

    /// The version in force.
    pub fn current(&self) -> Arc<PolicyVersion> {
        Arc::clone(
            &self
                .inner
                .current
                .read()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }

    /// The parsed set in force.
    pub fn set(&self) -> Arc<PolicySet> {
        Arc::clone(&self.current().set)
    }

    /// Registers a component that copies what it needs from every new
    /// version (not called for the version in force).
    pub fn follow(&self, follower: Follower) {
        self.inner
            .followers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(follower);
    }

    /// Registers a component's check of every new version before it is
    /// taken (a refusal refuses the reload).
    pub fn check_before(&self, check: Check) {
        self.inner
            .checks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(check);
    }

    /// Reads the policy source again. If every file parses, the set
    /// validates and every component's check accepts it, it becomes the
    /// version in force and the followers take it; otherwise nothing
    /// changes and the error says why.
    pub fn reload(&self) -> Result<Arc<PolicyVersion>> {
        let followers = self
            .inner
            .followers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let (files, set) =
            policies::resolve(self.inner.explicit.as_deref(), Some(&self.inner.data))?;
        refuse_moved_identity(&self.current().set, &set)?;
        let fresh = Arc::new(PolicyVersion {
            number: self.current().number + 1,
            files,
            set: Arc::new(set),
        });
        for check in self
            .inner
            .checks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            check(&fresh).map_err(crate::error::ServerError::Policy)?;
        }
        *self
            .inner
            .current
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::clone(&fresh);
        for follow in followers.iter() {
            if let Err(e) = follow(&fresh) {
                tracing::error!(version = fresh.number, error = %e, "a component refused the reloaded policies");
            }
        }
        tracing::info!(version = fresh.number, "policies reloaded");
        Ok(fresh)
    }
}

/// Refuses a reload that changes what issued certificates already carry:
/// the trust domain and the trust-level extension's OID stay as at start.
fn refuse_moved_identity(running: &PolicySet, fresh: &PolicySet) -> Result<()> {
    let (was, now) = (&running.pki, &fresh.pki);
    if was.trust_domain != now.trust_domain
        || was.extensions.trust_level_oid != now.extensions.trust_level_oid
    {
        return Err(crate::error::ServerError::Policy(
            "pki.toml: the trust domain and the trust-level extension OID cannot change while the server runs (certificates carry them); restart to change them".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    fn installed() -> (tempfile::TempDir, Policies) {
        let dir = tempfile::tempdir().unwrap();
        policies::install(dir.path(), &policies::embedded()).unwrap();
        let p = Policies::load(None, dir.path()).unwrap();
        (dir, p)
    }

    /// Two components, one reading the shared value, one following it
    /// with its own copy: after a reload both see the same version.
    #[test]
    fn every_component_sees_the_reloaded_version() {
        let (_dir, policies) = installed();
        let copies: Vec<Arc<AtomicU64>> = (0..2).map(|_| Arc::new(AtomicU64::new(1))).collect();
        for copy in &copies {
            let copy = Arc::clone(copy);
            policies.follow(Box::new(move |v| {
                copy.store(v.number, Ordering::SeqCst);
                Ok(())
            }));
        }
        let reader = policies.clone();
        for want in 2..=4 {
            let v = policies.reload().unwrap();
            assert_eq!(v.number, want);
            assert_eq!(reader.current().number, want);
            for copy in &copies {
                assert_eq!(copy.load(Ordering::SeqCst), want);
            }
        }
    }

    /// A bad file on reload is refused: the version in force, its set and
    /// every follower's copy stay as they were.
    #[test]
    fn a_bad_file_on_reload_changes_nothing() {
        let (dir, policies) = installed();
        let seen = Arc::new(AtomicU64::new(1));
        let copy = Arc::clone(&seen);
        policies.follow(Box::new(move |v| {
            copy.store(v.number, Ordering::SeqCst);
            Ok(())
        }));
        let before = policies.current();
        let pki = dir.path().join("policies").join("pki.toml");
        std::fs::write(&pki, "this is = not [valid toml").unwrap();
        let err = policies.reload().err().map(|e| e.to_string());
        assert!(
            err.as_deref().is_some_and(|e| e.contains("pki.toml")),
            "{err:?}"
        );
        let after = policies.current();
        assert!(Arc::ptr_eq(&before, &after));
        assert_eq!(after.number, 1);
        assert_eq!(seen.load(Ordering::SeqCst), 1);
    }

    /// A reload that moves the trust-level OID is refused; the running
    /// version stays.
    #[test]
    fn a_reload_moving_the_extension_oid_is_refused() {
        let (dir, policies) = installed();
        let pki = dir.path().join("policies").join("pki.toml");
        let text = std::fs::read_to_string(&pki).unwrap();
        let oid = policies.set().pki.extensions.trust_level_oid.to_string();
        let moved = text.replace(&oid, "1.3.6.1.4.1.99999.7");
        assert_ne!(moved, text, "the OID {oid} is in pki.toml");
        std::fs::write(&pki, moved).unwrap();
        let err = policies.reload().err().map(|e| e.to_string());
        assert!(
            err.as_deref().is_some_and(|e| e.contains("cannot change")),
            "{err:?}"
        );
        assert_eq!(policies.current().number, 1);
    }

    /// A component's check refuses a reload: the version in force and the
    /// followers' copies stay, and the refusal is the reload's error.
    #[test]
    fn a_component_check_refuses_the_reload() {
        let (_dir, policies) = installed();
        let seen = Arc::new(AtomicU64::new(1));
        let copy = Arc::clone(&seen);
        policies.follow(Box::new(move |v| {
            copy.store(v.number, Ordering::SeqCst);
            Ok(())
        }));
        policies.check_before(Box::new(|v| {
            if v.number > 2 {
                Err("v2x-tickets.toml: sector cannot change".into())
            } else {
                Ok(())
            }
        }));
        assert_eq!(policies.reload().unwrap().number, 2);
        let err = policies.reload().err().map(|e| e.to_string());
        assert!(
            err.as_deref()
                .is_some_and(|e| e.contains("sector cannot change")),
            "{err:?}"
        );
        assert_eq!(policies.current().number, 2);
        assert_eq!(seen.load(Ordering::SeqCst), 2);
    }

    /// Readers during reloads only ever see whole versions, in order.
    #[test]
    fn readers_see_versions_in_order_during_reloads() {
        let (_dir, policies) = installed();
        let reader = policies.clone();
        let watch = std::thread::spawn(move || {
            let mut last = 0;
            for _ in 0..2000 {
                let v = reader.current();
                assert!(v.number >= last);
                assert!(!v.set.sectors.is_empty());
                last = v.number;
            }
        });
        for _ in 0..5 {
            policies.reload().unwrap();
        }
        watch.join().unwrap();
        assert_eq!(policies.current().number, 6);
    }
}
