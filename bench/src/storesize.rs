//! How big the store grows per enrolled device, and how much memory a server
//! holding a million devices uses.
//!
//! Enrolling a million devices over gRPC takes too long here, so the store is
//! filled directly through `Storage::commit_issuances`, in groups with one
//! flush each, with records made from a real enrolled car: its certificate
//! DER (serial bytes and device serial patched per device, so every
//! certificate, fingerprint and key is distinct and the sizes are those of
//! real records), its device record and its audit entry. The store is that of
//! a real CA data directory, so afterwards a real server (this binary in
//! `--serve-data` mode, a separate process) opens it, answers `GetTrust` for
//! random devices, and its resident memory is read from `/proc`.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use ring::rand::SecureRandom;
use trustca_api::client::ClientCredentials;
use trustca_model::credential_from_chain;
use trustca_proto::v1 as pb;
use trustca_proto::v1::trust_database_client::TrustDatabaseClient;
use trustca_store::{CertificateRecord, DeviceRecord, Issuance, Storage};

use crate::cpu;
use crate::decide::{World, car_serial};
use crate::grpc::join_notes;
use crate::load::closed_loop;
use crate::report::{Figure, Group, Latency, Row};

/// A real enrolled car's records, to be copied with new serials.
#[derive(Debug, Clone)]
pub struct Template {
    cert: CertificateRecord,
    device: DeviceRecord,
    actor: String,
    audit_kind: String,
    audit_detail: String,
    /// Where the certificate serial sits in the DER.
    serial_at: usize,
    /// Where the device serial (`C0000000`) sits in the DER.
    device_serial_at: Vec<usize>,
    /// Byte ranges of the DER that differ between real devices beyond the
    /// serials (the public key's X and Y, the subject key identifier, the
    /// signature's r and s): filled with random bytes per device, or every
    /// synthetic certificate would share them and compress unrealistically.
    unique: Vec<std::ops::Range<usize>>,
}

/// The ranges of `der` that are random in every real certificate: the EC
/// point's X and Y, the subject key identifier, and the ECDSA signature's
/// r and s (their first byte left as is, so each stays a positive INTEGER).
fn unique_ranges(der: &[u8]) -> Result<Vec<std::ops::Range<usize>>> {
    use x509_parser::prelude::{FromDer, ParsedExtension, X509Certificate};
    let (_, cert) = X509Certificate::from_der(der).map_err(|e| anyhow!("the template DER: {e}"))?;
    let at = |part: &[u8]| -> Result<usize> {
        find_all(der, part)
            .first()
            .copied()
            .context("a certificate part is not in the DER")
    };
    let mut out = Vec::new();
    let point = cert.public_key().subject_public_key.data.as_ref();
    if point.len() == 65 {
        let p = at(point)?;
        out.push(p + 1..p + 65);
    }
    for ext in cert.extensions() {
        if let ParsedExtension::SubjectKeyIdentifier(ski) = ext.parsed_extension() {
            let p = at(ski.0)?;
            out.push(p..p + ski.0.len());
        }
    }
    // ECDSA-Sig-Value: SEQUENCE { INTEGER r, INTEGER s }, short lengths:
    // 30 L 02 rl r.. 02 sl s..
    let sig = cert.signature_value.data.as_ref();
    let base = at(sig)?;
    if let [0x30, _, 0x02, rl, ..] = sig {
        let rl = usize::from(*rl);
        if sig.get(4 + rl) == Some(&0x02)
            && let Some(&sl) = sig.get(5 + rl)
            && 6 + rl + usize::from(sl) <= sig.len()
        {
            out.push(base + 5..base + 4 + rl);
            out.push(base + 7 + rl..base + 6 + rl + usize::from(sl));
        }
    }
    Ok(out)
}

fn find_all(haystack: &[u8], needle: &[u8]) -> Vec<usize> {
    if needle.is_empty() {
        return Vec::new();
    }
    haystack
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(i, _)| i)
        .collect()
}

