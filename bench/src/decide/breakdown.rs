//! The in-process breakdown of one `Decide`, after the server stopped:
//! the engine without the transport, the store reads it would make, and
//! the protobuf work of a `Decision`.

use super::*;

/// In-process, after the server stopped: the engine's `decide` without the
/// transport on one task, the store reads it makes, and the encoding of a
/// `Decision`; every rate is per single thread.
pub(crate) async fn breakdown(world: &World, calls: usize) -> Result<Vec<Row>> {
    let data = world.data.path();
    let pass = fixture::passphrase()?;
    let (_, set) = trustca_server::policies::resolve(None, Some(data))?;
    let h = trustca_ca::CaHierarchy::open(data, &set, &pass)?;
    let cfg = trustca_db::TrustEngineConfig {
        root_der: h.root_der.clone(),
        sector_cas: h.sectors.values().map(|c| c.cert_der.clone()).collect(),
        responder_chain: h.responder_chain.clone().into(),
        responder_key: h.responder_key(),
        authoritative: Vec::new(),
        assertion_ttl: Duration::from_secs(3600),
        decision_ttl: Duration::from_secs(300),
        extension_oid: set.pki.extensions.trust_level_oid.clone(),
    };
    let sled = SledStorage::open(&data.join("db")).context("reopen the store")?;
    let storage: Arc<dyn Storage> = Arc::new(sled.clone());
    let engine = trustca_db::TrustEngine::new(
        cfg,
        Arc::clone(&storage),
        set.trust.clone(),
        set.detection.clone(),
        None,
        None,
    )?;
    let [leaf, issuer, ..] = world.house_chain.as_slice() else {
        bail!("the HEMS chain has fewer than two certificates")
    };
    let caller = credential_from_chain(leaf, issuer, &Default::default())?;
    if caller.kind != CertificateKind::LongTerm {
        bail!("the HEMS credential is not a device certificate");
    }
    let cars = &world.cars;
    for chain in cars {
        check(&engine.decide(&caller, chain, OPERATION).await?.convert())?;
    }
    let mut rows = Vec::new();

    let start = Instant::now();
    let mut last = None;
    for i in 0..calls {
        let d = engine
            .decide(&caller, &cars[i % cars.len()], OPERATION)
            .await?;
        last = Some(d);
    }
    let elapsed = start.elapsed();
    let decision: pb::Decision = last.context("no decision")?.convert();
    check(&decision)?;
    rows.push(breakdown_row(
        "decide_engine",
        "engine.decide in-process (no gRPC/TLS)",
        calls,
        elapsed,
        "1 task; store reads, cached chain and assertion, policy, Decision built",
    ));

    // The store reads of one decision: caller and peer each get their trust
    // record, the presented certificate and the device record.
    let keys: Vec<(String, Vec<u8>)> = std::iter::once(&world.house_chain)
        .chain(cars.iter())
        .map(|chain| {
            let [leaf, issuer, ..] = chain.as_slice() else {
                bail!("a chain has fewer than two certificates")
            };
            let c = credential_from_chain(leaf, issuer, &Default::default())?;
            let key = c.identity.context("not a device certificate")?.key();
            let serial = trustca_model::hexfmt::decode(&c.serial).context("serial")?;
            Ok((key, serial))
        })
        .collect::<Result<_>>()?;
    let start = Instant::now();
    for i in 0..calls {
        for (key, serial) in [&keys[0], &keys[1 + i % cars.len()]] {
            storage.trust_record(key)?.context("trust record")?;
            storage.certificate(serial)?.context("certificate")?;
            storage.device(key)?.context("device")?;
        }
    }
    rows.push(breakdown_row(
        "decide_store_reads",
        "store reads of one Decide (6 sled gets + decode)",
        calls,
        start.elapsed(),
        "1 thread; caller and peer: trust record, certificate record (with DER), device record",
    ));
    type Read<'a> = Box<dyn Fn(&(String, Vec<u8>)) -> Result<bool> + 'a>;
    let reads: [(&'static str, &str, Read<'_>); 3] = [
        (
            "decide_read_trust",
            "  of which trust_record, x2",
            Box::new(|(k, _)| Ok(storage.trust_record(k)?.is_some())),
        ),
        (
            "decide_read_certificate",
            "  of which certificate (record with DER), x2",
            Box::new(|(_, s)| Ok(storage.certificate(s)?.is_some())),
        ),
        (
            "decide_read_device",
            "  of which device, x2",
            Box::new(|(k, _)| Ok(storage.device(k)?.is_some())),
        ),
    ];
    for (key, label, read) in reads {
        let start = Instant::now();
        for i in 0..calls {
            for k in [&keys[0], &keys[1 + i % cars.len()]] {
                if !read(k)? {
                    bail!("{label}: a record is missing");
                }
            }
        }
        rows.push(breakdown_row(
            key,
            label,
            calls,
            start.elapsed(),
            "1 thread",
        ));
    }

    let start = Instant::now();
    let mut bytes = 0usize;
    for _ in 0..calls {
        let copy = std::hint::black_box(decision.clone());
        bytes += copy.encode_to_vec().len();
    }
    rows.push(breakdown_row(
        "decision_encode",
        "Decision clone + protobuf encode",
        calls,
        start.elapsed(),
        &format!("1 thread; {} bytes each", bytes / calls.max(1)),
    ));
    let encoded = decision.encode_to_vec();
    let start = Instant::now();
    for _ in 0..calls {
        std::hint::black_box(pb::Decision::decode(encoded.as_slice())?);
    }
    rows.push(breakdown_row(
        "decision_decode",
        "Decision protobuf decode (client side)",
        calls,
        start.elapsed(),
        "1 thread",
    ));
    drop(engine);
    drop(storage);
    drop(sled);
    Ok(rows)
}

fn breakdown_row(key: &'static str, label: &str, ops: usize, elapsed: Duration, note: &str) -> Row {
    Row {
        key,
        label: label.into(),
        group: Group::Trust,
        ops: ops as u64,
        errors: 0,
        elapsed,
        latency: None,
        note: format!(
            "{:.1} us/op; {note}",
            elapsed.as_secs_f64() * 1e6 / ops.max(1) as f64
        ),
    }
}
