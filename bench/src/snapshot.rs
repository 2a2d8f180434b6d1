//! The `snapshot` stage: a signed trust snapshot for 10,000 and 100,000
//! registered models (and a fleet of devices, some of them listed), built
//! by a real server on a sled store and fetched over its public
//! `GetSnapshot`, then verified as a device would; its size; and beside
//! them, measured in the same run, the ceiling of reading the same model
//! records raw. Also the fleet move: one withdrawal moving every device of
//! a model, in one transaction.

use std::time::Instant;

use anyhow::{Context, Result, anyhow};
use trustca_model::{
    FirmwareRange, ModelKey, ModelRecord, ModelStatus, SectorName, SignedSnapshot,
};
use trustca_proto::v1 as pb;
use trustca_server::{RunningServer, ServeOptions};
use trustca_store::registry::MODEL_SPACE;
use trustca_store::{SledStorage, Storage};

use crate::fixture;
use crate::report::Figure;

fn model(n: usize) -> Result<ModelRecord> {
    let key = ModelKey::new(
        SectorName::new(fixture::SECTOR)?,
        &format!("Maker{}", n % 500),
        &format!("M{n}"),
        FirmwareRange::parse(&format!("{}.0..{}.9", n % 7, n % 7))?,
    )?;
    Ok(ModelRecord {
        key,
        hardware_root_of_trust: None,
        secure_update: Some(true),
        supported_until: None,
        evaluations: vec![],
        suspended: None,
        level: 2,
        status: ModelStatus::Provisional,
        policy_version: "bench".into(),
        version: 1,
        registered_at: 0,
        updated_at: 0,
        history: vec![],
    })
}

/// Writes `count` model records into the (stopped) server's store.
fn fill(data: &std::path::Path, count: usize) -> Result<()> {
    let store = SledStorage::open(&data.join("db"))?;
    let mut n = 0;
    while n < count {
        let chunk: Vec<_> = (n..(n + 5_000).min(count))
            .map(|i| model(i).map(|m| (m.key.store_key().into_bytes(), m.to_bytes())))
            .collect::<Result<_>>()?;
        n += chunk.len();
        store.blob_put(MODEL_SPACE, &chunk, false, None)?;
    }
    store.flush()?;
    Ok(())
}

async fn start(data: &std::path::Path) -> Result<RunningServer> {
    let opts = ServeOptions::new(
        data.to_path_buf(),
        "127.0.0.1:0".parse()?,
        fixture::passphrase()?,
    );
    Ok(trustca_server::start(opts).await?)
}

struct Sized {
    build_s: f64,
    verify_s: f64,
    bytes: usize,
    raw_scan_s: f64,
}

async fn one(models: usize) -> Result<Sized> {
    let data = tempfile::tempdir()?;
    let manufacturer = fixture::init_ca(data.path())?;
    // A first start records the credential and writes the initial state.
    start(data.path()).await?.shutdown().await?;
    crate::progress(&format!("snapshot: writing {models} model records"));
    fill(data.path(), models)?;
    // Ceiling in the same run: the same model records read raw.
    let raw_scan_s = {
        let store = SledStorage::open(&data.path().join("db"))?;
        let started = Instant::now();
        let n = store.blob_scan(MODEL_SPACE, b"")?.len();
        anyhow::ensure!(n == models, "{n} model records stored, {models} written");
        started.elapsed().as_secs_f64()
    };
    let server = start(data.path()).await?;
    let root_pem = fixture::root_pem(data.path())?;
    let channel =
        trustca_api::client::connect_public(&format!("https://{}", server.addr), &root_pem).await?;
    let mut client = pb::trust_snapshots_client::TrustSnapshotsClient::new(channel)
        .max_decoding_message_size(usize::MAX);
    // The scope of one sector is built on demand (the server's background
    // writer builds "all" first): time the first, uncached fetch.
    let started = Instant::now();
    let r = client
        .get_snapshot(pb::GetSnapshotRequest {
            sector: fixture::SECTOR.into(),
        })
        .await
        .context("GetSnapshot")?
        .into_inner();
    let build_s = started.elapsed().as_secs_f64();
    let root_der = pem::parse(&root_pem)?.into_contents();
    let started = Instant::now();
    let snapshot = SignedSnapshot::from_der(&r.signed_snapshot)?.verify(
        &root_der,
        time::OffsetDateTime::now_utc(),
        &Default::default(),
        false,
    )?;
    let verify_s = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        snapshot.models.len() == models,
        "the snapshot holds {} models, not {models}",
        snapshot.models.len()
    );
    drop(manufacturer);
    server.shutdown().await?;
    Ok(Sized {
        build_s,
        verify_s,
        bytes: r.signed_snapshot.len(),
        raw_scan_s,
    })
}

