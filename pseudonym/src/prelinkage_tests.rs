//! Tests of the pre-linkage values: published vectors, round trips,
//! refusals and properties.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use serde_json::Value;

use super::*;

const VECTORS: &str = include_str!("../testdata/prelinkage-vectors.json");

const LA1: LaId = LaId(0x8e09);
const LA2: LaId = LaId(0x59ce);

fn bytes<const N: usize>(v: &Value) -> [u8; N] {
    hex::decode(v.as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap()
}

fn la_id(v: &Value) -> LaId {
    LaId(u16::from_be_bytes(bytes(v)))
}

/// Both LAs' chains for one holder, starting at `period`.
fn holder(period: u64) -> (LaChain, LaChain) {
    (
        LaChain::generate(LA1, period).unwrap(),
        LaChain::generate(LA2, period).unwrap(),
    )
}

fn lvs(h: &(LaChain, LaChain), period: u64, count: u32) -> Vec<CertLinkageValue> {
    let a = h.0.pre_linkage_values(period, count).unwrap();
    let b = h.1.pre_linkage_values(period, count).unwrap();
    a.iter()
        .zip(b.iter())
        .map(|(x, y)| CertLinkageValue::combine(x, y))
        .collect()
}

fn revoke(h: &(LaChain, LaChain), from: u64) -> LinkageRevocation {
    LinkageRevocation::new(h.0.release(from).unwrap(), h.1.release(from).unwrap()).unwrap()
}

#[test]
fn published_camp_vectors() {
    let doc: Value = serde_json::from_str(VECTORS).unwrap();
    assert!(
        doc["source"]
            .as_str()
            .unwrap()
            .contains("conz27/crypto-test-vectors")
    );
    let cases = doc["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 2);
    let mut checked = 0;
    for case in cases {
        let (la1, la2) = (la_id(&case["la_id1"]), la_id(&case["la_id2"]));
        let chain1 = LaChain::new(la1, 0, LaSeed::from_bytes(bytes(&case["ls1_0"])));
        let chain2 = LaChain::new(la2, 0, LaSeed::from_bytes(bytes(&case["ls2_0"])));
        let revocation =
            LinkageRevocation::new(chain1.release(0).unwrap(), chain2.release(0).unwrap()).unwrap();
        for p in case["periods"].as_array().unwrap() {
            let i = p["i"].as_u64().unwrap();
            let j = u32::try_from(p["j"].as_u64().unwrap()).unwrap();
            let ls1 = chain1.seed_for_period(i).unwrap();
            let ls2 = chain2.seed_for_period(i).unwrap();
            assert_eq!(ls1.as_bytes(), &bytes::<16>(&p["ls1"]), "ls1({i})");
            assert_eq!(ls2.as_bytes(), &bytes::<16>(&p["ls2"]), "ls2({i})");
            let plv1 = ls1.pre_linkage_value(la1, j);
            let plv2 = ls2.pre_linkage_value(la2, j);
            assert_eq!(plv1.0, bytes::<9>(&p["plv1"]), "plv1({i},{j})");
            assert_eq!(plv2.0, bytes::<9>(&p["plv2"]), "plv2({i},{j})");
            let lv = CertLinkageValue(bytes(&p["lv"]));
            assert_eq!(CertLinkageValue::combine(&plv1, &plv2), lv);
            // The same values through the chain and revocation APIs.
            let count = j + 1;
            assert_eq!(
                chain1.pre_linkage_values(i, count).unwrap()[j as usize],
                plv1
            );
            assert_eq!(revocation.linkage_values(i, count).unwrap()[j as usize], lv);
            assert_eq!(revocation.matches(i, &lv, count).unwrap(), Some(j));
            assert_eq!(revocation.matches(i, &lv, j).unwrap(), None);
            checked += 1;
        }
    }
    assert_eq!(checked, 4);
}

#[test]
fn seed_for_period_walks_forward_only() {
    let seed = LaSeed::from_bytes([7; 16]);
    let chain = LaChain::new(LA1, 100, seed.clone());
    let mut expect = seed;
    for p in 100..110 {
        assert_eq!(chain.seed_for_period(p).unwrap(), expect);
        expect = expect.next(LA1);
    }
    assert_eq!(
        chain.seed_for_period(99).unwrap_err(),
        PseudonymError::PeriodBeforeChainStart {
            requested: 99,
            start: 100
        }
    );
    assert!(matches!(
        chain.seed_for_period(100 + MAX_CHAIN_STEPS + 1),
        Err(PseudonymError::ChainTooLong { .. })
    ));
    // The LA identifier enters the hash: another LA's chain differs.
    assert_ne!(
        LaSeed::from_bytes([7; 16]).next(LA1),
        LaSeed::from_bytes([7; 16]).next(LA2)
    );
}

#[test]
fn advance_to_forgets_earlier_periods() {
    let mut chain = LaChain::generate(LA1, 10).unwrap();
    let at_15 = chain.seed_for_period(15).unwrap();
    let plvs_16 = chain.pre_linkage_values(16, 4).unwrap();
    chain.advance_to(15).unwrap();
    assert_eq!(chain.period(), 15);
    assert_eq!(chain.seed_for_period(15).unwrap(), at_15);
    assert_eq!(chain.pre_linkage_values(16, 4).unwrap(), plvs_16);
    assert!(chain.seed_for_period(14).is_err());
    assert!(chain.release(14).is_err());
    assert!(chain.advance_to(14).is_err());
    assert_eq!(chain.period(), 15);
}

#[test]
fn one_la_alone_does_not_know_the_linkage_value() {
    let h = holder(3);
    let p1 = h.0.pre_linkage_values(5, 20).unwrap();
    let p2 = h.1.pre_linkage_values(5, 20).unwrap();
    for ((a, b), lv) in p1.iter().zip(p2.iter()).zip(lvs(&h, 5, 20)) {
        assert_ne!(lv.0, a.0);
        assert_ne!(lv.0, b.0);
        assert_eq!(lv, CertLinkageValue::combine(b, a));
    }
    // Values within a period differ from each other.
    let mut all = lvs(&h, 5, 20);
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 20);
}

#[test]
fn revocation_links_from_its_period_and_never_before() {
    let h = holder(100);
    let p = 110;
    let count = 8;
    let revocation = revoke(&h, p);
    for period in p - 3..=p + 3 {
        let values = lvs(&h, period, count);
        let expect_linked = period >= p;
        assert_eq!(
            revocation.linkage_values(period, count).unwrap(),
            if expect_linked {
                values.clone()
            } else {
                Vec::new()
            }
        );
        for (j, lv) in values.iter().enumerate() {
            let found = revocation.matches(period, lv, count).unwrap();
            let j = u32::try_from(j).unwrap();
            assert_eq!(found, expect_linked.then_some(j), "period {period} j {j}");
        }
    }
}

#[test]
fn other_chains_never_match() {
    let a = holder(0);
    let b = holder(0);
    let revocation = revoke(&a, 2);
    // Half of a's release paired with half of b's links nobody.
    let mixed = LinkageRevocation::new(a.0.release(2).unwrap(), b.1.release(2).unwrap()).unwrap();
    for period in 2..6 {
        for lv in lvs(&b, period, 10) {
            assert_eq!(revocation.matches(period, &lv, 10).unwrap(), None);
        }
        for lv in lvs(&a, period, 10) {
            assert_eq!(mixed.matches(period, &lv, 10).unwrap(), None);
        }
    }
    // A certificate of the revoked holder does not match under another
    // period number (the seed differs per period).
    let lv = lvs(&a, 3, 10)[4];
    assert_eq!(revocation.matches(3, &lv, 10).unwrap(), Some(4));
    assert_eq!(revocation.matches(4, &lv, 10).unwrap(), None);
}

#[test]
fn revocation_pairing_rules() {
    let h = holder(0);
    assert_eq!(
        LinkageRevocation::new(h.0.release(1).unwrap(), h.1.release(2).unwrap()).unwrap_err(),
        PseudonymError::ReleasePeriodMismatch {
            first: 1,
            second: 2
        }
    );
    let other = LaChain::generate(LA1, 0).unwrap();
    assert_eq!(
        LinkageRevocation::new(h.0.release(1).unwrap(), other.release(1).unwrap()).unwrap_err(),
        PseudonymError::DuplicateLaId { la_id: LA1.0 }
    );
}

#[test]
fn index_agrees_with_matches() {
    let holders: Vec<_> = (0..5).map(|k| holder(k * 2)).collect();
    let revocations: Vec<_> = holders
        .iter()
        .take(4)
        .enumerate()
        .map(|(k, h)| revoke(h, 10 + k as u64))
        .collect();
    let (from, to, cpp) = (9, 14, 6);
    let index = LinkageRevocationIndex::build(&revocations, from, to, cpp).unwrap();
    // Revocation k covers periods 10 + k ..= 14.
    assert_eq!(index.len(), (5 + 4 + 3 + 2) * cpp as usize);
    for period in from - 1..=to + 1 {
        for h in &holders {
            for lv in lvs(h, period, cpp + 1) {
                let linear = revocations
                    .iter()
                    .position(|r| r.matches(period, &lv, cpp).unwrap().is_some());
                let expect = if (from..=to).contains(&period) {
                    linear
                } else {
                    None
                };
                assert_eq!(index.lookup(period, &lv), expect, "period {period}");
            }
        }
    }
    assert!(index.lookup(12, &CertLinkageValue([0; 9])).is_none());
    assert!(format!("{index:?}").contains("values"));
}

#[test]
fn index_cap_and_range_are_enforced() {
    let h = holder(0);
    let revocations = vec![revoke(&h, 0), revoke(&h, 0)];
    // 2 × 10,000 × 2,501 = 50,020,000 > 50,000,000: refused up front.
    let err = LinkageRevocationIndex::build(&revocations, 0, 9_999, 2_501).unwrap_err();
    assert_eq!(
        err,
        PseudonymError::RevocationIndexTooLarge {
            values: 50_020_000,
            max: MAX_INDEX_VALUES
        }
    );
    // Small requests go through.
    assert!(LinkageRevocationIndex::build(&revocations, 0, 3, 5).is_ok());
    assert!(matches!(
        LinkageRevocationIndex::build(&revocations, 0, u64::MAX, 1),
        Err(PseudonymError::ChainTooLong { .. })
    ));
    assert_eq!(
        LinkageRevocationIndex::build(&revocations, 5, 4, 1).unwrap_err(),
        PseudonymError::InvalidPeriodRange { from: 5, to: 4 }
    );
    assert!(matches!(
        LinkageRevocationIndex::build(&revocations, 0, 1, MAX_CERTIFICATES_PER_PERIOD + 1),
        Err(PseudonymError::TooManyCertificatesPerPeriod { .. })
    ));
    let empty = LinkageRevocationIndex::build(&revocations, 0, 100, 0).unwrap();
    assert!(empty.is_empty());
    assert!(matches!(
        h.0.pre_linkage_values(0, MAX_CERTIFICATES_PER_PERIOD + 1),
        Err(PseudonymError::TooManyCertificatesPerPeriod { .. })
    ));
}

#[test]
fn encodings_round_trip_and_reject_wrong_lengths() {
    let chain = LaChain::new(LA2, 0x0102_0304_0506_0708, LaSeed::from_bytes([0xab; 16]));
    let enc = chain.to_bytes();
    assert_eq!(enc.len(), LA_CHAIN_LEN);
    assert_eq!(&enc[..10], &[0x59, 0xce, 1, 2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(&enc[10..], &[0xab; 16]);
    let back = LaChain::from_bytes(&enc[..]).unwrap();
    assert_eq!(back.la_id(), LA2);
    assert_eq!(back.period(), chain.period());
    assert_eq!(back.to_bytes(), enc);

    let release = chain.release(0x0102_0304_0506_0709).unwrap();
    let rel = release.to_bytes();
    assert_eq!(rel.len(), SEED_RELEASE_LEN);
    assert_eq!(SeedRelease::from_bytes(&rel).unwrap(), release);

    for len in [0, 1, 25, 27, 40] {
        let buf = vec![0u8; len];
        assert_eq!(
            LaChain::from_bytes(&buf).unwrap_err(),
            PseudonymError::InvalidLength {
                what: "linkage authority chain",
                expected: LA_CHAIN_LEN,
                actual: len
            }
        );
        assert!(matches!(
            SeedRelease::from_bytes(&buf),
            Err(PseudonymError::InvalidLength { actual, .. }) if actual == len
        ));
    }
    assert!(CertLinkageValue::from_slice(&[0; 8]).is_err());
    assert!(CertLinkageValue::from_slice(&[0; 10]).is_err());
    assert_eq!(
        CertLinkageValue::from_slice(&[1; 9]).unwrap(),
        CertLinkageValue([1; 9])
    );
}

#[test]
fn debug_redacts_secrets() {
    let chain = LaChain::new(LA1, 3, LaSeed::from_bytes([0x5a; 16]));
    let release = chain.release(3).unwrap();
    let revocation = LinkageRevocation::new(
        release.clone(),
        LaChain::new(LA2, 3, LaSeed::from_bytes([0x5a; 16]))
            .release(3)
            .unwrap(),
    )
    .unwrap();
    for text in [
        format!("{:?}", chain.seed_for_period(3).unwrap()),
        format!("{chain:?}"),
        format!("{release:?}"),
        format!("{revocation:?}"),
    ] {
        assert!(text.contains("<redacted>"), "{text}");
        assert!(!text.contains("5a5a"), "{text}");
        assert!(!text.contains("90, 90"), "{text}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn seed_for_period_is_repeated_next(
        seed in any::<[u8; 16]>(),
        la in any::<u16>(),
        start in any::<u64>(),
        steps in 0u64..40,
    ) {
        let period = start.saturating_add(steps);
        let chain = LaChain::new(LaId(la), start, LaSeed::from_bytes(seed));
        let mut expect = LaSeed::from_bytes(seed);
        for _ in 0..(period - start) {
            expect = expect.next(LaId(la));
        }
        prop_assert_eq!(chain.seed_for_period(period).unwrap(), expect);
        let mut moved = chain.clone();
        moved.advance_to(period).unwrap();
        prop_assert_eq!(moved.pre_linkage_values(period, 3).unwrap(),
            chain.pre_linkage_values(period, 3).unwrap());
    }

    #[test]
    fn revocation_matches_exactly_from_its_period(
        s1 in any::<[u8; 16]>(),
        s2 in any::<[u8; 16]>(),
        start in 0u64..1000,
        offset in 0u64..5,
        delta in -3i64..=3,
        j in 0u32..6,
    ) {
        let h = (
            LaChain::new(LA1, start, LaSeed::from_bytes(s1)),
            LaChain::new(LA2, start, LaSeed::from_bytes(s2)),
        );
        let p = start + 3 + offset;
        let period = p.checked_add_signed(delta).unwrap();
        let revocation = revoke(&h, p);
        let lv = lvs(&h, period, 6)[j as usize];
        let found = revocation.matches(period, &lv, 6).unwrap();
        prop_assert_eq!(found, (period >= p).then_some(j));
    }

    #[test]
    fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
        let chain = LaChain::from_bytes(&bytes);
        let release = SeedRelease::from_bytes(&bytes);
        prop_assert_eq!(chain.is_ok(), bytes.len() == LA_CHAIN_LEN);
        prop_assert_eq!(release.is_ok(), bytes.len() == SEED_RELEASE_LEN);
        if let Ok(r) = release {
            prop_assert_eq!(&r.to_bytes()[..], &bytes[..]);
        }
    }
}
