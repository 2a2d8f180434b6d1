//! The ETSI TS 103 097 certificate profiles of an EU C-ITS hierarchy:
//! what the root CA, the enrolment authority (EA), the authorization
//! authority (AA), an enrolment credential (EC) and an authorization ticket
//! (AT) carry. Each function returns a `ToBeSigned` that
//! [`trustca_v2x::Certificate::issue_with`] (ETSI profile) signs; nothing
//! here signs or stores.
//!
//! Every certificate has `cracaId` 000000H and `crlSeries` 0 (TS 103 097
//! clause 7.2: CA certificates are revoked on the root's CRL by HashedId8,
//! tickets are not revoked but short-lived). The ITS-AIDs are those
//! ETSI TS 102 965 assigns: CRL 622, secured certificate request 623,
//! CTL 624.

use trustca_scms::{TicketFormat, TicketProfile};
use trustca_v2x::{
    CertificateId, PsidGroupPermissions, PsidSsp, PsidSspRange, PublicKeyP256, Ssp, SspRange,
    SubjectAssurance, SubjectPermissions, ToBeSigned, ValidityPeriod,
};

use crate::EtsiError;

/// ITS-AID of the certificate revocation list service (TS 102 965).
pub const PSID_CRL: u64 = 622;
/// ITS-AID of the secured certificate request service: enrolment and
/// authorization requests and responses (TS 102 965).
pub const PSID_CERT_REQUEST: u64 = 623;
/// ITS-AID of the certificate trust list service (TS 102 965).
pub const PSID_CTL: u64 = 624;

/// The root's SSP for PSID 622: SSP version 1 (a CRL signer has no other
/// permission bits).
pub const CRL_SSP: [u8; 1] = [0x01];
/// The root's SSP for PSID 624: version 1, then the entry types its CTL may
/// list (bit 7 TLM, 6 root CA, 5 EA, 4 AA, 3 DC): a root CA's CTL lists
/// EAs, AAs and distribution centres (`38`H).
pub const RCA_CTL_SSP: [u8; 2] = [0x01, 0x38];
/// The trust list manager's SSP for PSID 624: version 1, then the entry
/// types its ECTL may list: TLMs, root CAs and distribution centres
/// (`C8`H).
pub const TLM_CTL_SSP: [u8; 2] = [0x01, 0xC8];
/// An enrolment credential's SSP for PSID 623: version 1, then bit 7
/// (sign a re-enrolment request) and bit 6 (sign the `ecSignature` of an
/// authorization request).
pub const EC_SSP: [u8; 2] = [0x01, 0xC0];

/// The root CA: id `name`, `appPermissions` to sign CRLs (622) and CTLs
/// (624), `certIssuePermissions` for every PSID through chains of two
/// (root → EA/AA → EC/AT) to application and enrolment end entities. No
/// `encryptionKey`: nothing is encrypted to a root.
pub fn root_ca(
    name: &str,
    verification_key: PublicKeyP256,
    validity: ValidityPeriod,
    assurance: SubjectAssurance,
) -> ToBeSigned {
    let mut tbs = ToBeSigned::ca(
        name,
        verification_key,
        validity,
        vec![PsidGroupPermissions::all(
            2,
            PsidGroupPermissions::EE_APP | PsidGroupPermissions::EE_ENROL,
        )],
    );
    tbs.app_permissions = Some(vec![
        PsidSsp {
            psid: PSID_CRL,
            ssp: Some(Ssp::Opaque(CRL_SSP.to_vec())),
        },
        PsidSsp {
            psid: PSID_CTL,
            ssp: Some(Ssp::Opaque(RCA_CTL_SSP.to_vec())),
        },
    ]);
    tbs.assurance_level = Some(assurance);
    tbs
}

/// The trust list manager (TLM): id `name`, self-signed, `appPermissions`
/// to sign the European CTL (624) only. It certifies nothing: it lists
/// the root CAs it recognises (each its own trust anchor), so it has no
/// `certIssuePermissions` and no `encryptionKey`.
pub fn trust_list_manager(
    name: &str,
    verification_key: PublicKeyP256,
    validity: ValidityPeriod,
    assurance: SubjectAssurance,
) -> ToBeSigned {
    let mut tbs = ToBeSigned::ca(name, verification_key, validity, Vec::new());
    tbs.cert_issue_permissions = None;
    tbs.app_permissions = Some(vec![PsidSsp {
        psid: PSID_CTL,
        ssp: Some(Ssp::Opaque(TLM_CTL_SSP.to_vec())),
    }]);
    tbs.assurance_level = Some(assurance);
    tbs
}

/// The enrolment authority: id `name`, signs its responses under PSID 623,
/// issues enrolment credentials (eeType enrol) for PSID 623, and carries
/// the `encryptionKey` stations encrypt enrolment requests (and AAs their
/// validation requests) to.
pub fn enrolment_authority(
    name: &str,
    verification_key: PublicKeyP256,
    encryption_key: PublicKeyP256,
    validity: ValidityPeriod,
    assurance: SubjectAssurance,
) -> ToBeSigned {
    let ranges = vec![PsidSspRange {
        psid: PSID_CERT_REQUEST,
        ssp_range: Some(SspRange::All),
    }];
    let mut tbs = authority(name, verification_key, encryption_key, validity, assurance);
    tbs.cert_issue_permissions = Some(vec![issuing(ranges, PsidGroupPermissions::EE_ENROL)]);
    tbs
}

