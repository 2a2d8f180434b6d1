//! How the RA lays out what it stores: padded responses (so lengths do not
//! tell level classes apart), the record keys, and the shuffle that hides
//! which requests came from one vehicle.

use super::*;

/// Every stored response takes this many bytes: `BE16(length) ‖ response
/// ‖ zeros`. The standard response's length follows the ticket's
/// permission set; padded, the store does not show which vehicles share a
/// level class.
pub const STORED_RESPONSE_LEN: usize = 1024;

pub(super) fn pad_response(response: &[u8]) -> Result<Vec<u8>> {
    let len = u16::try_from(response.len())
        .ok()
        .filter(|l| usize::from(*l) + 2 <= STORED_RESPONSE_LEN)
        .ok_or_else(|| {
            ScmsError::Response(format!(
                "a response of {} bytes does not fit the stored size",
                response.len()
            ))
        })?;
    let mut v = Vec::with_capacity(STORED_RESPONSE_LEN);
    v.extend_from_slice(&len.to_be_bytes());
    v.extend_from_slice(response);
    v.resize(STORED_RESPONSE_LEN, 0);
    Ok(v)
}

pub(super) fn unpad_response(stored: &[u8]) -> Result<Vec<u8>> {
    let len = stored
        .get(..2)
        .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
        .filter(|l| stored.len() == STORED_RESPONSE_LEN && l + 2 <= stored.len())
        .ok_or_else(|| ScmsError::Response("a stored response is damaged".into()))?;
    Ok(stored[2..2 + len].to_vec())
}

/// `d/` ‖ handle ‖ BE64(period) (‖ BE32(j) ‖ request id, per response).
pub(super) fn delivery_prefix(h: &VehicleHandle, period: Option<u64>) -> Vec<u8> {
    let mut k = DELIVERY_PREFIX.to_vec();
    k.extend_from_slice(&h.0);
    if let Some(p) = period {
        k.extend_from_slice(&p.to_be_bytes());
    }
    k
}

pub(super) fn vehicle_key(h: &VehicleHandle) -> Vec<u8> {
    let mut k = VEHICLE_PREFIX.to_vec();
    k.extend_from_slice(&h.0);
    k
}

/// Fisher–Yates with the system random generator (uniform: rejection
/// sampling for the index).
pub(super) fn shuffle<T>(items: &mut [T]) -> Result<()> {
    for i in (1..items.len()).rev() {
        let bound = (i + 1) as u64;
        let zone = u64::MAX - (u64::MAX % bound);
        let j = loop {
            let r = u64::from_be_bytes(random_bytes()?);
            if r < zone {
                break (r % bound) as usize;
            }
        };
        items.swap(i, j);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shuffle_permutes_and_moves_things() {
        let mut v: Vec<u32> = (0..1000).collect();
        shuffle(&mut v).unwrap();
        let mut sorted = v.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..1000).collect::<Vec<_>>());
        let fixed = v
            .iter()
            .enumerate()
            .filter(|(i, x)| *i as u32 == **x)
            .count();
        // Expected ~1 fixed point; 50 would be astronomically unlikely.
        assert!(fixed < 50, "{fixed} fixed points");
    }
}
