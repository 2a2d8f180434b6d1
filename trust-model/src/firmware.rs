//! Ordering firmware versions for range selection (vulnerability response):
//! dotted numeric parts compare as numbers, other parts as text, so
//! `1.10.0` > `1.9.3` and `2.0.0-rc1` < `2.0.0-rc2`.

use std::cmp::Ordering;

/// Compares two firmware version strings.
pub fn compare(a: &str, b: &str) -> Ordering {
    let split =
        |s: &str| -> Vec<String> { s.split(['.', '-', '+', '_']).map(str::to_owned).collect() };
    let (pa, pb) = (split(a), split(b));
    for (x, y) in pa.iter().zip(pb.iter()) {
        let o = match (x.parse::<u64>(), y.parse::<u64>()) {
            (Ok(n), Ok(m)) => n.cmp(&m),
            _ => x.cmp(y),
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    pa.len().cmp(&pb.len())
}

/// Whether `v` lies in the inclusive range; empty bounds are open.
pub fn in_range(v: &str, min: &str, max: &str) -> bool {
    (min.is_empty() || compare(v, min) != Ordering::Less)
        && (max.is_empty() || compare(v, max) != Ordering::Greater)
}

/// Refuses a range whose lower bound is above its upper bound (it would
/// select nothing while the caller believes it selected something).
pub fn check_range(min: &str, max: &str) -> Result<(), String> {
    if !min.is_empty() && !max.is_empty() && compare(min, max) == Ordering::Greater {
        return Err(format!(
            "firmware_min {min} is above firmware_max {max}; give the lower version first"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_inverted_range_is_refused() {
        assert!(check_range("2.0", "1.0").unwrap_err().contains("above"));
        assert!(check_range("1.0", "2.0").is_ok());
        assert!(check_range("1.0", "1.0").is_ok());
        assert!(check_range("", "1.0").is_ok() && check_range("3", "").is_ok());
    }

    #[test]
    fn orders_numerically() {
        assert_eq!(compare("1.10.0", "1.9.3"), Ordering::Greater);
        assert_eq!(compare("1.2", "1.2.0"), Ordering::Less);
        assert_eq!(compare("2.0.0-rc1", "2.0.0-rc2"), Ordering::Less);
        assert!(in_range("1.4.2", "1.0", "1.4.2"));
        assert!(!in_range("1.5", "1.0", "1.4.9"));
        assert!(in_range("0.1", "", ""));
    }
}
