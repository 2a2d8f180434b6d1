//! IEEE 1609.2 time: `Time32`, `Duration` and `ValidityPeriod`.
//!
//! `Time32` counts TAI seconds since 2004-01-01 00:00:00 UTC (IEEE 1609.2
//! clause 6.4.14). TAI includes leap seconds while UTC timestamps (and
//! `time::OffsetDateTime`) do not, so a conversion adds the leap seconds
//! inserted between the epoch and the instant. The table below holds the
//! five leap seconds since 2004 (end of 2005, 2008, June 2012, June 2015,
//! 2016); IERS has announced no later one. If one is announced, it must be
//! added to [`LEAP_SECONDS`], otherwise conversions after it are one second
//! early.
//!
//! [`ValidityPeriod::clamp_to`] is the one rule every issuer applies: a
//! certificate's validity lies within its issuer's.

use time::OffsetDateTime;

use crate::V2xError;

/// Unix time of 2004-01-01 00:00:00 UTC, the IEEE 1609.2 epoch.
pub const EPOCH_UNIX: i64 = 1_072_915_200;

/// Unix times (UTC) of the first second after each leap second inserted
/// since the epoch: 2006-01-01, 2009-01-01, 2012-07-01, 2015-07-01,
/// 2017-01-01.
pub const LEAP_SECONDS: [i64; 5] = [
    1_136_073_600,
    1_230_768_000,
    1_341_100_800,
    1_435_708_800,
    1_483_228_800,
];

/// Leap seconds inserted after the epoch and at or before Unix time `utc`.
fn leaps_before(utc: i64) -> i64 {
    LEAP_SECONDS.iter().filter(|t| **t <= utc).count() as i64
}

/// IEEE 1609.2 `Time32`: TAI seconds since 2004-01-01 00:00:00 UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Time32(pub u32);

impl Time32 {
    /// The instant `t` (UTC) as `Time32`, counting leap seconds. Fails
    /// before 2004 or after the end of the 32-bit range (year 2140).
    pub fn from_datetime(t: OffsetDateTime) -> Result<Self, V2xError> {
        Self::from_unix(t.unix_timestamp())
    }

    /// Unix time (UTC seconds, no leap seconds) as `Time32`.
    pub fn from_unix(unix: i64) -> Result<Self, V2xError> {
        let secs = unix
            .checked_sub(EPOCH_UNIX)
            .and_then(|s| s.checked_add(leaps_before(unix)))
            .ok_or(V2xError::OutOfRange("Time32"))?;
        u32::try_from(secs)
            .map(Self)
            .map_err(|_| V2xError::OutOfRange("Time32 outside 2004..2140"))
    }

    /// This time as Unix time (UTC). A `Time32` that falls on a leap second
    /// maps to the last second before it (23:59:59).
    pub fn to_unix(self) -> i64 {
        let tai = i64::from(self.0);
        // The UTC second u satisfies tai = u - EPOCH + leaps_before(u).
        for leaps in (0..=LEAP_SECONDS.len() as i64).rev() {
            let u = tai - leaps + EPOCH_UNIX;
            if leaps_before(u) == leaps {
                return u;
            }
        }
        // Only a leap second itself has no solution; the TAI second before
        // it is 23:59:59 UTC, which has one.
        Time32(self.0.saturating_sub(1)).to_unix()
    }

    /// This time as a UTC `OffsetDateTime`.
    pub fn to_datetime(self) -> Result<OffsetDateTime, V2xError> {
        OffsetDateTime::from_unix_timestamp(self.to_unix())
            .map_err(|_| V2xError::OutOfRange("Time32 to date"))
    }
}

/// IEEE 1609.2 `Duration`: a CHOICE of unit, each with a `Uint16` count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Duration {
    /// Microseconds.
    Microseconds(u16),
    /// Milliseconds.
    Milliseconds(u16),
    /// Seconds.
    Seconds(u16),
    /// Minutes.
    Minutes(u16),
    /// Hours.
    Hours(u16),
    /// Units of sixty hours.
    SixtyHours(u16),
    /// Years (IEEE 1609.2: 31 556 952 seconds each).
    Years(u16),
}

