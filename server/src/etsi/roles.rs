//! `trustca serve --etsi-role ea|aa|dc`: each ETSI authority in its own
//! process from its own directory ([`super::ceremony`]), holding only its
//! own keys (`docs/v2x-etsi.md`, "Separated authorities").
//!
//! * The EA runs in the CA's process (`serve --etsi-role ea --etsi-dir
//!   DIR`): it reads the stations' canonical keys and live trust records
//!   from the CA's store, and its key from DIR.
//! * The EA also holds the root's CRL (installed in its directory): it
//!   refuses validation to an AA the CRL revokes, and issues nothing if
//!   the CRL revokes the EA itself.
//! * The AA runs alone (no CA, no store): its EAs and their
//!   `aaAccessPoint` come from the CTL installed in its directory, less
//!   those the installed CRL revokes; it reaches them over HTTP.
//! * The EA and AA read their installed lists again when an operator
//!   installs new ones ([`RELOAD_EVERY`]): no restart.
//! * The distribution centre runs alone and holds no key: it serves the
//!   CTL and CRL installed in its directory, and a trust list manager's
//!   ECTL if one is installed, and reads them again when an operator
//!   installs new ones ([`RELOAD_EVERY`]).
//!
//! Each warns when an installed list is within [`WARN_BEFORE`] of its
//! `nextUpdate` (re-signing the lists at the offline root is an operator's
//! step) and refuses a directory holding any key not its own.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration as StdDuration;

use tokio_util::sync::CancellationToken;
use trustca_ca::Passphrase;
use trustca_etsi::aa::{AuthorizationAuthority, KnownEa};
use trustca_etsi::ea::EnrolmentAuthority;
use trustca_etsi::trust_lists::{read_crl, read_rca_ctl};
use trustca_store::Storage;
use trustca_v2x::Certificate;
use trustca_v2x::trust_lists::{CtlCommand, CtlEntry};

use super::ceremony::{CRL_FILE, CTL_FILE, EtsiDir, EtsiRole};
use super::deploy::{etsi_err, secret, signing_key, ticket_profile};
use super::http::{EtsiHttp, HttpEaLink, PublishedLists};
use super::{StoreCredentials, StoreStations};
use crate::error::{Result, ServerError};
use crate::ticket_files::ETSI_TICKETS;

/// How often a distribution centre looks for newly installed lists.
pub const RELOAD_EVERY: StdDuration = StdDuration::from_secs(2);
/// Warn when an installed list's `nextUpdate` is this close (or past).
pub const WARN_BEFORE: i64 = 2 * 86_400;
/// At most one staleness warning per list this often.
const WARN_EVERY: i64 = 3600;

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn open(dir: &Path, role: EtsiRole) -> Result<EtsiDir> {
    let d = EtsiDir::open(dir)?;
    if d.role() != role {
        return Err(ServerError::Config(format!(
            "--etsi-role {} but {} is an ETSI {} directory",
            role.as_str(),
            dir.display(),
            d.role().as_str()
        )));
    }
    d.check_own_keys_only()?;
    Ok(d)
}

/// The EA of `dir` over the CA's `storage` (stations and credentials).
/// The root's CRL installed in `dir` is in force and read again when an
/// operator installs a new one, until `stop`: an AA it revokes is refused
/// validation, and if it revokes the EA itself, the EA issues nothing.
pub fn ea_service(
    dir: &Path,
    passphrase: &Passphrase,
    storage: Arc<dyn Storage>,
    stop: CancellationToken,
) -> Result<Arc<EtsiHttp>> {
    let d = open(dir, EtsiRole::Ea)?;
    let keys = d.keystore(passphrase)?;
    let root = d.root()?;
    let cert = d.certificate()?;
    let ea = Arc::new(EnrolmentAuthority::new(
        cert,
        Arc::new(signing_key(&keys.load("ea")?)?),
        secret(&keys, "ea-encryption")?,
        root,
        Arc::new(StoreStations(Arc::clone(&storage))),
        Arc::new(StoreCredentials(storage)),
    ));
    let held = installed(&d, &[CRL_FILE]);
    apply_ea_crl(&ea, &held)?;
    let watched = Arc::clone(&ea);
    watch_lists(d, &[CRL_FILE], held, stop, move |lists| {
        apply_ea_crl(&watched, lists)
    });
    Ok(Arc::new(EtsiHttp {
        ea: Some(ea),
        ..EtsiHttp::default()
    }))
}

