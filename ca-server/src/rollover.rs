//! Sector CA rollover: a sector's next CA, made before the current one
//! expires and run beside it until the certificates the old one issued
//! have expired.
//!
//! Each CA of a sector is a *generation*. The first keeps the sector's
//! name (`ca/automotive.pem`, `crl/automotive.crl`, subject CN `trustca
//! automotive Sector CA`); generation `n` ≥ 2 is named `automotive.<n>`
//! (`ca/automotive.2.key`, `.csr`, `.pem`, `crl/automotive.2.crl`, CN
//! `trustca automotive Sector CA 2`). Sector names hold no dot, so a CA
//! name says which sector and which generation it is. Distinct subjects
//! let every relying party (openssl, Go, webpki) pick the right CA and
//! the right CRL by name alone.
//!
//! - `trustca sector rollover` ([`sector_rollover`]) makes the next
//!   generation's key where the sector's operator runs it, and its request;
//! - `trustca root sign-sector --rollover` issues it (`ceremony.rs`);
//! - `trustca sector install` recognises the answer as the pending
//!   generation's ([`install_generation`]);
//! - `trustca sector import` takes another sector's new generation beside
//!   its old one.
//!
//! From then on the instance issues from the newest generation, verifies
//! chains under every generation it holds, publishes one CRL per
//! generation whose key it holds (each listing only what that CA issued)
//! and stops loading a generation once its own certificate has expired
//! (everything it issued has expired with it: issuance is capped at the
//! CA's `notAfter`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use trustca_datadir::{CaFiles, DataDir};

use time::OffsetDateTime;
use trustca_model::policy::KeyRole;
use trustca_model::{PolicySet, SectorName};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::CaError;
use crate::ca_keys::CaKeys;
use crate::hierarchy::certs_to_pem;
use crate::keystore::{Keystore, Passphrase, write_new};
use crate::pkcs11::Pkcs11Token;

/// Generations a sector may have had (names `<sector>` .. `<sector>.16`).
pub const MAX_GENERATIONS: u32 = 16;

/// The name of generation `generation` of `sector`'s CA: its file stem
/// in `ca/` and `crl/`, its `GetCrl` name and its name in the root's
/// record of revocations.
pub fn ca_name(sector: &SectorName, generation: u32) -> String {
    if generation <= 1 {
        sector.to_string()
    } else {
        format!("{sector}.{generation}")
    }
}

/// The sector and generation a CA name stands for (`automotive` → 1,
/// `automotive.2` → 2); `None` for anything else.
pub fn parse_ca_name(name: &str) -> Option<(SectorName, u32)> {
    match name.split_once('.') {
        None => SectorName::new(name).ok().map(|s| (s, 1)),
        Some((sector, n)) => {
            let generation: u32 = n.parse().ok()?;
            // One spelling per generation: no "automotive.1", "automotive.02".
            if n != generation.to_string() || !(2..=MAX_GENERATIONS).contains(&generation) {
                return None;
            }
            SectorName::new(sector).ok().map(|s| (s, generation))
        }
    }
}

/// The subject common name of generation `generation` of `sector`'s CA.
pub(crate) fn common_name(sector: &SectorName, generation: u32) -> String {
    if generation <= 1 {
        format!("trustca {sector} Sector CA")
    } else {
        format!("trustca {sector} Sector CA {generation}")
    }
}

/// The generation a sector CA's subject common name states: the number
/// after `Sector CA`, or 1 when there is none.
pub(crate) fn generation_of_name(common_name: &str) -> u32 {
    common_name
        .rsplit_once(" Sector CA ")
        .and_then(|(_, n)| n.parse::<u32>().ok())
        .filter(|n| (2..=MAX_GENERATIONS).contains(n))
        .unwrap_or(1)
}

/// The generation a certificate's (or request's) subject states.
pub(crate) fn generation_of_subject(subject: &x509_parser::x509::X509Name<'_>) -> u32 {
    subject
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map_or(1, generation_of_name)
}

/// The generation of the CA certificate `der` (1 if it does not parse).
pub fn generation_of_certificate(der: &[u8]) -> u32 {
    X509Certificate::from_der(der).map_or(1, |(_, c)| generation_of_subject(c.subject()))
}

/// The CA certificate files of `sector` in `ca_dir`, by generation,
/// oldest first.
pub(crate) fn installed(ca_dir: &Path, sector: &SectorName) -> Vec<(u32, PathBuf)> {
    (1..=MAX_GENERATIONS)
        .map(|n| (n, ca_dir.cert(ca_name(sector, n))))
        .filter(|(_, p)| p.exists())
        .collect()
}