impl Duration {
    /// The CHOICE alternative index (tag number).
    pub(crate) fn tag(self) -> u8 {
        match self {
            Self::Microseconds(_) => 0,
            Self::Milliseconds(_) => 1,
            Self::Seconds(_) => 2,
            Self::Minutes(_) => 3,
            Self::Hours(_) => 4,
            Self::SixtyHours(_) => 5,
            Self::Years(_) => 6,
        }
    }

    pub(crate) fn value(self) -> u16 {
        match self {
            Self::Microseconds(v)
            | Self::Milliseconds(v)
            | Self::Seconds(v)
            | Self::Minutes(v)
            | Self::Hours(v)
            | Self::SixtyHours(v)
            | Self::Years(v) => v,
        }
    }

    pub(crate) fn from_tag(tag: u8, v: u16) -> Option<Self> {
        Some(match tag {
            0 => Self::Microseconds(v),
            1 => Self::Milliseconds(v),
            2 => Self::Seconds(v),
            3 => Self::Minutes(v),
            4 => Self::Hours(v),
            5 => Self::SixtyHours(v),
            6 => Self::Years(v),
            _ => return None,
        })
    }

    /// The longest duration of at most `seconds`, in the finest unit that
    /// can hold it (seconds, minutes, hours, then sixty-hour units);
    /// `None` for zero seconds.
    pub fn at_most(seconds: u64) -> Option<Duration> {
        let max = u64::from(u16::MAX);
        let d = if seconds <= max {
            Self::Seconds(seconds as u16)
        } else if seconds / 60 <= max {
            Self::Minutes((seconds / 60) as u16)
        } else if seconds / 3600 <= max {
            Self::Hours((seconds / 3600) as u16)
        } else {
            Self::SixtyHours((seconds / 216_000).min(max) as u16)
        };
        (seconds > 0).then_some(d)
    }

    /// The length in whole seconds (sub-second units round down); a year is
    /// 31 556 952 seconds as IEEE 1609.2 defines it.
    pub fn as_seconds(self) -> u64 {
        let v = u64::from(self.value());
        match self {
            Self::Microseconds(_) => v / 1_000_000,
            Self::Milliseconds(_) => v / 1000,
            Self::Seconds(_) => v,
            Self::Minutes(_) => v * 60,
            Self::Hours(_) => v * 3600,
            Self::SixtyHours(_) => v * 216_000,
            Self::Years(_) => v * 31_556_952,
        }
    }
}

/// IEEE 1609.2 `ValidityPeriod`: start and duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ValidityPeriod {
    /// First second of validity.
    pub start: Time32,
    /// How long the certificate is valid from `start`.
    pub duration: Duration,
}

impl ValidityPeriod {
    /// The first second after the period, `start + duration`, in `Time32`
    /// seconds (may exceed the `Time32` range, hence `u64`).
    pub fn end(&self) -> u64 {
        u64::from(self.start.0) + self.duration.as_seconds()
    }

    /// Whether this period lies within `outer`: starts no earlier and ends
    /// no later.
    pub fn within(&self, outer: &ValidityPeriod) -> bool {
        self.start >= outer.start && self.end() <= outer.end()
    }

    /// This period cut to lie within `issuer`'s (IEEE 1609.2 5.1.2.4: a
    /// certificate is valid only while its issuer is): the start moves up
    /// to the issuer's start, the end down to the issuer's end. A period
    /// already within is returned unchanged; a clamped duration is the
    /// longest whole number of seconds, minutes, hours or sixty-hour units
    /// that fits (never past the issuer's end). Refused with
    /// [`V2xError::OutsideIssuerValidity`] when nothing (not one second)
    /// of it lies within the issuer's period.
    pub fn clamp_to(self, issuer: &ValidityPeriod) -> Result<ValidityPeriod, V2xError> {
        if self.within(issuer) {
            return Ok(self);
        }
        if u64::from(self.start.0) >= issuer.end() {
            return Err(V2xError::OutsideIssuerValidity(
                "it would start at or after the issuer's end",
            ));
        }
        if self.end() <= u64::from(issuer.start.0) {
            return Err(V2xError::OutsideIssuerValidity(
                "it would end at or before the issuer's start",
            ));
        }
        let start = self.start.max(issuer.start);
        let seconds = self.end().min(issuer.end()) - u64::from(start.0);
        Ok(ValidityPeriod {
            start,
            duration: Duration::at_most(seconds).ok_or(V2xError::OutsideIssuerValidity(
                "less than a second of it lies within the issuer's",
            ))?,
        })
    }