/// Puts the installed CRL (if any) in force at `ea`.
fn apply_ea_crl(ea: &EnrolmentAuthority, lists: &[Option<Vec<u8>>]) -> Result<()> {
    let Some(Some(crl)) = lists.first() else {
        tracing::warn!(
            "no CRL installed in the EA's directory: it cannot refuse revoked AAs (trustca etsi install --crl)"
        );
        return Ok(());
    };
    let revoked = ea.install_crl(crl).map_err(etsi_err)?;
    if ea.is_revoked() {
        tracing::error!("the installed CRL revokes this EA: it issues nothing more");
    } else {
        tracing::info!(revoked, "the EA has the root's CRL in force");
    }
    Ok(())
}

/// The contents of `files` in `d` now (`None`: not installed).
fn installed(d: &EtsiDir, files: &[&str]) -> Vec<Option<Vec<u8>>> {
    files
        .iter()
        .map(|f| std::fs::read(d.path().join(f)).ok())
        .collect()
}

/// Every [`RELOAD_EVERY`] until `stop`, reads `files` in `d` again and
/// calls `apply` when they differ from what was last seen (`seen`); a
/// refusal is logged and the authority keeps what it had.
fn watch_lists<F>(
    d: EtsiDir,
    files: &'static [&'static str],
    mut seen: Vec<Option<Vec<u8>>>,
    stop: CancellationToken,
    apply: F,
) where
    F: Fn(&[Option<Vec<u8>>]) -> Result<()> + Send + 'static,
{
    tokio::spawn(async move {
        let mut every = tokio::time::interval(RELOAD_EVERY);
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                _ = every.tick() => {}
            }
            let fresh = installed(&d, files);
            if fresh == seen {
                continue;
            }
            seen = fresh;
            match apply(&seen) {
                Ok(()) => tracing::info!(?files, "newly installed ETSI lists in force"),
                Err(e) => tracing::error!(
                    error = %e,
                    "newly installed ETSI lists refused; keeping the last good ones"
                ),
            }
        }
    });
}

/// The EAs of the installed CTL and the CA certificates the installed CRL
/// revokes (the AA refuses those EAs with `its-aa-invalidea`).
fn known_eas(d: &EtsiDir, root: &Certificate) -> Result<(Vec<KnownEa>, Vec<[u8; 8]>)> {
    let ctl = read_rca_ctl(&d.list(CTL_FILE)?, root).map_err(etsi_err)?;
    let crl = read_crl(&d.list(CRL_FILE)?, root).map_err(etsi_err)?;
    warn_if_near(CTL_FILE, ctl.next_update.to_unix(), now());
    warn_if_near(CRL_FILE, crl.next_update.to_unix(), now());
    let mut eas = Vec::new();
    for command in ctl.commands {
        let CtlCommand::Add(entry) = command else {
            continue;
        };
        if let CtlEntry::Ea {
            certificate,
            aa_access_point,
            ..
        } = *entry
        {
            if crl.entries.contains(&certificate.hashed_id8()) {
                tracing::warn!(ea = %hex::encode(certificate.hashed_id8()), "the installed CRL revokes an EA of the CTL: its stations are refused");
            }
            let link = HttpEaLink::from_url(&aa_access_point).map_err(etsi_err)?;
            eas.push(KnownEa {
                certificate,
                link: Arc::new(link),
            });
        }
    }
    Ok((eas, crl.entries))
}

/// The AA of `dir`: its keys, the ticket profile beside `policies` (or
/// `DIR/policies`, else the shipped one), read again on SIGHUP, its EAs
/// from the installed CTL and CRL, read again when an operator installs
/// new ones, until `stop`.
pub fn aa_service(
    dir: &Path,
    passphrase: &Passphrase,
    policies: Option<&Path>,
    stop: CancellationToken,
) -> Result<Arc<EtsiHttp>> {
    let d = open(dir, EtsiRole::Aa)?;
    let keys = d.keystore(passphrase)?;
    let root = d.root()?;
    let seen = installed(&d, &[CTL_FILE, CRL_FILE]);
    let (eas, revoked) = known_eas(&d, &root)?;
    if eas
        .iter()
        .all(|e| revoked.contains(&e.certificate.hashed_id8()))
    {
        return Err(ServerError::Config(format!(
            "the CTL installed in {} lists no EA this AA may use",
            dir.display()
        )));
    }
    let aa = AuthorizationAuthority::new(
        d.certificate()?,
        Arc::new(signing_key(&keys.load("aa")?)?),
        secret(&keys, "aa-encryption")?,
        ticket_profile(policies, dir)?,
        eas.clone(),
    )
    .map_err(etsi_err)?;
    aa.replace_trust(eas, revoked);
    let aa = Arc::new(aa);
    reload_tickets_on_hangup(&aa, policies, dir, &stop);
    let watched = Arc::clone(&aa);
    let watched_dir = d.clone();
    watch_lists(d, &[CTL_FILE, CRL_FILE], seen, stop, move |_| {
        let (eas, revoked) = known_eas(&watched_dir, &root)?;
        watched.replace_trust(eas, revoked);
        Ok(())
    });
    Ok(Arc::new(EtsiHttp {
        aa: Some(aa),
        ..EtsiHttp::default()
    }))
}

