//! The trust list: the set of foreign roots (another industry's or another
//! country's PKI) this root's operator recognises, signed by this root.
//!
//! Modelled on the EU C-ITS ECTL: one list manager (here the offline root)
//! signs the whole set; the list expires by itself at `nextUpdate` and is
//! replaced whole by a newer one (higher `sequence`). Chosen over
//! cross-certification because a cross-certificate is issued per foreign
//! root, lives for years and can only be withdrawn through the ARL,
//! whereas a list is one signed object that lapses unless re-issued, and
//! says next to each root the sectors it may vouch for.
//!
//! The encoding is DER, shaped like an X.509 CRL:
//!
//! ```text
//! TrustList ::= SEQUENCE {
//!     tbsList             TBSTrustList,
//!     signatureAlgorithm  AlgorithmIdentifier,
//!     signatureValue      BIT STRING }
//! TBSTrustList ::= SEQUENCE {
//!     version     INTEGER { v1(0) },
//!     issuer      Name,              -- the signing root's subject
//!     sequence    INTEGER,           -- grows with every list issued
//!     thisUpdate  GeneralizedTime,
//!     nextUpdate  GeneralizedTime,
//!     entries     SEQUENCE OF TrustListEntry }
//! TrustListEntry ::= SEQUENCE {
//!     certificate Certificate,       -- the recognised root (or CA)
//!     sectors     SEQUENCE OF UTF8String }
//! ```
//!
//! The sectors an entry names are the foreign sectors whose device levels
//! the recognition rules (`policies/recognition.toml`) then count.

use der::asn1::{AnyRef, BitStringRef, GeneralizedTime, ObjectIdentifier, Utf8StringRef};
use der::{Decode, Encode, Reader, SliceReader, Tag, Tagged};
use ring::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::extension::ExtensionOid;
use crate::{ModelError, SectorName, VerifiedChain};

/// The PEM label `trustca root trust-list issue` writes.
pub const PEM_LABEL: &str = "TRUSTCA TRUST LIST";

/// ecdsa-with-SHA256.
const ECDSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
/// ecdsa-with-SHA384.
const ECDSA_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
/// id-Ed25519 (key and signature).
const ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
/// id-ecPublicKey.
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// secp256r1.
const P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
/// secp384r1.
const P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");

/// Most entries a list may hold.
pub const MAX_ENTRIES: usize = 64;

fn bad(msg: impl Into<String>) -> ModelError {
    ModelError::InvalidTrustList(msg.into())
}

fn der_err(e: der::Error) -> ModelError {
    bad(format!("not valid DER: {e}"))
}

/// The algorithm of a list's signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ListSignatureAlgorithm {
    /// ECDSA with SHA-256 (a P-256 root).
    EcdsaSha256,
    /// ECDSA with SHA-384 (a P-384 root).
    EcdsaSha384,
    /// Ed25519.
    Ed25519,
}

impl ListSignatureAlgorithm {
    fn oid(self) -> ObjectIdentifier {
        match self {
            Self::EcdsaSha256 => ECDSA_SHA256,
            Self::EcdsaSha384 => ECDSA_SHA384,
            Self::Ed25519 => ED25519,
        }
    }
}

/// One recognised foreign root and the sectors it may vouch for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustListEntry {
    /// The foreign root (or CA) certificate, DER.
    pub certificate: Vec<u8>,
    /// The foreign sectors whose devices it may certify.
    pub sectors: Vec<SectorName>,
}

impl TrustListEntry {
    /// SHA-256 of the certificate.
    pub fn fingerprint(&self) -> [u8; 32] {
        crate::fingerprint(&self.certificate)
    }
}

/// The contents of a trust list (what is signed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustList {
    /// The signing root's subject Name, DER.
    pub issuer: Vec<u8>,
    /// Grows with every list the root issues; a held list is only ever
    /// replaced by one with a higher number.
    pub sequence: u64,
    /// When the list was issued.
    pub this_update: OffsetDateTime,
    /// After this the list is stale and recognises nothing.
    pub next_update: OffsetDateTime,
    /// The recognised roots.
    pub entries: Vec<TrustListEntry>,
}