/// What `sector rollover` made.
#[derive(Debug)]
pub struct RolloverReport {
    /// The sector.
    pub sector: SectorName,
    /// The new CA's generation (2 for the first rollover).
    pub generation: u32,
    /// Its name (`automotive.2`).
    pub name: String,
    /// The request for the root (`ca/<name>.csr`).
    pub csr: PathBuf,
    /// SHA-256 of the request's DER, hex.
    pub csr_sha256: String,
}

/// `trustca sector rollover`: the next generation's CA key (encrypted, or
/// in the token, like the first) and its request for the root, in a
/// sector's directory whose current CA is installed. Refused while an
/// earlier rollover's certificate is not installed yet.
pub fn sector_rollover(
    data: &Path,
    policies: &PolicySet,
    passphrase: &Passphrase,
    token: Option<Arc<Pkcs11Token>>,
) -> Result<RolloverReport, CaError> {
    let sector = crate::ceremony::sector_of_directory(data)?.ok_or_else(|| {
        CaError::InvalidRequest(format!(
            "{} was not made by `trustca sector init`, and rollover is for a sector's own directory: a `trustca init` directory (every sector's key and the root's together) cannot roll over; move each sector to its own directory with the key ceremony (`root init`, `sector init`, `root sign-sector`, `sector install`; docs/operations.md \"Key ceremony\") and roll over there",
            data.display()
        ))
    })?;
    let dir = DataDir::new(data).ca();
    let held = installed(&dir, &sector);
    let Some(&(current, _)) = held.last() else {
        return Err(CaError::InvalidRequest(format!(
            "the {sector} CA is not installed yet (`trustca sector install`); nothing to roll over"
        )));
    };
    let next = current + 1;
    if next > MAX_GENERATIONS {
        return Err(CaError::InvalidRequest(format!(
            "{sector} has had {MAX_GENERATIONS} CAs, the most this version keeps apart"
        )));
    }
    let name = ca_name(&sector, next);
    let keys = CaKeys::new(Keystore::open(&dir, passphrase)?, token, &policies.pki);
    if keys.has(&name) {
        return Err(CaError::InvalidRequest(format!(
            "the {name} CA key exists already and waits for its certificate: take {} to the root (`trustca root sign-sector --rollover`) and install the answer",
            dir.csr(&name).display()
        )));
    }
    let policy = policies.sector(sector.as_str())?;
    let key = keys.generate(&name, KeyRole::Sector, policy.certificate.ca_key_algorithm)?;
    let csr = crate::ceremony::sector_csr(&key, policies, &sector, next)?;
    let path = dir.csr(&name);
    write_new(
        &path,
        pem::encode(&pem::Pem::new("CERTIFICATE REQUEST", csr.clone())).as_bytes(),
    )?;
    Ok(RolloverReport {
        sector,
        generation: next,
        name,
        csr: path,
        csr_sha256: trustca_model::hexfmt::encode(&trustca_model::fingerprint(&csr)),
    })
}

/// `sector install` of a later generation: `cert_der` must be the answer
/// to this directory's pending rollover (the newest generation's key
/// without a certificate), issued by the root already installed. Writes
/// `ca/<name>.pem` only; the service certificates move to the new CA at
/// their next renewal. Returns the generation installed.
pub(crate) fn install_generation(
    data: &Path,
    policies: &PolicySet,
    keys: &CaKeys,
    sector: &SectorName,
    cert_der: &[u8],
    root_der: &[u8],
) -> Result<u32, CaError> {
    let dir = DataDir::new(data).ca();
    let oid = &policies.pki.extensions.trust_level_oid;
    let now = OffsetDateTime::now_utc();
    let checked = crate::ceremony::check_sector_certificate(cert_der, root_der, oid, now)?;
    if &checked.sector != sector {
        return Err(CaError::InvalidRequest(format!(
            "the certificate is for sector {}, but this directory is {sector}'s; nothing installed",
            checked.sector
        )));
    }
    let held_root = crate::hierarchy::read_pem_der(&dir.root_cert())?;
    if held_root.first().map(Vec::as_slice) != Some(root_der) {
        return Err(CaError::InvalidRequest(
            "the root certificate given is not the one this directory holds; a rollover stays under the same root".into(),
        ));
    }
    let current = installed(&dir, sector).last().map_or(1, |(n, _)| *n);
    let next = current + 1;
    let name = ca_name(sector, next);
    if !keys.has(&name) {
        return Err(CaError::InvalidRequest(format!(
            "the {sector} CA certificate is installed already ({}) and no rollover is pending (`trustca sector rollover`)",
            dir.cert(ca_name(sector, current)).display()
        )));
    }
    let key = keys.load(&name)?;
    crate::ceremony::check_own_certificate(cert_der, root_der, &key, sector, oid, now)?;
    let generation = generation_of_certificate(cert_der);
    if generation != next {
        return Err(CaError::InvalidRequest(format!(
            "the certificate is for generation {generation} of the {sector} CA, but the pending rollover is generation {next} ({name}); nothing installed"
        )));
    }
    write_new(&dir.cert(&name), certs_to_pem(&[cert_der]).as_bytes())?;
    Ok(generation)
}

