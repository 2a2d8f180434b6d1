//! ETSI TS 102 941 enrolment and authorization (issue 24), beside the raw
//! ECDSA P-256 sign and ECIES rates measured in the same run.
//!
//! A root, an EA and an AA in the TS 103 097 profile are made in memory
//! (one station registered, level 4). Two measurements:
//!
//! * **Server time**, in process: `EnrolmentAuthority::answer_enrolment`
//!   per enrolment request, and `AuthorizationAuthority::answer` per
//!   authorization request with the EA reached in process (so it includes
//!   the EA's validation: everything both authorities do for one ticket).
//!   The requests are built by the station beforehand, untimed. A week of
//!   20 tickets is 20 authorizations.
//! * **Round trips over loopback**: the EA and AA on two plain-HTTP
//!   listeners (`trustca_server::etsi::http`, the AA reaching the EA over
//!   HTTP, as `serve` runs them), `threads` stations in parallel, each
//!   building its request, POSTing it and opening the answer (signature
//!   checked, decrypted). Client and server share the machine's cores.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, ensure};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{EcdsaKeyPair, KeyPair};
use trustca_etsi::aa::{AuthorizationAuthority, EaLink, KnownEa};
use trustca_etsi::ea::{EnrolmentAuthority, Station};
use trustca_etsi::memory::{MemoryCredentials, MemoryStations};
use trustca_etsi::profile;
use trustca_etsi::station::{
    EnrolAs, authorization_request, authorization_response, enrolment_request, enrolment_response,
};
use trustca_scms::TicketProfile;
use trustca_server::etsi::http::{
    AUTHORIZATION_PATH, ENROLMENT_PATH, EtsiHttp, HttpEaLink, REQUEST_TYPE,
};
use trustca_v2x::ts102941::{AuthorizationResponseCode, EnrolmentResponseCode};
use trustca_v2x::{
    Certificate, Duration as V2xDuration, EncryptedData, PsidSsp, PublicKeyP256, Ssp,
    SubjectAssurance, Time32, ValidityPeriod, encryption_public_key,
};

use crate::est::{Sender, connect_plain, post_once};
use crate::report::{Figure, Group, Row};
use crate::v2x::key;

const ITS_ID: &[u8] = b"urn:trustca:automotive:Acme:Roadster:BENCH0001";
/// Tickets a vehicle asks for in a week (the issue's aim).
const WEEK_TICKETS: f64 = 20.0;
/// The aim for a week's tickets, in milliseconds of server time.
const WEEK_AIM_MS: f64 = 10.0;

/// What the stage runs.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Requests of each kind, in process and over loopback.
    pub requests: usize,
    /// Seconds of each ceiling (ECDSA sign, ECIES).
    pub sign_seconds: f64,
    /// Stations in parallel over loopback.
    pub threads: usize,
}

fn public(k: &EcdsaKeyPair) -> Result<PublicKeyP256> {
    Ok(PublicKeyP256::from_sec1(k.public_key().as_ref())?)
}