/// A foreign device's standing in its CA's CRL
/// ([`TrustList::foreign_revocation`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignRevocation {
    /// The CRL lists it.
    pub revoked: bool,
    /// The CRL's `nextUpdate` (None: no CRL of its CA held).
    pub next_update: Option<OffsetDateTime>,
    /// What the decision's reasons say.
    pub note: String,
}

/// A list that was checked against this root when it was taken in, with
/// the signed bytes it was checked from: what a trust snapshot carries, so
/// an offline verifier checks the root's own signature again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedTrustList {
    /// The decoded list.
    pub list: TrustList,
    /// The signed list, DER, as the root issued it.
    pub der: Vec<u8>,
}

fn time_der(t: OffsetDateTime) -> Result<Vec<u8>, ModelError> {
    let secs = u64::try_from(t.unix_timestamp()).map_err(|_| bad("time before 1970"))?;
    GeneralizedTime::from_unix_duration(std::time::Duration::from_secs(secs))
        .and_then(|g| g.to_der())
        .map_err(der_err)
}

fn time_of(g: GeneralizedTime) -> Result<OffsetDateTime, ModelError> {
    let secs =
        i64::try_from(g.to_unix_duration().as_secs()).map_err(|_| bad("time out of range"))?;
    OffsetDateTime::from_unix_timestamp(secs).map_err(|_| bad("time out of range"))
}

fn sequence(contents: &[u8]) -> Result<Vec<u8>, ModelError> {
    AnyRef::new(Tag::Sequence, contents)
        .and_then(|a| a.to_der())
        .map_err(der_err)
}

/// Decodes one SEQUENCE's contents with `f`, which must read all of it.
fn read_sequence<'a, T>(
    r: &mut SliceReader<'a>,
    what: &str,
    f: impl FnOnce(&mut SliceReader<'a>) -> Result<T, ModelError>,
) -> Result<T, ModelError> {
    let any = AnyRef::decode(r).map_err(der_err)?;
    if any.tag() != Tag::Sequence {
        return Err(bad(format!("{what} is not a SEQUENCE")));
    }
    let mut inner = SliceReader::new(any.value()).map_err(der_err)?;
    let value = f(&mut inner)?;
    if !inner.is_finished() {
        return Err(bad(format!("trailing data in {what}")));
    }
    Ok(value)
}

impl TrustList {
    /// The DER of `tbsList`, what the root signs.
    pub fn tbs_der(&self) -> Result<Vec<u8>, ModelError> {
        if self.entries.len() > MAX_ENTRIES {
            return Err(bad(format!("more than {MAX_ENTRIES} entries")));
        }
        let mut entries = Vec::new();
        for e in &self.entries {
            let mut names = Vec::new();
            for s in &e.sectors {
                names.extend(
                    Utf8StringRef::new(s.as_str())
                        .and_then(|u| u.to_der())
                        .map_err(der_err)?,
                );
            }
            let cert = AnyRef::from_der(&e.certificate).map_err(der_err)?;
            let mut entry = cert.to_der().map_err(der_err)?;
            entry.extend(sequence(&names)?);
            entries.extend(sequence(&entry)?);
        }
        let issuer = AnyRef::from_der(&self.issuer).map_err(der_err)?;
        let mut tbs = 0u8.to_der().map_err(der_err)?;
        tbs.extend(issuer.to_der().map_err(der_err)?);
        tbs.extend(self.sequence.to_der().map_err(der_err)?);
        tbs.extend(time_der(self.this_update)?);
        tbs.extend(time_der(self.next_update)?);
        tbs.extend(sequence(&entries)?);
        sequence(&tbs)
    }

