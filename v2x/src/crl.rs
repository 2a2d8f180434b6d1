//! IEEE 1609.2 certificate revocation lists: the CRL service-specific
//! permissions of a CRL signer certificate ([`CrlSsp`]), the CRL contents
//! ([`CrlContents`]: linkage-based [`LinkageValueCrl`] and hash-based
//! [`HashIdCrl`]) and the signed CRL ([`SecuredCrl`]), with a strict COER
//! codec.
//!
//! Encoded to the IEEE 1609.2-2022 CRL modules (`Ieee1609Dot2CrlBaseTypes`
//! major version 3, `Ieee1609Dot2Crl`). The linkage CRL encodes the same
//! under the 2016/1609.2.1-2020 CRL module (major version 2); the hash CRL
//! does not: in 2022 `HashBasedRevocationInfo` is extensible, so each entry
//! carries a one-octet preamble.
//!
//! Supported subset: `typeSpecific` `fullHashCrl`, `deltaHashCrl`,
//! `fullLinkedCrl`, `deltaLinkedCrl`; linkage CRLs with `individual`
//! entries only (no `groups`, no extensions); the signed CRL as
//! `Ieee1609Dot2Data` version 3 with `signedData`, hash SHA-256, header
//! `psid` 256 only, signer `certificate` (one certificate, so the list can
//! be checked on its own) and an ECDSA P-256 signature. Everything else is
//! rejected. The decoder keeps the bytes received and verifies the
//! signature over the `tbsData` as received.

use crate::V2xError;
use crate::cert::{Certificate, Ssp};
use crate::coer::{Reader, Writer};
use crate::keys::{V2xSigner, sha256};
use crate::spdu::SignedSpdu;
use crate::validity::Time32;

/// The PSID of the CRL service (`CrlPsid`).
pub const CRL_PSID: u64 = 256;
/// Most entries (revocations or hash entries) a CRL may hold.
pub const MAX_CRL_ENTRIES: usize = 100_000;
/// Largest signed CRL accepted, octets.
pub const MAX_CRL_LEN: usize = 8 * 1024 * 1024;

fn invalid(offset: usize, what: &'static str) -> V2xError {
    V2xError::Invalid { offset, what }
}

/// `CracaType`: whose certificate the CRL's `crlCraca` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CracaType {
    /// `isCraca`: the CRL signer's own certificate.
    IsCraca,
    /// `issuerIsCraca`: the certificate that issued the CRL signer's.
    IssuerIsCraca,
}

/// `CrlSsp` (`Ieee1609Dot2CrlSsp`): the SSP of PSID 256 in a CRL signer's
/// `appPermissions` (version 1).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CrlSsp {
    /// `associatedCraca`.
    pub associated_craca: CracaType,
    /// `crls` (`PermissibleCrls`): the CRL series the holder may sign.
    pub crls: Vec<u16>,
}

impl CrlSsp {
    /// COER encoding (what goes into an `opaque` SSP).
    pub fn to_coer(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(0); // preamble: no extensions
        w.u8(1); // version
        w.u8(match self.associated_craca {
            CracaType::IsCraca => 0,
            CracaType::IssuerIsCraca => 1,
        });
        w.quantity(self.crls.len());
        for s in &self.crls {
            w.u16(*s);
        }
        w.buf
    }

    /// Strict COER decoding.
    pub fn from_coer(bytes: &[u8]) -> Result<Self, V2xError> {
        let mut r = Reader::new(bytes);
        if r.preamble(1)? != 0 {
            return Err(V2xError::Unsupported("CrlSsp extensions"));
        }
        let at = r.pos();
        if r.u8()? != 1 {
            return Err(invalid(at, "CrlSsp version is not 1"));
        }
        let at = r.pos();
        let associated_craca = match r.enumerated()? {
            0 => CracaType::IsCraca,
            1 => CracaType::IssuerIsCraca,
            _ => return Err(invalid(at, "unknown CracaType")),
        };
        let n = r.quantity()?;
        let mut crls = Vec::with_capacity(n);
        for _ in 0..n {
            crls.push(r.u16()?);
        }
        if r.remaining() != 0 {
            return Err(V2xError::TrailingBytes(r.remaining()));
        }
        Ok(Self {
            associated_craca,
            crls,
        })
    }