/// The authorization authority: id `name`, signs its responses under PSID
/// 623, issues authorization tickets (eeType app) for the PSIDs of the
/// ticket profile's permission table (any SSP), and carries the
/// `encryptionKey` stations encrypt authorization requests to.
pub fn authorization_authority(
    name: &str,
    verification_key: PublicKeyP256,
    encryption_key: PublicKeyP256,
    validity: ValidityPeriod,
    assurance: SubjectAssurance,
    tickets: &TicketProfile,
) -> ToBeSigned {
    let mut ranges: Vec<PsidSspRange> = Vec::new();
    for row in &tickets.permissions {
        let range = row.ssp.as_ref().map(|_| SspRange::All);
        match ranges.iter_mut().find(|r| r.psid == row.psid) {
            Some(r) if range.is_some() => r.ssp_range = range,
            Some(_) => {}
            None => ranges.push(PsidSspRange {
                psid: row.psid,
                ssp_range: range,
            }),
        }
    }
    ranges.sort_by_key(|r| r.psid);
    let mut tbs = authority(name, verification_key, encryption_key, validity, assurance);
    tbs.cert_issue_permissions = Some(vec![issuing(ranges, PsidGroupPermissions::EE_APP)]);
    tbs
}

/// Permission to issue end-entity certificates of `ee_type` for `ranges`
/// directly (chains of one).
fn issuing(ranges: Vec<PsidSspRange>, ee_type: u8) -> PsidGroupPermissions {
    PsidGroupPermissions {
        subject_permissions: SubjectPermissions::Explicit(ranges),
        min_chain_length: 1,
        chain_length_range: 0,
        ee_type,
    }
}

/// What the EA and AA share: id `name`, PSID 623, the encryption key.
fn authority(
    name: &str,
    verification_key: PublicKeyP256,
    encryption_key: PublicKeyP256,
    validity: ValidityPeriod,
    assurance: SubjectAssurance,
) -> ToBeSigned {
    let mut tbs = ToBeSigned::ca(name, verification_key, validity, vec![]);
    tbs.app_permissions = Some(vec![PsidSsp {
        psid: PSID_CERT_REQUEST,
        ssp: None,
    }]);
    tbs.encryption_key = Some(encryption_key);
    tbs.assurance_level = Some(assurance);
    tbs
}

/// An enrolment credential: id `none` (it names no one on the air),
/// PSID 623 with [`EC_SSP`], `assuranceLevel` the station's trust level
/// (1..=5, from its device record).
pub fn enrolment_credential(
    verification_key: PublicKeyP256,
    validity: ValidityPeriod,
    trust_level: u8,
) -> Result<ToBeSigned, EtsiError> {
    let mut tbs = ToBeSigned::new(CertificateId::None, validity, verification_key);
    tbs.app_permissions = Some(vec![PsidSsp {
        psid: PSID_CERT_REQUEST,
        ssp: Some(Ssp::Bitmap(EC_SSP.to_vec())),
    }]);
    tbs.assurance_level = Some(SubjectAssurance::from_trust_level(trust_level)?);
    Ok(tbs)
}

/// An authorization ticket for `period` of `tickets` (which must be an
/// `etsi-ts-103-097` profile): id `none`, `cracaId` 000000H, `crlSeries` 0,
/// the period's validity, `assuranceLevel` the trust level and the
/// permission table's `appPermissions` for that level. No `encryptionKey`.
pub fn authorization_ticket(
    tickets: &TicketProfile,
    verification_key: PublicKeyP256,
    trust_level: u8,
    period: u64,
) -> Result<ToBeSigned, EtsiError> {
    if tickets.format != TicketFormat::EtsiTs103097 {
        return Err(EtsiError::Profile(format!(
            "ticket profile {} is {:?}, not \"etsi-ts-103-097\"",
            tickets.version,
            tickets.format.as_str()
        )));
    }
    let mut tbs = ToBeSigned::authorization_ticket(
        verification_key,
        tickets.validity(period)?,
        tickets.permissions_for(trust_level)?,
    );
    tbs.assurance_level = Some(tickets.assurance(trust_level)?);
    Ok(tbs)
}

/// The table's `appPermissions` narrowed to what a station asked for
/// (`requestedSubjectAttributes`): each requested PSID must be granted
/// at the station's level, with the table's SSP (a requested SSP must be
/// that one); none requested means all the table grants. `None` when
/// something requested is not granted (`deniedpermissions`).
pub fn narrow(granted: &[PsidSsp], requested: &[PsidSsp]) -> Option<Vec<PsidSsp>> {
    if requested.is_empty() {
        return Some(granted.to_vec());
    }
    let mut out: Vec<PsidSsp> = Vec::with_capacity(requested.len());
    for want in requested {
        let have = granted.iter().find(|g| g.psid == want.psid)?;
        if want.ssp.is_some() && want.ssp != have.ssp {
            return None;
        }
        if !out.iter().any(|o| o.psid == have.psid) {
            out.push(have.clone());
        }
    }
    out.sort_by_key(|p| p.psid);
    Some(out)
}
