//! The root CA's trust lists (TS 102 941 clause 6.3.x): its certificate
//! trust list (`RcaCertificateTrustListMessage`: a full `ToBeSignedRcaCtl`
//! with its EA and AA certificates and their access points) and its
//! certificate revocation list (`CertificateRevocationListMessage`:
//! `ToBeSignedCrl`, the HashedId8 of revoked CA certificates), each signed
//! by the root under PSID 624 or 622 (signer `digest`: relying parties
//! hold the root), and how a station reads them back. Also the trust list
//! manager's European CTL (`TlmCertificateTrustListMessage`: a full
//! `ToBeSignedTlmCtl` of the root CAs it recognises, each self-signed, and
//! the distribution centres that serve their lists), signed by the TLM
//! under PSID 624: how one EU station trusts several roots (other sectors',
//! other member states').

use trustca_v2x::trust_lists::{CtlCommand, CtlEntry, CtlFormat, ToBeSignedCrl};
use trustca_v2x::ts102941::EtsiTs102941Data;
use trustca_v2x::{Certificate, EtsiSignedData, SignAs, SignedPayload, Time32, V2xSigner};

use crate::EtsiError;
use crate::envelope::time64;
use crate::profile::{PSID_CRL, PSID_CTL};

/// The root's full CTL listing `entries` (EAs, AAs, DCs), number
/// `sequence`, valid until `next_update`.
pub fn rca_ctl(
    root: &Certificate,
    key: &dyn V2xSigner,
    entries: Vec<CtlEntry>,
    sequence: u8,
    next_update: Time32,
    now: i64,
) -> Result<Vec<u8>, EtsiError> {
    if entries
        .iter()
        .any(|e| matches!(e, CtlEntry::Rca { .. } | CtlEntry::Tlm { .. }))
    {
        return Err(EtsiError::Profile(
            "a root CA's CTL lists no root CAs or TLMs".into(),
        ));
    }
    let data = EtsiTs102941Data::RcaCtl(full_ctl(entries, sequence, next_update));
    sign(root, key, PSID_CTL, &data, now)
}

/// The trust list manager's full ECTL listing `entries` (root CAs, DCs and
/// the TLM itself), number `sequence`, valid until `next_update`. Every
/// root must be self-signed (its own trust anchor).
pub fn tlm_ectl(
    tlm: &Certificate,
    key: &dyn V2xSigner,
    entries: Vec<CtlEntry>,
    sequence: u8,
    next_update: Time32,
    now: i64,
) -> Result<Vec<u8>, EtsiError> {
    for entry in &entries {
        match entry {
            CtlEntry::Ea { .. } | CtlEntry::Aa { .. } => {
                return Err(EtsiError::Profile(
                    "a TLM's CTL lists no EAs or AAs (their root's CTL does)".into(),
                ));
            }
            CtlEntry::Rca { certificate, .. } => certificate.verify_signed_by(None)?,
            _ => {}
        }
    }
    let data = EtsiTs102941Data::TlmCtl(full_ctl(entries, sequence, next_update));
    sign(tlm, key, PSID_CTL, &data, now)
}

/// Reads `tlm`'s ECTL: signed by the TLM under PSID 624, every root in it
/// self-signed. Returns the list and the root certificates it recognises.
pub fn read_tlm_ectl(
    bytes: &[u8],
    tlm: &Certificate,
) -> Result<(CtlFormat, Vec<Certificate>), EtsiError> {
    let EtsiTs102941Data::TlmCtl(ctl) = verified(bytes, tlm, PSID_CTL)? else {
        return Err(EtsiError::Profile("not a trust list manager's CTL".into()));
    };
    let mut roots = Vec::new();
    for command in &ctl.commands {
        if let CtlCommand::Add(entry) = command
            && let CtlEntry::Rca { certificate, .. } = &**entry
        {
            certificate.verify_signed_by(None)?;
            roots.push(certificate.clone());
        }
    }
    Ok((ctl, roots))
}

/// A full CTL adding every one of `entries`.
fn full_ctl(entries: Vec<CtlEntry>, sequence: u8, next_update: Time32) -> CtlFormat {
    CtlFormat {
        next_update,
        is_full: true,
        sequence,
        commands: entries
            .into_iter()
            .map(|e| CtlCommand::Add(Box::new(e)))
            .collect(),
    }
}

/// The root's CRL of `revoked` CA certificates (HashedId8).
pub fn crl(
    root: &Certificate,
    key: &dyn V2xSigner,
    revoked: Vec<[u8; 8]>,
    this_update: Time32,
    next_update: Time32,
    now: i64,
) -> Result<Vec<u8>, EtsiError> {
    let data = EtsiTs102941Data::Crl(ToBeSignedCrl {
        this_update,
        next_update,
        entries: revoked,
    });
    sign(root, key, PSID_CRL, &data, now)
}

fn sign(
    root: &Certificate,
    key: &dyn V2xSigner,
    psid: u64,
    data: &EtsiTs102941Data,
    now: i64,
) -> Result<Vec<u8>, EtsiError> {
    let permitted = root
        .tbs()
        .app_permissions
        .iter()
        .flatten()
        .any(|p| p.psid == psid);
    if !permitted {
        return Err(EtsiError::Profile(format!(
            "the root certificate may not sign PSID {psid}"
        )));
    }
    let signed = EtsiSignedData::sign(
        SignedPayload::Data(&data.to_coer()),
        psid,
        time64(now)?,
        SignAs::Digest(root),
        key,
    )?;
    Ok(signed.as_coer().to_vec())
}

/// The content of a list signed by `root` under `psid`.
fn verified(bytes: &[u8], root: &Certificate, psid: u64) -> Result<EtsiTs102941Data, EtsiError> {
    let signed = EtsiSignedData::from_coer(bytes)?;
    signed.verify_by(root)?;
    if signed.psid() != psid {
        return Err(EtsiError::Profile(format!(
            "the list is signed under PSID {}, not {psid}",
            signed.psid()
        )));
    }
    let data = signed
        .data()
        .ok_or_else(|| EtsiError::Profile("the list carries no data".into()))?;
    Ok(EtsiTs102941Data::from_coer(data)?)
}

/// Reads `root`'s CTL: signed by the root under PSID 624, every EA and AA
/// certificate in it issued by the root.
pub fn read_rca_ctl(bytes: &[u8], root: &Certificate) -> Result<CtlFormat, EtsiError> {
    let EtsiTs102941Data::RcaCtl(ctl) = verified(bytes, root, PSID_CTL)? else {
        return Err(EtsiError::Profile("not a root CA's CTL".into()));
    };
    for command in &ctl.commands {
        if let CtlCommand::Add(entry) = command
            && let CtlEntry::Ea { certificate, .. } | CtlEntry::Aa { certificate, .. } = &**entry
        {
            certificate.verify_signed_by(Some(root))?;
        }
    }
    Ok(ctl)
}

/// Reads `root`'s CRL: signed by the root under PSID 622.
pub fn read_crl(bytes: &[u8], root: &Certificate) -> Result<ToBeSignedCrl, EtsiError> {
    match verified(bytes, root, PSID_CRL)? {
        EtsiTs102941Data::Crl(crl) => Ok(crl),
        _ => Err(EtsiError::Profile("not a CRL".into())),
    }
}
