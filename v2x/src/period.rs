//! Ticket periods: which period a time falls in and when a period starts.
//!
//! The one definition every party uses — the pseudonym CA choosing a
//! ticket's validity and linkage values, the registration authority
//! counting what a vehicle holds, the vehicle rotating and topping up its
//! pool — so they cannot disagree about period boundaries. Periods count
//! from an epoch (unix seconds) in steps of a fixed length.

/// Periods of a fixed length counted from an epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeriodClock {
    epoch: i64,
    period_seconds: u64,
}

impl PeriodClock {
    /// Periods of `period_seconds` (at least one second) from `epoch`.
    pub fn new(epoch: i64, period_seconds: u64) -> Self {
        PeriodClock {
            epoch,
            period_seconds: period_seconds.max(1),
        }
    }

    /// Unix time at which period 0 starts.
    pub fn epoch(&self) -> i64 {
        self.epoch
    }

    /// The length of a period in seconds.
    pub fn period_seconds(&self) -> u64 {
        self.period_seconds
    }

    /// The period containing unix time `t`; `None` before the epoch, when
    /// no period has begun.
    pub fn period_at(&self, t: i64) -> Option<u64> {
        let since = t.checked_sub(self.epoch)?;
        u64::try_from(since).ok().map(|s| s / self.period_seconds)
    }

    /// Unix time at which `period` starts (saturating at `i64::MAX`).
    pub fn start_of(&self, period: u64) -> i64 {
        let offset = period.saturating_mul(self.period_seconds);
        self.epoch
            .saturating_add(i64::try_from(offset).unwrap_or(i64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn before_the_epoch_no_period_has_begun() {
        let c = PeriodClock::new(1_000, 3_600);
        assert_eq!(c.period_at(999), None);
        assert_eq!(c.period_at(1_000), Some(0));
        assert_eq!(c.period_at(4_599), Some(0));
        assert_eq!(c.period_at(4_600), Some(1));
        assert_eq!(c.start_of(2), 8_200);
        assert_eq!(c.start_of(u64::MAX), i64::MAX);
        assert_eq!(PeriodClock::new(0, 0).period_seconds(), 1);
    }

    proptest! {
        #[test]
        fn a_time_lies_in_its_period(
            epoch in -1_000_000_000i64..2_000_000_000,
            len in 1u64..1_000_000,
            after in 0i64..4_000_000_000,
        ) {
            let c = PeriodClock::new(epoch, len);
            let t = epoch + after;
            let p = c.period_at(t).expect("after the epoch");
            prop_assert!(c.start_of(p) <= t);
            prop_assert!(t < c.start_of(p + 1));
            prop_assert_eq!(c.period_at(c.start_of(p)), Some(p));
        }
    }
}
