//! Systems of linked devices end to end (issue 22 §1): a real server on a
//! loopback port, gRPC with mutual TLS and the `trustca system` command.
//! A Lv.4 HEMS that a Lv.2 appliance may command is answered in `Decide`
//! at its effective level with the reason; a downgrade of the appliance
//! shows at once; bad input is refused with a precise status and nothing
//! is stored.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::process::Command;

use common::*;
use tonic::Code;
use tonic::transport::Channel;
use trustca_api::client::{ClientCredentials, connect};
use trustca_model::{CertificateKind, SignedTrustAssertion};
use trustca_proto::v1 as pb;
use trustca_proto::v1::systems_client::SystemsClient;
use trustca_proto::v1::trust_database_client::TrustDatabaseClient;

struct House {
    ca: TestCa,
    hems: Device,
    plug: Device,
    heat_pump: Device,
    car: Device,
    ops: ClientCredentials,
}

/// A HEMS (Lv.4), a smart plug (Lv.2) and a heat pump (Lv.5) of one house,
/// and a car (Lv.5) that asks about the HEMS.
async fn house() -> House {
    let ca = TestCa::start().await;
    let acme = ca.credential(
        CertificateKind::Manufacturer,
        "Acme",
        &["automotive", "hems"],
    );
    let ops = ca.credential(CertificateKind::Operator, "ops", &["automotive", "hems"]);
    let mut enroll = ca.client(&acme).await;
    let root = ca.root_pem();
    // The car's Lv.5 comes from its registered model (declared hardware
    // counts up to Lv.3 in automotive).
    register_automotive_lv5(&ca, &acme, "Acme", "EV-200").await;
    let mut devices = Vec::new();
    for (sector, model, serial) in [
        ("hems", "HB-1", "H1"),
        ("hems", "Plug-2", "P1"),
        ("hems", "HP-9", "X1"),
        ("automotive", "EV-200", "C1"),
    ] {
        let evidence = if sector == "hems" { hems_lv5() } else { vec![] };
        let d = enroll_device(
            &mut enroll,
            &root,
            sector,
            "Acme",
            model,
            serial,
            "1.0.0",
            evidence,
        );
        devices.push(d.await);
    }
    let [hems, plug, heat_pump, car]: [Device; 4] = devices.try_into().ok().unwrap();
    let mut trust = trust_client(&ca, &ops).await;
    set_level(&mut trust, &hems.identity, 4).await;
    set_level(&mut trust, &plug.identity, 2).await;
    House {
        ca,
        hems,
        plug,
        heat_pump,
        car,
        ops,
    }
}

async fn trust_client(ca: &TestCa, creds: &ClientCredentials) -> TrustDatabaseClient<Channel> {
    TrustDatabaseClient::new(connect(&ca.url(), creds).await.unwrap())
}

async fn systems(ca: &TestCa, creds: &ClientCredentials) -> SystemsClient<Channel> {
    SystemsClient::new(connect(&ca.url(), creds).await.unwrap())
}

async fn set_level(c: &mut TrustDatabaseClient<Channel>, identity: &str, level: u32) {
    c.change_trust(pb::ChangeTrustRequest {
        identity: identity.into(),
        change: Some(pb::change_trust_request::Change::SetLevel(level)),
        reason: "firmware finding".into(),
    })
    .await
    .unwrap();
}

async fn decide(c: &mut TrustDatabaseClient<Channel>, peer: &Device, op: &str) -> pb::Decision {
    c.decide(pb::DecideRequest {
        peer: Some(pb::CertificateChain {
            certificates: peer.chain.clone(),
        }),
        operation: op.into(),
    })
    .await
    .unwrap()
    .into_inner()
}

fn link(from: &Device, op: &str, to: &Device) -> pb::SystemLink {
    pb::SystemLink {
        from: from.identity.clone(),
        to: to.identity.clone(),
        operation: op.into(),
    }
}

fn link_request(system: &str, l: pb::SystemLink) -> pb::LinkRequest {
    pb::LinkRequest {
        system: system.into(),
        links: vec![l],
        reason: "installer".into(),
    }
}