    /// The `crlCraca` a CRL signed by `signer` (whose SSP this is) must
    /// name: HashedId8 of the signer itself (`isCraca`) or of its issuer
    /// (`issuerIsCraca`; a self-signed signer is its own issuer).
    pub fn craca_of(&self, signer: &Certificate) -> [u8; 8] {
        match (self.associated_craca, signer.issuer()) {
            (CracaType::IssuerIsCraca, crate::IssuerIdentifier::Sha256AndDigest(d)) => d,
            _ => signer.hashed_id8(),
        }
    }

    /// The CRL SSP of `certificate` (its `appPermissions` entry for PSID
    /// 256 with an `opaque` SSP), if it has one.
    pub fn of(certificate: &Certificate) -> Result<Option<Self>, V2xError> {
        let perms = certificate.tbs().app_permissions.as_deref().unwrap_or(&[]);
        match perms.iter().find(|p| p.psid == CRL_PSID) {
            Some(p) => match &p.ssp {
                Some(Ssp::Opaque(o)) => Ok(Some(Self::from_coer(o)?)),
                _ => Err(V2xError::Profile("PSID 256 without an opaque CrlSsp")),
            },
            None => Ok(None),
        }
    }
}

/// `IndividualRevocation`: both linkage authorities' seeds of one holder
/// for period `iRev`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IndividualRevocation {
    /// `linkageSeed1`.
    pub linkage_seed1: [u8; 16],
    /// `linkageSeed2`.
    pub linkage_seed2: [u8; 16],
}

/// `IMaxGroup`: revocations no longer relevant once `iCert > iMax`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IMaxGroup {
    /// `iMax`.
    pub i_max: u16,
    /// `contents`.
    pub contents: Vec<IndividualRevocation>,
}

/// `LAGroup`: revocations made with linkage authorities `la1Id`, `la2Id`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LaGroup {
    /// `la1Id`.
    pub la1_id: [u8; 2],
    /// `la2Id`.
    pub la2_id: [u8; 2],
    /// `contents`.
    pub contents: Vec<IMaxGroup>,
}

/// `JMaxGroup`: revocations whose holders have `jmax` certificates per
/// period. trustca writes the number of tickets per period and reads the
/// linkage values `j = 0 .. jmax` (exclusive) of each period, as
/// `docs/pseudonyms.md` explains.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct JMaxGroup {
    /// `jmax`.
    pub jmax: u8,
    /// `contents`.
    pub contents: Vec<LaGroup>,
}

/// `ToBeSignedLinkageValueCrl` with `individual` entries.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LinkageValueCrl {
    /// `iRev`: the period every seed in the list is for.
    pub i_rev: u16,
    /// `indexWithinI`.
    pub index_within_i: u8,
    /// `individual`.
    pub individual: Vec<JMaxGroup>,
}

/// `HashBasedRevocationInfo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HashRevocation {
    /// `id`: HashedId10 of the revoked certificate (last ten octets of
    /// SHA-256 over its COER encoding).
    pub id: [u8; 10],
    /// `expiry`: the end of the certificate's validity.
    pub expiry: Time32,
}

impl HashRevocation {
    /// The entry for `certificate`. Fails if its validity ends past the
    /// `Time32` range.
    pub fn of(certificate: &Certificate) -> Result<Self, V2xError> {
        Ok(Self {
            id: hashed_id10(certificate.as_coer()),
            expiry: Time32(
                u32::try_from(certificate.tbs().validity.end())
                    .map_err(|_| V2xError::OutOfRange("expiry outside Time32"))?,
            ),
        })
    }
}

/// HashedId10 of an encoding: the last ten octets of its SHA-256.
pub fn hashed_id10(encoding: &[u8]) -> [u8; 10] {
    let h = sha256(encoding);
    let mut out = [0u8; 10];
    out.copy_from_slice(&h[22..]);
    out
}

/// `ToBeSignedHashIdCrl`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HashIdCrl {
    /// `crlSerial`.
    pub crl_serial: u32,
    /// `entries`.
    pub entries: Vec<HashRevocation>,
}