/// The audit detail as the engine hands it to the store: without the
/// members the store adds on commit (`der_sha256`, `binds`), which it adds
/// again for every synthetic device.
fn engine_detail(stored: &str) -> Result<String> {
    let mut detail: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(stored).context("the audit detail is not a JSON object")?;
    detail.remove("der_sha256");
    detail.remove("binds");
    Ok(serde_json::to_string(&detail)?)
}

/// The device serial of synthetic device `n`: the width of [`car_serial`].
pub fn device_serial(n: usize) -> String {
    format!("D{n:07}")
}

/// The URN of synthetic device `n` as the template names it.
fn urn(device: &DeviceRecord, serial: &str) -> String {
    format!(
        "urn:trustca:{}:{}:{}:{serial}",
        device.sector, device.manufacturer, device.model
    )
}

impl Template {
    /// The records of car 0 of `world`, read from its store (the server
    /// must be stopped).
    pub fn from_world(world: &World) -> Result<Self> {
        let chain = world.cars.first().context("no car enrolled")?;
        let [leaf, issuer, ..] = chain.as_slice() else {
            bail!("the car's chain has fewer than two certificates")
        };
        let credential = credential_from_chain(leaf, issuer, &Default::default())?;
        let key = credential
            .identity
            .context("not a device certificate")?
            .key();
        let serial = trustca_model::hexfmt::decode(&credential.serial).context("serial")?;
        let store = crate::pgmode::reopen(world.data.path()).context("open the store")?;
        let cert = store
            .certificate(&serial)?
            .context("the car's certificate is not in the store")?;
        let device = store
            .device(&key)?
            .context("the car's device record is not in the store")?;
        let subject = trustca_model::hexfmt::encode(&serial);
        let entry = store
            .audit_entries(0, 1_000_000)?
            .into_iter()
            .find(|e| e.subject == subject)
            .context("the car's audit entry is not in the store")?;
        let serial_at = *find_all(&cert.der, &cert.serial)
            .first()
            .context("the certificate serial is not in the DER")?;
        let device_serial_at = find_all(&cert.der, car_serial(0).as_bytes());
        if serial.len() != 16 || serial[0] & 0x80 != 0 || serial[0] == 0 {
            bail!("the template's serial is not 16 significant bytes");
        }
        let unique = unique_ranges(&cert.der)?;
        Ok(Self {
            cert,
            device,
            actor: entry.actor,
            audit_kind: entry.kind,
            audit_detail: engine_detail(&entry.detail)?,
            serial_at,
            device_serial_at,
            unique,
        })
    }

    /// The certificate DER's size.
    pub fn der_len(&self) -> usize {
        self.cert.der.len()
    }

    /// Random bytes one device's certificate needs beyond its serial.
    fn unique_len(&self) -> usize {
        self.unique.iter().map(|r| r.len()).sum()
    }

    /// Device `n` with certificate serial `serial` (16 bytes, positive,
    /// first byte non-zero) and `random` bytes for its key, key identifier
    /// and signature ([`Template::unique_len`] of them): as the enrollment
    /// engine would commit it.
    pub fn issuance(&self, n: usize, serial: [u8; 16], random: &[u8]) -> Issuance {
        let device_serial = device_serial(n);
        let mut der = self.cert.der.clone();
        let mut random = random.iter().copied();
        for r in &self.unique {
            for b in &mut der[r.clone()] {
                *b = random.next().unwrap_or(*b);
            }
        }
        der[self.serial_at..self.serial_at + 16].copy_from_slice(&serial);
        for &at in &self.device_serial_at {
            der[at..at + device_serial.len()].copy_from_slice(device_serial.as_bytes());
        }
        let urn = urn(&self.device, &device_serial);
        let key = format!(
            "{}/{}/{}/{device_serial}",
            self.device.sector, self.device.manufacturer, self.device.model
        )
        .to_ascii_lowercase();
        Issuance {
            certificate: CertificateRecord {
                serial: serial.to_vec(),
                der,
                identity_key: Some(key.clone()),
                ..self.cert.clone()
            },
            device: Some(DeviceRecord {
                identity_key: key,
                urn: urn.clone(),
                serial: device_serial,
                certificates: Vec::new(),
                ..self.device.clone()
            }),
            renewal: false,
            actor: self.actor.clone(),
            audit_kind: self.audit_kind.clone(),
            audit_detail: self.audit_detail.replace(self.device.urn.as_str(), &urn),
        }
    }

