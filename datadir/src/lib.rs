//! The layout of a trustca data directory, named once.
//!
//! Every crate that reads or writes under `DATA` (the CA's hierarchy, the
//! key ceremony and rollover, the keystore, the server's roles, the CLI)
//! asks [`DataDir`] for the path instead of spelling `"ca"`, `"crl"` or
//! `"v2x/<role>"` itself, so a change of layout is one edit here and the
//! test at the bottom lists the whole layout.
//!
//! This crate only composes paths: it reads and writes nothing, so it
//! depends on no other crate and every crate can use it without a cycle.
#![forbid(unsafe_code)]

use std::fmt::Display;
use std::path::{Path, PathBuf};

/// The CA's directory under `DATA`: certificates (`<name>.pem`), encrypted
/// keys (`<name>.key`), the V2X CA's COER files (`<name>.oer`) and the
/// ceremony's markers.
pub const CA: &str = "ca";
/// Published X.509 CRLs (`<sector>.crl`, the root's ARL) and V2X CRLs.
pub const CRL: &str = "crl";
/// The policy copy installed by `init`.
pub const POLICIES: &str = "policies";
/// The embedded sled store.
pub const DB: &str = "db";
/// Signed trust snapshot files, rewritten by the server.
pub const SNAPSHOTS: &str = "snapshots";
/// The in-process V2X authorities' directories (`v2x/<role>/`).
pub const V2X: &str = "v2x";
/// The all-in-one ETSI TS 102 941 authorities' directory.
pub const ETSI: &str = "etsi";
/// The web front end's files.
pub const WEB: &str = "web";
/// The anomaly and systems notifications, one JSON object a line.
pub const NOTIFICATIONS: &str = "notifications.jsonl";
/// A keystore's directory inside an authority's directory.
pub const KEYS: &str = "keys";
/// A keystore's KDF parameters and check value, beside its `<name>.key`s.
pub const KEYSTORE_META: &str = "keystore.toml";
/// The root certificate's name (`ca/root.pem`).
pub const ROOT: &str = "root";

/// A trustca data directory (`--data`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// The data directory at `root` (nothing is read or created).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The directory itself.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// `ca/`: the CA's certificates, keys and markers.
    pub fn ca(&self) -> PathBuf {
        self.root.join(CA)
    }

    /// `ca/root.pem`: present once `init` (or `sector install`) ran.
    pub fn root_cert(&self) -> PathBuf {
        self.ca().root_cert()
    }

    /// Whether `init` (or a sector install) made this directory a CA.
    pub fn is_initialised(&self) -> bool {
        self.root_cert().exists()
    }

    /// `crl/`: published CRLs.
    pub fn crl_dir(&self) -> PathBuf {
        self.root.join(CRL)
    }

    /// `crl/<name>.crl`.
    pub fn crl(&self, name: impl Display) -> PathBuf {
        self.crl_dir().crl(&name)
    }

    /// `policies/`: the policy copy `init` installed.
    pub fn policies(&self) -> PathBuf {
        self.root.join(POLICIES)
    }

    /// `db/`: the embedded sled store.
    pub fn db(&self) -> PathBuf {
        self.root.join(DB)
    }

    /// `snapshots/`: trust snapshot files.
    pub fn snapshots(&self) -> PathBuf {
        self.root.join(SNAPSHOTS)
    }

    /// `notifications.jsonl`: the notification sink.
    pub fn notifications(&self) -> PathBuf {
        self.root.join(NOTIFICATIONS)
    }

    /// `web/`: the web front end's files.
    pub fn web(&self) -> PathBuf {
        self.root.join(WEB)
    }

    /// `etsi/`: the all-in-one ETSI authorities.
    pub fn etsi(&self) -> PathBuf {
        self.root.join(ETSI)
    }

    /// `v2x/`: the in-process V2X authorities.
    pub fn v2x(&self) -> PathBuf {
        self.root.join(V2X)
    }

    /// `v2x/<role>/`: one in-process V2X authority's directory.
    pub fn v2x_role(&self, role: &str) -> PathBuf {
        self.v2x().join(role)
    }

    /// `v2x/<role>/keys/`: one in-process V2X authority's keystore.
    pub fn v2x_role_keys(&self, role: &str) -> PathBuf {
        self.v2x_role(role).join(KEYS)
    }

    /// `v2x/<role>/store/`: one in-process V2X authority's own store.
    pub fn v2x_role_store(&self, role: &str) -> PathBuf {
        self.v2x_role(role).join("store")
    }

    /// `<name>` directly under the data directory (files of retired
    /// layouts, found only to warn about them).
    pub fn entry(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }
}

