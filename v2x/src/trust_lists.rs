//! ETSI TS 102 941 (v1.3.1) trust lists: the certificate revocation list
//! (`ToBeSignedCrl`) and certificate trust lists (`CtlFormat`, as
//! `ToBeSignedRcaCtl` of a root CA or `ToBeSignedTlmCtl` of a trust list
//! manager), with a strict COER codec. They travel as the
//! `certificateRevocationList`, `certificateTrustListTlm` and
//! `certificateTrustListRca` contents of
//! [`crate::ts102941::EtsiTs102941Data`], signed by their issuer.
//!
//! ```text
//! ToBeSignedCrl ::= SEQUENCE { version, thisUpdate Time32, nextUpdate Time32,
//!   entries SEQUENCE OF HashedId8, ... }
//! CtlFormat ::= SEQUENCE { version, nextUpdate Time32, isFullCtl BOOLEAN,
//!   ctlSequence INTEGER (0..255), ctlCommands SEQUENCE OF CtlCommand, ... }
//! CtlCommand ::= CHOICE { add CtlEntry, delete CtlDelete, ... }
//! CtlEntry ::= CHOICE { rca RootCaEntry, ea EaEntry, aa AaEntry, dc DcEntry, tlm TlmEntry, ... }
//! CtlDelete ::= CHOICE { cert HashedId8, dc Url, ... }
//! ```

use crate::V2xError;
use crate::cert::{CertProfile, Certificate};
use crate::coer::{Reader, Writer};
use crate::validity::Time32;

/// Most entries or commands in one list.
pub const MAX_LIST_ENTRIES: usize = 100_000;
/// Longest URL accepted.
pub const MAX_URL_LEN: usize = 2048;

/// `ToBeSignedCrl` (version 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToBeSignedCrl {
    /// `thisUpdate`.
    pub this_update: Time32,
    /// `nextUpdate`: when relying parties fetch the next one.
    pub next_update: Time32,
    /// `entries`: HashedId8 of the revoked CA certificates.
    pub entries: Vec<[u8; 8]>,
}

/// `CtlEntry`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CtlEntry {
    /// `rca`: a root CA (TLM lists only).
    Rca {
        /// `selfsignedRootCa`.
        certificate: Certificate,
        /// `linkRootCaCertificate`.
        link: Option<Certificate>,
    },
    /// `ea`: an enrolment authority and where its AAs and stations reach it.
    Ea {
        /// `eaCertificate`.
        certificate: Certificate,
        /// `aaAccessPoint`.
        aa_access_point: String,
        /// `itsAccessPoint`.
        its_access_point: Option<String>,
    },
    /// `aa`: an authorization authority and where stations reach it.
    Aa {
        /// `aaCertificate`.
        certificate: Certificate,
        /// `accessPoint`.
        access_point: String,
    },
    /// `dc`: a distribution centre and the roots whose lists it serves.
    Dc {
        /// `url`.
        url: String,
        /// `cert`: HashedId8 of those roots.
        roots: Vec<[u8; 8]>,
    },
    /// `tlm`: a trust list manager (TLM lists only).
    Tlm {
        /// `selfSignedTLMCertificate`.
        certificate: Certificate,
        /// `linkTLMCertificate`.
        link: Option<Certificate>,
        /// `accessPoint`.
        access_point: String,
    },
}

/// `CtlCommand`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CtlCommand {
    /// `add` (boxed: an entry carries certificates, a delete only a hash).
    Add(Box<CtlEntry>),
    /// `delete` `cert`: a certificate by HashedId8.
    DeleteCertificate([u8; 8]),
    /// `delete` `dc`: a distribution centre by URL.
    DeleteDc(String),
}

/// Whose list a `CtlFormat` is: the entry types it may add differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CtlKind {
    /// `ToBeSignedRcaCtl`: no `rca` or `tlm` entries.
    Rca,
    /// `ToBeSignedTlmCtl`: no `ea` or `aa` entries.
    Tlm,
}

/// `CtlFormat` (version 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CtlFormat {
    /// `nextUpdate`.
    pub next_update: Time32,
    /// `isFullCtl`: a full list has no `delete` commands.
    pub is_full: bool,
    /// `ctlSequence`.
    pub sequence: u8,
    /// `ctlCommands`.
    pub commands: Vec<CtlCommand>,
}

