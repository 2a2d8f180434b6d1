//! The stored form of every typed record (certificate, device, trust,
//! history, audit entry, blocked key): a versioned envelope around its
//! postcard encoding.
//!
//! **Version 1** is two marker bytes, `0x81 0x00`, then the postcard bytes
//! with every run of lowercase hex text (at least [`MIN_HEX_RUN`]
//! characters, an even number) packed into the bytes it spells. The
//! records carry a lot of such text: the `der_sha256` and `binds` digests
//! and the serials in audit details, audit subjects, a device's list of
//! certificates, superseding serials. The packed body is a sequence of
//! segments, each a varint header `len << 1 | packed` and then `len` raw
//! bytes (`packed = 0`) or `len` bytes that stand for `2 · len` hex
//! characters (`packed = 1`).
//!
//! **Version 0** (no envelope) is the bare postcard encoding every build
//! before version 1 wrote; it is still read. The two cannot be confused:
//! every record starts with a postcard varint (a length or a number), and
//! postcard writes varints canonically, so a stored record never starts
//! with `0x8n 0x00` (a continuation byte followed by an empty one).
//!
//! Audit entries commit to the SHA-256 of a record's stored bytes
//! (`binds`, `seal.rs`), so a record is never re-encoded on read: it is
//! written in version 1 the next time trustca writes it.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::StoreError;

/// The envelope of version 1: `0x80 | version`, then a zero byte.
const V1: [u8; 2] = [0x81, 0x00];
/// Shorter hex runs are left as text: packing them saves too little.
pub(crate) const MIN_HEX_RUN: usize = 16;
/// The longest segment (keeps its header at most 3 bytes).
const MAX_SEGMENT: usize = 1 << 19;

/// Encodes a record in the current version (1).
pub(crate) fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>, StoreError> {
    let plain = postcard::to_stdvec(v).map_err(|e| StoreError::Backend(format!("encode: {e}")))?;
    Ok(pack(&plain))
}

/// The stored form of a typed record, as [`Storage::raw_records`] returns
/// it (less a seal's 40-byte trailer): for tools and tests that work on
/// stored bytes.
///
/// [`Storage::raw_records`]: crate::Storage::raw_records
pub fn encode_record<T: Serialize>(v: &T) -> Result<Vec<u8>, StoreError> {
    encode(v)
}

/// Decodes a stored typed record of any version (see [`encode_record`]).
pub fn decode_record<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    decode(b"record", bytes)
}

/// Encodes a record in `version` (0 or 1): a record copied with its seal
/// keeps the bytes the seal and the audit log commit to.
pub(crate) fn encode_as<T: Serialize>(v: &T, version: u8) -> Result<Vec<u8>, StoreError> {
    match version {
        0 => postcard::to_stdvec(v).map_err(|e| StoreError::Backend(format!("encode: {e}"))),
        1 => encode(v),
        other => Err(StoreError::Backend(format!(
            "encode: no record encoding version {other}"
        ))),
    }
}

/// The version a stored record body is in.
pub(crate) fn version_of(body: &[u8]) -> u8 {
    if body.starts_with(&V1) { 1 } else { 0 }
}

/// Decodes a stored record of any version; `key` names it in the error.
pub(crate) fn decode<T: DeserializeOwned>(key: &[u8], bytes: &[u8]) -> Result<T, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        key: String::from_utf8_lossy(key).into_owned(),
        reason,
    };
    match bytes.strip_prefix(V1.as_slice()) {
        Some(body) => {
            let plain = unpack(body).map_err(|e| corrupt(e.into()))?;
            postcard::from_bytes(&plain).map_err(|e| corrupt(e.to_string()))
        }
        None => postcard::from_bytes(bytes).map_err(|e| corrupt(e.to_string())),
    }
}

