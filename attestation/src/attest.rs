//! `TPMS_ATTEST` (TPM 2.0 Part 2, 10.12.12) for the two key-certifying
//! types: `TPM_ST_ATTEST_CERTIFY` (`TPM2_Certify`) and
//! `TPM_ST_ATTEST_CREATION` (`TPM2_CertifyCreation`). A strict decoder and
//! the encoder it round-trips with. The signature covers the exact bytes
//! received, kept in `raw`.

use crate::AttestationError;
use crate::wire::{MAX_DATA, MAX_DIGEST, MAX_NAME, Reader, put_tpm2b, put_u16, put_u32, put_u64};

/// `TPM_GENERATED_VALUE`: only the TPM puts it at the start of what a
/// restricted key signs, so a restricted AK cannot be made to sign a
/// forged `TPMS_ATTEST`.
pub const TPM_GENERATED: u32 = 0xff54_4347;
const ST_ATTEST_CERTIFY: u16 = 0x8017;
const ST_ATTEST_CREATION: u16 = 0x801A;

/// What the attestation says about the certified object.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Attested {
    /// `TPMS_CERTIFY_INFO`: the object is loaded in this TPM.
    Certify {
        /// The object's name.
        name: Vec<u8>,
        /// Its qualified name (with its parents').
        qualified_name: Vec<u8>,
    },
    /// `TPMS_CREATION_INFO`: this TPM created the object.
    Creation {
        /// The object's name.
        name: Vec<u8>,
        /// The hash of its creation data.
        creation_hash: Vec<u8>,
    },
}

/// `TPMS_CLOCK_INFO`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockInfo {
    /// Milliseconds the TPM has been powered since it was made.
    pub clock: u64,
    /// TPM resets since clear.
    pub reset_count: u32,
    /// Restarts since the last reset.
    pub restart_count: u32,
    /// Whether `clock` was saved since it last went backwards.
    pub safe: bool,
}

/// A decoded `TPMS_ATTEST`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TpmAttest {
    /// The signer's qualified name.
    pub qualified_signer: Vec<u8>,
    /// The caller's qualifying data: here, the server's challenge.
    pub extra_data: Vec<u8>,
    /// The TPM's clock.
    pub clock_info: ClockInfo,
    /// Vendor firmware version.
    pub firmware_version: u64,
    /// The certified object.
    pub attested: Attested,
    /// The exact bytes decoded (what the AK signed).
    pub raw: Vec<u8>,
}

impl TpmAttest {
    /// The certified object's name, whichever the type.
    pub fn certified_name(&self) -> &[u8] {
        match &self.attested {
            Attested::Certify { name, .. } | Attested::Creation { name, .. } => name,
        }
    }

    /// Decodes a `TPMS_ATTEST` (as `tpm2_certify -o` writes it), refusing
    /// other magic values, other attestation types and trailing bytes.
    pub fn decode(input: &[u8]) -> Result<Self, AttestationError> {
        let mut r = Reader::new(input, "TPMS_ATTEST");
        let magic = r.u32("magic")?;
        if magic != TPM_GENERATED {
            return Err(r.err(format!(
                "magic is 0x{magic:08x}, not TPM_GENERATED_VALUE: the TPM did not produce it"
            )));
        }
        let kind = r.u16("type")?;
        let qualified_signer = r.tpm2b("qualifiedSigner", MAX_NAME)?.to_vec();
        let extra_data = r.tpm2b("extraData", MAX_DATA)?.to_vec();
        let clock_info = ClockInfo {
            clock: r.u64("clockInfo.clock")?,
            reset_count: r.u32("clockInfo.resetCount")?,
            restart_count: r.u32("clockInfo.restartCount")?,
            safe: match r.u8("clockInfo.safe")? {
                0 => false,
                1 => true,
                v => return Err(r.err(format!("clockInfo.safe is {v}, not 0 or 1"))),
            },
        };
        let firmware_version = r.u64("firmwareVersion")?;
        let attested = match kind {
            ST_ATTEST_CERTIFY => Attested::Certify {
                name: r.tpm2b("certify.name", MAX_NAME)?.to_vec(),
                qualified_name: r.tpm2b("certify.qualifiedName", MAX_NAME)?.to_vec(),
            },
            ST_ATTEST_CREATION => Attested::Creation {
                name: r.tpm2b("creation.objectName", MAX_NAME)?.to_vec(),
                creation_hash: r.tpm2b("creation.creationHash", MAX_DIGEST)?.to_vec(),
            },
            other => {
                return Err(AttestationError::Unsupported(format!(
                    "attestation type 0x{other:04x}: a key is attested by TPM2_Certify (0x8017) or TPM2_CertifyCreation (0x801a)"
                )));
            }
        };
        r.finish()?;
        Ok(Self {
            qualified_signer,
            extra_data,
            clock_info,
            firmware_version,
            attested,
            raw: input.to_vec(),
        })
    }