    /// Devices `from..to`, with fresh random serials.
    pub fn issuances(&self, from: usize, to: usize) -> Result<Vec<Issuance>> {
        let rng = ring::rand::SystemRandom::new();
        let each = 16 + self.unique_len();
        let mut bytes = vec![0u8; each * (to - from)];
        rng.fill(&mut bytes)
            .map_err(|_| anyhow!("no random bytes"))?;
        Ok(bytes
            .chunks_exact(each)
            .zip(from..to)
            .map(|(c, n)| {
                let mut serial = [0u8; 16];
                serial.copy_from_slice(&c[..16]);
                serial[0] = (serial[0] & 0x7f).max(1);
                self.issuance(n, serial, &c[16..])
            })
            .collect())
    }
}

/// Stored bytes per tree of one device's issuance.
pub type Payload = Vec<(&'static str, usize)>;

/// What one device's issuance wrote, before the store's own overhead:
/// (tree, key + stored value bytes) of the first record of each tree (the
/// synthetic devices outnumber the world's few by far), read back raw, so
/// the figure is what the store really encodes, seals included.
pub fn payload_of(store: &dyn Storage) -> Result<Payload> {
    use trustca_store::RecordTable;
    let first = |table| -> Result<usize> {
        let (k, v) = store
            .raw_records(table, None, 1)?
            .into_iter()
            .next()
            .context("an empty tree")?;
        Ok(k.len() + v.len())
    };
    let (size, _) = store.audit_head()?;
    let (_, entry) = store
        .audit_entries_raw(size.saturating_sub(1), 1)?
        .into_iter()
        .next()
        .context("no audit entry")?;
    let certificates = first(RecordTable::Certificates)?;
    let serial = 16;
    Ok(vec![
        ("certificates", certificates),
        ("devices", first(RecordTable::Devices)?),
        ("trust", first(RecordTable::Trust)?),
        ("history", first(RecordTable::History)?),
        ("audit", 8 + entry.len()),
        ("fingerprints", 32 + serial),
    ])
}

/// Bytes a directory tree occupies: (allocated blocks, apparent length).
pub fn du(dir: &Path) -> Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let (mut blocks, mut len) = (0u64, 0u64);
    for e in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let e = e?;
        let m = e.metadata()?;
        if m.is_dir() {
            let (b, l) = du(&e.path())?;
            blocks += b;
            len += l;
        } else {
            blocks += m.blocks() * 512;
            len += m.len();
        }
    }
    Ok((blocks, len))
}

/// The store's size at one point of the filling.
#[derive(Debug, Clone, Copy)]
pub struct Checkpoint {
    /// Devices in the store (synthetic ones; the world's few are left out).
    pub devices: usize,
    /// Seconds spent filling so far.
    pub seconds: f64,
    /// `Storage::size_on_disk` (sled's own count).
    pub size_on_disk: u64,
    /// Allocated bytes of the store directory (du); on PostgreSQL the
    /// database's tables with their indexes and TOAST (WAL left out).
    pub du: u64,
    /// Apparent bytes of the store directory (du --apparent-size); on
    /// PostgreSQL the same as `du`.
    pub apparent: u64,
    /// Allocated bytes of fjall's journals (`*.jnl` at the top of its
    /// directory; 0 for sled): a fixed cost bounded by its journal size,
    /// not one per device, so the tables are what scales.
    pub journal: u64,
}

