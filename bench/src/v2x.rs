//! The `v2x` stage: SCMS-style authorization tickets (issue 8) through the
//! separated authorities of `trustca-scms` in one process, each on its own
//! sled store:
//!
//! * a vehicle-year: one vehicle asks for 52 periods × 20 tickets (the
//!   shipped profile), from `RegistrationAuthority::submit` through `flush`
//!   (RA → PCA → RA stores the encrypted responses) to `download` and
//!   `TicketOpener::open` of every response (a filled pool: every private
//!   key derived and checked); the median of several runs, split into RA
//!   submit (linkage authorities' pre-linkage values, butterfly expansion),
//!   PCA issuance, RA storing, download and vehicle opening;
//! * sustained tickets per second at the pseudonym CA
//!   (`PseudonymCa::issue_batch` on pre-built requests of 16 vehicles × 4
//!   periods × 20) on one thread and on every core, beside the raw ring
//!   ECDSA P-256 sign-only rate on as many threads, measured in the same run;
//! * the cost of one ticket's parts at the pseudonym CA, each measured
//!   alone.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, ensure};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use trustca_pseudonym::{CaContribution, Caterpillar, LaId, P256PublicKey};
use trustca_scms::{
    BatchPolicy, ChainId, EncryptedPlv, LinkageAuthority, LinkageAuthorityApi, LocalDeployment,
    PseudonymCa, PseudonymCaApi, RegistrationAuthority, ScmsError, TicketOpener, TicketProfile,
    TicketRequest, TicketResponse, VehicleCredential,
};
use trustca_store::{BlobAudit, SledStorage, Storage};
use trustca_v2x::{
    CertProfile, Certificate, Duration as V2xDuration, EncryptedData, LinkageData,
    PsidGroupPermissions, PublicKeyP256, Time32, ToBeSigned, V2xSigner, ValidityPeriod,
};

use crate::report::{Figure, Group, Row};
use crate::sign;

mod mtls;
mod operations;

pub use mtls::year_over_mtls;
pub(crate) use mtls::{enroll_vehicle, register_vehicle_model};
use operations::operations;

/// 2026-01-01T00:00:00Z: the clock of every request.
const NOW: i64 = 1_767_225_600;
/// The vehicles' trust level.
const LEVEL: u8 = 3;
/// Periods of a vehicle-year.
const YEAR_PERIODS: u32 = 52;
/// The pre-built requests of one sustained round: vehicles × periods.
const ROUND_VEHICLES: usize = 16;
const ROUND_PERIODS: u32 = 4;
/// The plaintext of every response (see `trustca_scms::pseudonym_ca`).
const RESPONSE_PLAINTEXT_LEN: usize = 320;

/// What the stage is asked to do.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Timed vehicle-years (after one untimed warm-up).
    pub repeats: usize,
    /// Sustained rounds per thread count (each 16 × 4 × 20 fresh requests).
    pub rounds: usize,
    /// Iterations of each per-operation measurement.
    pub op_iterations: usize,
    /// Seconds per sign-only ceiling measurement.
    pub sign_seconds: f64,
    /// Cores.
    pub threads: usize,
}

/// A fresh ring P-256 signing key.
pub(crate) fn key() -> Result<EcdsaKeyPair> {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .map_err(|_| anyhow!("cannot generate a P-256 key"))?;
    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
        .map_err(|_| anyhow!("cannot load the P-256 key"))
}

/// A V2X root, the pseudonym CA's certificate under it, and its key.
fn hierarchy() -> Result<(Certificate, Arc<EcdsaKeyPair>)> {
    let (root_key, pca_key) = (key()?, key()?);
    let validity = ValidityPeriod {
        start: Time32::from_unix(NOW - 86_400)?,
        duration: V2xDuration::Years(10),
    };
    let root = Certificate::sign_root(
        ToBeSigned::ca(
            "root.v2x.bench",
            PublicKeyP256::from_sec1(root_key.public_key().as_ref())?,
            validity,
            vec![PsidGroupPermissions::all(2, PsidGroupPermissions::EE_APP)],
        ),
        &root_key,
    )?;
    let pca = Certificate::issue(
        ToBeSigned::ca(
            "pca.v2x.bench",
            PublicKeyP256::from_sec1(pca_key.public_key().as_ref())?,
            validity,
            vec![PsidGroupPermissions::all(1, PsidGroupPermissions::EE_APP)],
        ),
        &root,
        &root_key,
    )?;
    Ok((pca, Arc::new(pca_key)))
}