/// The root's check of a rollover request for generation `generation` of
/// `sector`: the next one after those it issued (`issued`, their DER),
/// and not for a key one of them already certifies.
pub(crate) fn check_rollover_request(
    sector: &SectorName,
    generation: u32,
    issued: &[Vec<u8>],
    spki_der: &[u8],
    rollover: bool,
) -> Result<(), CaError> {
    let next = issued.len() as u32 + 1;
    if generation > 1 && !rollover {
        return Err(CaError::InvalidRequest(format!(
            "the request is for generation {generation} of the {sector} CA (a rollover): give --rollover; nothing issued"
        )));
    }
    if next > 1 && !rollover {
        return Err(CaError::InvalidRequest(format!(
            "the root already issued a {sector} CA certificate; a new {sector} CA beside it is a rollover (`trustca sector rollover`, then `root sign-sector --rollover`); nothing issued"
        )));
    }
    if rollover && next == 1 {
        return Err(CaError::InvalidRequest(format!(
            "the root has issued no {sector} CA yet: nothing to roll over (sign it without --rollover); nothing issued"
        )));
    }
    if generation != next {
        return Err(CaError::InvalidRequest(format!(
            "the request is for generation {generation} of the {sector} CA, but the root's next {sector} CA is generation {next}; nothing issued"
        )));
    }
    for der in issued {
        let same_key =
            X509Certificate::from_der(der).is_ok_and(|(_, c)| c.public_key().raw == spki_der);
        if same_key {
            return Err(CaError::InvalidRequest(format!(
                "the request's key is already certified for the {sector} CA; a rollover needs a new key; nothing issued"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_generations_round_trip() {
        let s = SectorName::new("automotive").unwrap();
        assert_eq!(ca_name(&s, 1), "automotive");
        assert_eq!(ca_name(&s, 2), "automotive.2");
        assert_eq!(parse_ca_name("automotive"), Some((s.clone(), 1)));
        assert_eq!(parse_ca_name("automotive.2"), Some((s.clone(), 2)));
        for bad in [
            "automotive.1",
            "automotive.02",
            "automotive.17",
            "automotive.",
            ".2",
            "Auto.2",
            "automotive.2.3",
        ] {
            assert_eq!(parse_ca_name(bad), None, "{bad}");
        }
        assert_eq!(generation_of_name(&common_name(&s, 1)), 1);
        assert_eq!(generation_of_name(&common_name(&s, 3)), 3);
        assert_eq!(generation_of_name("trustca automotive Sector CA 99"), 1);
    }

    #[test]
    fn the_root_takes_only_the_next_generation_with_a_new_key() {
        let s = SectorName::new("hems").unwrap();
        let first = vec![vec![0u8; 4]];
        assert!(check_rollover_request(&s, 1, &[], b"k", false).is_ok());
        let e = check_rollover_request(&s, 1, &first, b"k", false).unwrap_err();
        assert!(e.to_string().contains("is a rollover"), "{e}");
        let e = check_rollover_request(&s, 2, &first, b"k", false).unwrap_err();
        assert!(e.to_string().contains("give --rollover"), "{e}");
        let e = check_rollover_request(&s, 3, &first, b"k", true).unwrap_err();
        assert!(
            e.to_string().contains("next hems CA is generation 2"),
            "{e}"
        );
        let e = check_rollover_request(&s, 1, &[], b"k", true).unwrap_err();
        assert!(e.to_string().contains("nothing to roll over"), "{e}");
        assert!(check_rollover_request(&s, 2, &first, b"k", true).is_ok());
    }
}