/// Allocated bytes of the fjall journals in `dir` (0 where there are none).
fn journal_bytes(dir: &Path) -> Result<u64> {
    use std::os::unix::fs::MetadataExt;
    let mut bytes = 0;
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        if e.path().extension().is_some_and(|x| x == "jnl") {
            bytes += e.metadata()?.blocks() * 512;
        }
    }
    Ok(bytes)
}

/// Fills the store of `data` (a stopped server's data directory) with
/// `devices` synthetic devices in groups of `group`, one flush each, and
/// measures it at every checkpoint (and at the end).
pub fn fill(
    data: &Path,
    template: &Template,
    devices: usize,
    group: usize,
    checkpoints: &[usize],
) -> Result<(Row, Vec<Checkpoint>, Payload)> {
    let db = crate::pgmode::embedded_dir(data);
    // The store the server over `data` ran on: on PostgreSQL its database,
    // which the server process started afterwards serves again.
    let (store, closed) =
        crate::pgmode::reopen_with_close_waiter(data).context("open the store")?;
    // Sealed as the server seals them, or the server refuses them on read.
    let key = trustca_ca::CaHierarchy::read_record_seal_key(data, &crate::fixture::passphrase()?)?
        .context("the data directory has no record-seal key")?;
    store.set_record_seal(Arc::new(trustca_store::RecordSeal::new(&key)));
    let group = group.max(1);
    let mut points = Vec::new();
    let (mut commit, mut flush, mut make) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let start = Instant::now();
    let mut done = 0;
    while done < devices {
        let end = (done + group).min(devices);
        let t = Instant::now();
        let batch = template.issuances(done, end)?;
        let t1 = Instant::now();
        for r in store.commit_issuances(&batch) {
            r.context("commit_issuances refused a synthetic device")?;
        }
        let t2 = Instant::now();
        store.flush()?;
        make += t1 - t;
        commit += t2 - t1;
        flush += t2.elapsed();
        let before = done;
        done = end;
        let at_checkpoint = checkpoints.iter().any(|&c| before < c && c <= done);
        if at_checkpoint || done == devices {
            let (blocks, apparent) = crate::pgmode::store_bytes(data, store.as_ref())?;
            let point = Checkpoint {
                devices: done,
                seconds: start.elapsed().as_secs_f64(),
                size_on_disk: store.size_on_disk()?,
                du: blocks,
                apparent,
                journal: if crate::pgmode::on_postgres() {
                    0
                } else {
                    journal_bytes(&db)?
                },
            };
            crate::progress(&format!(
                "store: {done} devices after {:.0} s: {:.0} bytes/device (size_on_disk), {:.0} (du)",
                point.seconds,
                point.size_on_disk as f64 / done as f64,
                point.du as f64 / done as f64
            ));
            points.push(point);
        }
    }
    let elapsed = start.elapsed() - make;
    let (certs, devs) = store.counts()?;
    let payload = payload_of(store.as_ref())?;
    drop(store);
    if let Some(closed) = closed
        && !closed.wait(Duration::from_secs(30))
    {
        bail!("the store did not close");
    }
    let per = |d: Duration| d.as_secs_f64() * 1e6 / devices.max(1) as f64;
    let row = Row {
        key: "store_fill",
        label: format!("store fill: commit_issuances x{group} + flush"),
        group: Group::Breakdown,
        ops: devices as u64,
        errors: 0,
        elapsed,
        latency: None,
        note: format!(
            "commit {:.1} us/device, flush {:.1} us/device; store then holds {certs} certificates, {devs} devices; record making ({:.0} s) not counted",
            per(commit),
            per(flush),
            make.as_secs_f64()
        ),
    };
    Ok((row, points, payload))
}

/// Memory of a real server over the filled store.
#[derive(Debug, Clone, Copy)]
pub struct RssProbe {
    /// VmRSS right after the server started listening, KiB.
    pub rss_start: u64,
    /// VmRSS after the reads, KiB.
    pub rss: u64,
    /// VmHWM (peak) after the reads, KiB.
    pub peak: u64,
}

