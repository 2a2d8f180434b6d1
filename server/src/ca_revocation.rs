//! CA revocations made offline (`trustca ca revoke`) as a running server
//! applies them: every certificate the revoked sector CA issued is revoked
//! in the store (so Decide, GetTrust, snapshots, CRLs and authentication
//! all see it), and the CA's revocation is written to the audit log once.
//! Authentication also refuses credentials under a revoked CA by name
//! (`auth.rs`), which covers credentials issued offline that the store has
//! not recorded yet.

use std::sync::Arc;
use std::time::Duration;

use trustca_ca::root_crl::RevokedCa;
use trustca_ca::{CaHierarchy, CrlPublisher};
use trustca_model::SectorName;
use trustca_model::revocation::KEY_COMPROMISE;
use trustca_store::{CertificateStatus, Storage, StoredRecord};

use crate::error::Result;

/// The record space marking a CA revocation as applied (key: CA serial).
const SPACE: &str = "ca-revocation";
/// Who the audit log names for what the root did offline.
const ACTOR: &str = "ca:offline";
/// RFC 5280 cACompromise: the certificates' issuer was compromised.
const CA_COMPROMISE: u8 = 2;
/// RFC 5280 unspecified.
const UNSPECIFIED: u8 = 0;
/// How often a running server looks for CA revocations made offline.
const CHECK_EVERY: Duration = Duration::from_secs(2);

/// Applies each CA revocation not applied yet: first the revocation of
/// every certificate the CA issued (one transaction, audited per
/// certificate; devices left without a valid certificate become
/// `revoked`), then the `ca.revoked` audit entry that marks it applied.
/// In that order a crash in between leaves the CA's certificates revoked
/// and the next start finishes the record, so no reader ever sees a CA
/// marked revoked whose devices are still trusted. Replicas applying the
/// same revocation at once both succeed. Returns the sectors whose
/// certificates changed (their CRLs need reissuing).
pub(crate) fn record_ca_revocations(
    storage: &dyn Storage,
    revoked: &[RevokedCa],
) -> Result<Vec<SectorName>> {
    let mut changed = Vec::new();
    for r in revoked {
        if storage.blob_get(SPACE, r.serial.as_bytes())?.is_some() {
            continue;
        }
        let serials = issued_by(storage, r)?;
        if !serials.is_empty() {
            let reason = if r.reason == KEY_COMPROMISE || r.reason == CA_COMPROMISE {
                CA_COMPROMISE
            } else {
                UNSPECIFIED
            };
            let note = format!("the root revoked the {} CA", r.name);
            storage.revoke(&serials, reason, ACTOR, &note, r.at)?;
            if let Some((sector, _)) = trustca_ca::rollover::parse_ca_name(&r.name) {
                changed.push(sector);
            }
        }
        let detail = serde_json::json!({
            "serial": r.serial,
            "subject": r.subject,
            "reason": trustca_model::revocation::reason_name(r.reason),
            "revoked_at": r.date(),
            "note": r.note,
            "certificates_revoked": serials.len(),
        })
        .to_string();
        let written = storage.blob_put(
            SPACE,
            &[(r.serial.as_bytes().to_vec(), detail.clone().into_bytes())],
            true,
            Some(&trustca_store::BlobAudit {
                actor: ACTOR.into(),
                kind: "ca.revoked".into(),
                subject: r.name.clone(),
                detail,
                at: r.at,
            }),
        );
        if let Err(e) = written {
            // Another replica recorded it between our read and write.
            if storage.blob_get(SPACE, r.serial.as_bytes())?.is_none() {
                return Err(e.into());
            }
            continue;
        }
        tracing::warn!(
            ca = %r.name,
            serial = %r.serial,
            certificates = serials.len(),
            "the root revoked this CA; it issues no more certificates and every certificate it issued is revoked"
        );
    }
    Ok(changed)
}

/// Serials of the certificates the revoked sector CA issued that are not
/// revoked yet: of its sector (`automotive` or a later generation,
/// `automotive.2`) and, when the root's record names the CA's subject,
/// issued under that subject, so revoking one generation of a sector
/// leaves the other's certificates alone (`rollover.rs`). Service
/// certificates are the root's, not a sector CA's. Reads every certificate
/// record once: a CA revocation is rare and must miss none.
fn issued_by(storage: &dyn Storage, revoked: &RevokedCa) -> Result<Vec<Vec<u8>>> {
    let Some((sector, _)) = trustca_ca::rollover::parse_ca_name(&revoked.name) else {
        return Ok(Vec::new());
    };
    let mut serials = Vec::new();
    storage.export(&mut |record| {
        if let StoredRecord::Certificate(c, _) = record
            && c.sector == sector.as_str()
            && c.kind != "service"
            && !matches!(c.status, CertificateStatus::Revoked { .. })
            && (revoked.subject.is_empty() || issuer_name(&c.der) == revoked.subject)
        {
            serials.push(c.serial);
        }
        Ok(())
    })?;
    Ok(serials)
}

/// The issuer of the certificate `der` as the root's record writes
/// subjects (x509-parser's rendering).
fn issuer_name(der: &[u8]) -> String {
    x509_parser::parse_x509_certificate(der)
        .map(|(_, c)| c.issuer().to_string())
        .unwrap_or_default()
}

/// Picks up CA revocations made offline while the server runs (issuance
/// by that CA stops at the next check, its certificates are revoked and
/// its sector's CRL reissued), and reissues the root CRL when it is due.
/// Holds its arguments weakly.
pub(crate) fn spawn_watch(
    hierarchy: &Arc<CaHierarchy>,
    storage: &Arc<dyn Storage>,
    crls: &Arc<CrlPublisher>,
    stop: &tokio_util::sync::CancellationToken,
) {
    let hierarchy = Arc::downgrade(hierarchy);
    let storage = Arc::downgrade(storage);
    let crls = Arc::downgrade(crls);
    crate::background::spawn(stop, async move {
        loop {
            tokio::time::sleep(CHECK_EVERY).await;
            let (Some(h), Some(s), Some(c)) =
                (hierarchy.upgrade(), storage.upgrade(), crls.upgrade())
            else {
                return;
            };
            let result = tokio::task::spawn_blocking(move || -> Result<()> {
                let fresh = h.revoked_cas().refresh()?;
                for sector in record_ca_revocations(s.as_ref(), &fresh)? {
                    c.publish(&sector)?;
                }
                h.refresh_root_crl()?;
                Ok(())
            })
            .await;
            match result {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "CA revocation check failed"),
                Err(e) => tracing::error!(error = %e, "CA revocation check failed"),
            }
        }
    });
}