fn random32() -> Result<[u8; 32]> {
    let mut b = [0u8; 32];
    SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| anyhow!("no randomness"))?;
    Ok(b)
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// A linkage authority whose calls are timed.
#[derive(Debug)]
struct TimedLa {
    inner: Arc<LinkageAuthority>,
    spent_ns: AtomicU64,
}

impl LinkageAuthorityApi for TimedLa {
    fn la_id(&self) -> LaId {
        self.inner.la_id()
    }
    fn create_chains(
        &self,
        first_period: u64,
        count: usize,
        actor: &str,
        now: i64,
    ) -> trustca_scms::error::Result<Vec<ChainId>> {
        let t = Instant::now();
        let r = self.inner.create_chains(first_period, count, actor, now);
        self.spent_ns
            .fetch_add(nanos(t.elapsed()), Ordering::Relaxed);
        r
    }
    fn pre_linkage_values(
        &self,
        chain: &ChainId,
        first_period: u64,
        periods: u32,
        count: u32,
        actor: &str,
        now: i64,
    ) -> trustca_scms::error::Result<Vec<EncryptedPlv>> {
        let t = Instant::now();
        let r = self
            .inner
            .pre_linkage_values(chain, first_period, periods, count, actor, now);
        self.spent_ns
            .fetch_add(nanos(t.elapsed()), Ordering::Relaxed);
        r
    }
    fn release(
        &self,
        chain: &ChainId,
        from_period: u64,
        actor: &str,
        now: i64,
    ) -> trustca_scms::error::Result<trustca_pseudonym::SeedRelease> {
        self.inner.release(chain, from_period, actor, now)
    }
}

/// The pseudonym CA as the RA sees it: timed, or only recording the
/// requests (to pre-build them for the sustained measurement).
#[derive(Debug)]
struct PcaSide {
    inner: Arc<PseudonymCa>,
    capture: Option<Mutex<Vec<TicketRequest>>>,
    spent_ns: AtomicU64,
}

impl PseudonymCaApi for PcaSide {
    fn issue_batch(
        &self,
        batch: &[TicketRequest],
        now: i64,
    ) -> trustca_scms::error::Result<Vec<TicketResponse>> {
        if let Some(c) = &self.capture {
            c.lock()
                .map_err(|_| ScmsError::Config("capture poisoned".into()))?
                .extend_from_slice(batch);
            return Ok(Vec::new());
        }
        let t = Instant::now();
        let r = self.inner.issue_batch(batch, now);
        self.spent_ns
            .fetch_add(nanos(t.elapsed()), Ordering::Relaxed);
        r
    }

    fn add_revocation(
        &self,
        revocation: trustca_pseudonym::LinkageRevocation,
        actor: &str,
        now: i64,
    ) -> trustca_scms::error::Result<trustca_scms::LinkageCrl> {
        self.inner.revoke(revocation, actor, now)
    }
}

/// One deployment (four sled stores) with an RA whose LA and PCA calls are
/// timed (or whose PCA calls are captured).
struct World {
    _dir: tempfile::TempDir,
    d: LocalDeployment,
    ra: RegistrationAuthority,
    las: [Arc<TimedLa>; 2],
    pca_side: Arc<PcaSide>,
    pca_cert: Certificate,
    profile: TicketProfile,
}

impl World {
    fn open(capture: bool) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let (pca_cert, pca_key) = hierarchy()?;
        let profile = TicketProfile::default();
        let policy = BatchPolicy {
            min_vehicles: 1,
            max_wait_secs: 0,
            max_requests_per_batch: 20_000,
        };
        let d = LocalDeployment::open(
            dir.path(),
            profile.clone(),
            policy,
            pca_key,
            pca_cert.clone(),
        )?;
        let timed = |la: &Arc<LinkageAuthority>| {
            Arc::new(TimedLa {
                inner: la.clone(),
                spent_ns: AtomicU64::new(0),
            })
        };
        let las = [timed(&d.linkage[0]), timed(&d.linkage[1])];
        let pca_side = Arc::new(PcaSide {
            inner: d.pca.clone(),
            capture: capture.then(|| Mutex::new(Vec::new())),
            spent_ns: AtomicU64::new(0),
        });
        // The RA as `LocalDeployment` wires it, over the same store, with
        // the timed linkage authorities and pseudonym CA.
        let ra = RegistrationAuthority::new(
            d.stores[0].clone(),
            &random32()?,
            [las[0].clone(), las[1].clone()],
            pca_side.clone(),
            profile.clone(),
            policy,
        )?;
        Ok(Self {
            _dir: dir,
            d,
            ra,
            las,
            pca_side,
            pca_cert,
            profile,
        })
    }

    fn la_ns(&self) -> u64 {
        self.las
            .iter()
            .map(|l| l.spent_ns.load(Ordering::Relaxed))
            .sum()
    }
}

