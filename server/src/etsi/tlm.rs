//! The trust list manager (TLM) of the EU C-ITS trust model
//! (`docs/v2x-etsi.md`, "Several roots: the ECTL"): an offline directory
//! like the root's, holding the TLM's key and self-signed certificate
//! (`profile::trust_list_manager`), which signs the European certificate
//! trust list (`ToBeSignedTlmCtl`) of the root CAs it recognises (this
//! CA's ETSI root, other sectors' and member states'), each self-signed,
//! and the distribution centre that serves them. A distribution centre
//! serves the ECTL at `ECTL_PREFIX<TLM HashedId8>`; a station holding
//! only the TLM's certificate takes its roots from it.

use std::path::Path;

use ring::rand::SystemRandom;
use trustca_ca::{Keystore, Passphrase};
use trustca_etsi::{profile, trust_lists};
use trustca_v2x::trust_lists::CtlEntry;
use trustca_v2x::{Certificate, Time32};

use super::ceremony::{
    EtsiDir, EtsiRole, assurance, cert_of, create, read_file, validity, write_file,
};
use super::deploy::{etsi_err, new_signing_key, public, signing_key};
use crate::error::{Result, ServerError};

/// The TLM's certificate (in its own directory and installed in a DC's).
pub const TLM_FILE: &str = "tlm.oer";
/// The TLM's signed ECTL, installed in a distribution centre's directory.
pub const ECTL_FILE: &str = "ectl.oer";
/// At most this many roots on one ECTL.
const MAX_ROOTS: usize = 64;

/// `trustca etsi tlm init`: the TLM's key (encrypted under `passphrase`)
/// and self-signed certificate in the new directory `dir`.
pub fn tlm_init(dir: &Path, name: &str, passphrase: &Passphrase, now: i64) -> Result<Certificate> {
    let d = create(dir, EtsiRole::Tlm, name, None)?;
    let keys = Keystore::create(&d.path().join("keys"), passphrase)?;
    let pkcs8 = new_signing_key(&SystemRandom::new())?;
    let key = signing_key(&pkcs8)?;
    let tbs = profile::trust_list_manager(name, public(&key)?, validity(now)?, assurance()?);
    let tlm = Certificate::sign_root(tbs, &key).map_err(etsi_err)?;
    keys.store("tlm", &pkcs8)?;
    write_file(&d.path().join(TLM_FILE), tlm.as_coer())?;
    Ok(tlm)
}

/// `trustca etsi tlm sign-ectl`: the full ECTL of `roots` (COER root
/// certificates, each self-signed, no two alike) and the distribution
/// centre at `dc_url` serving their lists, valid for `valid_secs`.
pub fn tlm_sign_ectl(
    dir: &Path,
    passphrase: &Passphrase,
    roots: &[Vec<u8>],
    dc_url: Option<&str>,
    valid_secs: i64,
    now: i64,
) -> Result<Vec<u8>> {
    let d = EtsiDir::open(dir)?;
    d.expect(EtsiRole::Tlm)?;
    let key = signing_key(&d.keystore(passphrase)?.load("tlm")?)?;
    let tlm = cert_of(&read_file(&d.path().join(TLM_FILE))?, TLM_FILE)?;
    if roots.is_empty() || roots.len() > MAX_ROOTS {
        return Err(ServerError::Config(format!(
            "an ECTL lists 1 to {MAX_ROOTS} root CAs (--root), not {}",
            roots.len()
        )));
    }
    let mut entries = Vec::new();
    let mut ids = Vec::new();
    for (n, bytes) in roots.iter().enumerate() {
        let root = cert_of(bytes, &format!("root {}", n + 1))?;
        root.verify_signed_by(None).map_err(|e| {
            ServerError::Config(format!("root {} is not a self-signed root CA: {e}", n + 1))
        })?;
        if ids.contains(&root.hashed_id8()) {
            return Err(ServerError::Config(format!(
                "root {} is listed twice",
                n + 1
            )));
        }
        ids.push(root.hashed_id8());
        entries.push(CtlEntry::Rca {
            certificate: root,
            link: None,
        });
    }
    if let Some(url) = dc_url {
        super::ceremony::check_base_url(url)?;
        entries.push(CtlEntry::Dc {
            url: format!("{}/etsi/dc/", url.trim_end_matches('/')),
            roots: ids,
        });
    }
    // The sequence wraps (0..255): one a day is distinct for 255 days.
    let sequence = ((now / 86_400) % 256) as u8;
    let next_update = Time32::from_unix(now + valid_secs).map_err(etsi_err)?;
    trust_lists::tlm_ectl(&tlm, &key, entries, sequence, next_update, now).map_err(etsi_err)
}

/// `trustca etsi install --tlm --ectl` into a distribution centre's
/// directory: the ECTL must verify under the TLM certificate (the one
/// installed before, unless `tlm` gives it the first time).
pub fn install_ectl(dir: &Path, tlm: Option<&[u8]>, ectl: &[u8]) -> Result<()> {
    let d = EtsiDir::open(dir)?;
    d.expect(EtsiRole::Dc)?;
    let held = read_file(&d.path().join(TLM_FILE)).ok();
    let tlm_bytes = match (tlm, &held) {
        (Some(given), Some(held)) if given != held.as_slice() => {
            return Err(ServerError::Config(format!(
                "{} already trusts another TLM",
                dir.display()
            )));
        }
        (Some(given), _) => given.to_vec(),
        (None, Some(held)) => held.clone(),
        (None, None) => {
            return Err(ServerError::Config(
                "no TLM certificate installed: give --tlm with the first --ectl".into(),
            ));
        }
    };
    let tlm = cert_of(&tlm_bytes, "--tlm")?;
    tlm.verify_signed_by(None)
        .map_err(|e| ServerError::Config(format!("--tlm is not self-signed: {e}")))?;
    trust_lists::read_tlm_ectl(ectl, &tlm)
        .map_err(|e| ServerError::Config(format!("--ectl: {e}")))?;
    write_file(&d.path().join(TLM_FILE), &tlm_bytes)?;
    write_file(&d.path().join(ECTL_FILE), ectl)
}

/// The ECTL installed in a DC's directory, checked: (TLM HashedId8 hex,
/// the ECTL), or `None` when none is installed.
pub fn installed_ectl(d: &EtsiDir) -> Result<Option<(String, Vec<u8>)>> {
    let (Ok(tlm), Ok(ectl)) = (
        read_file(&d.path().join(TLM_FILE)),
        read_file(&d.path().join(ECTL_FILE)),
    ) else {
        return Ok(None);
    };
    let tlm = cert_of(&tlm, TLM_FILE)?;
    trust_lists::read_tlm_ectl(&ectl, &tlm).map_err(etsi_err)?;
    Ok(Some((hex::encode(tlm.hashed_id8()), ectl)))
}