/// The fleet move: a model with `devices` enrolled devices loses its
/// evaluation; the time of that one `WithdrawEvaluation`.
async fn fleet_move(devices: usize, threads: usize) -> Result<(f64, u64)> {
    let data = tempfile::tempdir()?;
    let manufacturer = fixture::init_ca(data.path())?;
    let tuv = fixture::certification_body(data.path())?;
    let server = start(data.path()).await?;
    let url = format!("https://{}", server.addr);
    let selector = fixture::register_certified_model(
        &url,
        &manufacturer.client,
        &tuv,
        fixture::MODEL,
        "CAL3",
        "B-1",
    )
    .await?;
    let mut as_tuv = pb::model_registry_client::ModelRegistryClient::new(
        trustca_api::client::connect(&url, &tuv).await?,
    );
    crate::progress(&format!(
        "snapshot: enrolling {devices} devices of one model"
    ));
    let fleet = fixture::devices(0, devices, threads)?;
    let channels = crate::grpc::connect(server.addr, &manufacturer.client, 2).await?;
    crate::grpc::unary(&channels, std::sync::Arc::new(fleet), 64).await?;
    let started = Instant::now();
    let r = as_tuv
        .withdraw_evaluation(pb::WithdrawEvaluationRequest {
            model: selector,
            certificate_number: "B-1".into(),
            reason: "bench".into(),
        })
        .await?
        .into_inner();
    let secs = started.elapsed().as_secs_f64();
    server.shutdown().await?;
    Ok((secs, r.devices_changed))
}

/// The `snapshot` stage.
pub async fn measure(fleet: usize, threads: usize) -> Result<Vec<Figure>> {
    let mut figures = Vec::new();
    for (models, build_key, verify_key, size_key, raw_key) in [
        (
            10_000,
            "snapshot_10k_build_s",
            "snapshot_10k_verify_s",
            "snapshot_10k_bytes",
            "snapshot_10k_raw_scan_s",
        ),
        (
            100_000,
            "snapshot_100k_build_s",
            "snapshot_100k_verify_s",
            "snapshot_100k_bytes",
            "snapshot_100k_raw_scan_s",
        ),
    ] {
        let s = one(models).await?;
        figures.push(Figure::new(
            build_key,
            format!(
                "snapshot of {models} models: build, sign and fetch over gRPC (first, uncached)"
            ),
            s.build_s,
            "s",
        ));
        figures.push(Figure::new(
            verify_key,
            format!("snapshot of {models} models: decode and verify against the root"),
            s.verify_s,
            "s",
        ));
        figures.push(Figure::new(
            size_key,
            format!("snapshot of {models} models: signed DER size"),
            s.bytes as f64,
            "bytes",
        ));
        figures.push(Figure::new(
            raw_key,
            format!("ceiling: the {models} model records read raw from sled"),
            s.raw_scan_s,
            "s",
        ));
    }
    let (secs, changed) = fleet_move(fleet, threads).await?;
    if changed as usize != fleet {
        return Err(anyhow!("the withdrawal moved {changed} of {fleet} devices"));
    }
    figures.push(Figure::new(
        "fleet_move_s",
        format!("WithdrawEvaluation moving {fleet} devices in one transaction"),
        secs,
        "s",
    ));
    Ok(figures)
}