    /// Whether the `Time32` instant `t` lies in `[start, start + duration)`.
    pub fn contains(&self, t: Time32) -> bool {
        let start = u64::from(self.start.0);
        let t = u64::from(t.0);
        t >= start && t < start + self.duration.as_seconds()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn epoch_and_leap_seconds() {
        assert_eq!(
            Time32::from_datetime(datetime!(2004-01-01 0:00 UTC)),
            Ok(Time32(0))
        );
        assert!(Time32::from_datetime(datetime!(2003-12-31 23:59:59 UTC)).is_err());
        // Before the first leap second: plain difference.
        let t = Time32::from_datetime(datetime!(2005-12-31 23:59:59 UTC)).unwrap();
        assert_eq!(t.0, 63_158_399);
        // After it: one extra second.
        let t = Time32::from_datetime(datetime!(2006-01-01 0:00 UTC)).unwrap();
        assert_eq!(t.0, 63_158_401);
        // Five leap seconds by 2017 (TAI - UTC went from 32 s to 37 s).
        let d = datetime!(2026-11-30 12:00 UTC);
        let t = Time32::from_datetime(d).unwrap();
        assert_eq!(i64::from(t.0), d.unix_timestamp() - EPOCH_UNIX + 5);
        assert_eq!(t.to_datetime().unwrap(), d);
        // The leap second itself maps back to 23:59:59.
        assert_eq!(Time32(63_158_400).to_unix(), 1_136_073_599);
    }

    #[test]
    fn round_trips() {
        for unix in [
            EPOCH_UNIX,
            EPOCH_UNIX + 1,
            1_136_073_599,
            1_136_073_600,
            1_483_228_799,
            1_483_228_800,
            1_800_000_000,
        ] {
            assert_eq!(Time32::from_unix(unix).unwrap().to_unix(), unix);
        }
        assert!(Time32::from_unix(EPOCH_UNIX + (1i64 << 32)).is_err());
    }

    #[test]
    fn clamping_keeps_a_certificate_within_its_issuer() {
        let issuer = ValidityPeriod {
            start: Time32(10_000),
            duration: Duration::Hours(100),
        };
        // Within: unchanged, unit kept.
        let inside = ValidityPeriod {
            start: Time32(20_000),
            duration: Duration::Hours(1),
        };
        assert_eq!(inside.clamp_to(&issuer), Ok(inside));
        // Starts before the issuer (a ticket of the first period).
        let early = ValidityPeriod {
            start: Time32(0),
            duration: Duration::Hours(170),
        };
        let c = early.clamp_to(&issuer).unwrap();
        assert_eq!(c.start, issuer.start);
        assert_eq!(c.end(), issuer.end());
        // Ends after the issuer: cut, never past it.
        let late = ValidityPeriod {
            start: Time32(10_000 + 99 * 3600 + 17),
            duration: Duration::Years(3),
        };
        let c = late.clamp_to(&issuer).unwrap();
        assert_eq!(c.start, late.start);
        assert!(c.within(&issuer));
        assert_eq!(c.end(), issuer.end());
        // A long remainder rounds down to the unit that holds it.
        let big = ValidityPeriod {
            start: Time32(1),
            duration: Duration::Years(100),
        };
        let long_issuer = ValidityPeriod {
            start: Time32(0),
            duration: Duration::Years(20),
        };
        let c = big.clamp_to(&long_issuer).unwrap();
        assert!(c.within(&long_issuer));
        assert!(long_issuer.end() - c.end() < 216_000);
        // Nothing within: refused.
        for outside in [
            ValidityPeriod {
                start: Time32(10_000 + 100 * 3600),
                duration: Duration::Hours(1),
            },
            ValidityPeriod {
                start: Time32(0),
                duration: Duration::Seconds(10_000),
            },
        ] {
            assert!(matches!(
                outside.clamp_to(&issuer),
                Err(V2xError::OutsideIssuerValidity(_))
            ));
        }
    }

    #[test]
    fn validity_contains() {
        let v = ValidityPeriod {
            start: Time32(100),
            duration: Duration::Hours(1),
        };
        assert!(!v.contains(Time32(99)));
        assert!(v.contains(Time32(100)));
        assert!(v.contains(Time32(3699)));
        assert!(!v.contains(Time32(3700)));
    }
}