/// Reads the AA's ticket profile again on every SIGHUP, as the CA's
/// processes reload their policies: taken from the next request, or
/// refused (logged) with the profile in force kept when it moves what
/// issued tickets carry or grants what the AA's certificate may not issue.
fn reload_tickets_on_hangup(
    aa: &Arc<AuthorizationAuthority>,
    policies: Option<&Path>,
    dir: &Path,
    stop: &CancellationToken,
) {
    let aa = Arc::downgrade(aa);
    let (policies, dir) = (policies.map(Path::to_path_buf), dir.to_path_buf());
    crate::schedules::on_hangup(stop, move || {
        let Some(aa) = aa.upgrade() else {
            return false;
        };
        let taken = ticket_profile(policies.as_deref(), &dir)
            .map_err(|e| e.to_string())
            .and_then(|fresh| ETSI_TICKETS.take(aa.profile_slot(), fresh, Some(aa.certificate())));
        match taken {
            Ok(()) => tracing::info!("ticket profile reloaded on SIGHUP"),
            Err(e) => tracing::error!(error = %e, "ticket profile reload on SIGHUP refused"),
        }
        true
    });
}

/// One staleness warning if `next_update` is within [`WARN_BEFORE`].
/// Returns whether it warned.
pub fn warn_if_near(list: &str, next_update: i64, now: i64) -> bool {
    let left = next_update - now;
    if left > WARN_BEFORE {
        return false;
    }
    if left <= 0 {
        tracing::warn!(
            list,
            next_update,
            "the installed ETSI {list} is past its nextUpdate: sign and install new lists at the root (trustca etsi root sign-ctl / sign-crl, trustca etsi install)"
        );
    } else {
        tracing::warn!(
            list,
            next_update,
            hours_left = left / 3600,
            "the installed ETSI {list} reaches its nextUpdate soon: sign and install new lists at the root (trustca etsi root sign-ctl / sign-crl, trustca etsi install)"
        );
    }
    true
}

/// The installed lists of a distribution centre, checked against its root.
fn read_lists(d: &EtsiDir, root: &Certificate) -> Result<(PublishedLists, i64, i64)> {
    let (ctl, crl) = (d.list(CTL_FILE)?, d.list(CRL_FILE)?);
    let ctl_next = read_rca_ctl(&ctl, root).map_err(etsi_err)?.next_update;
    let crl_next = read_crl(&crl, root).map_err(etsi_err)?.next_update;
    let lists = PublishedLists {
        root: hex::encode(root.hashed_id8()),
        ctl: ctl.into(),
        crl: crl.into(),
    };
    Ok((lists, ctl_next.to_unix(), crl_next.to_unix()))
}

/// The distribution centre of `dir`; its lists are read again every
/// [`RELOAD_EVERY`] until `stop` (a list that no longer verifies is
/// logged and the last good one kept).
pub fn dc_service(dir: &Path, stop: CancellationToken) -> Result<Arc<EtsiHttp>> {
    let d = open(dir, EtsiRole::Dc)?;
    let root = d.root()?;
    let (lists, ctl_next, crl_next) = read_lists(&d, &root)?;
    let http = Arc::new(EtsiHttp {
        lists: Some(RwLock::new(lists)),
        ..EtsiHttp::default()
    });
    let ectl_files = &[super::tlm::TLM_FILE, super::tlm::ECTL_FILE];
    let seen = installed(&d, ectl_files);
    serve_ectl(&http, &d)?;
    let (ectl_http, ectl_dir) = (Arc::clone(&http), d.clone());
    watch_lists(d.clone(), ectl_files, seen, stop.clone(), move |_| {
        serve_ectl(&ectl_http, &ectl_dir)
    });
    let shared = Arc::clone(&http);
    tokio::spawn(async move {
        let mut warned = [(ctl_next, None), (crl_next, None)];
        let mut every = tokio::time::interval(RELOAD_EVERY);
        loop {
            for ((next, last), name) in warned.iter_mut().zip([CTL_FILE, CRL_FILE]) {
                let t = now();
                if last.is_none_or(|l: i64| t.saturating_sub(l) >= WARN_EVERY)
                    && warn_if_near(name, *next, t)
                {
                    *last = Some(t);
                }
            }
            tokio::select! {
                () = stop.cancelled() => break,
                _ = every.tick() => {}
            }
            match read_lists(&d, &root) {
                Ok((fresh, ctl_next, crl_next)) => {
                    if let Some(Ok(mut slot)) = shared.lists.as_ref().map(|l| l.write())
                        && (slot.ctl != fresh.ctl || slot.crl != fresh.crl)
                    {
                        tracing::info!("the distribution centre serves newly installed lists");
                        *slot = fresh;
                        warned = [(ctl_next, None), (crl_next, None)];
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "the installed ETSI lists do not read; serving the last good ones")
                }
            }
        }
    });
    Ok(http)
}

