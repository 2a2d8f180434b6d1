//! How commands show times and counts to people, the same everywhere:
//! times in RFC 3339 UTC (`2026-12-07T08:30:00Z`), whatever the source
//! (protobuf seconds, a certificate's validity, a signed assertion's
//! `producedAt`), and counts with the noun in the right number.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A time as RFC 3339 in UTC.
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(&Rfc3339)
        .unwrap_or_default()
}

/// Seconds since the Unix epoch as RFC 3339 in UTC (empty when out of
/// range).
pub fn unix(seconds: i64) -> String {
    OffsetDateTime::from_unix_timestamp(seconds)
        .map(rfc3339)
        .unwrap_or_default()
}

/// `1 model`, `2 models`: a count and its noun.
pub fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_time_is_utc_rfc3339() {
        assert_eq!(unix(0), "1970-01-01T00:00:00Z");
        let east = OffsetDateTime::from_unix_timestamp(1_800_000_000)
            .unwrap()
            .to_offset(time::UtcOffset::from_hms(9, 0, 0).unwrap());
        assert_eq!(rfc3339(east), "2027-01-15T08:00:00Z");
        assert_eq!(unix(i64::MAX), "");
    }

    #[test]
    fn counts_agree_with_their_noun() {
        assert_eq!(count(1, "model", "models"), "1 model");
        assert_eq!(count(0, "model", "models"), "0 models");
        assert_eq!(count(2, "blocked key", "blocked keys"), "2 blocked keys");
    }
}
