//! Published and independently generated test vectors.
//!
//! `testdata/vectors.json` is produced by `testdata/gen_vectors.py`, a hashlib-only
//! transcription of the recursive RFC 9162 §2.1 definitions that also asserts
//! the published RFC 6962 / CT reference roots and proofs for the 8 CT leaves.
//! The most important published values are additionally hard-coded below.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use trustca_audit::{
    AuditError, ConsistencyProof, Hash, InclusionProof, MerkleFrontier, TREE_HEAD_LEN, TreeHead,
    consistency_proof, empty_root, inclusion_proof, leaf_hash, root_at, verify_consistency,
    verify_inclusion,
};

const VECTORS: &str = include_str!("../../testdata/vectors.json");

fn h(s: &str) -> Hash {
    hex::decode(s).unwrap().try_into().unwrap()
}

fn hashes(v: &Value) -> Vec<Hash> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| h(x.as_str().unwrap()))
        .collect()
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap()
}

fn ct_leaves() -> Vec<Vec<u8>> {
    [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
    .iter()
    .map(|s| hex::decode(s).unwrap())
    .collect()
}

/// Published RFC 6962 reference roots for the first n CT leaves, n = 0..=8.
const CT_ROOTS: [&str; 9] = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

#[test]
fn published_ct_roots() {
    let leaves = ct_leaves();
    let leaf_hashes: Vec<Hash> = leaves.iter().map(|l| leaf_hash(l)).collect();
    assert_eq!(hex::encode(empty_root()), CT_ROOTS[0]);
    let mut f = MerkleFrontier::new();
    assert_eq!(hex::encode(f.root()), CT_ROOTS[0]);
    for (n, leaf) in leaves.iter().enumerate() {
        f.push_entry(leaf).unwrap();
        assert_eq!(
            hex::encode(f.root()),
            CT_ROOTS[n + 1],
            "frontier root n={}",
            n + 1
        );
    }
    for (n, want) in CT_ROOTS.iter().enumerate() {
        assert_eq!(
            hex::encode(root_at(&leaf_hashes, n as u64).unwrap()),
            *want,
            "root_at n={n}"
        );
    }
}

#[test]
fn published_ct_proofs() {
    let leaf_hashes: Vec<Hash> = ct_leaves().iter().map(|l| leaf_hash(l)).collect();
    let root8 = h(CT_ROOTS[8]);
    let incl_0_8 = [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ]
    .map(h);
    assert_eq!(inclusion_proof(&leaf_hashes, 0, 8).unwrap(), incl_0_8);
    verify_inclusion(&leaf_hashes[0], 0, 8, &incl_0_8, &root8).unwrap();

    let cons: [(u64, u64, &[&str]); 3] = [
        (
            1,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            6,
            8,
            &[
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            2,
            5,
            &[
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
    ];
    for (m, n, want) in cons {
        let want: Vec<Hash> = want.iter().map(|s| h(s)).collect();
        assert_eq!(
            consistency_proof(&leaf_hashes, m, n).unwrap(),
            want,
            "{m}->{n}"
        );
        verify_consistency(
            m,
            n,
            &h(CT_ROOTS[m as usize]),
            &h(CT_ROOTS[n as usize]),
            &want,
        )
        .unwrap();
    }
}

#[test]
fn generated_vectors_match() {
    let v: Value = serde_json::from_str(VECTORS).unwrap();
    let trees = v["trees"].as_array().unwrap();
    assert!(trees.len() >= 2);
    let mut checked = (0usize, 0usize);
    for tree in trees {
        let name = tree["name"].as_str().unwrap();
        let leaves: Vec<Vec<u8>> = tree["leaves"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| hex::decode(x.as_str().unwrap()).unwrap())
            .collect();
        let leaf_hashes = hashes(&tree["leaf_hashes"]);
        let roots = hashes(&tree["roots"]);
        assert_eq!(roots.len(), leaves.len() + 1);

        // Leaf hashes and roots, incrementally and via root_at.
        let mut f = MerkleFrontier::new();
        assert_eq!(f.root(), roots[0]);
        for (i, leaf) in leaves.iter().enumerate() {
            let (idx, lh) = f.push_entry(leaf).unwrap();
            assert_eq!(idx, i as u64);
            assert_eq!(lh, leaf_hashes[i], "{name}: leaf hash {i}");
            assert_eq!(f.root(), roots[i + 1], "{name}: frontier root {}", i + 1);
        }
        for (n, root) in roots.iter().enumerate() {
            assert_eq!(
                root_at(&leaf_hashes, n as u64).unwrap(),
                *root,
                "{name}: root_at {n}"
            );
        }

        for p in tree["inclusion"].as_array().unwrap() {
            let (i, n) = (u(&p["index"]), u(&p["tree_size"]));
            let want = hashes(&p["path"]);
            let got = InclusionProof::generate(&leaf_hashes, i, n).unwrap();
            assert_eq!(got.path, want, "{name}: inclusion {i} in {n}");
            got.verify(&leaf_hashes[i as usize], &roots[n as usize])
                .unwrap();
            checked.0 += 1;
        }
        for p in tree["consistency"].as_array().unwrap() {
            let (m, n) = (u(&p["old_size"]), u(&p["new_size"]));
            let want = hashes(&p["path"]);
            let got = ConsistencyProof::generate(&leaf_hashes, m, n).unwrap();
            assert_eq!(got.path, want, "{name}: consistency {m} -> {n}");
            got.verify(&roots[m as usize], &roots[n as usize]).unwrap();
            checked.1 += 1;
        }
    }
    assert!(checked.0 > 200 && checked.1 > 200, "{checked:?}");
}

#[test]
fn tree_head_encoding_vector() {
    let v: Value = serde_json::from_str(VECTORS).unwrap();
    let th = &v["tree_head"];
    let head = TreeHead {
        size: u(&th["size"]),
        root: h(th["root"].as_str().unwrap()),
        timestamp_ms: u(&th["timestamp_ms"]),
    };
    let want = hex::decode(th["signing_bytes"].as_str().unwrap()).unwrap();
    assert_eq!(want.len(), TREE_HEAD_LEN);
    assert_eq!(head.to_bytes().as_slice(), want.as_slice());
    assert_eq!(TreeHead::from_bytes(&want).unwrap(), head);
    assert!(want.starts_with(b"trustca-sth-v1\0"));
}

#[test]
fn tree_head_v2_names_its_signer() {
    let v: Value = serde_json::from_str(VECTORS).unwrap();
    let th = &v["tree_head_v2"];
    let head = TreeHead {
        size: u(&th["size"]),
        root: h(th["root"].as_str().unwrap()),
        timestamp_ms: u(&th["timestamp_ms"]),
    };
    let public_key = hex::decode(th["signer_public_key"].as_str().unwrap()).unwrap();
    let id = trustca_audit::signer_key_id(&public_key);
    assert_eq!(id, h(th["signer_key_id"].as_str().unwrap()));
    let sth = trustca_audit::SignedTreeHead {
        head,
        signature: vec![0x30],
        signer: Some(id),
    };
    let want = hex::decode(th["signing_bytes"].as_str().unwrap()).unwrap();
    assert_eq!(want.len(), trustca_audit::TREE_HEAD_V2_LEN);
    assert_eq!(sth.signed_bytes(), want);
    assert!(want.starts_with(trustca_audit::STH_DOMAIN_V2));
    let decoded = trustca_audit::SignedTreeHead::from_bytes(&sth.to_bytes()).unwrap();
    assert_eq!(decoded, sth);
}

#[test]
fn proofs_against_the_wrong_root_fail() {
    let leaf_hashes: Vec<Hash> = ct_leaves().iter().map(|l| leaf_hash(l)).collect();
    let p = inclusion_proof(&leaf_hashes, 3, 8).unwrap();
    assert_eq!(
        verify_inclusion(&leaf_hashes[3], 3, 8, &p, &h(CT_ROOTS[7])),
        Err(AuditError::InclusionProofMismatch {
            index: 3,
            tree_size: 8
        })
    );
    let c = consistency_proof(&leaf_hashes, 3, 7).unwrap();
    assert_eq!(
        verify_consistency(3, 7, &h(CT_ROOTS[3]), &h(CT_ROOTS[8]), &c),
        Err(AuditError::ConsistencyProofMismatch {
            old_size: 3,
            new_size: 7
        })
    );
}