    /// The signed list: `tbs` (from [`TrustList::tbs_der`]) with the
    /// signature `sig` (ECDSA signatures in their DER form) under `alg`.
    pub fn assemble(
        tbs: &[u8],
        alg: ListSignatureAlgorithm,
        sig: &[u8],
    ) -> Result<Vec<u8>, ModelError> {
        let mut out = tbs.to_vec();
        out.extend(sequence(&alg.oid().to_der().map_err(der_err)?)?);
        out.extend(
            BitStringRef::from_bytes(sig)
                .and_then(|b| b.to_der())
                .map_err(der_err)?,
        );
        sequence(&out)
    }

    /// Decodes a signed list without checking its signature; returns the
    /// list, the signed bytes, the signature algorithm OID and signature.
    fn decode(der: &[u8]) -> Result<(TrustList, Vec<u8>, ObjectIdentifier, Vec<u8>), ModelError> {
        let mut r = SliceReader::new(der).map_err(der_err)?;
        let out = read_sequence(&mut r, "the trust list", |r| {
            let tbs_any = AnyRef::decode(r).map_err(der_err)?;
            let tbs_der = tbs_any.to_der().map_err(der_err)?;
            let oid = read_sequence(r, "the signature algorithm", |r| {
                ObjectIdentifier::decode(r).map_err(der_err)
            })?;
            let sig = BitStringRef::decode(r).map_err(der_err)?;
            let sig = sig
                .as_bytes()
                .ok_or_else(|| bad("signature has unused bits"))?
                .to_vec();
            let mut tr = SliceReader::new(&tbs_der).map_err(der_err)?;
            let list = read_sequence(&mut tr, "tbsList", Self::decode_tbs)?;
            Ok((list, tbs_der.clone(), oid, sig))
        })?;
        if !r.is_finished() {
            return Err(bad("trailing bytes after the list"));
        }
        Ok(out)
    }

    fn decode_tbs(r: &mut SliceReader<'_>) -> Result<TrustList, ModelError> {
        let version = u8::decode(r).map_err(der_err)?;
        if version != 0 {
            return Err(bad(format!("unsupported version {version}")));
        }
        let issuer = AnyRef::decode(r)
            .and_then(|a| a.to_der())
            .map_err(der_err)?;
        let sequence_number = u64::decode(r).map_err(der_err)?;
        let this_update = time_of(GeneralizedTime::decode(r).map_err(der_err)?)?;
        let next_update = time_of(GeneralizedTime::decode(r).map_err(der_err)?)?;
        let entries = read_sequence(r, "the entries", |r| {
            let mut entries = Vec::new();
            while !r.is_finished() {
                if entries.len() == MAX_ENTRIES {
                    return Err(bad(format!("more than {MAX_ENTRIES} entries")));
                }
                entries.push(read_sequence(r, "an entry", |r| {
                    let certificate = AnyRef::decode(r)
                        .and_then(|a| a.to_der())
                        .map_err(der_err)?;
                    let sectors = read_sequence(r, "an entry's sectors", |r| {
                        let mut v = Vec::new();
                        while !r.is_finished() {
                            let s = Utf8StringRef::decode(r).map_err(der_err)?;
                            v.push(SectorName::new(s.as_str())?);
                        }
                        Ok(v)
                    })?;
                    Ok(TrustListEntry {
                        certificate,
                        sectors,
                    })
                })?);
            }
            Ok(entries)
        })?;
        Ok(TrustList {
            issuer,
            sequence: sequence_number,
            this_update,
            next_update,
            entries,
        })
    }

    /// Decodes a list without checking its signature or dates: only for a
    /// list that was checked when it was taken in (its sequence number).
    pub fn decode_unchecked(der: &[u8]) -> Result<TrustList, ModelError> {
        Self::decode(der).map(|(list, ..)| list)
    }

