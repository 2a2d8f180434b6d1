//! `trustca sector import`: what the root publishes, taken into a
//! sector's directory: other sectors' CA certificates (every generation,
//! `rollover.rs`; public only, their keys stay with their operators) and
//! the root's ARL. Everything is checked before anything is written.

use std::path::Path;
use trustca_datadir::{CaFiles, DataDir};

use time::OffsetDateTime;
use trustca_model::{PolicySet, SectorName};
use x509_parser::prelude::FromDer;

use crate::CaError;
use crate::ceremony::{check_sector_certificate, der_of};
use crate::hierarchy::certs_to_pem;
use crate::keystore::write_new;

/// What `sector import` took in.
#[derive(Debug, Default)]
pub struct ImportReport {
    /// Sector CA certificates added (their sectors).
    pub sectors: Vec<SectorName>,
    /// The ARL's number, when one was imported.
    pub arl_number: Option<u64>,
    /// CAs the imported ARL lists as revoked, by name.
    pub revoked: Vec<String>,
}

/// `trustca sector import`: other sectors' CA certificates (each checked
/// against this directory's root; public only, their keys stay with their
/// operators) and the root's ARL (checked against the root, newer than the
/// one held). Everything is checked before anything is written.
pub fn sector_import(
    data: &Path,
    policies: &PolicySet,
    files: &[(String, Vec<u8>)],
) -> Result<ImportReport, CaError> {
    let dir = DataDir::new(data).ca();
    let root_path = dir.root_cert();
    if !root_path.exists() {
        return Err(CaError::InvalidRequest(format!(
            "{} holds no root certificate yet: install this sector's CA first (`trustca sector install`)",
            data.display()
        )));
    }
    let root_der = std::fs::read(&root_path)
        .map_err(|e| CaError::io(&root_path, e))
        .and_then(|b| der_of(&b, "CERTIFICATE", "the root certificate"))?;
    let now = OffsetDateTime::now_utc();
    let oid = &policies.pki.extensions.trust_level_oid;
    let mut certs = Vec::new();
    let mut arl = None;
    for (name, bytes) in files {
        let is_crl = std::str::from_utf8(bytes).map_or_else(
            |_| x509_parser::revocation_list::CertificateRevocationList::from_der(bytes).is_ok(),
            |t| t.contains("-----BEGIN X509 CRL"),
        );
        if is_crl {
            arl = Some(der_of(bytes, "X509 CRL", name)?);
            continue;
        }
        let der = der_of(bytes, "CERTIFICATE", name)?;
        let checked = check_sector_certificate(&der, &root_der, oid, now)
            .map_err(|e| CaError::InvalidRequest(format!("{name}: {e}")))?;
        policies.sector(checked.sector.as_str()).map_err(|_| {
            CaError::InvalidRequest(format!(
                "{name}: this directory's policies have no sector {}",
                checked.sector
            ))
        })?;
        // A sector's next generation (a rollover) goes beside its current one.
        let ca = crate::rollover::ca_name(
            &checked.sector,
            crate::rollover::generation_of_certificate(&checked.der),
        );
        let path = dir.cert(&ca);
        if path.exists() {
            let held = std::fs::read(&path).map_err(|e| CaError::io(&path, e))?;
            if der_of(&held, "CERTIFICATE", name)? != checked.der {
                return Err(CaError::InvalidRequest(format!(
                    "{name}: a different {ca} CA certificate is installed already ({})",
                    path.display()
                )));
            }
            continue;
        }
        certs.push((path, checked));
    }
    let mut known: Vec<(String, Vec<u8>)> = Vec::new();
    for sector in policies.sectors.keys() {
        for (generation, path) in crate::rollover::installed(&dir, sector) {
            if let Ok(b) = std::fs::read(&path)
                && let Ok(der) = der_of(&b, "CERTIFICATE", sector.as_str())
            {
                known.push((crate::rollover::ca_name(sector, generation), der));
            }
        }
    }
    known.extend(certs.iter().map(|(_, c)| {
        let generation = crate::rollover::generation_of_certificate(&c.der);
        (
            crate::rollover::ca_name(&c.sector, generation),
            c.der.clone(),
        )
    }));
    // A sector certificate imported after the ARL names its entries anew:
    // the held ARL is read again with the new certificates.
    let held_arl = crate::root_crl::root_crl_path(data);
    let prepared = match (&arl, certs.is_empty()) {
        (Some(a), _) => Some(crate::root_crl::prepare_import(
            data, &root_der, a, &known, now, true,
        )?),
        (None, false) if held_arl.exists() => {
            let held = std::fs::read(&held_arl).map_err(|e| CaError::io(&held_arl, e))?;
            Some(crate::root_crl::prepare_import(
                data, &root_der, &held, &known, now, false,
            )?)
        }
        (None, _) => None,
    };
    let mut report = ImportReport::default();
    for (path, checked) in certs {
        write_new(&path, certs_to_pem(&[&checked.der]).as_bytes())?;
        report.sectors.push(checked.sector);
    }
    if let Some(p) = prepared {
        report.revoked = p.revoked_names();
        let number = p.commit(data)?;
        if arl.is_some() {
            report.arl_number = Some(number);
        }
    }
    Ok(report)
}
