//! Linkage chains and revocation matching: forward-only linkability, the
//! look-ahead bound, and agreement of the indexed matchers with the simple
//! one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use trustca_pseudonym::{
    LINKAGE_CHAIN_LEN, LinkageChain, LinkageSeed, LinkageValue, MAX_CERTIFICATES_PER_PERIOD,
    MAX_CHAIN_STEPS, MAX_LOOKAHEAD_PERIODS, PseudonymError, RevocationEntry, RevocationIndex,
    RevocationMatch, RevocationMatcher, derive_seed, matches,
};

const CPP: u32 = 20;

fn chain(seed: [u8; 32], start: u64) -> LinkageChain {
    LinkageChain::new(start, LinkageSeed::from_bytes(seed))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// An entry revealed at period `start + r` recognises every certificate
    /// of periods `start + r ..= start + r + 160` and none of earlier periods.
    #[test]
    fn revocation_links_only_the_future(
        seed in any::<[u8; 32]>(),
        start in 0u64..(u64::MAX / 2),
        r in 0u64..50,
        d in 0u64..200,
        j in 0u32..CPP,
    ) {
        let c = chain(seed, start);
        let entry = c.revocation_entry(start + r).unwrap();
        let period = start + d;
        let lv = c.linkage_value(period, j).unwrap();
        let expected = d >= r && d - r <= MAX_LOOKAHEAD_PERIODS;
        prop_assert_eq!(entry.matches(period, CPP, &lv), expected);
        prop_assert_eq!(matches(&entry, period, CPP, &lv), expected);
        // Certificates with j beyond certificates_per_period are not searched.
        prop_assert!(!entry.matches(period, j, &lv));
    }

    /// A different vehicle's entry never matches.
    #[test]
    fn other_vehicles_do_not_match(a in any::<[u8; 32]>(), b in any::<[u8; 32]>(), period in 0u64..1000, j in 0u32..CPP) {
        prop_assume!(a != b);
        let lv = chain(a, 0).linkage_value(period, j).unwrap();
        let entry = chain(b, 0).revocation_entry(0).unwrap();
        prop_assert!(!entry.matches(period, CPP, &lv));
    }

    /// The index, the lazy matcher and the per-entry matcher agree.
    #[test]
    fn index_and_matcher_agree_with_matches(
        seeds in proptest::collection::vec((any::<[u8; 32]>(), 0u64..40), 1..8),
        probes in proptest::collection::vec((0usize..8, 0u64..60, 0u32..(CPP + 2)), 1..24),
    ) {
        let chains: Vec<LinkageChain> = seeds.iter().map(|(s, p)| chain(*s, *p)).collect();
        let entries: Vec<RevocationEntry> = chains
            .iter()
            .map(|c| c.revocation_entry(c.period() + 3).unwrap())
            .collect();
        let mut matcher = RevocationMatcher::new(entries.clone(), CPP).unwrap();
        for (which, period, j) in probes {
            let c = &chains[which % chains.len()];
            let Ok(lv) = c.linkage_value(period, j) else { continue };
            let simple = entries.iter().position(|e| e.matches(period, CPP, &lv));
            let index = RevocationIndex::build(&entries, period, CPP).unwrap();
            let indexed = index.lookup(&lv);
            prop_assert_eq!(indexed.map(|m| m.entry_index), simple);
            prop_assert_eq!(matcher.check(period, &lv), indexed);
            if let Some(m) = indexed {
                prop_assert_eq!(m.j, j);
            }
        }
    }
}

#[test]
fn matcher_moves_forward_and_back() {
    let chains: Vec<LinkageChain> = (0u8..5)
        .map(|i| chain([i; 32], u64::from(i) * 10))
        .collect();
    let entries: Vec<RevocationEntry> = chains
        .iter()
        .map(|c| c.revocation_entry(c.period()).unwrap())
        .collect();
    let mut matcher = RevocationMatcher::new(entries, CPP).unwrap();
    for period in [0u64, 5, 40, 41, 100, 12, 0, 170, 171, 200] {
        for (i, c) in chains.iter().enumerate() {
            let lv = c.linkage_value(period.max(c.period()), 7).unwrap();
            let p = period.max(c.period());
            let expected = p - c.period() <= MAX_LOOKAHEAD_PERIODS;
            assert_eq!(
                matcher.check(p, &lv),
                expected.then_some(RevocationMatch {
                    entry_index: i,
                    j: 7
                }),
                "period {p}, chain {i}"
            );
        }
    }
    assert_eq!(matcher.entries().len(), 5);
}