    /// Decodes `der` and checks it: signed by `root` (the certificate,
    /// DER), issued by it, current at `now` (`thisUpdate` not in the future
    /// beyond five minutes of clock skew, `nextUpdate` not passed), and
    /// every entry a certificate naming at least one sector.
    pub fn verify(der: &[u8], root: &[u8], now: OffsetDateTime) -> Result<TrustList, ModelError> {
        let (list, tbs, oid, sig) = Self::decode(der)?;
        let (_, root_cert) = X509Certificate::from_der(root)
            .map_err(|_| bad("the root certificate does not parse"))?;
        if list.issuer != root_cert.subject().as_raw() {
            return Err(bad(format!(
                "issued by another authority, not this root ({})",
                root_cert.subject()
            )));
        }
        verify_signature(&root_cert, &oid, &tbs, &sig)?;
        if now >= list.next_update {
            return Err(bad(format!(
                "stale: its nextUpdate ({}) has passed; ask the root operator for a new list",
                list.next_update
            )));
        }
        if list.this_update > now + time::Duration::minutes(5) {
            return Err(bad(format!("issued in the future ({})", list.this_update)));
        }
        for e in &list.entries {
            X509Certificate::from_der(&e.certificate)
                .map_err(|_| bad("an entry is not an X.509 certificate"))?;
            if e.sectors.is_empty() {
                return Err(bad("an entry names no sector"));
            }
        }
        Ok(list)
    }

    /// The entry recognising the root with this certificate, if any.
    pub fn entry_for(&self, certificate: &[u8]) -> Option<&TrustListEntry> {
        self.entries.iter().find(|e| e.certificate == certificate)
    }

    /// Verifies a device `chain` (leaf first, with its CA) that does not
    /// verify to this root against each root the list names, and accepts
    /// it only for a sector that entry may vouch for. `Err` says why no
    /// entry accepts it. The online `Decide` and the offline decision from
    /// a snapshot both come here, so they accept exactly the same peers.
    pub fn verify_foreign_chain(
        &self,
        chain: &[Vec<u8>],
        now: OffsetDateTime,
        oid: &ExtensionOid,
    ) -> Result<VerifiedChain, String> {
        if now >= self.next_update {
            return Err(format!(
                "the trust list (#{}) is past its nextUpdate ({})",
                self.sequence, self.next_update
            ));
        }
        for entry in &self.entries {
            if let Ok(v) = crate::verify_chain(chain, &[], &entry.certificate, now, oid) {
                return match v.extension.as_ref().map(|e| &e.sector) {
                    Some(s) if entry.sectors.contains(s) => Ok(v),
                    Some(s) => Err(format!(
                        "it chains to a listed foreign root, which the trust list does not let vouch for sector {s}"
                    )),
                    None => Err(
                        "it chains to a listed foreign root but carries no trust-level extension"
                            .into(),
                    ),
                };
            }
        }
        Err(format!(
            "nor to any of the {} root(s) on the trust list (#{})",
            self.entries.len(),
            self.sequence
        ))
    }

    /// Whether the list names `sector` for some root: such a sector's
    /// devices are judged by their certificate, not by a database of ours.
    pub fn lists_sector(&self, sector: &SectorName) -> bool {
        self.entries.iter().any(|e| e.sectors.contains(sector))
    }

    /// What the CRLs held say of a foreign device whose certificate has
    /// `serial` and was issued by `issuer` (the chain's CA, DER): the CRL
    /// of that CA's name that verifies under it counts (two foreign CAs
    /// may share a name). `Err` when CRLs of its name are held but none
    /// verifies or is current: its revocation is then unknown.
    pub fn foreign_revocation(
        crls: &[Vec<u8>],
        issuer: Option<&[u8]>,
        serial: &[u8],
        now: OffsetDateTime,
    ) -> Result<ForeignRevocation, String> {
        let mut checked = None;
        if let Some(ca) = issuer {
            for crl in crls
                .iter()
                .filter(|c| crate::revocation::crl_is_from(c, ca))
            {
                checked = Some(crate::revocation::check_crl(crl, ca, serial, now));
                if matches!(checked, Some(Ok(_))) {
                    break;
                }
            }
        }
        let Some(check) = checked else {
            return Ok(ForeignRevocation {
                revoked: false,
                next_update: None,
                note: "no CRL of its CA is held here: revocation not checked".into(),
            });
        };
        let check = check.map_err(|e| {
            format!(
                "the CRL held for its CA cannot be relied on ({e}), so its revocation is unknown"
            )
        })?;
        let number = check.crl_number.map_or(String::new(), |n| format!(" #{n}"));
        Ok(match check.revoked {
            Some((reason, _)) => ForeignRevocation {
                revoked: true,
                next_update: Some(check.next_update),
                note: format!(
                    "certificate revoked ({}) on CRL{number} of {}",
                    crate::revocation::reason_name(reason),
                    check.issuer
                ),
            },
            None => ForeignRevocation {
                revoked: false,
                next_update: Some(check.next_update),
                note: format!("not on CRL{number} of {}", check.issuer),
            },
        })
    }