/// The names of the files in a CA directory (`DATA/ca/`, a ceremony's
/// scratch copy of it) or a keystore directory, on the directory's path:
/// `dir.cert("automotive")` is `dir/automotive.pem`.
pub trait CaFiles {
    /// `root.pem`.
    fn root_cert(&self) -> PathBuf;
    /// `<name>.pem`: a CA or service certificate (chain).
    fn cert(&self, name: impl Display) -> PathBuf;
    /// `<name>.key`: an encrypted key of the keystore.
    fn key(&self, name: impl Display) -> PathBuf;
    /// `<name>.csr`: a certificate request of the key ceremony.
    fn csr(&self, name: impl Display) -> PathBuf;
    /// `<name>.oer`: a V2X (IEEE 1609.2) certificate or CRL in COER.
    fn oer(&self, name: impl Display) -> PathBuf;
    /// `<name>.crl`: an X.509 CRL (in `crl/`).
    fn crl(&self, name: impl Display) -> PathBuf;
}

impl CaFiles for Path {
    fn root_cert(&self) -> PathBuf {
        self.cert(ROOT)
    }
    fn cert(&self, name: impl Display) -> PathBuf {
        self.join(format!("{name}.pem"))
    }
    fn key(&self, name: impl Display) -> PathBuf {
        self.join(format!("{name}.key"))
    }
    fn csr(&self, name: impl Display) -> PathBuf {
        self.join(format!("{name}.csr"))
    }
    fn oer(&self, name: impl Display) -> PathBuf {
        self.join(format!("{name}.oer"))
    }
    fn crl(&self, name: impl Display) -> PathBuf {
        self.join(format!("{name}.crl"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole layout, relative to the data directory: a change here is
    /// a change of every deployed data directory.
    #[test]
    fn layout() {
        let d = DataDir::new("/data");
        let rel = |p: PathBuf| {
            p.strip_prefix("/data")
                .map(|r| r.to_string_lossy().into_owned())
                .unwrap_or_else(|_| panic!("{} is outside the data directory", p.display()))
        };
        let ca = d.ca();
        let listed = [
            (rel(ca.clone()), "ca"),
            (rel(d.root_cert()), "ca/root.pem"),
            (rel(ca.cert("automotive")), "ca/automotive.pem"),
            (rel(ca.cert("automotive.2")), "ca/automotive.2.pem"),
            (rel(ca.key("root")), "ca/root.key"),
            (rel(ca.oer("v2x-root")), "ca/v2x-root.oer"),
            (rel(ca.csr("hems")), "ca/hems.csr"),
            (rel(d.crl_dir()), "crl"),
            (rel(d.crl("hems")), "crl/hems.crl"),
            (rel(d.policies()), "policies"),
            (rel(d.db()), "db"),
            (rel(d.snapshots()), "snapshots"),
            (rel(d.notifications()), "notifications.jsonl"),
            (rel(d.web()), "web"),
            (rel(d.etsi()), "etsi"),
            (rel(d.v2x()), "v2x"),
            (rel(d.v2x_role("registration")), "v2x/registration"),
            (rel(d.v2x_role_keys("linkage")), "v2x/linkage/keys"),
            (rel(d.v2x_role_store("linkage")), "v2x/linkage/store"),
            (rel(ca.join(KEYSTORE_META)), "ca/keystore.toml"),
            (rel(d.entry("ra")), "ra"),
        ];
        for (got, want) in listed {
            assert_eq!(got, want);
        }
        assert_eq!(Path::new("/k").key("aa"), PathBuf::from("/k/aa.key"));
    }

    #[test]
    fn a_fresh_directory_is_not_initialised() {
        let d = DataDir::new("/nonexistent/trustca-datadir-test");
        assert!(!d.is_initialised());
        assert_eq!(d.path(), Path::new("/nonexistent/trustca-datadir-test"));
    }
}