/// `TypeSpecificCrlContents` (the supported alternatives).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CrlBody {
    /// `fullHashCrl`.
    FullHash(HashIdCrl),
    /// `deltaHashCrl`.
    DeltaHash(HashIdCrl),
    /// `fullLinkedCrl`.
    FullLinked(LinkageValueCrl),
    /// `deltaLinkedCrl`.
    DeltaLinked(LinkageValueCrl),
}

/// `CrlContents` (version 1).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CrlContents {
    /// `crlSeries`.
    pub crl_series: u16,
    /// `crlCraca`: HashedId8 of the CRACA certificate.
    pub crl_craca: [u8; 8],
    /// `issueDate`.
    pub issue_date: Time32,
    /// `nextCrl` (strictly after `issueDate`).
    pub next_crl: Time32,
    /// `priorityInfo.priority`.
    pub priority: Option<u8>,
    /// `typeSpecific`.
    pub body: CrlBody,
}

impl CrlContents {
    /// COER encoding, after checking the constraints the types do not
    /// carry (nextCrl after issueDate, counts within limits).
    pub fn to_coer(&self) -> Result<Vec<u8>, V2xError> {
        self.validate()?;
        let mut w = Writer::new();
        w.u8(1);
        w.u16(self.crl_series);
        w.fixed(&self.crl_craca);
        w.u32(self.issue_date.0);
        w.u32(self.next_crl.0);
        match self.priority {
            Some(p) => {
                w.u8(0x40);
                w.u8(p);
            }
            None => w.u8(0),
        }
        match &self.body {
            CrlBody::FullHash(h) | CrlBody::DeltaHash(h) => {
                w.tag(if matches!(self.body, CrlBody::FullHash(_)) {
                    0
                } else {
                    1
                });
                w.u8(0); // preamble: no extensions
                w.u32(h.crl_serial);
                w.quantity(h.entries.len());
                for e in &h.entries {
                    w.u8(0); // 2022: HashBasedRevocationInfo is extensible
                    w.fixed(&e.id);
                    w.u32(e.expiry.0);
                }
            }
            CrlBody::FullLinked(l) | CrlBody::DeltaLinked(l) => {
                w.tag(if matches!(self.body, CrlBody::FullLinked(_)) {
                    2
                } else {
                    3
                });
                encode_linkage(&mut w, l);
            }
        }
        Ok(w.buf)
    }

    fn validate(&self) -> Result<(), V2xError> {
        if self.next_crl <= self.issue_date {
            return Err(V2xError::OutOfRange("nextCrl must be after issueDate"));
        }
        let count = match &self.body {
            CrlBody::FullHash(h) | CrlBody::DeltaHash(h) => h.entries.len(),
            CrlBody::FullLinked(l) | CrlBody::DeltaLinked(l) => l
                .individual
                .iter()
                .flat_map(|j| &j.contents)
                .flat_map(|la| &la.contents)
                .map(|i| i.contents.len())
                .sum(),
        };
        if count > MAX_CRL_ENTRIES {
            return Err(V2xError::Limit("more than 100000 CRL entries"));
        }
        Ok(())
    }

    /// Strict COER decoding (canonical, no trailing bytes, supported
    /// subset only).
    pub fn from_coer(bytes: &[u8]) -> Result<Self, V2xError> {
        let mut r = Reader::with_limits(bytes, MAX_CRL_LEN, MAX_CRL_ENTRIES);
        let c = decode_contents(&mut r)?;
        if r.remaining() != 0 {
            return Err(V2xError::TrailingBytes(r.remaining()));
        }
        let mut again = c.to_coer()?;
        if again != bytes {
            again.clear();
            return Err(V2xError::NonCanonical {
                offset: 0,
                what: "CrlContents re-encoding differs from the input",
            });
        }
        Ok(c)
    }
}

fn encode_linkage(w: &mut Writer, l: &LinkageValueCrl) {
    w.u8(0x40); // preamble: individual present, groups absent, no extensions
    w.u16(l.i_rev);
    w.u8(l.index_within_i);
    w.quantity(l.individual.len());
    for j in &l.individual {
        w.u8(0);
        w.u8(j.jmax);
        w.quantity(j.contents.len());
        for la in &j.contents {
            w.u8(0);
            w.fixed(&la.la1_id);
            w.fixed(&la.la2_id);
            w.quantity(la.contents.len());
            for i in &la.contents {
                w.u8(0);
                w.u16(i.i_max);
                w.quantity(i.contents.len());
                for e in &i.contents {
                    w.u8(0);
                    w.fixed(&e.linkage_seed1);
                    w.fixed(&e.linkage_seed2);
                }
            }
        }
    }
}