/// Starts this binary as a server over `data` in a separate process, asks
/// `GetTrust` (by identity) about `reads` random devices among `devices`,
/// and reads the server's resident memory.
pub async fn server_rss(
    data: &Path,
    client: &ClientCredentials,
    devices: usize,
    reads: usize,
    concurrency: usize,
) -> Result<(RssProbe, Row)> {
    let exe = std::env::current_exe().context("this binary's path")?;
    // A profiler may wrap the server (`TRUSTCA_BENCH_SERVER_WRAPPER=heaptrack`):
    // the server then prints its own pid, since the child is the wrapper.
    let mut command = match std::env::var_os("TRUSTCA_BENCH_SERVER_WRAPPER") {
        Some(wrapper) => {
            let mut c = Command::new(wrapper);
            c.arg(exe);
            c
        }
        None => Command::new(exe),
    };
    let mut child = command
        .arg("--serve-data")
        .arg(data)
        .args(crate::pgmode::child_args(data)?)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("start the server process")?;
    let result = probe(&mut child, client, devices, reads, concurrency).await;
    // Closing its standard input stops the server.
    drop(child.stdin.take());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if child.try_wait()?.is_some() {
            break;
        }
        if Instant::now() > deadline {
            child.kill()?;
            child.wait()?;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    result
}

async fn probe(
    child: &mut std::process::Child,
    client: &ClientCredentials,
    devices: usize,
    reads: usize,
    concurrency: usize,
) -> Result<(RssProbe, Row)> {
    let stdout = child.stdout.take().context("no stdout")?;
    // A wrapper (a profiler) may print its own lines first.
    let line = tokio::task::spawn_blocking(move || {
        let mut lines = BufReader::new(stdout).lines();
        loop {
            match lines.next() {
                Some(Ok(line)) if !line.starts_with("listening ") => continue,
                Some(line) => return line,
                None => return Ok(String::new()),
            }
        }
    })
    .await??;
    let (addr, pid) = line
        .trim()
        .strip_prefix("listening ")
        .and_then(|rest| rest.split_once(" pid "))
        .with_context(|| format!("unexpected server output {line:?}"))?;
    let (addr, pid) = (addr.to_owned(), pid.to_owned());
    let (rss_start, _) = cpu::rss_kib(&pid).context("no /proc status of the server")?;
    let channel = trustca_api::client::connect(&addr, client).await?;
    let trust = TrustDatabaseClient::new(channel);
    // The same random devices whatever the run (xorshift).
    let mut x = 0x9e37_79b9_7f4a_7c15_u64;
    let picks: Arc<Vec<String>> = Arc::new(
        (0..reads)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                format!(
                    "urn:trustca:automotive:{}:{}:{}",
                    crate::fixture::MANUFACTURER,
                    crate::decide::CAR_MODEL,
                    device_serial((x % devices.max(1) as u64) as usize)
                )
            })
            .collect(),
    );
    let out = closed_loop(concurrency, reads, move |i| {
        let mut c = trust.clone();
        let urn = picks[i].clone();
        async move {
            let a = c
                .get_trust(pb::GetTrustRequest {
                    subject: Some(pb::get_trust_request::Subject::Identity(urn)),
                })
                .await?
                .into_inner();
            if a.status != "active" {
                bail!("{} is {}", a.identity, a.status);
            }
            Ok(())
        }
    })
    .await?;
    let (rss, peak) = cpu::rss_kib(&pid).context("no /proc status of the server")?;
    let mut lat = out.latencies.clone();
    let row = Row {
        key: "get_trust_1m",
        label: format!("GetTrust by identity, {devices} devices stored (separate server process)"),
        group: Group::Trust,
        ops: out.ok,
        errors: out.errors,
        elapsed: out.elapsed,
        latency: Latency::of(&mut lat),
        note: join_notes(&[
            format!(
                "{concurrency} in flight, 1 conn; random devices, each asked once at most, so most answers sign a new assertion"
            ),
            out.error_note(),
        ]),
    };
    Ok((
        RssProbe {
            rss_start,
            rss,
            peak,
        },
        row,
    ))
}

