//! A ZIP archive writer for the IEEE 1609.2.1 ticket downloads (the SCMS
//! RA API serves a period's responses as `<requestHash>_<i>.zip`): entries
//! stored uncompressed (the responses are ciphertext), UTF-8 names, no
//! ZIP64 (a period holds at most 255 responses of about 600 bytes).
//! PKWARE APPNOTE 6.3.x sections 4.3.7 (local header), 4.3.12 (central
//! directory) and 4.3.16 (end of central directory).

/// Most entries one archive holds (no ZIP64).
pub const MAX_ENTRIES: usize = u16::MAX as usize;

/// Why an archive could not be written or read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ZipError {
    /// More entries, or a larger archive, than ZIP without ZIP64 holds.
    #[error("too large for a ZIP archive without ZIP64")]
    TooLarge,
    /// Not an archive of stored entries as [`write`] makes them.
    #[error("not a stored ZIP archive: {0}")]
    Malformed(&'static str),
}

const LOCAL_HEADER: u32 = 0x0403_4b50;
const CENTRAL_HEADER: u32 = 0x0201_4b50;
const END_OF_CENTRAL_DIRECTORY: u32 = 0x0605_4b50;
/// Version needed to extract: 2.0.
const VERSION: u16 = 20;
/// General purpose flag bit 11: names are UTF-8.
const UTF8_NAMES: u16 = 0x0800;
/// 1980-01-01 in MS-DOS date format (time 00:00): no timestamps leak.
const DOS_DATE: u16 = (1 << 5) | 1;

/// The archive of `entries` (name, content), in order.
pub fn write(entries: &[(String, Vec<u8>)]) -> Result<Vec<u8>, ZipError> {
    if entries.len() > MAX_ENTRIES {
        return Err(ZipError::TooLarge);
    }
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in entries {
        let offset = u32::try_from(out.len()).map_err(|_| ZipError::TooLarge)?;
        let size = u32::try_from(data.len()).map_err(|_| ZipError::TooLarge)?;
        let name_len = u16::try_from(name.len()).map_err(|_| ZipError::TooLarge)?;
        let crc = crc32fast::hash(data);
        let common = |v: &mut Vec<u8>| {
            v.extend_from_slice(&VERSION.to_le_bytes());
            v.extend_from_slice(&UTF8_NAMES.to_le_bytes());
            v.extend_from_slice(&0u16.to_le_bytes()); // stored
            v.extend_from_slice(&0u16.to_le_bytes()); // time
            v.extend_from_slice(&DOS_DATE.to_le_bytes());
            v.extend_from_slice(&crc.to_le_bytes());
            v.extend_from_slice(&size.to_le_bytes()); // compressed
            v.extend_from_slice(&size.to_le_bytes()); // uncompressed
            v.extend_from_slice(&name_len.to_le_bytes());
            v.extend_from_slice(&0u16.to_le_bytes()); // extra field
        };
        out.extend_from_slice(&LOCAL_HEADER.to_le_bytes());
        common(&mut out);
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(data);

        central.extend_from_slice(&CENTRAL_HEADER.to_le_bytes());
        central.extend_from_slice(&VERSION.to_le_bytes()); // made by
        common(&mut central);
        central.extend_from_slice(&0u16.to_le_bytes()); // comment
        central.extend_from_slice(&0u16.to_le_bytes()); // disk
        central.extend_from_slice(&0u16.to_le_bytes()); // internal attributes
        central.extend_from_slice(&0u32.to_le_bytes()); // external attributes
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name.as_bytes());
    }
    let cd_offset = u32::try_from(out.len()).map_err(|_| ZipError::TooLarge)?;
    let cd_size = u32::try_from(central.len()).map_err(|_| ZipError::TooLarge)?;
    let count = entries.len() as u16;
    out.extend_from_slice(&central);
    out.extend_from_slice(&END_OF_CENTRAL_DIRECTORY.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes()); // this disk
    out.extend_from_slice(&0u16.to_le_bytes()); // disk of the central directory
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&cd_size.to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes()); // comment
    Ok(out)
}

/// The entries of an archive of stored entries (what [`write`] makes, and
/// what a vehicle downloads), read by its central directory; CRCs checked.
pub fn entries(zip: &[u8]) -> Result<Vec<(String, Vec<u8>)>, ZipError> {
    let bad = ZipError::Malformed;
    let u16_at = |i: usize| -> Result<usize, ZipError> {
        zip.get(i..i + 2)
            .map(|b| usize::from(u16::from_le_bytes([b[0], b[1]])))
            .ok_or(bad("truncated"))
    };
    let u32_at = |i: usize| -> Result<usize, ZipError> {
        zip.get(i..i + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
            .ok_or(bad("truncated"))
    };
    let end = zip.len().checked_sub(22).ok_or(bad("too short"))?;
    if u32_at(end)? != END_OF_CENTRAL_DIRECTORY as usize {
        return Err(bad("no end of central directory (or a comment)"));
    }
    let (count, mut at) = (u16_at(end + 10)?, u32_at(end + 16)?);
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        if u32_at(at)? != CENTRAL_HEADER as usize {
            return Err(bad("central directory header expected"));
        }
        if u16_at(at + 10)? != 0 {
            return Err(bad("a compressed entry"));
        }
        let (crc, size, name_len) = (u32_at(at + 16)?, u32_at(at + 24)?, u16_at(at + 28)?);
        let local = u32_at(at + 42)?;
        let name = zip
            .get(at + 46..at + 46 + name_len)
            .and_then(|n| std::str::from_utf8(n).ok())
            .ok_or(bad("entry name"))?
            .to_owned();
        if u32_at(local)? != LOCAL_HEADER as usize {
            return Err(bad("local header expected"));
        }
        let data_at = local + 30 + u16_at(local + 26)? + u16_at(local + 28)?;
        let data = zip.get(data_at..data_at + size).ok_or(bad("entry data"))?;
        if crc32fast::hash(data) as usize != crc {
            return Err(bad("CRC mismatch"));
        }
        out.push((name, data.to_vec()));
        at += 46 + name_len + u16_at(at + 30)? + u16_at(at + 32)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_read_back_in_order() {
        let entries = vec![
            ("41a_0.oer".to_owned(), vec![1, 2, 3]),
            ("41a_13.oer".to_owned(), vec![0xff; 700]),
            ("empty".to_owned(), vec![]),
        ];
        assert_eq!(super::entries(&write(&entries).unwrap()).unwrap(), entries);
        assert_eq!(super::entries(&write(&[]).unwrap()).unwrap(), vec![]);
    }

    #[test]
    fn damaged_archives_are_refused_without_panics() {
        let zip = write(&[("a".to_owned(), vec![7; 40])]).unwrap();
        for cut in 0..zip.len() {
            assert!(entries(&zip[..cut]).is_err(), "cut at {cut}");
        }
        let mut flipped = zip.clone();
        flipped[40] ^= 1; // inside the data
        assert_eq!(entries(&flipped), Err(ZipError::Malformed("CRC mismatch")));
    }

    #[test]
    fn crc32_is_the_zip_polynomial() {
        // The check value of CRC-32/ISO-HDLC.
        assert_eq!(crc32fast::hash(b"123456789"), 0xcbf4_3926);
    }
}