/// Serves the ECTL installed in the DC's directory `d` (if any) from `http`.
fn serve_ectl(http: &EtsiHttp, d: &EtsiDir) -> Result<()> {
    let fresh = super::tlm::installed_ectl(d)?.map(|(tlm, ectl)| (tlm, ectl.into()));
    match http.ectl.write() {
        Ok(mut slot) => *slot = fresh,
        Err(poisoned) => *poisoned.into_inner() = fresh,
    }
    Ok(())
}

/// A running standalone ETSI authority (`serve --etsi-role aa|dc`).
#[derive(Debug)]
pub struct RunningEtsi {
    /// The bound address.
    pub addr: SocketAddr,
    stop: CancellationToken,
}

impl RunningEtsi {
    /// Stops accepting; connections finish their requests.
    pub fn stop(&self) {
        self.stop.cancel();
    }
}

/// Starts the AA or the distribution centre of `dir` on `listen`, without
/// a CA: `passphrase` opens the AA's keys (a DC has none).
pub async fn start(
    role: EtsiRole,
    dir: &Path,
    listen: SocketAddr,
    passphrase: Option<&Passphrase>,
    policies: Option<&Path>,
) -> Result<RunningEtsi> {
    let stop = CancellationToken::new();
    let http = match role {
        EtsiRole::Aa => {
            let pass = passphrase
                .ok_or_else(|| ServerError::Config("the AA's keys need the passphrase".into()))?;
            aa_service(dir, pass, policies, stop.clone())?
        }
        EtsiRole::Dc => dc_service(dir, stop.clone())?,
        other => {
            return Err(ServerError::Config(format!(
                "--etsi-role {} does not run alone: {}",
                other.as_str(),
                match other {
                    EtsiRole::Ea =>
                        "the EA runs in the CA's process (it reads the stations from the CA's store)",
                    EtsiRole::Tlm => "the trust list manager stays offline",
                    _ => "the root stays offline",
                }
            )));
        }
    };
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| ServerError::Listen(format!("cannot listen on {listen}: {e}")))?;
    let addr = listener
        .local_addr()
        .map_err(|e| ServerError::Listen(format!("cannot read the ETSI address: {e}")))?;
    super::http::spawn(listener, http, stop.clone());
    tracing::info!(%addr, role = role.as_str(), "ETSI TS 102 941 authority on http://{addr}/etsi/");
    Ok(RunningEtsi { addr, stop })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_flagged_within_two_days_of_next_update() {
        assert!(!warn_if_near("ctl.oer", 10 * 86_400, 0));
        assert!(warn_if_near("ctl.oer", WARN_BEFORE, 0));
        assert!(warn_if_near("crl.oer", 0, 100), "past nextUpdate");
    }

    #[test]
    fn ea_access_points_parse_to_host_and_path() {
        let l = HttpEaLink::from_url("http://ea.example:8480/etsi/ea/authorization-validation")
            .map_err(|e| e.to_string());
        let l = l.as_ref().map(|l| (l.host.as_str(), l.path.as_str()));
        assert_eq!(
            l,
            Ok(("ea.example:8480", "/etsi/ea/authorization-validation"))
        );
        let default_port = HttpEaLink::from_url("http://ea.example/v").map(|l| l.host);
        assert_eq!(default_port.ok().as_deref(), Some("ea.example:80"));
        for bad in [
            "https://ea.example/v",
            "http://ea.example",
            "http:///v",
            "http://u@h/v",
        ] {
            assert!(HttpEaLink::from_url(bad).is_err(), "{bad}");
        }
    }
}
