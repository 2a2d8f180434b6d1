//! Two industries under two roots (issue 20's trust lists and federation):
//! our three sectors under one root, railway under another, and a second
//! railway root that nobody lists; the policy files each side runs with,
//! devices enrolled at an instance, and the steps the trust-list and
//! federation tests share.

use std::path::{Path, PathBuf};

use trustca_model::CertificateKind;
use trustca_model::trust_list::TrustList;
use trustca_proto::v1 as pb;

use crate::ceremony::Ceremony;
use crate::server::{Device, automotive_lv5, decide, enroll_device, pem_of};

/// Our sectors.
pub const OURS: [&str; 3] = ["automotive", "hems", "healthcare"];

/// Our root, theirs (railway) and an unlisted railway root, each after its
/// key ceremony with its own policy files.
pub struct TwoRoots {
    pub ours: Ceremony,
    pub theirs: Ceremony,
    pub unlisted: Ceremony,
    /// The policy directories the ceremonies were run with (kept for
    /// the test's length).
    pub policies: (tempfile::TempDir, tempfile::TempDir),
}

impl TwoRoots {
    /// Runs the three key ceremonies ([`our_policies`] for ours,
    /// [`their_policies`] for both railway roots).
    pub fn run() -> Self {
        let (ours_pol, theirs_pol) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        our_policies(ours_pol.path());
        their_policies(theirs_pol.path());
        Self {
            ours: Ceremony::run_with(&OURS, Some(ours_pol.path())),
            theirs: Ceremony::run_with(&["railway"], Some(theirs_pol.path())),
            unlisted: Ceremony::run_with(&["railway"], Some(theirs_pol.path())),
            policies: (ours_pol, theirs_pol),
        }
    }
}

fn builtin(file: &str) -> String {
    std::fs::read_to_string(crate::repo_dir().join("policies").join(file)).unwrap()
}

fn copy_builtin(dir: &Path) {
    let src = crate::repo_dir().join("policies");
    let out = std::process::Command::new("cp")
        .arg("-r")
        .arg(format!("{}/.", src.display()))
        .arg(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

/// Our policies: the built-in ones, with `railway` declared foreign and
/// counted by automotive one lower at the top.
pub fn our_policies(dir: &Path) {
    copy_builtin(dir);
    let recognition = builtin("recognition.toml").replacen(
        "\n[[recognition]]",
        "\nforeign = [\"railway\"]\n\n[[recognition]]",
        1,
    ) + "\n[[recognition]]\nsector = \"automotive\"\ncounts = \"railway\"\nmap = [1, 2, 3, 3, 4]\nrationale = \"test\"\n";
    std::fs::write(dir.join("recognition.toml"), recognition).unwrap();
}

/// Another industry's policies: one sector, railway (the automotive
/// profile renamed, without automotive's cap on declared hardware: their
/// operator's choice), the all-sector rules only.
pub fn their_policies(dir: &Path) {
    copy_builtin(dir);
    for sector in OURS {
        std::fs::remove_file(dir.join(format!("sectors/{sector}.toml"))).unwrap();
        let _ = std::fs::remove_file(dir.join(format!("detection/{sector}.toml")));
    }
    std::fs::write(
        dir.join("sectors/railway.toml"),
        builtin("sectors/automotive.toml")
            .replace("sector = \"automotive\"", "sector = \"railway\"")
            .replace("declared_hardware_max_level = 3", ""),
    )
    .unwrap();
    let cooperation = builtin("cooperation.toml");
    let mut blocks = cooperation.split("[[rule]]");
    let mut kept = blocks.next().unwrap().to_owned();
    for b in blocks.filter(|b| b.contains("caller = \"*\"")) {
        kept.push_str("[[rule]]");
        kept.push_str(b);
    }
    std::fs::write(dir.join("cooperation.toml"), kept).unwrap();
    std::fs::write(
        dir.join("recognition.toml"),
        "version = \"test-1\"\nforeign = [\"automotive\"]\n\n[[recognition]]\nsector = \"railway\"\ncounts = \"automotive\"\nmap = [1, 2, 3, 4, 5]\nrationale = \"test\"\n",
    )
    .unwrap();
}

/// A device of `sector` enrolled at `url` by a manufacturer credential
/// that `c`'s sector directory issues, with declared Lv.5 evidence.
pub async fn enrolled(c: &Ceremony, url: String, sector: &str, serial: &str) -> Device {
    device_at(c, &url, sector, serial, automotive_lv5()).await
}

/// A device of `sector` (model `M-1`) enrolled at `url` with `evidence` by
/// a manufacturer credential of that sector's own CA.
pub async fn device_at(
    c: &Ceremony,
    url: &str,
    sector: &str,
    serial: &str,
    evidence: Vec<pb::EvidenceItem>,
) -> Device {
    let acme = c.credential(sector, CertificateKind::Manufacturer, "Acme", &[sector]);
    let mut e = pb::enrollment_client::EnrollmentClient::new(
        trustca_api::client::connect(url, &acme).await.unwrap(),
    );
    enroll_device(
        &mut e,
        &c.root_pem(),
        sector,
        "Acme",
        "M-1",
        serial,
        "1.0.0",
        evidence,
    )
    .await
}

/// The one root the trust list in force at `data` names, written as PEM
/// into `dir`: the certificate the list vouches for, not a copy of the
/// foreign root's file.
pub fn listed_root(data: &Path, dir: &Path) -> PathBuf {
    let list = TrustList::decode_unchecked(&std::fs::read(data.join("ca/trust-list.der")).unwrap())
        .unwrap();
    assert_eq!(list.entries.len(), 1);
    let path = dir.join("listed-root.pem");
    std::fs::write(&path, pem_of(&list.entries[0].certificate)).unwrap();
    path
}

/// Asks Decide about `peer` until `done` holds (the server re-reads
/// `DATA/crl/foreign/` every [`crate::ceremony::TRUST_LIST_REFRESH`];
/// forwarded answers are cached for `federation_cache_ttl`), at most
/// `within`; returns the last answer.
pub async fn decide_until(
    db: &mut pb::trust_database_client::TrustDatabaseClient<tonic::transport::Channel>,
    peer: &Device,
    within: std::time::Duration,
    done: impl Fn(&pb::Decision) -> bool,
) -> pb::Decision {
    let deadline = std::time::Instant::now() + within;
    loop {
        let d = decide(db, peer, "evacuation-notice").await;
        if done(&d) || std::time::Instant::now() > deadline {
            return d;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