/// Whether the whole of `stored` is one record of type `T` in either
/// version, nothing left over (a sealed record leaves its trailer over).
pub(crate) fn is_exactly<T: DeserializeOwned>(stored: &[u8]) -> bool {
    let whole = |plain: &[u8]| matches!(postcard::take_from_bytes::<T>(plain), Ok((_, rest)) if rest.is_empty());
    match stored.strip_prefix(V1.as_slice()) {
        Some(body) => unpack(body).is_ok_and(|plain| whole(&plain)),
        None => whole(stored),
    }
}

/// Version 1 of `plain` (postcard bytes): envelope and packed segments.
pub(crate) fn pack(plain: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(plain.len() + 4);
    out.extend_from_slice(&V1);
    let mut literal_from = 0;
    let mut i = 0;
    while i < plain.len() {
        let run = hex_run(&plain[i..]);
        if run >= MIN_HEX_RUN {
            segment(&mut out, &plain[literal_from..i], false);
            let packed: Vec<u8> = plain[i..i + run]
                .chunks_exact(2)
                .map(|p| nibble(p[0]) << 4 | nibble(p[1]))
                .collect();
            segment(&mut out, &packed, true);
            i += run;
            literal_from = i;
        } else {
            i += run.max(1);
        }
    }
    segment(&mut out, &plain[literal_from..], false);
    out
}

/// The postcard bytes a version-1 body (after the envelope) stands for.
pub(crate) fn unpack(mut body: &[u8]) -> Result<Vec<u8>, &'static str> {
    let mut out = Vec::with_capacity(body.len() * 5 / 4);
    while !body.is_empty() {
        let (header, rest) = varint(body)?;
        let (len, packed) = (header >> 1, header & 1 == 1);
        if len == 0 || len > MAX_SEGMENT as u64 {
            return Err("a segment is empty or too long");
        }
        let len = len as usize;
        let Some((bytes, rest)) = rest.split_at_checked(len) else {
            return Err("a segment runs past the end of the record");
        };
        if packed {
            for b in bytes {
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0x0f)]);
            }
        } else {
            out.extend_from_slice(bytes);
        }
        body = rest;
    }
    Ok(out)
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Length of the even run of lowercase hex characters at the start of `b`,
/// at most [`MAX_SEGMENT`] bytes' worth.
fn hex_run(b: &[u8]) -> usize {
    let n = b
        .iter()
        .take(2 * MAX_SEGMENT)
        .take_while(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
        .count();
    n & !1
}

fn nibble(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        _ => c - b'a' + 10,
    }
}

/// Appends one segment (nothing for an empty one), split so that none is
/// longer than [`MAX_SEGMENT`].
fn segment(out: &mut Vec<u8>, bytes: &[u8], packed: bool) {
    for chunk in bytes.chunks(MAX_SEGMENT) {
        let mut header = (chunk.len() as u64) << 1 | u64::from(packed);
        while header >= 0x80 {
            out.push((header as u8) | 0x80);
            header >>= 7;
        }
        out.push(header as u8);
        out.extend_from_slice(chunk);
    }
}