fn url(w: &mut Writer, u: &str) {
    w.octets(u.as_bytes());
}

fn read_url(r: &mut Reader<'_>) -> Result<String, V2xError> {
    let at = r.pos();
    let raw = r.octets()?;
    if raw.len() > MAX_URL_LEN || !raw.iter().all(|b| b.is_ascii()) {
        return Err(V2xError::Invalid {
            offset: at,
            what: "Url is not an IA5String of at most 2048 characters",
        });
    }
    Ok(String::from_utf8_lossy(raw).into_owned())
}

fn certificate(r: &mut Reader<'_>, bytes: &[u8]) -> Result<Certificate, V2xError> {
    let (cert, used) = Certificate::decode_prefix(CertProfile::EtsiTs103097, &bytes[r.pos()..])?;
    r.take(used)?;
    Ok(cert)
}

fn count(r: &mut Reader<'_>) -> Result<usize, V2xError> {
    let n = r.quantity()?;
    if n > MAX_LIST_ENTRIES {
        return Err(V2xError::Limit("more than 100000 entries in a trust list"));
    }
    Ok(n)
}

impl ToBeSignedCrl {
    pub(crate) fn encode(&self, w: &mut Writer) {
        w.u8(0); // no extensions
        // `Version` is an unconstrained INTEGER here (length octet, value),
        // unlike the `Version (v1)` of EtsiTs102941Data.
        w.int(1);
        w.u32(self.this_update.0);
        w.u32(self.next_update.0);
        w.quantity(self.entries.len());
        for e in &self.entries {
            w.fixed(e);
        }
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, V2xError> {
        no_extensions(r)?;
        version(r)?;
        let this_update = Time32(r.u32()?);
        let next_update = Time32(r.u32()?);
        let n = count(r)?;
        let mut entries = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            entries.push(r.array()?);
        }
        Ok(Self {
            this_update,
            next_update,
            entries,
        })
    }
}

fn no_extensions(r: &mut Reader<'_>) -> Result<(), V2xError> {
    if r.preamble(1)? & 0x80 != 0 {
        return Err(V2xError::Unsupported("trust list extensions"));
    }
    Ok(())
}

/// `Version` (an unconstrained INTEGER in the trust lists) must be 1.
fn version(r: &mut Reader<'_>) -> Result<(), V2xError> {
    let at = r.pos();
    if r.int()? != 1 {
        return Err(V2xError::Invalid {
            offset: at,
            what: "trust list version is not 1",
        });
    }
    Ok(())
}

impl CtlFormat {
    pub(crate) fn encode(&self, w: &mut Writer) {
        w.u8(0); // no extensions
        w.int(1); // unconstrained Version
        w.u32(self.next_update.0);
        w.u8(if self.is_full { 0xff } else { 0 });
        w.u8(self.sequence);
        w.quantity(self.commands.len());
        for c in &self.commands {
            match c {
                CtlCommand::Add(e) => {
                    w.tag(0);
                    encode_entry(w, e);
                }
                CtlCommand::DeleteCertificate(h) => {
                    w.tag(1);
                    w.tag(0);
                    w.fixed(h);
                }
                CtlCommand::DeleteDc(u) => {
                    w.tag(1);
                    w.tag(1);
                    url(w, u);
                }
            }
        }
    }

