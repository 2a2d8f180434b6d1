//! The station's side of the TS 102 941 transport (clause 6.3: HTTP, TLS
//! optional, the messages protect themselves): `POST` of
//! `application/x-its-request` to the EA's and AA's access points, and
//! `GET` of the root's CTL and CRL (and a trust list manager's ECTL) from
//! the distribution centre, each list checked against the anchor the
//! vehicle trusts. One connection per exchange, a time limit on each and a
//! cap on what is read.

use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use trustca_api::etsi_http::plain::{self, ExchangeLimits, split_url};
use trustca_api::etsi_http::{CRL_PREFIX, CTL_PREFIX, ECTL_PREFIX};
use trustca_etsi::trust_lists::{read_crl, read_rca_ctl, read_tlm_ectl};
use trustca_v2x::trust_lists::{CtlCommand, CtlEntry, CtlFormat, ToBeSignedCrl};
use trustca_v2x::{CertProfile, Certificate, Time32};

/// How long one exchange may take to connect, send and answer, and the
/// largest answer read (a CTL with many authorities stays far below).
const LIMITS: ExchangeLimits = ExchangeLimits {
    timeout: Duration::from_secs(30),
    max_answer: 1 << 20,
};

/// One HTTP/1.1 exchange with `url`: `POST` with `body` as a TS 102 941
/// request, or `GET` without; the body of a `200` answer.
pub fn exchange(url: &str, body: Option<&[u8]>) -> Result<Vec<u8>> {
    let (host, path) = split_url(url).map_err(|why| anyhow!(why))?;
    plain::exchange(&host, &path, body, LIMITS).map_err(|why| anyhow!("{url}: {why}"))
}

/// An authority the root's CTL lists, and where stations reach it.
#[derive(Debug, Clone)]
pub struct Listed {
    /// Its certificate (issued by the root).
    pub certificate: Certificate,
    /// Where stations POST to it (`itsAccessPoint` / `accessPoint`).
    pub access_point: Option<String>,
    /// Whether the root's CRL lists it.
    pub revoked: bool,
}

/// The root's lists as the distribution centre served them, verified.
#[derive(Debug)]
pub struct TrustLists {
    /// The CTL.
    pub ctl: CtlFormat,
    /// The CRL.
    pub crl: ToBeSignedCrl,
    /// The enrolment authorities on the CTL.
    pub eas: Vec<Listed>,
    /// The authorization authorities on the CTL.
    pub aas: Vec<Listed>,
    /// Whether a trust list manager's ECTL was read (and names the root).
    pub ectl_checked: bool,
}

impl TrustLists {
    /// The first EA and AA on the CTL that the CRL does not revoke.
    pub fn usable(&self) -> Result<(&Listed, &Listed)> {
        let ea = self
            .eas
            .iter()
            .find(|l| !l.revoked)
            .context("the root's CTL lists no enrolment authority the CRL leaves valid")?;
        let aa = self
            .aas
            .iter()
            .find(|l| !l.revoked)
            .context("the root's CTL lists no authorization authority the CRL leaves valid")?;
        Ok((ea, aa))
    }

    /// The listed authority with this HashedId8.
    pub fn find(&self, id: [u8; 8]) -> Option<&Listed> {
        self.eas
            .iter()
            .chain(&self.aas)
            .find(|l| l.certificate.hashed_id8() == id)
    }
}

/// Reads a TS 103 097 certificate (COER) the vehicle was given.
pub fn read_etsi_certificate(bytes: &[u8], what: &str) -> Result<Certificate> {
    Certificate::from_coer_in(CertProfile::EtsiTs103097, bytes)
        .map_err(|e| anyhow!("{what} is not an ETSI TS 103 097 certificate (COER): {e}"))
}

fn current(next_update: Time32, what: &str, now: i64) -> Result<()> {
    if next_update.to_unix() < now {
        bail!(
            "the {what} is past its nextUpdate ({}): the distribution centre serves no current list",
            crate::show::unix(next_update.to_unix())
        );
    }
    Ok(())
}

/// Fetches the CTL and CRL of `root` from the distribution centre `dc`
/// (and, with `tlm`, the TLM's ECTL, which must name the root), checks
/// their signatures and `nextUpdate`.
pub fn fetch_lists(
    dc: &str,
    root: &Certificate,
    tlm: Option<&Certificate>,
    now: i64,
) -> Result<TrustLists> {
    root.verify_signed_by(None)
        .map_err(|e| anyhow!("the root certificate is not a self-signed root: {e}"))?;
    let dc = dc.trim_end_matches('/');
    let root_id = hex::encode(root.hashed_id8());
    let ectl_checked = match tlm {
        Some(tlm) => {
            let url = format!("{dc}{ECTL_PREFIX}{}", hex::encode(tlm.hashed_id8()));
            let (ectl, roots) = read_tlm_ectl(&exchange(&url, None)?, tlm).map_err(|e| {
                anyhow!("the ECTL does not verify with the trust list manager: {e}")
            })?;
            current(ectl.next_update, "ECTL", now)?;
            if !roots.iter().any(|r| r.hashed_id8() == root.hashed_id8()) {
                bail!("the root {root_id} is not on the trust list manager's ECTL");
            }
            true
        }
        None => false,
    };
    let ctl = read_rca_ctl(
        &exchange(&format!("{dc}{CTL_PREFIX}{root_id}"), None)?,
        root,
    )
    .map_err(|e| anyhow!("the CTL does not verify with the root {root_id}: {e}"))?;
    current(ctl.next_update, "CTL", now)?;
    let crl = read_crl(
        &exchange(&format!("{dc}{CRL_PREFIX}{root_id}"), None)?,
        root,
    )
    .map_err(|e| anyhow!("the CRL does not verify with the root {root_id}: {e}"))?;
    current(crl.next_update, "CRL", now)?;
    let revoked = |c: &Certificate| crl.entries.contains(&c.hashed_id8());
    let (mut eas, mut aas) = (Vec::new(), Vec::new());
    for command in &ctl.commands {
        let CtlCommand::Add(entry) = command else {
            continue;
        };
        match &**entry {
            CtlEntry::Ea {
                certificate,
                its_access_point,
                ..
            } => eas.push(Listed {
                revoked: revoked(certificate),
                certificate: certificate.clone(),
                access_point: its_access_point.clone(),
            }),
            CtlEntry::Aa {
                certificate,
                access_point,
            } => aas.push(Listed {
                revoked: revoked(certificate),
                certificate: certificate.clone(),
                access_point: Some(access_point.clone()),
            }),
            _ => {}
        }
    }
    Ok(TrustLists {
        ctl,
        crl,
        eas,
        aas,
        ectl_checked,
    })
}