fn vehicle(tag: &str, n: usize) -> VehicleCredential {
    VehicleCredential {
        id: format!("urn:trustca:mobility:bench:{tag}-{n}"),
        level: LEVEL,
    }
}

/// One vehicle-year's times, seconds.
#[derive(Debug, Clone, Copy, Default)]
struct Year {
    total: f64,
    submit: f64,
    submit_la: f64,
    pca: f64,
    ra_store: f64,
    download: f64,
    opener_new: f64,
    open: f64,
}

fn vehicle_year(run: usize) -> Result<Year> {
    let w = World::open(false)?;
    let cat = Caterpillar::generate()?;
    let v = vehicle("year", run);
    let current = w
        .profile
        .period_at(NOW)
        .ok_or_else(|| anyhow!("NOW is before the profile's epoch"))?;
    let cpp = w.profile.certificates_per_period;
    let expected = (YEAR_PERIODS * cpp) as usize;

    let started = Instant::now();
    let queued = w.ra.submit(&v, &cat.request(), None, YEAR_PERIODS, NOW)?;
    let t_submit = started.elapsed();
    let la_ns = w.la_ns();
    ensure!(queued as usize == expected, "{queued} tickets queued");
    let t = Instant::now();
    let stored = w.ra.flush(NOW, false)?;
    let t_flush = t.elapsed();
    ensure!(stored == expected, "{stored} responses stored");
    let pca_ns = w.pca_side.spent_ns.load(Ordering::Relaxed);
    let t = Instant::now();
    let responses = w.ra.download(&v)?;
    let t_download = t.elapsed();
    ensure!(
        responses.len() == expected,
        "{} downloaded",
        responses.len()
    );
    let t = Instant::now();
    let opener = TicketOpener::new(&cat, &w.pca_cert, current, YEAR_PERIODS, cpp)?;
    let t_opener_new = t.elapsed();
    // open_all spreads the openings over the cores, as a vehicle's
    // multi-core head unit would.
    let pool = opener
        .open_all(&responses)
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
    let t_open = t.elapsed();
    let total = started.elapsed();
    ensure!(pool.len() == expected, "{} tickets opened", pool.len());
    let pca = pca_ns as f64 / 1e9;
    Ok(Year {
        total: total.as_secs_f64(),
        submit: t_submit.as_secs_f64(),
        submit_la: la_ns as f64 / 1e9,
        pca,
        ra_store: t_flush.as_secs_f64() - pca,
        download: t_download.as_secs_f64(),
        opener_new: t_opener_new.as_secs_f64(),
        open: t_open.as_secs_f64(),
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn year_figures(years: &[Year]) -> Vec<Figure> {
    let pick = |f: fn(&Year) -> f64| median(years.iter().map(f).collect());
    let totals: Vec<f64> = years.iter().map(|y| y.total).collect();
    let lo = totals.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = totals.iter().copied().fold(0.0, f64::max);
    let n = years.len();
    let ms = |s: f64| s * 1e3;
    let total = pick(|y| y.total);
    let submit = pick(|y| y.submit);
    let submit_la = pick(|y| y.submit_la);
    vec![
        Figure::new(
            "v2x_year_total_ms",
            "vehicle-year (52 × 20 tickets): submit → flush → download → open all",
            ms(total),
            "ms",
        )
        .aim(true, 150.0)
        .note(format!(
            "median of {n}; min {:.1}, max {:.1} ms; old X.509 path 350-390 ms",
            ms(lo),
            ms(hi)
        )),
        Figure::new(
            "v2x_year_submit_ms",
            "  RA submit (LA pre-linkage values + butterfly expansion)",
            ms(submit),
            "ms",
        )
        .note(format!("median of {n}; includes registering the vehicle")),
        Figure::new(
            "v2x_year_submit_la_ms",
            "    of which the two linkage authorities (chains + pre-linkage values)",
            ms(submit_la),
            "ms",
        ),
        Figure::new(
            "v2x_year_submit_expansion_ms",
            "    of which RA expansion (cocoon keys) and queueing",
            ms(median(
                years.iter().map(|y| y.submit - y.submit_la).collect(),
            )),
            "ms",
        ),
        Figure::new(
            "v2x_year_pca_ms",
            "  PCA issue_batch (1040 tickets, one commit)",
            ms(pick(|y| y.pca)),
            "ms",
        ),
        Figure::new(
            "v2x_year_ra_store_ms",
            "  RA flush minus PCA (shuffle, storing the responses)",
            ms(pick(|y| y.ra_store)),
            "ms",
        ),
        Figure::new(
            "v2x_year_download_ms",
            "  RA download (1040 responses)",
            ms(pick(|y| y.download)),
            "ms",
        ),
        Figure::new(
            "v2x_year_open_ms",
            "  vehicle: TicketOpener::new + open of 1040 (keys derived and checked)",
            ms(pick(|y| y.open)),
            "ms",
        ),
        Figure::new(
            "v2x_year_opener_new_ms",
            "    of which TicketOpener::new (1040 cocoon keys and their ids)",
            ms(pick(|y| y.opener_new)),
            "ms",
        ),
    ]
}

/// `rounds` sets of 16 vehicles × 4 periods × 20 requests, valid at `w`'s
/// pseudonym CA (each vehicle new, so no linkage value repeats).
fn build_requests(w: &World, tag: &str, rounds: usize) -> Result<Vec<Vec<TicketRequest>>> {
    let capture = w
        .pca_side
        .capture
        .as_ref()
        .ok_or_else(|| anyhow!("world does not capture"))?;
    let mut out = Vec::with_capacity(rounds);
    for round in 0..rounds {
        for n in 0..ROUND_VEHICLES {
            let cat = Caterpillar::generate()?;
            w.ra.submit(
                &vehicle(&format!("{tag}-{round}"), n),
                &cat.request(),
                None,
                ROUND_PERIODS,
                NOW,
            )?;
        }
        w.ra.flush(NOW, true)?;
        let batch = std::mem::take(&mut *capture.lock().map_err(|_| anyhow!("capture poisoned"))?);
        out.push(batch);
    }
    Ok(out)
}

/// Issues every round with `threads` threads (each its share of a round in
/// one `issue_batch`); returns the tickets issued and the wall time.
fn issue_rounds(
    pca: &Arc<PseudonymCa>,
    rounds: Vec<Vec<TicketRequest>>,
    threads: usize,
) -> Result<(u64, Duration)> {
    let threads = threads.max(1);
    let mut shares: Vec<Vec<Vec<TicketRequest>>> = (0..threads).map(|_| Vec::new()).collect();
    for round in rounds {
        let per = round.len().div_ceil(threads);
        for (k, chunk) in round.chunks(per.max(1)).enumerate() {
            if let Some(s) = shares.get_mut(k) {
                s.push(chunk.to_vec());
            }
        }
    }
    let barrier = Arc::new(std::sync::Barrier::new(threads));
    let started = Instant::now();
    let handles: Vec<_> = shares
        .into_iter()
        .map(|share| {
            let pca = Arc::clone(pca);
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || -> Result<u64> {
                let mut n = 0u64;
                for batch in share {
                    // Rounds in step: both threads issue round k together.
                    barrier.wait();
                    let answers = pca.issue_batch(&batch, NOW)?;
                    for a in &answers {
                        if let Err(e) = &a.outcome {
                            return Err(anyhow!("refused: {e}"));
                        }
                    }
                    n += answers.len() as u64;
                }
                Ok(n)
            })
        })
        .collect();
    let mut issued = 0;
    for h in handles {
        issued += h
            .join()
            .map_err(|_| anyhow!("issuing thread panicked"))?
            .context("issuing thread")?;
    }
    Ok((issued, started.elapsed()))
}

/// The `v2x` stage.
pub fn measure(plan: &Plan) -> Result<(Vec<Row>, Vec<Figure>)> {
    let mut rows = Vec::new();
    let mut figures = Vec::new();
    let threads = plan.threads.max(1);

    crate::progress("v2x: vehicle-year, warm-up");
    vehicle_year(0)?;
    let mut years = Vec::with_capacity(plan.repeats);
    for run in 1..=plan.repeats.max(1) {
        crate::progress(&format!("v2x: vehicle-year {run}/{}", plan.repeats.max(1)));
        years.push(vehicle_year(run)?);
    }
    figures.extend(year_figures(&years));

    let d = Duration::from_secs_f64(plan.sign_seconds.max(0.1));
    crate::progress("v2x: ECDSA P-256 sign-only ceiling, 1 thread");
    let sign_1 = sign::measure_sign_only(
        "v2x_sign_only_1_thread",
        "ECDSA P-256 sign only, 1 thread",
        1,
        d,
    )?;
    crate::progress("v2x: ECDSA P-256 sign-only ceiling, all cores");
    let sign_n = sign::measure_sign_only(
        "v2x_sign_only_all_cores",
        "ECDSA P-256 sign only, all cores",
        threads,
        d,
    )?;

    let w = World::open(true)?;
    let rounds = plan.rounds.max(1);
    crate::progress(&format!(
        "v2x: building 2 × {rounds} × {} ticket requests",
        ROUND_VEHICLES * ROUND_PERIODS as usize * 20
    ));
    let one = build_requests(&w, "one", rounds)?;
    let all = build_requests(&w, "all", rounds)?;
    // Warm-up of the PCA on requests of their own.
    issue_rounds(&w.d.pca, build_requests(&w, "warm", 1)?, threads)?;
    crate::progress("v2x: pseudonym CA issue_batch, 1 thread");
    let (n1, e1) = issue_rounds(&w.d.pca, one, 1)?;
    crate::progress(&format!("v2x: pseudonym CA issue_batch, {threads} threads"));
    let (nn, en) = issue_rounds(&w.d.pca, all, threads)?;
    let per_round = ROUND_VEHICLES * ROUND_PERIODS as usize * 20;
    let pca_1 = Row {
        key: "v2x_pca_1_thread",
        label: "PCA tickets (issue_batch), 1 caller".into(),
        group: Group::Breakdown,
        ops: n1,
        errors: 0,
        elapsed: e1,
        latency: None,
        note: format!(
            "{rounds} batches of {per_round} (16 vehicles × 4 periods × 20); issue_batch spreads each batch over every core"
        ),
    };
    let pca_n = Row {
        key: "v2x_pca_all_cores",
        label: format!("PCA tickets (issue_batch), {threads} callers"),
        group: Group::Breakdown,
        ops: nn,
        errors: 0,
        elapsed: en,
        latency: None,
        note: format!("{rounds} batches of {per_round}, split over {threads} calling threads"),
    };
    let ratio = |pca: &Row, sign: &Row| {
        if sign.rate() > 0.0 {
            pca.rate() / sign.rate() * 100.0
        } else {
            0.0
        }
    };
    figures.push(
        Figure::new(
            "v2x_pca_vs_sign_1_caller_pct",
            format!("PCA tickets/s (1 caller) ÷ ECDSA sign-only/s on {threads} threads"),
            ratio(&pca_1, &sign_n),
            "%",
        )
        .aim(false, 50.0)
        .note(format!(
            "{:.0} tickets/s vs {:.0} signs/s (both on every core)",
            pca_1.rate(),
            sign_n.rate()
        )),
    );
    figures.push(
        Figure::new(
            "v2x_pca_vs_sign_all_cores_pct",
            format!("PCA tickets/s ({threads} callers) ÷ ECDSA sign-only/s on {threads} threads"),
            ratio(&pca_n, &sign_n),
            "%",
        )
        .aim(false, 50.0)
        .note(format!(
            "{:.0} tickets/s vs {:.0} signs/s",
            pca_n.rate(),
            sign_n.rate()
        )),
    );
    let per_ticket_us = (pca_1.rate() > 0.0).then(|| 1e6 / pca_1.rate());
    rows.extend([sign_1, sign_n, pca_1, pca_n]);
    drop(w);

    crate::progress(&format!(
        "v2x: per-operation costs, {} iterations each",
        plan.op_iterations
    ));
    figures.extend(operations(plan.op_iterations, per_ticket_us)?);
    Ok((rows, figures))
}
