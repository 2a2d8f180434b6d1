//! The linkage CRL as an IEEE 1609.2 `SecuredCrl`: `CrlContents` with
//! `fullLinkedCrl` (`ToBeSignedLinkageValueCrl`), signed by the CRL signer
//! certificate (PSID 256, `CrlSsp` naming the series), whose issuer, the
//! V2X root, is the CRACA every ticket names in `cracaId`. The codec is
//! `trustca_v2x::crl`; this module maps the separated authorities'
//! [`LinkageRevocation`]s onto it and back.
//!
//! One list has one `iRev`: every entry's two seeds are the linkage
//! authorities' seeds *for period `iRev`* (an entry released for an earlier
//! period is hashed forward, which the seed chain allows; one released for a
//! later period is withheld until its period comes, since seeds cannot be
//! hashed back). `jmax` is the number of tickets per period of the profile
//! (relying parties compute linkage values `j = 0 .. jmax`); `iMax` the last
//! period a revoked vehicle can hold tickets for; `la1Id`/`la2Id` the two
//! authorities' ids; `indexWithinI` counts the lists issued for this `iRev`.

use trustca_pseudonym::{CertLinkageValue, LaId, LaSeed, LinkageRevocation, SeedRelease};
use trustca_v2x::{
    Certificate, CertificateId, CrlBody, CrlContents, CrlSsp, IMaxGroup, IndividualRevocation,
    IssuerIdentifier, JMaxGroup, LaGroup, LinkageValueCrl, SecuredCrl, Time32, V2xSigner,
};

use crate::error::{Result, ScmsError};

/// Most entries a linkage CRL may hold.
pub const MAX_ENTRIES: usize = trustca_v2x::crl::MAX_CRL_ENTRIES;

/// What a linkage CRL is made from (besides the entries and the signer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkageCrlParams {
    /// `crlSeries` (the tickets' `crlSeries`).
    pub crl_series: u16,
    /// `iRev`: the current period.
    pub i_rev: u16,
    /// `indexWithinI`.
    pub index_within_i: u8,
    /// `jmax`: tickets per period.
    pub jmax: u8,
    /// `iMax`: the last period a revoked vehicle's tickets can be for.
    pub i_max: u16,
    /// `issueDate`, Unix time.
    pub this_update: i64,
    /// `nextCrl`, Unix time.
    pub next_update: i64,
}

/// A parsed, signature-carrying linkage CRL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkageCrl {
    /// The CRL series (written in every ticket as `crlSeries`).
    pub crl_series: u16,
    /// `indexWithinI`: the number of this list among those for `i_rev`.
    pub crl_number: u64,
    /// `iRev`: the period the seeds are for.
    pub i_rev: u16,
    /// `jmax`: linkage values `j = 0 .. jmax` of each period are revoked.
    pub jmax: u8,
    /// Issue time.
    pub this_update: Time32,
    /// When the next list is due.
    pub next_update: Time32,
    /// Revoked vehicles, their seeds for period `i_rev`.
    pub entries: Vec<LinkageRevocation>,
    /// HashedId8 of the CRL signer certificate.
    pub signer: [u8; 8],
    /// How many revocations the signer held when signing, including those
    /// withheld for a later period (a decoded list: `entries.len()`). A
    /// cached list is current while this equals
    /// `PseudonymCa::revocation_count`.
    pub revocations: usize,
    secured: SecuredCrl,
}

fn la_id_bytes(id: LaId) -> [u8; 2] {
    id.0.to_be_bytes()
}

impl LinkageCrl {
    /// Encodes and signs a list: entries released for a period after
    /// `iRev` are left out, the others are hashed forward to `iRev`.
    pub fn sign(
        params: LinkageCrlParams,
        entries: &[LinkageRevocation],
        signer_certificate: &Certificate,
        signer: &dyn V2xSigner,
    ) -> Result<Self> {
        if entries.len() > MAX_ENTRIES {
            return Err(ScmsError::Profile(format!(
                "at most {MAX_ENTRIES} CRL entries"
            )));
        }
        let i_rev = u64::from(params.i_rev);
        // LA groups in first-seen order: (la1, la2) -> seeds.
        let mut groups: Vec<(LaId, LaId, Vec<IndividualRevocation>)> = Vec::new();
        for e in entries.iter().filter(|e| e.period() <= i_rev) {
            let seed = IndividualRevocation {
                linkage_seed1: *e.first.seed_for_period(i_rev)?.as_bytes(),
                linkage_seed2: *e.second.seed_for_period(i_rev)?.as_bytes(),
            };
            let ids = (e.first.la_id, e.second.la_id);
            match groups.iter_mut().find(|g| (g.0, g.1) == ids) {
                Some(g) => g.2.push(seed),
                None => groups.push((ids.0, ids.1, vec![seed])),
            }
        }
        let contents = CrlContents {
            crl_series: params.crl_series,
            crl_craca: crl_craca(signer_certificate)?,
            issue_date: Time32::from_unix(params.this_update)?,
            next_crl: Time32::from_unix(params.next_update)?,
            priority: None,
            body: CrlBody::FullLinked(LinkageValueCrl {
                i_rev: params.i_rev,
                index_within_i: params.index_within_i,
                individual: vec![JMaxGroup {
                    jmax: params.jmax,
                    contents: groups
                        .into_iter()
                        .map(|(a, b, seeds)| LaGroup {
                            la1_id: la_id_bytes(a),
                            la2_id: la_id_bytes(b),
                            contents: vec![IMaxGroup {
                                i_max: params.i_max,
                                contents: seeds,
                            }],
                        })
                        .collect(),
                }],
            }),
        };
        let secured = SecuredCrl::sign(&contents, signer_certificate, signer)?;
        let mut crl = Self::from_secured(secured)?;
        crl.revocations = entries.len();
        Ok(crl)
    }

