//! PRL encoding: round trips, canonical order, and strict rejection.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use trustca_pseudonym::{
    LinkageChain, LinkageSeed, MAX_PRL_ENTRIES, PRL_DOMAIN, PseudonymError,
    PseudonymRevocationList, RevocationEntry,
};

fn entry(period: u64, b: u8) -> RevocationEntry {
    RevocationEntry {
        period,
        seed: [b; 32],
    }
}

fn sample() -> PseudonymRevocationList {
    PseudonymRevocationList::new(
        "automotive",
        3,
        1_700_000_000,
        1_700_604_800,
        vec![entry(10, 2), entry(5, 9), entry(10, 1)],
    )
    .unwrap()
}

/// Offset of the entry count in `sample()`'s encoding.
const COUNT_OFFSET: usize = 14 + 1 + 10 + 24;

fn arb_sector() -> impl Strategy<Value = String> {
    "[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?"
}

proptest! {
    #[test]
    fn round_trip(
        sector in arb_sector(),
        issue in any::<u64>(),
        this_update in 0u64..u64::MAX,
        gap in 1u64..1_000_000,
        raw in proptest::collection::btree_map(any::<[u8; 32]>(), any::<u64>(), 0..20),
    ) {
        let next_update = this_update.saturating_add(gap);
        prop_assume!(next_update > this_update);
        let entries: Vec<RevocationEntry> =
            raw.into_iter().map(|(seed, period)| RevocationEntry { period, seed }).collect();
        let prl = PseudonymRevocationList::new(&sector, issue, this_update, next_update, entries.clone()).unwrap();
        let bytes = prl.to_signed_bytes();
        let back = PseudonymRevocationList::from_signed_bytes(&bytes).unwrap();
        prop_assert_eq!(&back, &prl);
        prop_assert_eq!(back.to_signed_bytes(), bytes.clone());
        prop_assert!(prl.entries().windows(2).all(|w| w[0] < w[1]));
        prop_assert_eq!(prl.entries().len(), entries.len());
        // Every strict prefix is rejected as truncated; any extra byte as trailing.
        for cut in 0..bytes.len() {
            let err = PseudonymRevocationList::from_signed_bytes(&bytes[..cut]).unwrap_err();
            prop_assert!(matches!(err, PseudonymError::PrlTruncated { .. } | PseudonymError::PrlBadDomain), "cut {}: {:?}", cut, err);
        }
        let mut longer = bytes.clone();
        longer.push(0);
        prop_assert_eq!(
            PseudonymRevocationList::from_signed_bytes(&longer).unwrap_err(),
            PseudonymError::PrlTrailingBytes { count: 1 }
        );
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(tail in proptest::collection::vec(any::<u8>(), 0..200)) {
        let mut bytes = PRL_DOMAIN.to_vec();
        bytes.extend_from_slice(&tail);
        let _ = PseudonymRevocationList::from_signed_bytes(&bytes);
        let _ = PseudonymRevocationList::from_signed_bytes(&tail);
    }
}

#[test]
fn rejects_bad_headers() {
    let good = sample().to_signed_bytes();

    let mut bad = good.clone();
    bad[0] = b'T';
    assert_eq!(
        PseudonymRevocationList::from_signed_bytes(&bad).unwrap_err(),
        PseudonymError::PrlBadDomain
    );

    for (len_byte, name) in [(0u8, ""), (33, "a")] {
        let mut bad = PRL_DOMAIN.to_vec();
        bad.push(len_byte);
        bad.extend_from_slice(name.as_bytes());
        assert_eq!(
            PseudonymRevocationList::from_signed_bytes(&bad).unwrap_err(),
            PseudonymError::PrlInvalidSector
        );
    }
    for sector in ["Automotive", "-auto", "auto-", "auto motive", "é"] {
        let mut bad = PRL_DOMAIN.to_vec();
        bad.push(sector.len() as u8);
        bad.extend_from_slice(sector.as_bytes());
        bad.extend_from_slice(&good[25..]);
        assert_eq!(
            PseudonymRevocationList::from_signed_bytes(&bad).unwrap_err(),
            PseudonymError::PrlInvalidSector,
            "{sector}"
        );
        assert!(PseudonymRevocationList::new(sector, 0, 0, 1, vec![]).is_err());
    }

    // next_update must be after this_update.
    let mut bad = good.clone();
    bad[41..49].copy_from_slice(&1_700_000_000u64.to_be_bytes());
    assert!(matches!(
        PseudonymRevocationList::from_signed_bytes(&bad).unwrap_err(),
        PseudonymError::PrlInvalidValidity { .. }
    ));
    assert!(PseudonymRevocationList::new("a", 0, 5, 5, vec![]).is_err());
    assert!(PseudonymRevocationList::new("a", 0, 6, 5, vec![]).is_err());
}

#[test]
fn rejects_bad_counts() {
    let good = sample().to_signed_bytes();
    assert_eq!(&good[COUNT_OFFSET..COUNT_OFFSET + 4], &3u32.to_be_bytes());

    let mut oversize = good.clone();
    oversize[COUNT_OFFSET..COUNT_OFFSET + 4].copy_from_slice(&(MAX_PRL_ENTRIES + 1).to_be_bytes());
    assert_eq!(
        PseudonymRevocationList::from_signed_bytes(&oversize).unwrap_err(),
        PseudonymError::PrlTooManyEntries {
            count: u64::from(MAX_PRL_ENTRIES) + 1,
            max: MAX_PRL_ENTRIES
        }
    );
    let mut huge = good.clone();
    huge[COUNT_OFFSET..COUNT_OFFSET + 4].copy_from_slice(&u32::MAX.to_be_bytes());
    assert!(matches!(
        PseudonymRevocationList::from_signed_bytes(&huge).unwrap_err(),
        PseudonymError::PrlTooManyEntries { .. }
    ));
    // Count larger than the data: truncated. Smaller: trailing bytes.
    let mut more = good.clone();
    more[COUNT_OFFSET..COUNT_OFFSET + 4].copy_from_slice(&4u32.to_be_bytes());
    assert!(matches!(
        PseudonymRevocationList::from_signed_bytes(&more).unwrap_err(),
        PseudonymError::PrlTruncated {
            field: "entries",
            ..
        }
    ));
    let mut fewer = good.clone();
    fewer[COUNT_OFFSET..COUNT_OFFSET + 4].copy_from_slice(&2u32.to_be_bytes());
    assert_eq!(
        PseudonymRevocationList::from_signed_bytes(&fewer).unwrap_err(),
        PseudonymError::PrlTrailingBytes { count: 40 }
    );
}

#[test]
fn rejects_unsorted_and_duplicate_entries() {
    let good = sample().to_signed_bytes();
    let first = COUNT_OFFSET + 4;
    let (e0, e1, e2) = (first, first + 40, first + 80);

    // Swap entries 1 and 2.
    let mut swapped = good.clone();
    let (a, b) = (good[e1..e2].to_vec(), good[e2..e2 + 40].to_vec());
    swapped[e1..e2].copy_from_slice(&b);
    swapped[e2..e2 + 40].copy_from_slice(&a);
    assert_eq!(
        PseudonymRevocationList::from_signed_bytes(&swapped).unwrap_err(),
        PseudonymError::PrlUnsorted { index: 2 }
    );

    // Entry 1 repeated as entry 2.
    let mut dup = good.clone();
    dup[e2..e2 + 40].copy_from_slice(&a);
    assert_eq!(
        PseudonymRevocationList::from_signed_bytes(&dup).unwrap_err(),
        PseudonymError::PrlDuplicate { index: 2 }
    );

    // Entry 0's seed again under a later period (sorted, but the same seed).
    let mut same_seed = good.clone();
    same_seed[e2 + 8..e2 + 40].copy_from_slice(&good[e0 + 8..e0 + 40]);
    assert_eq!(
        PseudonymRevocationList::from_signed_bytes(&same_seed).unwrap_err(),
        PseudonymError::PrlDuplicate { index: 2 }
    );

    // The builder refuses the same.
    assert!(matches!(
        PseudonymRevocationList::new("a", 0, 0, 1, vec![entry(1, 1), entry(1, 1)]),
        Err(PseudonymError::PrlDuplicate { .. })
    ));
    assert!(matches!(
        PseudonymRevocationList::new("a", 0, 0, 1, vec![entry(1, 1), entry(2, 1)]),
        Err(PseudonymError::PrlDuplicate { .. })
    ));
}

#[test]
fn prl_revokes_a_vehicle_through_its_matcher() {
    let vehicle = LinkageChain::new(2900, LinkageSeed::from_bytes([42; 32]));
    let innocent = LinkageChain::new(2900, LinkageSeed::from_bytes([43; 32]));
    let prl = PseudonymRevocationList::new(
        "automotive",
        1,
        0,
        1,
        vec![vehicle.revocation_entry(2905).unwrap(), entry(2000, 7)],
    )
    .unwrap();
    let decoded = PseudonymRevocationList::from_signed_bytes(&prl.to_signed_bytes()).unwrap();
    let mut m = decoded.matcher(20).unwrap();
    assert!(m.is_revoked(2906, &vehicle.linkage_value(2906, 19).unwrap()));
    assert!(!m.is_revoked(2904, &vehicle.linkage_value(2904, 0).unwrap()));
    assert!(!m.is_revoked(2906, &innocent.linkage_value(2906, 0).unwrap()));
    let ix = decoded.index(2910, 20).unwrap();
    let hit = ix.lookup(&vehicle.linkage_value(2910, 3).unwrap()).unwrap();
    assert_eq!(decoded.entries()[hit.entry_index].period, 2905);
    assert_eq!(hit.j, 3);
}