    /// Decodes a `CtlFormat` of `kind`, refusing the entries that kind may
    /// not add and `delete` commands in a full list.
    pub(crate) fn decode(
        r: &mut Reader<'_>,
        bytes: &[u8],
        kind: CtlKind,
    ) -> Result<Self, V2xError> {
        no_extensions(r)?;
        version(r)?;
        let next_update = Time32(r.u32()?);
        let at = r.pos();
        let is_full = match r.u8()? {
            0 => false,
            0xff => true,
            _ => {
                return Err(V2xError::NonCanonical {
                    offset: at,
                    what: "BOOLEAN other than 00H or FFH",
                });
            }
        };
        let sequence = r.u8()?;
        let n = count(r)?;
        let mut commands = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            let command = match r.tag()? {
                0 => CtlCommand::Add(Box::new(decode_entry(r, bytes)?)),
                1 => match r.tag()? {
                    0 => CtlCommand::DeleteCertificate(r.array()?),
                    1 => CtlCommand::DeleteDc(read_url(r)?),
                    _ => return Err(V2xError::Unsupported("CtlDelete extension")),
                },
                _ => return Err(V2xError::Unsupported("CtlCommand extension")),
            };
            let allowed = match (&command, kind) {
                (CtlCommand::Add(e), CtlKind::Rca) => {
                    !matches!(**e, CtlEntry::Rca { .. } | CtlEntry::Tlm { .. })
                }
                (CtlCommand::Add(e), CtlKind::Tlm) => {
                    !matches!(**e, CtlEntry::Ea { .. } | CtlEntry::Aa { .. })
                }
                (CtlCommand::DeleteCertificate(_) | CtlCommand::DeleteDc(_), _) => !is_full,
            };
            if !allowed {
                return Err(V2xError::Profile(
                    "a command this kind of CTL may not carry (or a delete in a full CTL)",
                ));
            }
            commands.push(command);
        }
        Ok(Self {
            next_update,
            is_full,
            sequence,
            commands,
        })
    }
}

fn encode_entry(w: &mut Writer, e: &CtlEntry) {
    match e {
        CtlEntry::Rca { certificate, link } => {
            w.tag(0);
            w.u8(if link.is_some() { 0x80 } else { 0 });
            w.fixed(certificate.as_coer());
            if let Some(l) = link {
                w.fixed(l.as_coer());
            }
        }
        CtlEntry::Ea {
            certificate,
            aa_access_point,
            its_access_point,
        } => {
            w.tag(1);
            w.u8(if its_access_point.is_some() { 0x80 } else { 0 });
            w.fixed(certificate.as_coer());
            url(w, aa_access_point);
            if let Some(u) = its_access_point {
                url(w, u);
            }
        }
        CtlEntry::Aa {
            certificate,
            access_point,
        } => {
            w.tag(2);
            w.fixed(certificate.as_coer());
            url(w, access_point);
        }
        CtlEntry::Dc { url: u, roots } => {
            w.tag(3);
            url(w, u);
            w.quantity(roots.len());
            for h in roots {
                w.fixed(h);
            }
        }
        CtlEntry::Tlm {
            certificate,
            link,
            access_point,
        } => {
            w.tag(4);
            w.u8(if link.is_some() { 0x80 } else { 0 });
            w.fixed(certificate.as_coer());
            if let Some(l) = link {
                w.fixed(l.as_coer());
            }
            url(w, access_point);
        }
    }
}

/// A self-signed certificate and its optional link certificate (the
/// preamble of `RootCaEntry` and `TlmEntry` says whether it is there).
fn linked(
    r: &mut Reader<'_>,
    bytes: &[u8],
) -> Result<(Certificate, Option<Certificate>), V2xError> {
    let has_link = r.preamble(1)? & 0x80 != 0;
    let own = certificate(r, bytes)?;
    let link = if has_link {
        Some(certificate(r, bytes)?)
    } else {
        None
    };
    Ok((own, link))
}

fn decode_entry(r: &mut Reader<'_>, bytes: &[u8]) -> Result<CtlEntry, V2xError> {
    Ok(match r.tag()? {
        0 => {
            let (certificate, link) = linked(r, bytes)?;
            CtlEntry::Rca { certificate, link }
        }
        1 => {
            let its = r.preamble(1)? & 0x80 != 0;
            let certificate = certificate(r, bytes)?;
            let aa_access_point = read_url(r)?;
            let its_access_point = if its { Some(read_url(r)?) } else { None };
            CtlEntry::Ea {
                certificate,
                aa_access_point,
                its_access_point,
            }
        }
        2 => CtlEntry::Aa {
            certificate: certificate(r, bytes)?,
            access_point: read_url(r)?,
        },
        3 => {
            let url = read_url(r)?;
            let n = count(r)?;
            let mut roots = Vec::with_capacity(n.min(1024));
            for _ in 0..n {
                roots.push(r.array()?);
            }
            CtlEntry::Dc { url, roots }
        }
        4 => {
            let (certificate, link) = linked(r, bytes)?;
            CtlEntry::Tlm {
                certificate,
                link,
                access_point: read_url(r)?,
            }
        }
        _ => return Err(V2xError::Unsupported("CtlEntry extension")),
    })
}