/// The preamble of an extensible SEQUENCE without optional fields (or
/// whose optional fields this subset never uses): the extension bit must
/// be clear.
fn plain_preamble(r: &mut Reader<'_>, what: &'static str) -> Result<(), V2xError> {
    if r.preamble(1)? != 0 {
        return Err(V2xError::Unsupported(what));
    }
    Ok(())
}

fn decode_contents(r: &mut Reader<'_>) -> Result<CrlContents, V2xError> {
    let at = r.pos();
    if r.u8()? != 1 {
        return Err(invalid(at, "CrlContents version is not 1"));
    }
    let crl_series = r.u16()?;
    let crl_craca = r.array()?;
    let issue_date = Time32(r.u32()?);
    let next_crl = Time32(r.u32()?);
    let pre = r.preamble(2)?;
    if pre & 0x80 != 0 {
        return Err(V2xError::Unsupported("CrlPriorityInfo extensions"));
    }
    let priority = if pre & 0x40 != 0 { Some(r.u8()?) } else { None };
    let body = match r.tag()? {
        t @ (0 | 1) => {
            plain_preamble(r, "ToBeSignedHashIdCrl extensions")?;
            let crl_serial = r.u32()?;
            let n = r.quantity()?;
            let mut entries = Vec::with_capacity(n);
            for _ in 0..n {
                plain_preamble(r, "HashBasedRevocationInfo extensions")?;
                entries.push(HashRevocation {
                    id: r.array()?,
                    expiry: Time32(r.u32()?),
                });
            }
            let h = HashIdCrl {
                crl_serial,
                entries,
            };
            if t == 0 {
                CrlBody::FullHash(h)
            } else {
                CrlBody::DeltaHash(h)
            }
        }
        t @ (2 | 3) => {
            let l = decode_linkage(r)?;
            if t == 2 {
                CrlBody::FullLinked(l)
            } else {
                CrlBody::DeltaLinked(l)
            }
        }
        _ => return Err(V2xError::Unsupported("TypeSpecificCrlContents alternative")),
    };
    Ok(CrlContents {
        crl_series,
        crl_craca,
        issue_date,
        next_crl,
        priority,
        body,
    })
}

fn decode_linkage(r: &mut Reader<'_>) -> Result<LinkageValueCrl, V2xError> {
    let at = r.pos();
    let pre = r.preamble(3)?;
    if pre & 0x80 != 0 {
        return Err(V2xError::Unsupported(
            "ToBeSignedLinkageValueCrl extensions",
        ));
    }
    if pre & 0x20 != 0 {
        return Err(V2xError::Unsupported("group linkage CRL entries"));
    }
    if pre & 0x40 == 0 {
        return Err(invalid(at, "linkage CRL without individual or groups"));
    }
    let i_rev = r.u16()?;
    let index_within_i = r.u8()?;
    let n = r.quantity()?;
    let mut individual = Vec::with_capacity(n);
    for _ in 0..n {
        plain_preamble(r, "JMaxGroup extensions")?;
        let jmax = r.u8()?;
        let n = r.quantity()?;
        let mut contents = Vec::with_capacity(n);
        for _ in 0..n {
            plain_preamble(r, "LAGroup extensions")?;
            let la1_id = r.array()?;
            let la2_id = r.array()?;
            let n = r.quantity()?;
            let mut imax = Vec::with_capacity(n);
            for _ in 0..n {
                plain_preamble(r, "IMaxGroup extensions (singleSeed)")?;
                let i_max = r.u16()?;
                let n = r.quantity()?;
                let mut seeds = Vec::with_capacity(n);
                for _ in 0..n {
                    plain_preamble(r, "IndividualRevocation extensions")?;
                    seeds.push(IndividualRevocation {
                        linkage_seed1: r.array()?,
                        linkage_seed2: r.array()?,
                    });
                }
                imax.push(IMaxGroup {
                    i_max,
                    contents: seeds,
                });
            }
            contents.push(LaGroup {
                la1_id,
                la2_id,
                contents: imax,
            });
        }
        individual.push(JMaxGroup { jmax, contents });
    }
    Ok(LinkageValueCrl {
        i_rev,
        index_within_i,
        individual,
    })
}