/// `--serve-data DIR`: runs the server over `dir`, prints `listening
/// <addr> pid <pid>`, and stops when standard input closes.
pub async fn serve_child(dir: &Path) -> Result<()> {
    let server = crate::grpc::start(dir).await?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening {} pid {}", server.addr, std::process::id())?;
        out.flush()?;
    }
    tokio::task::spawn_blocking(|| {
        let mut sink = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink)
    })
    .await??;
    // Under a heap profiler, what the server still holds when it stops is
    // what it held in service: leave without freeing it.
    if std::env::var_os("TRUSTCA_BENCH_SERVE_ABANDON").is_some() {
        std::process::exit(0);
    }
    Ok(server.shutdown().await?)
}

/// The figures of a fill and a memory probe.
pub fn figures(
    template: &Template,
    payload: &[(&'static str, usize)],
    points: &[Checkpoint],
    rss: Option<&RssProbe>,
    aim_bytes: f64,
) -> Result<Vec<Figure>> {
    let mut out = Vec::new();
    let total: usize = payload.iter().map(|(_, b)| b).sum();
    out.push(
        Figure::new(
            "store_payload_per_device",
            "records written per device (keys + values, before the engine)",
            total as f64,
            "bytes",
        )
        .aim(true, aim_bytes)
        .note(
            payload
                .iter()
                .map(|(t, b)| format!("{t} {b}"))
                .collect::<Vec<_>>()
                .join(", ")
                + &format!("; certificate DER {}", template.der_len()),
        ),
    );
    for p in points {
        let n = p.devices.max(1) as f64;
        let last = std::ptr::eq(p, points.last().unwrap_or(p));
        let mut f = Figure::new(
            "store_bytes_per_device",
            format!(
                "{} store bytes/device at {} devices (du)",
                crate::pgmode::backend_name(),
                p.devices
            ),
            p.du as f64 / n,
            "bytes",
        )
        .note(format!(
            "size_on_disk {:.0} bytes/device, apparent {:.0}; {:.2} GiB in all; {:.1}x the records written; filled in {:.0} s",
            p.size_on_disk as f64 / n,
            p.apparent as f64 / n,
            p.du as f64 / (1u64 << 30) as f64,
            p.du as f64 / n / total.max(1) as f64,
            p.seconds
        ));
        if last {
            f = f.aim(true, aim_bytes);
        }
        out.push(f);
        if p.journal > 0 {
            // No aim on a lower bound: at small fills most records are
            // still in the journal only.
            out.push(Figure::new(
                "store_table_bytes_per_device",
                format!(
                    "{} store bytes/device at {} devices, tables only (du)",
                    crate::pgmode::backend_name(),
                    p.devices
                ),
                p.du.saturating_sub(p.journal) as f64 / n,
                "bytes",
            )
            .note(format!(
                "a lower bound: the journal ({:.1} MiB, bounded by {} MiB: a fixed cost) is left out, and with it the records still in memtables, not yet in tables; du above is the upper bound",
                p.journal as f64 / (1u64 << 20) as f64,
                trustca_store::DEFAULT_JOURNAL_BYTES >> 20
            )));
        }
    }
    if let Some(r) = rss {
        let devices = points.last().map_or(0, |p| p.devices);
        out.push(
            Figure::new(
                "server_rss",
                format!("server RSS with {devices} devices, after the reads"),
                r.rss as f64 / 1024.0,
                "MiB",
            )
            .note(format!(
                "VmRSS {:.0} MiB right after start, peak (VmHWM) {:.0} MiB; {} store, cache capacity {} MiB",
                r.rss_start as f64 / 1024.0,
                r.peak as f64 / 1024.0,
                crate::pgmode::backend_name(),
                if crate::pgmode::on_fjall() {
                    trustca_store::DEFAULT_FJALL_CACHE_BYTES
                } else {
                    trustca_store::DEFAULT_CACHE_BYTES
                } >> 20
            )),
        );
    }
    Ok(out)
}
