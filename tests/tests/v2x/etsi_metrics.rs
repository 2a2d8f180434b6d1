//! The ETSI TS 102 941 listener of `trustca serve --etsi-listen` is one of
//! the server's front ends like EST and IEEE 1609.2.1: its requests show
//! in `/metrics` under their own family and resource label, and its
//! connections take places in the server's one connection table (its
//! limit and eviction of idle connections), not a limit of its own.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::*;
use trustca_ca::Passphrase;
use trustca_server::ServeOptions;
use trustca_server::etsi::http::CTL_PREFIX;
use trustca_v2x::{CertProfile, Certificate};

/// One `GET` with `Connection: close`: the status line.
fn get_status(addr: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    String::from_utf8_lossy(&raw)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// Whether the server closed `s` (end of stream or reset) within 5 s.
fn closed_by_server(s: &mut TcpStream) -> bool {
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut byte = [0u8; 1];
    match s.read(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etsi_requests_are_counted_and_its_connections_share_the_table() {
    let mut ca = TestCa::init();
    ca.stop().await;
    let mut opts = ServeOptions::new(
        ca.data().to_path_buf(),
        "127.0.0.1:0".parse().unwrap(),
        Passphrase::new(PASSPHRASE.to_vec()).unwrap(),
    );
    opts.etsi_listen = Some("127.0.0.1:0".parse().unwrap());
    opts.etsi_demo_root_online = true;
    opts.metrics = Some("127.0.0.1:0".parse().unwrap());
    // A table of three places for every port.
    opts.connections.max_connections = Some(3);
    let server = trustca_server::start(opts).await.unwrap();
    let (etsi, metrics) = (server.etsi_addr.unwrap(), server.metrics_addr.unwrap());
    ca.server = Some(server);
    let root = std::fs::read(ca.data().join("etsi/root.oer")).unwrap();
    let root = Certificate::from_coer_in(CertProfile::EtsiTs103097, &root).unwrap();
    let ctl = format!("{CTL_PREFIX}{}", hex::encode(root.hashed_id8()));

    let statuses = tokio::task::spawn_blocking(move || {
        [
            get_status(etsi, &ctl),
            get_status(etsi, "/etsi/nowhere"),
            get_status(etsi, &ctl),
        ]
    })
    .await
    .unwrap();
    assert!(statuses[0].starts_with("HTTP/1.1 200"), "{statuses:?}");
    assert!(statuses[1].starts_with("HTTP/1.1 404"), "{statuses:?}");
    let (_, text) = tokio::task::spawn_blocking(move || http_get(metrics, "/metrics"))
        .await
        .unwrap();
    for counted in [
        "trustca_etsi_http_requests_total{operation=\"getctl\",status=\"200\"} 2",
        "trustca_etsi_http_requests_total{operation=\"other\",status=\"404\"} 1",
    ] {
        assert!(text.lines().any(|l| l == counted), "{counted}:\n{text}");
    }
    assert!(
        !text.contains("trustca_est_requests_total{"),
        "ETSI requests are not counted as EST"
    );

    // Four idle connections to a table of three: the longest idle is
    // closed to make room, and a request still gets its answer.
    let closed = tokio::task::spawn_blocking(move || {
        let mut idle: Vec<TcpStream> = (0..4)
            .map(|_| {
                let s = TcpStream::connect(etsi).unwrap();
                std::thread::sleep(Duration::from_millis(100));
                s
            })
            .collect();
        let first_closed = closed_by_server(&mut idle[0]);
        let last_open = !closed_by_server(&mut idle[3]);
        (first_closed, last_open)
    })
    .await
    .unwrap();
    assert_eq!(
        closed,
        (true, true),
        "the oldest idle connection is evicted"
    );
    let ctl = format!("{CTL_PREFIX}{}", hex::encode(root.hashed_id8()));
    let status = tokio::task::spawn_blocking(move || get_status(etsi, &ctl))
        .await
        .unwrap();
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
}