    /// Encodes the fields (equal to `raw` for a decoded value).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.raw.len().max(128));
        put_u32(&mut out, TPM_GENERATED);
        let (kind, first, second) = match &self.attested {
            Attested::Certify {
                name,
                qualified_name,
            } => (ST_ATTEST_CERTIFY, name, qualified_name),
            Attested::Creation {
                name,
                creation_hash,
            } => (ST_ATTEST_CREATION, name, creation_hash),
        };
        put_u16(&mut out, kind);
        put_tpm2b(&mut out, &self.qualified_signer);
        put_tpm2b(&mut out, &self.extra_data);
        put_u64(&mut out, self.clock_info.clock);
        put_u32(&mut out, self.clock_info.reset_count);
        put_u32(&mut out, self.clock_info.restart_count);
        out.push(u8::from(self.clock_info.safe));
        put_u64(&mut out, self.firmware_version);
        put_tpm2b(&mut out, first);
        put_tpm2b(&mut out, second);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const CREATION: &[u8] = include_bytes!("../testdata/swtpm/attest.bin");
    const CERTIFY: &[u8] = include_bytes!("../testdata/swtpm/cattest.bin");
    const NONCE: &[u8] = include_bytes!("../testdata/swtpm/nonce.bin");

    #[test]
    fn swtpm_attestations_decode_and_round_trip() {
        let a = TpmAttest::decode(CREATION).unwrap();
        assert_eq!(a.extra_data, NONCE);
        assert!(matches!(a.attested, Attested::Creation { .. }));
        assert_eq!(a.encode(), CREATION);
        let c = TpmAttest::decode(CERTIFY).unwrap();
        assert!(matches!(c.attested, Attested::Certify { .. }));
        assert_eq!(c.encode(), CERTIFY);
        // Both name the same key.
        assert_eq!(a.certified_name(), c.certified_name());
    }

    #[test]
    fn refuses_malformed() {
        for n in 0..CREATION.len() {
            assert!(TpmAttest::decode(&CREATION[..n]).is_err(), "prefix {n}");
        }
        let mut trailing = CREATION.to_vec();
        trailing.push(0);
        assert!(TpmAttest::decode(&trailing).is_err());
        let mut magic = CREATION.to_vec();
        magic[0] = 0;
        let err = TpmAttest::decode(&magic).unwrap_err();
        assert!(err.to_string().contains("TPM_GENERATED_VALUE"), "{err}");
        // A quote (0x8018) is not a key certification.
        let mut quote = CREATION.to_vec();
        quote[4..6].copy_from_slice(&[0x80, 0x18]);
        assert!(matches!(
            TpmAttest::decode(&quote),
            Err(AttestationError::Unsupported(_))
        ));
    }

    proptest! {
        #[test]
        fn never_panics_and_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..260)) {
            if let Ok(a) = TpmAttest::decode(&bytes) {
                prop_assert_eq!(a.encode(), bytes);
            }
        }

        #[test]
        fn mutations_round_trip_or_fail(i in 0usize..200, v in any::<u8>()) {
            let mut b = CREATION.to_vec();
            let i = i % b.len();
            b[i] = v;
            if let Ok(a) = TpmAttest::decode(&b) {
                prop_assert_eq!(a.encode(), b);
            }
        }
    }
}
