//! The strict COER encoder and decoder of [`super::Certificate`] and its
//! `toBeSigned`, kept apart from the types so that each file does one job.
//!
//! `eeType` in `PsidGroupPermissions` is `DEFAULT {app}` in IEEE 1609.2a-2017
//! and 1609.2-2022 (the module this crate encodes to), but `DEFAULT '00'H`
//! in the 1609.2-2016 module as printed in ETSI TS 103 097 v1.3.1, which
//! trustca followed before. So {app} is omitted when encoding
//! ([`EeTypeRule::Ieee2022`]), and the decoder also accepts the old
//! encoding with an explicit {app} ([`EeTypeRule::Legacy2016`]): such a
//! certificate is canonical only under the 2016 module, and its
//! signature and HashedId8 are over the bytes as received, never over a
//! re-encoding.

use super::{
    CertProfile, CertificateId, EcdsaP256Signature, GroupLinkageValue, IssuerIdentifier,
    LinkageData, PsidGroupPermissions, PsidSsp, PsidSspRange, RSigForm, Ssp, SspRange,
    SubjectAssurance, SubjectPermissions, ToBeSigned,
};
use crate::V2xError;
use crate::coer::{Reader, Writer};
use crate::keys::PublicKeyP256;
use crate::validity::{Duration, Time32, ValidityPeriod};

/// Which module's DEFAULT for `eeType` an encoding follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum EeTypeRule {
    /// IEEE 1609.2-2022 (and 1609.2a-2017): DEFAULT {app}, so `80`H is
    /// omitted. What this crate writes.
    Ieee2022,
    /// IEEE 1609.2-2016 as printed in ETSI TS 103 097 v1.3.1: DEFAULT
    /// `00`H, so {app} is written explicitly. Only read.
    Legacy2016,
}

impl EeTypeRule {
    /// Whether `ee_type` is encoded explicitly under this rule.
    fn explicit(self, ee_type: u8) -> bool {
        match self {
            EeTypeRule::Ieee2022 => ee_type != PsidGroupPermissions::EE_APP,
            EeTypeRule::Legacy2016 => ee_type != 0,
        }
    }
}

// ---------------------------------------------------------------- encoding

pub(super) fn encode_certificate(
    w: &mut Writer,
    issuer: IssuerIdentifier,
    tbs: &[u8],
    sig: &EcdsaP256Signature,
) {
    w.u8(0x80); // preamble: signature present
    w.u8(3); // version
    w.u8(0); // type explicit
    match issuer {
        IssuerIdentifier::Sha256AndDigest(d) => {
            w.tag(0);
            w.fixed(&d);
        }
        IssuerIdentifier::SelfSigned => {
            w.tag(1);
            w.u8(0); // sha256
        }
    }
    w.fixed(tbs);
    w.tag(0); // ecdsaNistP256Signature
    w.tag(match sig.r_form {
        RSigForm::XOnly => 0,
        RSigForm::CompressedY0 => 2,
        RSigForm::CompressedY1 => 3,
    });
    w.fixed(&sig.r);
    w.fixed(&sig.s);
}

pub(crate) fn encode_point(w: &mut Writer, k: &PublicKeyP256) {
    w.tag(if k.y_is_odd() { 3 } else { 2 });
    w.fixed(&k.x());
}

pub(super) fn encode_tbs(w: &mut Writer, t: &ToBeSigned, rule: EeTypeRule) {
    let mut pre = 0u8; // bit 7: extensions (none); bit 6: region (absent)
    if t.assurance_level.is_some() {
        pre |= 0x20;
    }
    if t.app_permissions.is_some() {
        pre |= 0x10;
    }
    if t.cert_issue_permissions.is_some() {
        pre |= 0x08;
    }
    if t.cert_request_permissions.is_some() {
        pre |= 0x04;
    }
    // bit 1 canRequestRollover: never written
    if t.encryption_key.is_some() {
        pre |= 0x01;
    }
    w.u8(pre);
    encode_id(w, &t.id);
    w.fixed(&t.craca_id);
    w.u16(t.crl_series);
    encode_validity(w, &t.validity);
    if let Some(a) = t.assurance_level {
        w.u8(a.0);
    }
    if let Some(perms) = &t.app_permissions {
        encode_app_permissions(w, perms);
    }
    if let Some(groups) = &t.cert_issue_permissions {
        encode_groups(w, groups, rule);
    }
    if let Some(groups) = &t.cert_request_permissions {
        encode_groups(w, groups, rule);
    }
    if let Some(k) = &t.encryption_key {
        w.u8(0); // supportedSymmAlg aes128Ccm
        w.tag(0); // eciesNistP256
        encode_point(w, k);
    }
    w.tag(0); // verificationKey
    w.tag(0); // ecdsaNistP256
    encode_point(w, &t.verification_key);
}