    /// The note a decision about a device of a listed foreign sector
    /// carries: its level is its certificate's, unconfirmed.
    pub fn foreign_note(&self, sector: &SectorName, level: crate::TrustLevel) -> String {
        format!(
            "sector {sector} is under a foreign root recognised by trust list #{}: level {} is its certificate's, not confirmed by its own database",
            self.sequence,
            level.get()
        )
    }
}

impl TrustList {
    /// The root certificate (DER) of the entry that names `sector`: the
    /// root a peer database of that foreign sector, its TLS certificate and
    /// its signed answers, must chain to. The first entry naming it (the
    /// issuer refuses a sector listed twice).
    pub fn root_for(&self, sector: &SectorName) -> Option<&[u8]> {
        self.entries
            .iter()
            .find(|e| e.sectors.contains(sector))
            .map(|e| e.certificate.as_slice())
    }
}

/// The list in force in one server, shared by whoever needs it (the trust
/// engine, the TLS acceptor checking foreign callers, the per-request
/// authentication): the watch that reads `ca/trust-list.der` replaces it,
/// and every reader sees the new list on its next look, without a restart.
#[derive(Debug, Clone, Default)]
pub struct ListInForce(std::sync::Arc<std::sync::RwLock<InForce>>);

#[derive(Debug, Default)]
struct InForce {
    list: Option<std::sync::Arc<CheckedTrustList>>,
    /// Why no list is in force, when one was expected (stale, damaged).
    why_none: Option<String>,
}

impl ListInForce {
    /// The list in force, if any.
    pub fn get(&self) -> Option<std::sync::Arc<CheckedTrustList>> {
        match self.0.read() {
            Ok(l) => l.list.clone(),
            Err(poisoned) => poisoned.into_inner().list.clone(),
        }
    }

    /// Why no list is in force (`None`: there is one, or none was ever
    /// imported).
    pub fn why_none(&self) -> Option<String> {
        match self.0.read() {
            Ok(l) => l.why_none.clone(),
            Err(poisoned) => poisoned.into_inner().why_none.clone(),
        }
    }

    /// Puts `list` in force (`None`: none), with why there is none. A list
    /// that is replaced by nothing because it passed its `nextUpdate` is
    /// remembered as lapsed, so refusals can say so.
    pub fn set(
        &self,
        list: Option<CheckedTrustList>,
        why_none: Option<String>,
        now: OffsetDateTime,
    ) {
        let mut held = match self.0.write() {
            Ok(l) => l,
            Err(poisoned) => poisoned.into_inner(),
        };
        let why_none = match (&list, &held.list) {
            (None, Some(old)) if now >= old.list.next_update => Some(format!(
                "the trust list (#{}) lapsed on {}",
                old.list.sequence, old.list.next_update
            )),
            (None, None) if why_none.is_none() => held.why_none.clone(),
            _ => why_none,
        };
        held.list = list.map(std::sync::Arc::new);
        held.why_none = why_none;
    }