fn register(
    name: &str,
    members: &[&Device],
    links: Vec<pb::SystemLink>,
) -> pb::RegisterSystemRequest {
    pb::RegisterSystemRequest {
        name: name.into(),
        sector: "hems".into(),
        members: members.iter().map(|d| d.identity.clone()).collect(),
        links,
        reason: "house commissioned".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decide_answers_a_linked_hems_at_its_effective_level_with_the_reason() {
    let mut h = house().await;
    let mut car = trust_client(&h.ca, &h.car.creds).await;
    let mut ops = trust_client(&h.ca, &h.ops).await;
    let mut sys = systems(&h.ca, &h.ops).await;

    // Alone, the Lv.4 HEMS may be remote-controlled by the car (control
    // needs the HEMS at Lv.3).
    let d = decide(&mut car, &h.hems, "remote-control").await;
    assert!(d.allow, "{d:?}");
    assert_eq!((d.peer_level, d.peer_own_level), (4, 4));
    assert!(d.peer_system_cap.is_none());

    // The plug (Lv.2) may send demand-response commands to the HEMS.
    let v = sys
        .register(register(
            "house-1",
            &[&h.hems, &h.plug, &h.heat_pump],
            vec![
                link(&h.plug, "demand-response", &h.hems),
                link(&h.hems, "read-telemetry", &h.heat_pump),
            ],
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((v.members.len(), v.links.len(), v.version), (3, 2, 1));

    let d = decide(&mut car, &h.hems, "remote-control").await;
    assert!(!d.allow, "{d:?}");
    assert_eq!((d.peer_level, d.peer_own_level), (2, 4));
    let cap = d.peer_system_cap.clone().expect("a system cap");
    assert_eq!(cap.system, "house-1");
    assert_eq!(cap.effective_level, 2);
    assert_eq!(cap.source, h.plug.identity);
    assert_eq!(cap.path.len(), 1);
    assert_eq!(cap.path[0].operation, "demand-response");
    assert!(
        d.reasons.iter().any(
            |r| r.starts_with("system house-1: capped at Lv.2") && r.contains(&h.plug.identity)
        ),
        "{:?}",
        d.reasons
    );
    // The signed assertions: `peer_assertion` stays version 1 (the record,
    // Lv.4) for verifiers that know only it; `peer_system_assertion` is
    // version 2 and adds the cap, signed by the same responder.
    let root_der = pem::parse(h.ca.root_pem()).unwrap().into_contents();
    let verify = |a: pb::SignedAssertion| {
        SignedTrustAssertion {
            body: a.body,
            signature: a.signature,
            responder_chain: a.responder_chain.into(),
        }
        .verify(
            &root_der,
            time::OffsetDateTime::now_utc(),
            &Default::default(),
        )
        .unwrap()
    };
    let plain = verify(d.peer_assertion.clone().unwrap());
    assert_eq!((plain.level.get(), plain.system_cap), (4, None));
    let capped = verify(d.peer_system_assertion.clone().expect("a system assertion"));
    assert_eq!(capped.level.get(), 4);
    let claim = capped.system_cap.expect("a cap in the assertion");
    assert_eq!(
        (
            claim.system.as_str(),
            claim.effective_level.get(),
            claim.source.as_str()
        ),
        ("house-1", 2, h.plug.identity.as_str())
    );
    assert!(
        claim.reason.starts_with("capped at Lv.2"),
        "{}",
        claim.reason
    );

    // Offline, from a fetched snapshot: the same answer and reason (once
    // a snapshot built after the change is served: a cached one is reused
    // for up to a second after a change, by design).
    let offline = snapshot_decide_once_rebuilt(&h, &h.hems, "remote-control", false);
    assert_eq!(offline["allow"], false, "{offline}");
    assert_eq!(offline["peer_level"], d.peer_level, "{offline}");
    assert_eq!(
        offline["reasons"],
        serde_json::json!(d.reasons),
        "{offline}"
    );

    // The heat pump is only read by the HEMS: reading lends little (slack
    // 3 plus 1 for the second hop), so it keeps Lv.5 (which the car counts
    // as automotive Lv.4).
    let d = decide(&mut car, &h.heat_pump, "read-telemetry").await;
    assert_eq!((d.peer_own_level, d.peer_level), (5, 4));
    assert!(d.peer_system_cap.is_none());

    // Downgrading the plug is reflected at once, with no system write.
    set_level(&mut ops, &h.plug.identity, 1).await;
    let d = decide(&mut car, &h.hems, "read-telemetry").await;
    assert_eq!(
        d.peer_system_cap.as_ref().map(|c| c.effective_level),
        Some(1)
    );
    let e = sys
        .evaluate(pb::ShowSystemRequest {
            system: "house-1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(e.combined_level, 1);
    let hems = e
        .members
        .iter()
        .find(|m| m.identity == h.hems.identity)
        .unwrap();
    assert_eq!((hems.own_level, hems.effective_level), (4, 1));
    assert_eq!(e.system_version, 1, "a downgrade writes no system");

    // Systems are durable: after a restart the cap still applies.
    h.ca.restart().await;
    let mut car = trust_client(&h.ca, &h.car.creds).await;
    let d = decide(&mut car, &h.hems, "read-telemetry").await;
    assert_eq!((d.peer_level, d.peer_own_level), (1, 4));

    // Unlinking the only weak link restores the HEMS's own level.
    let mut sys = systems(&h.ca, &h.ops).await;
    sys.unlink(link_request(
        "house-1",
        link(&h.plug, "demand-response", &h.hems),
    ))
    .await
    .unwrap();
    let d = decide(&mut car, &h.hems, "remote-control").await;
    assert!(d.allow, "{d:?}");
    assert_eq!(d.peer_level, 4);
    assert!(d.peer_system_cap.is_none());
    // ... and stays removed after a restart (records are never deleted: the
    // link's record says it was unlinked).
    h.ca.restart().await;
    let mut car = trust_client(&h.ca, &h.car.creds).await;
    let d = decide(&mut car, &h.hems, "remote-control").await;
    assert!(d.allow && d.peer_system_cap.is_none(), "{d:?}");
    let offline = snapshot_decide(&h, &h.hems, "remote-control");
    assert_eq!(offline["allow"], true, "{offline}");
    assert_eq!(offline["peer_level"], d.peer_level, "{offline}");
    let v = systems(&h.ca, &h.ops)
        .await
        .show(pb::ShowSystemRequest {
            system: "house-1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((v.links.len(), v.version), (1, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_with_a_precise_status_and_nothing_stored() {
    let h = house().await;
    let mut sys = systems(&h.ca, &h.ops).await;
    sys.register(register(
        "house-2",
        &[&h.hems, &h.plug],
        vec![link(&h.plug, "demand-response", &h.hems)],
    ))
    .await
    .unwrap();
    let show = |mut c: SystemsClient<Channel>| async move {
        c.show(pb::ShowSystemRequest {
            system: "house-2".into(),
        })
        .await
        .unwrap()
        .into_inner()
    };
    let before = show(sys.clone()).await;
    let code = |r: Result<tonic::Response<pb::SystemView>, tonic::Status>| match r {
        Ok(v) => panic!("accepted: {:?}", v.into_inner()),
        Err(s) => {
            assert!(!s.message().is_empty());
            (s.code(), s.message().to_owned())
        }
    };

    // A cycle: the HEMS may not command the plug back.
    let (c, m) = code(
        sys.link(link_request(
            "house-2",
            link(&h.hems, "remote-control", &h.plug),
        ))
        .await,
    );
    assert_eq!(c, Code::InvalidArgument, "{m}");
    assert!(m.contains("cycle"), "{m}");
    // An unknown device.
    let mut ghost = link(&h.plug, "remote-control", &h.hems);
    ghost.to = "urn:trustca:hems:Acme:HB-1:NOPE".into();
    let (c, m) = code(sys.link(link_request("house-2", ghost)).await);
    assert_eq!(c, Code::NotFound, "{m}");
    // A revoked (retired) device cannot be linked in.
    let mut ops = trust_client(&h.ca, &h.ops).await;
    ops.change_trust(pb::ChangeTrustRequest {
        identity: h.heat_pump.identity.clone(),
        change: Some(pb::change_trust_request::Change::Retire(true)),
        reason: "disposed of".into(),
    })
    .await
    .unwrap();
    let (c, m) = code(
        sys.link(link_request(
            "house-2",
            link(&h.heat_pump, "read-telemetry", &h.hems),
        ))
        .await,
    );
    assert_eq!(c, Code::FailedPrecondition, "{m}");
    // An unknown operation, a duplicate link, a link to itself.
    let (c, _) = code(
        sys.link(link_request("house-2", link(&h.plug, "teleport", &h.hems)))
            .await,
    );
    assert_eq!(c, Code::InvalidArgument);
    let (c, _) = code(
        sys.link(link_request(
            "house-2",
            link(&h.plug, "demand-response", &h.hems),
        ))
        .await,
    );
    assert_eq!(c, Code::AlreadyExists);
    let (c, _) = code(
        sys.link(link_request(
            "house-2",
            link(&h.plug, "remote-control", &h.plug),
        ))
        .await,
    );
    assert_eq!(c, Code::InvalidArgument);
    // Over the size limit (1,000 devices): refused before any look-up.
    let mut big = register("too-big", &[], vec![]);
    big.members = (0..1001)
        .map(|i| format!("urn:trustca:hems:Acme:Plug-2:N{i}"))
        .collect();
    let (c, m) = code(sys.register(big).await);
    assert_eq!(c, Code::ResourceExhausted, "{m}");
    // The name is taken.
    let (c, _) = code(sys.register(register("house-2", &[&h.hems], vec![])).await);
    assert_eq!(c, Code::AlreadyExists);
    // An operator of another sector.
    let car_ops =
        h.ca.credential(CertificateKind::Operator, "car-ops", &["automotive"]);
    let (c, m) = code(
        systems(&h.ca, &car_ops)
            .await
            .register(register("elsewhere", &[&h.hems], vec![]))
            .await,
    );
    assert_eq!(c, Code::PermissionDenied, "{m}");
    // A device that is not in the system may not link in it.
    let (c, m) = code(
        systems(&h.ca, &h.car.creds)
            .await
            .link(link_request(
                "house-2",
                link(&h.car, "read-telemetry", &h.hems),
            ))
            .await,
    );
    assert_eq!(c, Code::PermissionDenied, "{m}");
    assert!(m.contains("not a member"), "{m}");
    // Nothing of it was stored.
    assert_eq!(show(sys.clone()).await, before);
    assert!(
        sys.show(pb::ShowSystemRequest {
            system: "too-big".into()
        })
        .await
        .is_err_and(|s| s.code() == Code::NotFound)
    );

    // A member device may add a link it takes part in.
    let v = systems(&h.ca, &h.hems.creds)
        .await
        .link(link_request(
            "house-2",
            link(&h.hems, "read-telemetry", &h.plug),
        ))
        .await;
    // ... unless it closes a cycle, as this one does (plug commands hems).
    assert_eq!(v.unwrap_err().code(), Code::InvalidArgument);
    let v = systems(&h.ca, &h.plug.creds)
        .await
        .link(link_request(
            "house-2",
            link(&h.plug, "read-telemetry", &h.hems),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((v.links.len(), v.version), (2, 2));
}

/// `trustca snapshot fetch` of every sector, then `trustca snapshot decide`
/// by the car about `peer`, as JSON.
/// [`snapshot_decide`] repeated, for up to 10 s, until a snapshot built
/// after the latest change answers `allow`: the last answer either way.
fn snapshot_decide_once_rebuilt(
    h: &House,
    peer: &Device,
    op: &str,
    allow: bool,
) -> serde_json::Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let answer = snapshot_decide(h, peer, op);
        if answer["allow"] == allow || std::time::Instant::now() > deadline {
            return answer;
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
}

fn snapshot_decide(h: &House, peer: &Device, op: &str) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let path = |n: &str| dir.path().join(n).display().to_string();
    std::fs::write(path("root.pem"), h.ca.root_pem()).unwrap();
    std::fs::write(path("car.pem"), h.car.pem()).unwrap();
    std::fs::write(path("peer.pem"), peer.pem()).unwrap();
    let (ok, _, err) = run(&[
        "snapshot",
        "fetch",
        "--server",
        &h.ca.url(),
        "--ca",
        &path("root.pem"),
        "--out",
        &path("all.snapshot"),
    ]
    .map(String::from));
    assert!(ok, "{err}");
    let (_, out, err) = run(&[
        "snapshot",
        "decide",
        &path("all.snapshot"),
        "--root",
        &path("root.pem"),
        "--caller",
        &path("car.pem"),
        "--peer",
        &path("peer.pem"),
        "--operation",
        op,
        "--json",
    ]
    .map(String::from));
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out} {err}"))
}

fn run(args: &[String]) -> (bool, String, String) {
    let out = Command::new(trustca_bin())
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_system_command_registers_links_evaluates_and_refuses() {
    let h = house().await;
    let dir = tempfile::tempdir().unwrap();
    let ops = client_args(&h.ca, dir.path(), "ops", &h.ops);
    let cmd = |words: &[&str], extra: &[String]| -> Vec<String> {
        let mut a: Vec<String> = ["system"]
            .iter()
            .chain(words)
            .map(|s| s.to_string())
            .collect();
        a.extend(ops.iter().cloned());
        a.extend(extra.iter().cloned());
        a
    };
    let s = |v: &str| v.to_owned();
    let (ok, out, err) = run(&cmd(
        &["register", "--json"],
        &[
            s("--name"),
            s("house-3"),
            s("--sector"),
            s("hems"),
            s("--member"),
            h.hems.identity.clone(),
            s("--member"),
            h.plug.identity.clone(),
            s("--link"),
            format!("{}=demand-response=>{}", h.plug.identity, h.hems.identity),
            s("--reason"),
            s("commissioned"),
        ],
    ));
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["links"].as_array().map(Vec::len), Some(1));

    let (ok, out, err) = run(&cmd(&["evaluate", "--json", "--name", "house-3"], &[]));
    assert!(ok, "{err}");
    let e: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(e["combined_level"], 2);
    let hems = e["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["identity"] == h.hems.identity.as_str())
        .unwrap();
    assert_eq!(hems["effective_level"], 2);
    assert_eq!(hems["cap"]["source"], h.plug.identity.as_str());

    // The table for people names the path.
    let (ok, out, err) = run(&cmd(&["evaluate", "--name", "house-3"], &[]));
    assert!(ok, "{err}");
    assert!(out.contains("combined Lv.2"), "{out}");
    assert!(out.contains("-demand-response->"), "{out}");

    // A refusal: the code in words and the server's sentence, exit 1.
    let one_link = |from: &Device, to: &Device, op: &str, why: &str| -> Vec<String> {
        [
            "--system",
            "house-3",
            "--from",
            &from.identity,
            "--to",
            &to.identity,
            "--operation",
            op,
            "--reason",
            why,
        ]
        .map(String::from)
        .to_vec()
    };
    let (ok, _, err) = run(&cmd(
        &["link"],
        &one_link(&h.hems, &h.plug, "remote-control", "loop"),
    ));
    assert!(!ok);
    assert!(
        err.contains("invalid argument") && err.contains("cycle"),
        "{err}"
    );

    let (ok, out, err) = run(&cmd(
        &["unlink", "--json"],
        &one_link(&h.plug, &h.hems, "demand-response", "plug removed"),
    ));
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["links"].as_array().map(Vec::len), Some(0));
    assert_eq!(v["version"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_stored_system_answers_data_loss_for_its_members_only() {
    let mut h = house().await;
    let mut sys = systems(&h.ca, &h.ops).await;
    sys.register(register(
        "house-4",
        &[&h.hems, &h.plug],
        vec![link(&h.plug, "demand-response", &h.hems)],
    ))
    .await
    .unwrap();
    drop(sys);
    // Behind trustca's back: the reverse link, which closes a cycle that
    // no RPC would have accepted (as two replicas linking at once could).
    h.ca.stop().await;
    {
        let key = |d: &Device| {
            trustca_model::DeviceIdentity::from_urn(&d.identity)
                .unwrap()
                .key()
        };
        // Written through the store with an audit entry, as a second
        // replica linking at the same moment would: the log vouches for
        // it, the system it makes does not hold together.
        let store = trustca_store::SledStorage::open(&h.ca.data().join("db")).unwrap();
        let record = format!(
            "l/house-4\0{}\0{}\0remote-control",
            key(&h.hems),
            key(&h.plug)
        );
        trustca_store::Storage::blob_put(
            &store,
            "systems", // trustca_db::SYSTEMS_SPACE
            &[(record.into_bytes(), b"1".to_vec())],
            false,
            Some(&trustca_store::BlobAudit {
                actor: "operator:other-replica".into(),
                kind: "system.linked".into(),
                subject: "house-4".into(),
                detail: "{}".into(),
                at: 1,
            }),
        )
        .unwrap();
    }
    h.ca.restart().await;
    // The HEMS is a member: no decision without its cap.
    let mut car = trust_client(&h.ca, &h.car.creds).await;
    let err = car
        .decide(pb::DecideRequest {
            peer: Some(pb::CertificateChain {
                certificates: h.hems.chain.clone(),
            }),
            operation: "remote-control".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::DataLoss, "{err:?}");
    assert!(err.message().contains("house-4"), "{}", err.message());
    // The heat pump is in no system: decided as before.
    let d = decide(&mut car, &h.heat_pump, "read-telemetry").await;
    assert!(d.allow, "{d:?}");
    let err = systems(&h.ca, &h.ops)
        .await
        .evaluate(pb::ShowSystemRequest {
            system: "house-4".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::DataLoss);

    // The way out: an operator unlinks the offending link; the HEMS is
    // decided again, capped by the plug as registered.
    let v = systems(&h.ca, &h.ops)
        .await
        .unlink(link_request(
            "house-4",
            link(&h.hems, "remote-control", &h.plug),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((v.links.len(), v.version), (1, 2));
    let d = decide(&mut car, &h.hems, "remote-control").await;
    assert_eq!((d.allow, d.peer_level), (false, 2), "{d:?}");
}

/// Sends SIGHUP to this process: the in-process server reads its policy
/// files again (tokio's handler replaces the default action).
fn hangup() {
    let ok = Command::new("kill")
        .args(["-HUP", &std::process::id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn composition_toml_is_reloaded_on_sighup_and_a_bad_file_keeps_the_running_one() {
    let h = house().await;
    let mut sys = systems(&h.ca, &h.ops).await;
    let file = h.ca.data().join("policies/composition.toml");
    let shipped = include_str!("../../../policies/composition.toml");
    assert!(shipped.contains("max_devices = 1000"));
    let two = |name: &str| register(name, &[&h.hems, &h.plug], vec![]);
    let refused_as_too_large = |r: Result<tonic::Response<pb::SystemView>, tonic::Status>| match r {
        Err(s) => s.code() == Code::ResourceExhausted,
        Ok(_) => false,
    };

    // A limit of one device, read on SIGHUP: two members are refused.
    std::fs::write(
        &file,
        shipped.replace("max_devices = 1000", "max_devices = 1"),
    )
    .unwrap();
    hangup();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut n = 0;
    loop {
        n += 1;
        let r = sys.register(two(&format!("tiny-{n}"))).await;
        if refused_as_too_large(r) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the reload took effect"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }

    // A file that does not parse: the running limit (one) stays.
    std::fs::write(&file, "max_devices = \"many\"\n").unwrap();
    hangup();
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert!(refused_as_too_large(sys.register(two("still-tiny")).await));

    // The shipped file again: two members are fine.
    std::fs::write(&file, shipped).unwrap();
    hangup();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while sys.register(two("house-two")).await.is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the second reload took effect"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