/// `ValidityPeriod`: `start` (Time32) and the `Duration` CHOICE.
pub(crate) fn encode_validity(w: &mut Writer, v: &ValidityPeriod) {
    w.u32(v.start.0);
    w.tag(v.duration.tag());
    w.u16(v.duration.value());
}

/// Decodes a `ValidityPeriod`.
pub(crate) fn decode_validity(r: &mut Reader<'_>) -> Result<ValidityPeriod, V2xError> {
    let start = Time32(r.u32()?);
    let at = r.pos();
    let tag = r.tag()?;
    let duration = Duration::from_tag(tag, r.u16()?).ok_or(V2xError::Invalid {
        offset: at,
        what: "unknown Duration alternative",
    })?;
    Ok(ValidityPeriod { start, duration })
}

pub(crate) fn encode_id(w: &mut Writer, id: &CertificateId) {
    match id {
        CertificateId::Name(n) => {
            w.tag(1);
            w.octets(n.as_bytes());
        }
        CertificateId::BinaryId(b) => {
            w.tag(2);
            w.octets(b);
        }
        CertificateId::None => w.tag(3),
        CertificateId::LinkageData(l) => {
            w.tag(0);
            w.u8(if l.group_linkage_value.is_some() {
                0x80
            } else {
                0
            });
            w.u16(l.i_cert);
            w.fixed(&l.linkage_value);
            if let Some(g) = &l.group_linkage_value {
                w.fixed(&g.j_value);
                w.fixed(&g.value);
            }
        }
    }
}

pub(crate) fn encode_app_permissions(w: &mut Writer, perms: &[PsidSsp]) {
    w.quantity(perms.len());
    for p in perms {
        w.u8(if p.ssp.is_some() { 0x80 } else { 0 });
        w.uint(p.psid);
        match &p.ssp {
            None => {}
            Some(Ssp::Opaque(o)) => {
                w.tag(0);
                w.octets(o);
            }
            Some(Ssp::Bitmap(b)) => {
                w.tag(1);
                w.open(|w| w.octets(b));
            }
        }
    }
}

fn encode_groups(w: &mut Writer, groups: &[PsidGroupPermissions], rule: EeTypeRule) {
    w.quantity(groups.len());
    for g in groups {
        let mut pre = 0u8;
        if g.min_chain_length != 1 {
            pre |= 0x80;
        }
        if g.chain_length_range != 0 {
            pre |= 0x40;
        }
        if rule.explicit(g.ee_type) {
            pre |= 0x20;
        }
        w.u8(pre);
        match &g.subject_permissions {
            SubjectPermissions::Explicit(ranges) => {
                w.tag(0);
                w.quantity(ranges.len());
                for r in ranges {
                    encode_psid_ssp_range(w, r);
                }
            }
            SubjectPermissions::All => w.tag(1),
        }
        if g.min_chain_length != 1 {
            w.int(g.min_chain_length);
        }
        if g.chain_length_range != 0 {
            w.int(g.chain_length_range);
        }
        if rule.explicit(g.ee_type) {
            w.u8(g.ee_type);
        }
    }
}

fn encode_psid_ssp_range(w: &mut Writer, r: &PsidSspRange) {
    w.u8(if r.ssp_range.is_some() { 0x80 } else { 0 });
    w.uint(r.psid);
    match &r.ssp_range {
        None => {}
        Some(SspRange::Opaque(list)) => {
            w.tag(0);
            w.quantity(list.len());
            for o in list {
                w.octets(o);
            }
        }
        Some(SspRange::All) => w.tag(1),
        Some(SspRange::Bitmap { value, mask }) => {
            w.tag(2);
            w.open(|w| {
                w.octets(value);
                w.octets(mask);
            });
        }
    }
}

// ---------------------------------------------------------------- decoding

pub(crate) fn decode_compressed_point(r: &mut Reader<'_>) -> Result<PublicKeyP256, V2xError> {
    let at = r.pos();
    let odd = match r.tag()? {
        2 => false,
        3 => true,
        0 | 1 => {
            return Err(V2xError::Invalid {
                offset: at,
                what: "public key as x-only or fill",
            });
        }
        4 => return Err(V2xError::Unsupported("uncompressed public keys")),
        _ => {
            return Err(V2xError::Invalid {
                offset: at,
                what: "unknown EccP256CurvePoint alternative",
            });
        }
    };
    let x: [u8; 32] = r.array()?;
    PublicKeyP256::from_x(&x, odd)
}

