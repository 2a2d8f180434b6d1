//! Data directories made by an older `trustca init`, when trustca still
//! issued X.509 pseudonym certificates: what that path left behind, and the
//! one warning `serve` gives about it.
//!
//! Nothing here is read as configuration or keys any more: the pseudonym CA
//! certificates and keys (`ca/<sector>-pseudonym.*`), the pseudonym state
//! secret (`ca/pseudonym-state.key`), the resolution authority's key pair
//! (`ra/resolution-authority.key`, `ca/resolution-authority.pub`), the
//! pseudonym revocation lists (`crl/<sector>.prl`), the profile
//! (`policies/pseudonym.toml`) and the store's `pseudonym` record space stay
//! where they are, untouched, so `serve` starts on such a directory as on a
//! new one. Vehicles get IEEE 1609.2 tickets from the V2X authorities
//! instead (`docs/pseudonyms.md`).

use std::path::{Path, PathBuf};

use trustca_datadir::{CaFiles, DataDir};

/// The files and directories of `data` that the retired X.509 pseudonym
/// path created (empty for a directory made by this version).
pub fn x509_pseudonym_material(data: &Path) -> Vec<PathBuf> {
    let dd = DataDir::new(data);
    let mut found: Vec<PathBuf> = [
        dd.ca().key("pseudonym-state"),
        dd.ca().join("resolution-authority.pub"),
        dd.entry("ra").key("resolution-authority"),
        dd.policies().join("pseudonym.toml"),
    ]
    .into_iter()
    .filter(|p| p.exists())
    .collect();
    for (dir, suffix) in [(dd.ca(), "-pseudonym.pem"), (dd.crl_dir(), ".prl")] {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        let mut names: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.ends_with(suffix))
            })
            .collect();
        names.sort();
        found.extend(names);
    }
    found
}

/// Logs once, at start, that `data` still holds X.509 pseudonym material
/// that this version neither reads nor serves.
pub(crate) fn warn_x509_pseudonym_material(data: &Path) {
    let found = x509_pseudonym_material(data);
    if found.is_empty() {
        return;
    }
    let files = found
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    tracing::warn!(
        %files,
        "this data directory holds X.509 pseudonym material from an older trustca, which no longer issues, revokes or resolves X.509 pseudonyms; it is ignored (archive it, and keep the resolution authority key offline for as long as old pseudonyms must stay resolvable)"
    );
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn finds_what_an_older_init_left_and_nothing_in_a_new_directory() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for sub in ["ca", "crl", "ra", "policies"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        std::fs::write(d.join("ca/automotive.pem"), b"").unwrap();
        std::fs::write(d.join("crl/automotive.crl"), b"").unwrap();
        assert!(x509_pseudonym_material(d).is_empty());
        for f in [
            "ca/automotive-pseudonym.pem",
            "ca/pseudonym-state.key",
            "ca/resolution-authority.pub",
            "ra/resolution-authority.key",
            "crl/automotive.prl",
            "policies/pseudonym.toml",
        ] {
            std::fs::write(d.join(f), b"x").unwrap();
        }
        assert_eq!(x509_pseudonym_material(d).len(), 6);
    }
}