#[test]
fn seeds_cannot_be_derived_backwards_or_too_far() {
    let c = chain([9; 32], 100);
    assert_eq!(
        c.seed_for_period(99).unwrap_err(),
        PseudonymError::PeriodBeforeChainStart {
            requested: 99,
            start: 100
        }
    );
    assert!(matches!(
        c.linkage_value(0, 0),
        Err(PseudonymError::PeriodBeforeChainStart { .. })
    ));
    assert!(matches!(
        derive_seed(0, c.seed(), MAX_CHAIN_STEPS + 1),
        Err(PseudonymError::ChainTooLong { .. })
    ));
    let entry = c.revocation_entry(100).unwrap();
    assert!(entry.seed_for_period(99).is_none());
    assert!(
        entry
            .seed_for_period(100 + MAX_LOOKAHEAD_PERIODS + 1)
            .is_none()
    );
    assert!(entry.advance_to(99).is_err());
    // Periods near u64::MAX do not overflow.
    let top = chain([1; 32], u64::MAX - 1);
    let lv = top.linkage_value(u64::MAX, 0).unwrap();
    assert!(
        top.revocation_entry(u64::MAX - 1)
            .unwrap()
            .matches(u64::MAX, 1, &lv)
    );
}

#[test]
fn advancing_an_entry_or_chain_is_equivalent() {
    let c = chain([3; 32], 1000);
    let entry = c.revocation_entry(1000).unwrap();
    let later = entry.advance_to(1150).unwrap();
    assert_eq!(later, c.revocation_entry(1150).unwrap());
    // The re-based entry reaches further, and no longer reaches back.
    let lv_1200 = c.linkage_value(1200, 4).unwrap();
    assert!(!entry.matches(1200, CPP, &lv_1200));
    assert!(later.matches(1200, CPP, &lv_1200));
    let lv_1100 = c.linkage_value(1100, 4).unwrap();
    assert!(entry.matches(1100, CPP, &lv_1100));
    assert!(!later.matches(1100, CPP, &lv_1100));

    let mut moved = c.clone();
    moved.advance_to(1150).unwrap();
    assert_eq!(moved.period(), 1150);
    assert_eq!(moved.linkage_value(1200, 4).unwrap(), lv_1200);
    assert!(moved.linkage_value(1100, 4).is_err());
    assert!(moved.advance_to(1149).is_err());
}

#[test]
fn chain_state_round_trips_and_redacts() {
    let c = LinkageChain::generate(2900).unwrap();
    let bytes = c.to_bytes();
    assert_eq!(bytes.len(), LINKAGE_CHAIN_LEN);
    let again = LinkageChain::from_bytes(bytes.as_ref()).unwrap();
    assert_eq!(again.period(), 2900);
    assert_eq!(again.seed().as_bytes(), c.seed().as_bytes());
    assert!(LinkageChain::from_bytes(&bytes[..39]).is_err());

    let seed_hex = hex::encode(c.seed().as_bytes());
    let entry = c.revocation_entry(2900).unwrap();
    for dbg in [
        format!("{c:?}"),
        format!("{:?}", c.seed()),
        format!("{entry:?}"),
    ] {
        assert!(!dbg.contains(&seed_hex), "{dbg}");
        assert!(dbg.contains("redacted"), "{dbg}");
    }
    // Linkage values are public and printable.
    let lv = c.linkage_value(2900, 0).unwrap();
    assert!(format!("{lv:?}").contains(&hex::encode(lv.as_bytes())));
    assert!(LinkageValue::from_slice(&[0u8; 15]).is_err());
}

#[test]
fn certificates_per_period_is_bounded_for_indexes() {
    let entries = vec![chain([1; 32], 0).revocation_entry(0).unwrap()];
    assert!(matches!(
        RevocationIndex::build(&entries, 0, MAX_CERTIFICATES_PER_PERIOD + 1),
        Err(PseudonymError::TooManyCertificatesPerPeriod { .. })
    ));
    assert!(RevocationMatcher::new(entries.clone(), MAX_CERTIFICATES_PER_PERIOD + 1).is_err());
    let ix = RevocationIndex::build(&entries, 0, 5).unwrap();
    assert_eq!(
        (ix.len(), ix.period(), ix.certificates_per_period()),
        (5, 0, 5)
    );
    assert!(
        RevocationIndex::build(&entries, MAX_LOOKAHEAD_PERIODS + 1, 5)
            .unwrap()
            .is_empty()
    );
}