/// A canonical LEB128 varint of at most 3 bytes (segment headers).
fn varint(b: &[u8]) -> Result<(u64, &[u8]), &'static str> {
    let mut v = 0u64;
    for (i, byte) in b.iter().enumerate().take(3) {
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            if i > 0 && *byte == 0 {
                return Err("a segment header is not canonical");
            }
            return Ok((v, &b[i + 1..]));
        }
    }
    Err("a segment header is cut short or too long")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AuditEntry, CertificateRecord, CertificateStatus};
    use proptest::prelude::*;

    fn entry(detail: &str) -> AuditEntry {
        AuditEntry {
            seq: 70_000,
            at: 1_700_000_000,
            actor: "manufacturer:acme".into(),
            kind: "certificate.issued".into(),
            subject: "5f0a1b2c3d4e5f60718293a4b5c6d7e8".into(),
            detail: detail.into(),
            leaf_hash: [7; 32],
        }
    }

    #[test]
    fn records_round_trip_and_hex_text_shrinks() {
        let digest = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        let e = entry(&format!(
            "{{\"der_sha256\":\"{digest}\",\"binds\":[[\"trust\",\"a/b/c/d\",\"{digest}\"]]}}"
        ));
        let plain = postcard::to_stdvec(&e).unwrap();
        let stored = encode(&e).unwrap();
        assert_eq!(stored[..2], V1);
        // Two digests and the subject packed: 64 + 16 bytes saved, less
        // headers and the envelope.
        assert!(
            stored.len() + 70 < plain.len(),
            "{} vs {}",
            stored.len(),
            plain.len()
        );
        assert_eq!(decode::<AuditEntry>(b"k", &stored).unwrap(), e);
    }

    #[test]
    fn version_0_records_are_still_read() {
        let c = CertificateRecord {
            serial: vec![0x42; 16],
            der: vec![0x30, 0x03, 1, 2, 3],
            sector: "automotive".into(),
            kind: "long-term".into(),
            identity_key: Some("automotive/acme/m/s".into()),
            issued_at: 1,
            not_after: 2,
            status: CertificateStatus::Superseded {
                by: "00112233445566778899aabbccddeeff".into(),
            },
        };
        let legacy = postcard::to_stdvec(&c).unwrap();
        assert_ne!(legacy[..2], V1);
        assert_eq!(decode::<CertificateRecord>(b"k", &legacy).unwrap(), c);
        assert_eq!(
            decode::<CertificateRecord>(b"k", &encode(&c).unwrap()).unwrap(),
            c
        );
    }

    #[test]
    fn damaged_bodies_are_refused_not_guessed() {
        let good = encode(&entry("{\"x\":\"0123456789abcdef0123456789abcdef\"}")).unwrap();
        let cases: Vec<(&str, Vec<u8>)> = vec![
            (
                "segment past the end",
                [V1.as_slice(), &[0x09, b'a']].concat(),
            ),
            ("empty segment", [V1.as_slice(), &[0x00]].concat()),
            (
                "non-canonical header",
                [V1.as_slice(), &[0x82, 0x00, b'a']].concat(),
            ),
            ("header cut short", [V1.as_slice(), &[0x80]].concat()),
            (
                "header too long",
                [V1.as_slice(), &[0x80, 0x80, 0x80, 0x01]].concat(),
            ),
            ("truncated", good[..good.len() - 3].to_vec()),
            ("envelope only", V1.to_vec()),
        ];
        for (what, bytes) in cases {
            let r = decode::<AuditEntry>(b"audit 7", &bytes);
            assert!(
                matches!(&r, Err(StoreError::Corrupt { key, .. }) if key == "audit 7"),
                "{what}: {r:?}"
            );
        }
    }

    #[test]
    fn postcard_never_starts_a_record_with_the_envelope() {
        // Every record starts with a varint; canonical varints of every
        // size never begin with a continuation byte followed by zero.
        for v in [0u64, 1, 127, 128, 129, 255, 256, 16_383, 16_384, u64::MAX] {
            let bytes = postcard::to_stdvec(&v).unwrap();
            assert!(
                !(bytes.len() >= 2 && bytes[0] & 0x80 != 0 && bytes[1] == 0),
                "{v}"
            );
        }
    }

    proptest! {
        #[test]
        fn pack_round_trips_any_bytes(plain in proptest::collection::vec(
            prop_oneof![Just(b'a'), Just(b'f'), Just(b'0'), Just(b'9'), Just(b'g'), Just(b'A'), any::<u8>()],
            0..600,
        )) {
            let stored = pack(&plain);
            prop_assert_eq!(&stored[..2], V1.as_slice());
            prop_assert_eq!(unpack(&stored[2..]).unwrap(), plain);
        }

        #[test]
        fn audit_entries_round_trip(detail in "[a-f0-9\"{}:,\\[\\]xyzA-F]{0,300}", seq in any::<u64>()) {
            let mut e = entry(&detail);
            e.seq = seq;
            prop_assert_eq!(decode::<AuditEntry>(b"k", &encode(&e).unwrap()).unwrap(), e);
        }

        #[test]
        fn garbage_never_panics(body in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode::<AuditEntry>(b"k", &[V1.as_slice(), &body].concat());
        }
    }
}