/// A signed CRL (`SecuredCrl`): `Ieee1609Dot2Data` with `signedData` whose
/// payload is `unsecuredData` containing the COER `CrlContents`, header
/// `psid` 256, signed by a CRL signer certificate carried in the CRL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecuredCrl {
    contents: CrlContents,
    signed: SignedSpdu,
}

impl SecuredCrl {
    /// Signs `contents` with the CRL signer `certificate` and its key.
    /// The certificate must permit the CRL's series ([`CrlSsp`]); the
    /// signed CRL is decoded and verified before it is returned.
    pub fn sign(
        contents: &CrlContents,
        certificate: &Certificate,
        signer: &dyn V2xSigner,
    ) -> Result<Self, V2xError> {
        let signed = SignedSpdu::sign(&contents.to_coer()?, CRL_PSID, None, certificate, signer)?;
        let crl = Self::from_coer(signed.as_coer())?;
        crl.verify(None)
            .map_err(|_| V2xError::Signing("the signed CRL does not verify"))?;
        Ok(crl)
    }

    /// Strict COER decoding of a signed CRL in the supported subset. The
    /// signature is not checked here: call [`SecuredCrl::verify`].
    pub fn from_coer(bytes: &[u8]) -> Result<Self, V2xError> {
        if bytes.len() > MAX_CRL_LEN {
            return Err(V2xError::Limit("signed CRL longer than 8 MiB"));
        }
        let signed = SignedSpdu::from_coer_limited(bytes, MAX_CRL_LEN)?;
        if signed.generation_time().is_some() {
            return Err(V2xError::Profile(
                "a SecuredCrl header carries only the psid",
            ));
        }
        if signed.psid() != CRL_PSID {
            return Err(V2xError::Profile("SecuredCrl psid is not 256"));
        }
        let contents = CrlContents::from_coer(signed.payload())?;
        Ok(Self { contents, signed })
    }

    /// Verifies the CRL as IEEE 1609.2 clause 7.4 asks of a signed CRL
    /// (the subset this crate handles): the signature over `tbsData` as
    /// received, with the carried signer certificate
    /// (`SHA-256(SHA-256(tbsData) ‖ SHA-256(signer))`); the signer's
    /// `appPermissions` hold PSID 256 with a [`CrlSsp`] that lists the
    /// CRL's series; `crlCraca` names the CRACA the SSP says (the signer
    /// itself or its issuer). With `craca`, also that `crlCraca` is that
    /// certificate's HashedId8 and that the signer certificate verifies
    /// under it (`issuerIsCraca`) or is it (`isCraca`).
    pub fn verify(&self, craca: Option<&Certificate>) -> Result<(), V2xError> {
        let ssp =
            CrlSsp::of(self.signer())?.ok_or(V2xError::Profile("the CRL signer lacks PSID 256"))?;
        if !ssp.crls.contains(&self.contents.crl_series) {
            return Err(V2xError::Profile(
                "the CRL signer may not sign this CRL series",
            ));
        }
        if ssp.craca_of(self.signer()) != self.contents.crl_craca {
            return Err(V2xError::IssuerMismatch(
                "crlCraca is not the CRACA the signer's CrlSsp names",
            ));
        }
        if let Some(c) = craca {
            if c.hashed_id8() != self.contents.crl_craca {
                return Err(V2xError::IssuerMismatch(
                    "crlCraca does not name the given CRACA",
                ));
            }
            if ssp.associated_craca == CracaType::IssuerIsCraca {
                self.signer().verify_signed_by(Some(c))?;
            }
        }
        self.signed.verify()
    }

    /// The CRL contents.
    pub fn contents(&self) -> &CrlContents {
        &self.contents
    }

    /// The CRL signer certificate carried in the CRL.
    pub fn signer(&self) -> &Certificate {
        self.signed.signer()
    }

    /// The COER encoding, as received or produced.
    pub fn as_coer(&self) -> &[u8] {
        self.signed.as_coer()
    }

    /// The COER encoding of `tbsData`, as received.
    pub fn tbs_coer(&self) -> &[u8] {
        self.signed.tbs_coer()
    }
}