    fn from_secured(secured: SecuredCrl) -> Result<Self> {
        let c = secured.contents();
        let CrlBody::FullLinked(l) = &c.body else {
            return Err(ScmsError::Malformed {
                what: "linkage CRL",
                reason: "not a full linkage-value CRL".into(),
            });
        };
        let mut jmax = None;
        let mut entries = Vec::new();
        for j in &l.individual {
            if jmax.replace(j.jmax).is_some_and(|prev| prev != j.jmax) {
                return Err(ScmsError::Malformed {
                    what: "linkage CRL",
                    reason: "more than one jmax".into(),
                });
            }
            for la in &j.contents {
                let ids = (
                    LaId(u16::from_be_bytes(la.la1_id)),
                    LaId(u16::from_be_bytes(la.la2_id)),
                );
                for e in la.contents.iter().flat_map(|i| &i.contents) {
                    let release = |la_id, seed| SeedRelease {
                        la_id,
                        period: u64::from(l.i_rev),
                        seed: LaSeed::from_bytes(seed),
                    };
                    entries.push(LinkageRevocation::new(
                        release(ids.0, e.linkage_seed1),
                        release(ids.1, e.linkage_seed2),
                    )?);
                }
            }
        }
        Ok(Self {
            crl_series: c.crl_series,
            crl_number: u64::from(l.index_within_i),
            i_rev: l.i_rev,
            jmax: jmax.unwrap_or(0),
            this_update: c.issue_date,
            next_update: c.next_crl,
            signer: secured.signer().hashed_id8(),
            revocations: entries.len(),
            entries,
            secured,
        })
    }

    /// The COER encoding of the `SecuredCrl`.
    pub fn as_bytes(&self) -> &[u8] {
        self.secured.as_coer()
    }

    /// The CRL signer certificate the list carries.
    pub fn signer_certificate(&self) -> &Certificate {
        self.secured.signer()
    }

    /// Parses strictly (a `SecuredCrl` with a full linkage CRL). The
    /// signature is not checked here: call [`LinkageCrl::verify`].
    pub fn from_bytes(b: &[u8]) -> Result<Self> {
        Self::from_secured(SecuredCrl::from_coer(b)?)
    }

    /// Verifies the list for tickets issued by `pseudonym_ca`: the
    /// signature over the bytes as received with the carried CRL signer
    /// certificate, the signer's `CrlSsp` (series permitted, `crlCraca` its
    /// issuer), and that `crlCraca` is the CRACA of `pseudonym_ca` (its
    /// issuer, whose HashedId3 is the tickets' `cracaId`). The CRL signer
    /// certificate's own signature is checked only by
    /// [`LinkageCrl::verify_chain`], which needs the V2X root.
    pub fn verify(&self, pseudonym_ca: &Certificate) -> Result<()> {
        self.secured.verify(None)?;
        let craca = self.secured.contents().crl_craca;
        if pseudonym_ca.issuer() != IssuerIdentifier::Sha256AndDigest(craca)
            || pseudonym_ca.tbs().craca_id != craca[5..]
        {
            return Err(ScmsError::Response(
                "the linkage CRL is for another CRACA than the pseudonym CA's".into(),
            ));
        }
        Ok(())
    }

    /// [`LinkageCrl::verify`] and the CRL signer certificate against the
    /// V2X root (the CRACA).
    pub fn verify_chain(&self, pseudonym_ca: &Certificate, root: &Certificate) -> Result<()> {
        self.verify(pseudonym_ca)?;
        Ok(self.secured.verify(Some(root))?)
    }

    /// Whether `ticket` (an authorization ticket with linkage data) is
    /// revoked by this list: its linkage value matches an entry's for its
    /// period, `j < jmax`. Tickets of periods before `iRev` are not covered
    /// (the seeds only run forward).
    pub fn revokes(&self, ticket: &Certificate) -> Result<bool> {
        let CertificateId::LinkageData(link) = &ticket.tbs().id else {
            return Ok(false);
        };
        if ticket.tbs().crl_series != self.crl_series || self.jmax == 0 {
            return Ok(false);
        }
        let lv = CertLinkageValue(link.linkage_value);
        for e in &self.entries {
            if e.matches(u64::from(link.i_cert), &lv, u32::from(self.jmax))?
                .is_some()
            {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// The `crlCraca` of a CRL signed by `signer`: what its `CrlSsp` names.
pub(crate) fn crl_craca(signer: &Certificate) -> Result<[u8; 8]> {
    let ssp = CrlSsp::of(signer)?.ok_or_else(|| {
        ScmsError::Profile("the CRL signer certificate has no CrlSsp (PSID 256)".into())
    })?;
    Ok(ssp.craca_of(signer))
}

/// The stored entry list (`LinkageRevocation`s as both seed releases).
pub(crate) fn decode_entries(b: &[u8]) -> Result<Vec<LinkageRevocation>> {
    const ENTRY_LEN: usize = 2 * trustca_pseudonym::SEED_RELEASE_LEN;
    if !b.len().is_multiple_of(ENTRY_LEN) || b.len() / ENTRY_LEN > MAX_ENTRIES {
        return Err(ScmsError::Malformed {
            what: "linkage CRL entries",
            reason: format!("{} bytes", b.len()),
        });
    }
    b.chunks_exact(ENTRY_LEN)
        .map(|e| {
            Ok(LinkageRevocation::new(
                SeedRelease::from_bytes(&e[..trustca_pseudonym::SEED_RELEASE_LEN])?,
                SeedRelease::from_bytes(&e[trustca_pseudonym::SEED_RELEASE_LEN..])?,
            )?)
        })
        .collect()
}