/// Decodes a `CertificateId` in `profile`.
pub(crate) fn decode_id(
    r: &mut Reader<'_>,
    profile: CertProfile,
) -> Result<CertificateId, V2xError> {
    Ok(match r.tag()? {
        0 if profile == CertProfile::EtsiTs103097 => {
            return Err(V2xError::Profile("id linkageData is forbidden"));
        }
        0 => {
            let pre = r.preamble(1)?;
            let i_cert = r.u16()?;
            let linkage_value = r.array()?;
            let group_linkage_value = if pre & 0x80 != 0 {
                Some(GroupLinkageValue {
                    j_value: r.array()?,
                    value: r.array()?,
                })
            } else {
                None
            };
            CertificateId::LinkageData(LinkageData {
                i_cert,
                linkage_value,
                group_linkage_value,
            })
        }
        1 => {
            let at = r.pos();
            let raw = r.octets()?;
            let name = std::str::from_utf8(raw).map_err(|_| V2xError::Invalid {
                offset: at,
                what: "Hostname is not UTF-8",
            })?;
            CertificateId::Name(name.to_owned())
        }
        2 if profile == CertProfile::EtsiTs103097 => {
            return Err(V2xError::Profile("id binaryId is forbidden"));
        }
        2 => CertificateId::BinaryId(r.octets()?.to_vec()),
        3 => CertificateId::None,
        _ => return Err(V2xError::Unsupported("CertificateId extension")),
    })
}

/// Decodes a `ToBeSignedCertificate`; also returns which `eeType` rule its
/// encoding follows (the 2016 one only when some group writes {app}).
pub(super) fn decode_tbs(
    r: &mut Reader<'_>,
    profile: CertProfile,
) -> Result<(ToBeSigned, EeTypeRule), V2xError> {
    let pre = r.preamble(8)?;
    if pre & 0x80 != 0 {
        return Err(V2xError::Unsupported("ToBeSignedCertificate extensions"));
    }
    if pre & 0x40 != 0 {
        return Err(V2xError::Unsupported("region"));
    }
    if pre & 0x04 != 0 && profile == CertProfile::EtsiTs103097 {
        return Err(V2xError::Profile("certRequestPermissions must be absent"));
    }
    if pre & 0x02 != 0 {
        return Err(profile.reject("canRequestRollover must be absent"));
    }
    let id = decode_id(r, profile)?;
    let craca_id = r.array()?;
    let crl_series = r.u16()?;
    let validity = decode_validity(r)?;
    let assurance_level = if pre & 0x20 != 0 {
        Some(SubjectAssurance(r.u8()?))
    } else {
        None
    };
    let app_permissions = if pre & 0x10 != 0 {
        let n = r.quantity()?;
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(decode_psid_ssp(r)?);
        }
        Some(v)
    } else {
        None
    };
    let mut legacy = false;
    let cert_issue_permissions = if pre & 0x08 != 0 {
        Some(decode_groups(r, &mut legacy)?)
    } else {
        None
    };
    let cert_request_permissions = if pre & 0x04 != 0 {
        Some(decode_groups(r, &mut legacy)?)
    } else {
        None
    };
    let encryption_key = if pre & 0x01 != 0 {
        if r.enumerated()? != 0 {
            return Err(V2xError::Unsupported(
                "symmetric algorithm other than aes128Ccm",
            ));
        }
        match r.tag()? {
            0 => Some(decode_compressed_point(r)?),
            _ => {
                return Err(V2xError::Unsupported(
                    "encryption key other than eciesNistP256",
                ));
            }
        }
    } else {
        None
    };
    match r.tag()? {
        0 => {}
        1 => {
            return Err(profile.reject("reconstructionValue in an explicit certificate"));
        }
        _ => return Err(V2xError::Unsupported("VerificationKeyIndicator extension")),
    }
    match r.tag()? {
        0 => {}
        _ => {
            return Err(V2xError::Unsupported(
                "verification key other than ecdsaNistP256",
            ));
        }
    }
    let verification_key = decode_compressed_point(r)?;
    let tbs = ToBeSigned {
        id,
        craca_id,
        crl_series,
        validity,
        assurance_level,
        app_permissions,
        cert_issue_permissions,
        cert_request_permissions,
        encryption_key,
        verification_key,
    };
    tbs.validate_in(profile)?;
    let rule = if legacy {
        EeTypeRule::Legacy2016
    } else {
        EeTypeRule::Ieee2022
    };
    Ok((tbs, rule))
}

