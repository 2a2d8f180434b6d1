//! Clients that open connections and streams and never use them: idle
//! connections are closed, a full connection table makes room, and real
//! clients keep their latency.

use super::*;

/// Raises this process's descriptor limit (it holds thousands of sockets);
/// returns the soft limit in force.
fn raise_own_descriptor_limit() -> u64 {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let l = getrlimit(Resource::Nofile);
    let _ = setrlimit(
        Resource::Nofile,
        Rlimit {
            current: l.maximum.map(|m| m.min(65_536)).or(Some(65_536)),
            maximum: l.maximum,
        },
    );
    getrlimit(Resource::Nofile).current.unwrap_or(65_536)
}

fn percentile(mut v: Vec<Duration>, p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 * p).ceil() as usize)
        .saturating_sub(1)
        .min(v.len() - 1)]
}

/// Abuse: 2,000 idle connections (1,000 bare TCP, 1,000 TLS without a
/// client certificate) and 100 streams that never send, while a normal
/// client enrolls and queries with p99 under 100 ms; the server's memory
/// stays under 256 MiB; the idle connections are closed by the server
/// (first-request timeout); SIGTERM exits within the grace period + 1 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_and_silent_streams_lock_nobody_out() {
    let _timed = timed().await;
    let descriptors = raise_own_descriptor_limit();
    // Half bare TCP, half TLS; fewer (loudly) where this process may not
    // hold 2,000 sockets.
    let per_kind = (descriptors.saturating_sub(400) / 2).min(1000) as usize;
    if per_kind < 1000 {
        eprintln!(
            "*** the descriptor limit ({descriptors}) allows {} idle connections, not 2,000 ***",
            2 * per_kind
        );
    }
    let ca = TestCa::init();
    let acme = ca.credential(CertificateKind::Manufacturer, "Acme", &["hems"]);
    let logs = tempfile::tempdir().unwrap();
    let grace = 3u64;
    let server = serve(
        ca.data(),
        &[
            "--shutdown-grace",
            &grace.to_string(),
            "--first-request-timeout",
            "8",
        ],
        &logs.path().join("serve.log"),
    )
    .expect("serve starts");
    let addr: std::net::SocketAddr = server.addr.parse().unwrap();

    let mut bare = Vec::new();
    for _ in 0..per_kind {
        bare.push(tokio::net::TcpStream::connect(addr).await.unwrap());
    }
    // The last bare connection's handshake timeout (10 s) runs from here.
    let bare_opened = Instant::now();
    let mut anonymous = Vec::new();
    for _ in 0..per_kind {
        anonymous.push(
            trustca_api::client::connect_public(&server.url(), &ca.root_pem())
                .await
                .unwrap(),
        );
    }
    // 100 streams that never send an item, on four connections.
    let mut silent = Vec::new();
    for _ in 0..4 {
        let channel = trustca_api::client::connect(&server.url(), &acme)
            .await
            .unwrap();
        for _ in 0..25 {
            let mut client = pb::enrollment_client::EnrollmentClient::new(channel.clone());
            silent.push(tokio::spawn(async move {
                let r = client
                    .enroll_batch(tokio_stream::pending::<pb::EnrollBatchItem>())
                    .await;
                // Held open until the server ends it.
                if let Ok(resp) = r {
                    let mut s = resp.into_inner();
                    while let Ok(Some(_)) = s.message().await {}
                }
            }));
        }
    }

    let normal = trustca_api::client::connect(&server.url(), &acme)
        .await
        .unwrap();
    let mut client = pb::enrollment_client::EnrollmentClient::new(normal.clone());
    let mut latencies = Vec::new();
    for i in 0..150 {
        let serial = format!("N{i}");
        let t = Instant::now();
        let r = client
            .enroll(request("hems", "Acme", &serial, csr().1, vec![]))
            .await
            .unwrap();
        latencies.push(t.elapsed());
        let t = Instant::now();
        trust_of(normal.clone(), &r.into_inner().identity)
            .await
            .unwrap();
        latencies.push(t.elapsed());
    }
    let p99 = percentile(latencies.clone(), 0.99);
    let p50 = percentile(latencies, 0.50);
    let rss_mib = server.rss_kib() / 1024;
    eprintln!("abuse: p50 {p50:?} p99 {p99:?}, server RSS {rss_mib} MiB");
    assert!(p99 < Duration::from_millis(100), "p99 {p99:?}");
    assert!(rss_mib < 256, "server RSS {rss_mib} MiB");

    // The server closes what was never used (first-request timeout 8 s,
    // handshake timeout 10 s for the bare ones): each bare connection is
    // read until the server closes it, for at most 11 s after the last was
    // opened (the time spent above counts towards it).
    let deadline = tokio::time::Instant::from_std(bare_opened + Duration::from_secs(11));
    let mut closed = 0;
    for mut s in bare.drain(..) {
        let mut buf = [0u8; 1];
        if let Ok(Ok(0)) | Ok(Err(_)) = tokio::time::timeout_at(
            deadline.max(tokio::time::Instant::now() + Duration::from_millis(5)),
            tokio::io::AsyncReadExt::read(&mut s, &mut buf),
        )
        .await
        {
            closed += 1;
        }
    }
    assert!(
        closed >= 990,
        "only {closed} of 1000 idle TCP connections were closed"
    );
    drop(anonymous);

    let (took, status) = server.terminate();
    assert!(status.success(), "{status:?}");
    assert!(
        took <= Duration::from_secs(grace + 1),
        "exit took {took:?} with a {grace} s grace period"
    );
    for s in silent {
        let _ = tokio::time::timeout(Duration::from_secs(5), s).await;
    }
}

/// A full connection table closes the longest-idle connection to admit a
/// new one: 300 idle TLS connections against `--max-connections 64` do not
/// keep a real client out, and the limit is logged once, not per accept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_connection_table_makes_room_for_real_clients() {
    let _ = raise_own_descriptor_limit();
    let ca = TestCa::init();
    let acme = ca.credential(CertificateKind::Manufacturer, "Acme", &["hems"]);
    let logs = tempfile::tempdir().unwrap();
    let server = serve(
        ca.data(),
        &["--max-connections", "64"],
        &logs.path().join("serve.log"),
    )
    .expect("serve starts");
    let mut idle = Vec::new();
    for _ in 0..300 {
        if let Ok(c) = trustca_api::client::connect_public(&server.url(), &ca.root_pem()).await {
            idle.push(c);
        }
    }
    let mut client = pb::enrollment_client::EnrollmentClient::new(
        trustca_api::client::connect(&server.url(), &acme)
            .await
            .unwrap(),
    );
    for i in 0..5 {
        client
            .enroll(request("hems", "Acme", &format!("M{i}"), csr().1, vec![]))
            .await
            .expect("a real client is admitted");
    }
    let log = server.log_text();
    let limit_lines = log.matches("connection limit reached").count();
    assert!(
        (1..=3).contains(&limit_lines),
        "{limit_lines} limit lines:\n{log}"
    );
    drop(idle);
}