    /// Why a foreign certificate (a peer database's TLS certificate, a
    /// caller's client certificate) whose `chain` (leaf first, with its CA)
    /// does not chain to our root is not accepted now, or the entry root
    /// (DER) that accepts it with the sector its trust-level extension
    /// names. The entry must name that sector.
    pub fn accepts(
        &self,
        chain: &[Vec<u8>],
        now: OffsetDateTime,
        oid: &ExtensionOid,
    ) -> Result<(Vec<u8>, SectorName), String> {
        let Some(list) = self.get() else {
            return Err(match self.why_none() {
                Some(why) => format!("it is not issued under this root, and {why}"),
                None => "it is not issued under this root, and no trust list of foreign roots is in force".into(),
            });
        };
        let list = &list.list;
        if now >= list.next_update {
            return Err(format!(
                "the trust list (#{}) lapsed on {}",
                list.sequence, list.next_update
            ));
        }
        for entry in &list.entries {
            if let Ok(v) = crate::verify_chain(chain, &[], &entry.certificate, now, oid) {
                return match v.extension.map(|e| e.sector) {
                    Some(s) if entry.sectors.contains(&s) => Ok((entry.certificate.clone(), s)),
                    Some(s) => Err(format!(
                        "it chains to a root on the trust list (#{}) whose entry names {}, not sector {s}",
                        list.sequence,
                        entry.sectors.iter().map(SectorName::as_str).collect::<Vec<_>>().join(", ")
                    )),
                    None => Err("it chains to a listed foreign root but carries no trust-level extension naming its sector".into()),
                };
            }
        }
        Err(format!(
            "it chains neither to this root nor to any of the {} root(s) on the trust list (#{})",
            list.entries.len(),
            list.sequence
        ))
    }

    /// Whether the list in force at `now` still lists `root` (DER) for
    /// `sector`: a connection accepted under an earlier list is checked
    /// again on every request.
    pub fn still_lists(
        &self,
        root: &[u8],
        sector: &SectorName,
        now: OffsetDateTime,
    ) -> Result<(), String> {
        let Some(list) = self.get() else {
            return Err(self
                .why_none()
                .unwrap_or_else(|| "no trust list of foreign roots is in force any more".into()));
        };
        if now >= list.list.next_update {
            return Err(format!(
                "the trust list (#{}) lapsed on {}",
                list.list.sequence, list.list.next_update
            ));
        }
        match list.list.entry_for(root) {
            Some(e) if e.sectors.contains(sector) => Ok(()),
            Some(_) => Err(format!(
                "the trust list (#{}) no longer lets its root vouch for sector {sector}",
                list.list.sequence
            )),
            None => Err(format!(
                "its root is not on the trust list (#{}) any more",
                list.list.sequence
            )),
        }
    }
}

/// Checks `sig` over `signed` under `cert`'s key with the algorithm `oid`.
fn verify_signature(
    cert: &X509Certificate<'_>,
    oid: &ObjectIdentifier,
    signed: &[u8],
    sig: &[u8],
) -> Result<(), ModelError> {
    let spki = cert.public_key();
    let key_oid = ObjectIdentifier::from_bytes(spki.algorithm.algorithm.as_bytes())
        .map_err(|_| bad("the root's key algorithm is unreadable"))?;
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| ObjectIdentifier::from_bytes(p.as_bytes()).ok());
    let alg: &'static dyn VerificationAlgorithm = match (key_oid, curve, *oid) {
        (k, Some(c), s) if k == EC_PUBLIC_KEY && c == P256 && s == ECDSA_SHA256 => {
            &signature::ECDSA_P256_SHA256_ASN1
        }
        (k, Some(c), s) if k == EC_PUBLIC_KEY && c == P384 && s == ECDSA_SHA384 => {
            &signature::ECDSA_P384_SHA384_ASN1
        }
        (k, _, s) if k == ED25519 && s == ED25519 => &signature::ED25519,
        _ => {
            return Err(bad(format!(
                "signature algorithm {oid} does not match the root's key"
            )));
        }
    };
    UnparsedPublicKey::new(alg, spki.subject_public_key.data.as_ref())
        .verify(signed, sig)
        .map_err(|_| bad("signed by an unknown key: the signature does not verify under this root"))
}

#[cfg(test)]
#[path = "trust_list_tests.rs"]
mod tests;