pub(crate) fn decode_psid_ssp(r: &mut Reader<'_>) -> Result<PsidSsp, V2xError> {
    let pre = r.preamble(1)?;
    let psid = r.uint()?;
    let ssp = if pre & 0x80 != 0 {
        Some(match r.tag()? {
            0 => Ssp::Opaque(r.octets()?.to_vec()),
            1 => Ssp::Bitmap(r.open(|r| Ok(r.octets()?.to_vec()))?),
            _ => {
                return Err(V2xError::Unsupported(
                    "ServiceSpecificPermissions extension",
                ));
            }
        })
    } else {
        None
    };
    Ok(PsidSsp { psid, ssp })
}

fn decode_groups(
    r: &mut Reader<'_>,
    legacy: &mut bool,
) -> Result<Vec<PsidGroupPermissions>, V2xError> {
    let n = r.quantity()?;
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        let (g, explicit_app) = decode_group(r)?;
        *legacy |= explicit_app;
        v.push(g);
    }
    Ok(v)
}

/// One group, and whether it wrote {app} explicitly (the 2016 encoding).
fn decode_group(r: &mut Reader<'_>) -> Result<(PsidGroupPermissions, bool), V2xError> {
    let pre = r.preamble(3)?;
    let subject_permissions = match r.tag()? {
        0 => {
            let n = r.quantity()?;
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                v.push(decode_psid_ssp_range(r)?);
            }
            SubjectPermissions::Explicit(v)
        }
        1 => SubjectPermissions::All,
        _ => return Err(V2xError::Unsupported("SubjectPermissions extension")),
    };
    let at = r.pos();
    let min_chain_length = if pre & 0x80 != 0 {
        let v = r.int()?;
        if v == 1 {
            return Err(V2xError::NonCanonical {
                offset: at,
                what: "minChainLength DEFAULT value encoded",
            });
        }
        v
    } else {
        1
    };
    let at = r.pos();
    let chain_length_range = if pre & 0x40 != 0 {
        let v = r.int()?;
        if v == 0 {
            return Err(V2xError::NonCanonical {
                offset: at,
                what: "chainLengthRange DEFAULT value encoded",
            });
        }
        v
    } else {
        0
    };
    let at = r.pos();
    let (ee_type, explicit_app) = if pre & 0x20 != 0 {
        let v = r.u8()?;
        if v == 0 {
            // EndEntityType is (ALL EXCEPT {}) in 1609.2-2022, and the
            // 2016 DEFAULT '00'H is never written in canonical OER.
            return Err(V2xError::Invalid {
                offset: at,
                what: "eeType names no end-entity type",
            });
        }
        (v, v == PsidGroupPermissions::EE_APP)
    } else {
        (PsidGroupPermissions::EE_APP, false)
    };
    Ok((
        PsidGroupPermissions {
            subject_permissions,
            min_chain_length,
            chain_length_range,
            ee_type,
        },
        explicit_app,
    ))
}

fn decode_psid_ssp_range(r: &mut Reader<'_>) -> Result<PsidSspRange, V2xError> {
    let pre = r.preamble(1)?;
    let psid = r.uint()?;
    let ssp_range = if pre & 0x80 != 0 {
        Some(match r.tag()? {
            0 => {
                let n = r.quantity()?;
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    v.push(r.octets()?.to_vec());
                }
                SspRange::Opaque(v)
            }
            1 => SspRange::All,
            2 => r.open(|r| {
                let value = r.octets()?.to_vec();
                let mask = r.octets()?.to_vec();
                Ok(SspRange::Bitmap { value, mask })
            })?,
            _ => return Err(V2xError::Unsupported("SspRange extension")),
        })
    } else {
        None
    };
    Ok(PsidSspRange { psid, ssp_range })
}

pub(super) fn decode_signature(r: &mut Reader<'_>) -> Result<EcdsaP256Signature, V2xError> {
    match r.tag()? {
        0 => {}
        _ => {
            return Err(V2xError::Unsupported(
                "signature other than ecdsaNistP256Signature",
            ));
        }
    }
    let at = r.pos();
    let r_form = match r.tag()? {
        0 => RSigForm::XOnly,
        2 => RSigForm::CompressedY0,
        3 => RSigForm::CompressedY1,
        _ => {
            return Err(V2xError::Invalid {
                offset: at,
                what: "rSig must be x-only or compressed",
            });
        }
    };
    let r_x = r.array()?;
    let s = r.array()?;
    Ok(EcdsaP256Signature { r_form, r: r_x, s })
}