fn encryption_secret() -> Result<([u8; 32], PublicKeyP256)> {
    for _ in 0..16 {
        let mut s = [0u8; 32];
        SystemRandom::new()
            .fill(&mut s)
            .map_err(|_| anyhow!("rng"))?;
        if let Ok(p) = encryption_public_key(&s) {
            return Ok((s, p));
        }
    }
    Err(anyhow!("no encryption key"))
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// The CAM permission a station asks for.
fn cam() -> Vec<PsidSsp> {
    vec![PsidSsp {
        psid: 36,
        ssp: Some(Ssp::Bitmap(vec![1, 0, 0])),
    }]
}

/// A root, EA and AA with one registered station.
struct Deployment {
    ea_cert: Certificate,
    aa_cert: Certificate,
    ea: Arc<EnrolmentAuthority>,
    aa_parts: (Arc<EcdsaKeyPair>, [u8; 32]),
    tickets: TicketProfile,
    canonical: EcdsaKeyPair,
}

impl Deployment {
    fn new() -> Result<Self> {
        let tickets =
            TicketProfile::from_toml(include_str!("../../policies/v2x-tickets-etsi.toml"))?;
        let validity = ValidityPeriod {
            start: Time32::from_unix(now() - 3600)?,
            duration: V2xDuration::Years(1),
        };
        let level4 = SubjectAssurance::from_trust_level(4)?;
        let root_key = key()?;
        let root = profile::root_ca("bench-root", public(&root_key)?, validity, level4);
        let root = Certificate::sign_root(root, &root_key)?;
        let (ea_key, (ea_secret, ea_enc)) = (key()?, encryption_secret()?);
        let ea_tbs =
            profile::enrolment_authority("bench-ea", public(&ea_key)?, ea_enc, validity, level4);
        let ea_cert = Certificate::issue(ea_tbs, &root, &root_key)?;
        let (aa_key, (aa_secret, aa_enc)) = (key()?, encryption_secret()?);
        let aa_tbs = profile::authorization_authority(
            "bench-aa",
            public(&aa_key)?,
            aa_enc,
            validity,
            level4,
            &tickets,
        );
        let aa_cert = Certificate::issue(aa_tbs, &root, &root_key)?;
        let canonical = key()?;
        let stations = MemoryStations::default();
        stations.register(
            ITS_ID,
            Station {
                canonical_key: public(&canonical)?,
                trust_level: 4,
                active: true,
            },
        );
        let ea = EnrolmentAuthority::new(
            ea_cert.clone(),
            Arc::new(ea_key),
            ea_secret,
            root,
            Arc::new(stations),
            Arc::new(MemoryCredentials::default()),
        );
        Ok(Self {
            ea_cert,
            aa_cert,
            ea: Arc::new(ea),
            aa_parts: (Arc::new(aa_key), aa_secret),
            tickets,
            canonical,
        })
    }

    /// The AA, reaching its EA through `link`.
    fn aa(&self, link: Arc<dyn EaLink>) -> Result<AuthorizationAuthority> {
        let known = KnownEa {
            certificate: self.ea_cert.clone(),
            link,
        };
        let (key, secret) = (&self.aa_parts.0, self.aa_parts.1);
        Ok(AuthorizationAuthority::new(
            self.aa_cert.clone(),
            Arc::clone(key) as Arc<_>,
            secret,
            self.tickets.clone(),
            vec![known],
        )?)
    }

    /// An enrolment credential and its key, through the EA in process.
    fn credential(&self) -> Result<(Certificate, EcdsaKeyPair)> {
        let ec_key = key()?;
        let who = EnrolAs::Canonical {
            its_id: ITS_ID,
            key: &self.canonical,
        };
        let pending = enrolment_request(who, &ec_key, cam(), &self.ea_cert, now())?;
        let answer = self
            .ea
            .answer_enrolment(&pending.message, now())
            .map_err(|e| anyhow!("{}", e.0))?;
        let r = enrolment_response(&pending, &answer.message, &self.ea_cert)?;
        let ec = r.certificate.context("no credential")?;
        Ok((ec, ec_key))
    }
}

/// The EA in this process, as the AA's link (no transport).
#[derive(Debug)]
struct InProcess(Arc<EnrolmentAuthority>);

impl EaLink for InProcess {
    fn validate(&self, message: &[u8]) -> Result<Vec<u8>, trustca_etsi::EtsiError> {
        self.0
            .answer_validation(message, now())
            .map(|a| a.message)
            .map_err(|e| trustca_etsi::EtsiError::Profile(e.0.to_owned()))
    }
}

fn row(
    key: &'static str,
    label: String,
    group: Group,
    ops: u64,
    elapsed: Duration,
    note: String,
) -> Row {
    Row {
        key,
        label,
        group,
        ops,
        errors: 0,
        elapsed,
        latency: None,
        note,
    }
}

/// ECIES to a certificate's `encryptionKey` and back (what every request
/// and validation costs once each way), one thread, for `seconds`.
fn ecies_ceiling(d: &Deployment, seconds: f64) -> Result<Row> {
    let plain = [7u8; 256];
    let secret = d.aa_parts.1;
    let deadline = Instant::now() + Duration::from_secs_f64(seconds.max(0.1));
    let start = Instant::now();
    let mut ops = 0u64;
    while Instant::now() < deadline {
        let sealed = EncryptedData::seal_to_certificate(&d.aa_cert, &plain)?;
        let opened = sealed.open_as_certificate(&secret, &d.aa_cert)?;
        ensure!(opened.len() == plain.len(), "ECIES round trip");
        ops += 1;
    }
    Ok(row(
        "etsi_ecies_1_thread",
        "ECIES P-256 + AES-128-CCM seal and open, 1 thread".into(),
        Group::Ceiling,
        ops,
        start.elapsed(),
        "256-octet payload to the AA's encryptionKey, opened with its secret".into(),
    ))
}

/// Server time per enrolment and per authorization, in process.
fn server_time(d: &Deployment, n: usize) -> Result<(Row, Row, f64)> {
    let n = n.max(1);
    let mut requests = Vec::with_capacity(n);
    for _ in 0..n {
        let who = EnrolAs::Canonical {
            its_id: ITS_ID,
            key: &d.canonical,
        };
        requests.push(enrolment_request(who, &key()?, cam(), &d.ea_cert, now())?);
    }
    let start = Instant::now();
    for r in &requests {
        let a =
            d.ea.answer_enrolment(&r.message, now())
                .map_err(|e| anyhow!(e.0))?;
        ensure!(
            a.code == EnrolmentResponseCode::Ok,
            "enrolment {:?}",
            a.code
        );
    }
    let enrol = start.elapsed();
    let aa = d.aa(Arc::new(InProcess(Arc::clone(&d.ea))))?;
    let (ec, ec_key) = d.credential()?;
    let mut requests = Vec::with_capacity(n);
    for _ in 0..n {
        let ticket_key = public(&key()?)?;
        requests.push(authorization_request(
            ticket_key,
            cam(),
            &ec,
            &ec_key,
            &d.ea_cert,
            &d.aa_cert,
            now(),
        )?);
    }
    let start = Instant::now();
    for r in &requests {
        let a = aa.answer(&r.message, now()).map_err(|e| anyhow!(e.0))?;
        ensure!(
            a.code == AuthorizationResponseCode::Ok,
            "authorization {:?}",
            a.code
        );
    }
    let authorize = start.elapsed();
    let per_ticket_ms = authorize.as_secs_f64() * 1000.0 / n as f64;
    Ok((
        row(
            "etsi_enrol_server",
            "ETSI enrolment, EA server time (in process), 1 thread".into(),
            Group::Breakdown,
            n as u64,
            enrol,
            "answer_enrolment: open, 2 signatures checked, EC signed, answer signed and encrypted"
                .into(),
        ),
        row(
            "etsi_authorize_server",
            "ETSI authorization, AA + EA server time (in process), 1 thread".into(),
            Group::Breakdown,
            n as u64,
            authorize,
            "AA answer incl. the EA's validation request and answer (in process, no HTTP)".into(),
        ),
        per_ticket_ms,
    ))
}

/// POSTs `body` to `uri` on `sender`, returns the answer.
async fn post(sender: &mut Sender, uri: &hyper::Uri, body: Vec<u8>) -> Result<Vec<u8>> {
    let (status, answer) = post_once(sender, uri, REQUEST_TYPE, body.into()).await?;
    ensure!(status.is_success(), "{uri}: {status}");
    Ok(answer.to_vec())
}

/// Runs `threads` copies of `work` as tasks; the time until all finished.
async fn in_parallel<F, Fut>(threads: usize, work: F) -> Result<Duration>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Result<()>> + Send + 'static,
{
    let start = Instant::now();
    let tasks: Vec<_> = (0..threads.max(1)).map(|i| tokio::spawn(work(i))).collect();
    for t in tasks {
        t.await??;
    }
    Ok(start.elapsed())
}

/// Round trips over loopback: `n` of each kind by `threads` stations.
async fn loopback(d: Arc<Deployment>, n: usize, threads: usize) -> Result<(Row, Row)> {
    let stop = tokio_util::sync::CancellationToken::new();
    let ea_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let ea_addr = ea_listener.local_addr()?;
    let ea_http = Arc::new(EtsiHttp {
        ea: Some(Arc::clone(&d.ea)),
        ..EtsiHttp::default()
    });
    trustca_server::etsi::http::spawn(ea_listener, ea_http, stop.clone());
    let aa_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let aa_addr = aa_listener.local_addr()?;
    let aa = d.aa(Arc::new(HttpEaLink::local(ea_addr)))?;
    let aa_http = Arc::new(EtsiHttp {
        aa: Some(Arc::new(aa)),
        ..EtsiHttp::default()
    });
    trustca_server::etsi::http::spawn(aa_listener, aa_http, stop.clone());
    let per = n.div_ceil(threads.max(1));
    let enrol_uri: hyper::Uri = format!("http://{ea_addr}{ENROLMENT_PATH}").parse()?;
    let enrol = in_parallel(threads, |_| {
        let (d, uri) = (Arc::clone(&d), enrol_uri.clone());
        async move {
            let mut sender = connect_plain(ea_addr).await?;
            for _ in 0..per {
                let who = EnrolAs::Canonical {
                    its_id: ITS_ID,
                    key: &d.canonical,
                };
                let pending = enrolment_request(who, &key()?, cam(), &d.ea_cert, now())?;
                let answer = post(&mut sender, &uri, pending.message.clone()).await?;
                let r = enrolment_response(&pending, &answer, &d.ea_cert)?;
                let code = r.response_code;
                ensure!(code == EnrolmentResponseCode::Ok, "{code:?}");
            }
            Ok(())
        }
    })
    .await?;
    let (ec, ec_key) = d.credential()?;
    let (ec, ec_key) = (Arc::new(ec), Arc::new(ec_key));
    let at_uri: hyper::Uri = format!("http://{aa_addr}{AUTHORIZATION_PATH}").parse()?;
    let authorize = in_parallel(threads, |_| {
        let (d, uri) = (Arc::clone(&d), at_uri.clone());
        let (ec, ec_key) = (Arc::clone(&ec), Arc::clone(&ec_key));
        async move {
            let mut sender = connect_plain(aa_addr).await?;
            for _ in 0..per {
                let ticket_key = public(&key()?)?;
                let (ea, aa) = (&d.ea_cert, &d.aa_cert);
                let pending =
                    authorization_request(ticket_key, cam(), &ec, ec_key.as_ref(), ea, aa, now())?;
                let answer = post(&mut sender, &uri, pending.message.clone()).await?;
                let code = authorization_response(&pending, &answer, aa)?.response_code;
                ensure!(code == AuthorizationResponseCode::Ok, "{code:?}");
            }
            Ok(())
        }
    })
    .await?;
    stop.cancel();
    let ops = (per * threads.max(1)) as u64;
    let note = format!(
        "{threads} stations in parallel, plain HTTP/1.1 keep-alive; the station's own signing and ECIES share the cores"
    );
    Ok((
        row(
            "etsi_enrol_loopback",
            "ETSI enrolment round trips over loopback HTTP".into(),
            Group::Enrollment,
            ops,
            enrol,
            note.clone(),
        ),
        row(
            "etsi_authorize_loopback",
            "ETSI authorization round trips over loopback HTTP (AA → EA over HTTP)".into(),
            Group::Enrollment,
            ops,
            authorize,
            note,
        ),
    ))
}

/// The stage: ceilings, server time and loopback round trips in one run.
pub async fn measure(plan: &Plan) -> Result<(Vec<Row>, Vec<Figure>)> {
    let d = Arc::new(Deployment::new()?);
    let seconds = Duration::from_secs_f64(plan.sign_seconds.max(0.1));
    crate::progress("etsi: ECDSA sign-only and ECIES ceilings, 1 thread");
    let mut rows = vec![
        crate::sign::measure_sign_only(
            "etsi_sign_only_1_thread",
            "ECDSA P-256 sign only, 1 thread",
            1,
            seconds,
        )?,
        ecies_ceiling(&d, plan.sign_seconds)?,
    ];
    crate::progress(&format!(
        "etsi: server time of {} enrolments and authorizations",
        plan.requests
    ));
    let (enrol, authorize, per_ticket_ms) = server_time(&d, plan.requests)?;
    rows.extend([enrol, authorize]);
    crate::progress(&format!(
        "etsi: {} round trips of each over loopback",
        plan.requests
    ));
    let (enrol, authorize) = loopback(Arc::clone(&d), plan.requests, plan.threads).await?;
    rows.extend([enrol, authorize]);
    let week = Figure::new(
        "etsi_week_of_tickets_server_ms",
        "A week of 20 ETSI tickets: AA + EA server time",
        per_ticket_ms * WEEK_TICKETS,
        "ms",
    )
    .aim(true, WEEK_AIM_MS)
    .note("20 × the in-process authorization time (AA and EA, one thread, no transport)");
    Ok((rows, vec![week]))
}
