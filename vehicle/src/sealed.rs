//! What keeps a pool secret at rest: the key from a passphrase or key file,
//! AES-256-GCM sealing, and writes that a crash cannot leave half done.

use std::path::{Path, PathBuf};

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

use crate::POOL_META;
use crate::error::{PoolError, Result};

pub(crate) const FORMAT: &str = "trustca-pool-v1";
pub(crate) const STATE_MAGIC: &[u8; 4] = b"TCP1";
pub(crate) const STATE_AAD: &[u8] = b"trustca-pool-state-v1";
pub(crate) const CHECK_AAD: &[u8] = b"trustca-pool-check-v1";
pub(crate) const CHECK_PLAINTEXT: &[u8] = b"trustca pool check v1";
pub(crate) const PBKDF2_ITERATIONS: u32 = 200_000;
const MIN_KEY_FILE: usize = 32;
const MIN_PASSPHRASE: usize = 8;

/// What protects a pool.
pub enum PoolSecret {
    /// A passphrase (at least 8 bytes).
    Passphrase(Zeroizing<Vec<u8>>),
    /// The contents of a key file (at least 32 bytes of randomness).
    KeyFile(Zeroizing<Vec<u8>>),
}

impl std::fmt::Debug for PoolSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Passphrase(_) => f.write_str("PoolSecret::Passphrase(<redacted>)"),
            Self::KeyFile(_) => f.write_str("PoolSecret::KeyFile(<redacted>)"),
        }
    }
}

impl PoolSecret {
    /// Reads a key file.
    pub fn key_file(path: &Path) -> Result<Self> {
        let bytes = Zeroizing::new(
            std::fs::read(path).map_err(|e| PoolError::io("read the pool key file", path, &e))?,
        );
        if bytes.len() < MIN_KEY_FILE {
            return Err(PoolError::Secret(format!(
                "pool key file {} must hold at least {MIN_KEY_FILE} random bytes",
                path.display()
            )));
        }
        Ok(Self::KeyFile(bytes))
    }

    /// A passphrase, trailing newlines removed.
    pub fn passphrase(mut bytes: Vec<u8>) -> Result<Self> {
        while bytes.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            bytes.pop();
        }
        let bytes = Zeroizing::new(bytes);
        if bytes.len() < MIN_PASSPHRASE {
            return Err(PoolError::Secret(format!(
                "the pool passphrase must be at least {MIN_PASSPHRASE} bytes"
            )));
        }
        Ok(Self::Passphrase(bytes))
    }

    pub(crate) fn kdf_name(&self) -> &'static str {
        match self {
            Self::Passphrase(_) => "pbkdf2-hmac-sha256",
            Self::KeyFile(_) => "hkdf-sha256-key-file",
        }
    }

    pub(crate) fn derive(&self, kdf: &str, iterations: u32, salt: &[u8]) -> Result<LessSafeKey> {
        if kdf != self.kdf_name() {
            return Err(PoolError::Secret(format!(
                "this pool is protected by {} ({}); give the matching secret",
                kdf,
                if kdf == "pbkdf2-hmac-sha256" {
                    "a passphrase: $TRUSTCA_POOL_PASSPHRASE"
                } else {
                    "a key file: --pool-key"
                }
            )));
        }
        let mut key = Zeroizing::new([0u8; 32]);
        match self {
            Self::Passphrase(p) => {
                let iterations =
                    std::num::NonZeroU32::new(iterations).ok_or(PoolError::Corrupt {
                        path: PathBuf::from(POOL_META),
                        reason: "zero iterations".into(),
                    })?;
                ring::pbkdf2::derive(
                    ring::pbkdf2::PBKDF2_HMAC_SHA256,
                    iterations,
                    salt,
                    p,
                    key.as_mut(),
                );
            }
            Self::KeyFile(k) => {
                let prk = ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, salt).extract(k);
                let info = [b"trustca-pool-key-file-v1".as_slice()];
                let okm = prk
                    .expand(&info, ring::hkdf::HKDF_SHA256)
                    .map_err(|_| PoolError::Crypto("HKDF failed"))?;
                okm.fill(key.as_mut())
                    .map_err(|_| PoolError::Crypto("HKDF failed"))?;
            }
        }
        let unbound = UnboundKey::new(&AES_256_GCM, key.as_ref())
            .map_err(|_| PoolError::Crypto("bad pool key"))?;
        Ok(LessSafeKey::new(unbound))
    }
}

pub(crate) fn seal(key: &LessSafeKey, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
    let mut nonce = [0u8; NONCE_LEN];
    SystemRandom::new()
        .fill(&mut nonce)
        .map_err(|_| PoolError::Crypto("the system random generator failed"))?;
    let mut buf = plaintext.to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(aad),
        &mut buf,
    )
    .map_err(|_| PoolError::Crypto("pool encryption failed"))?;
    buf.splice(0..0, nonce);
    Ok(buf)
}

pub(crate) fn open(key: &LessSafeKey, aad: &[u8], sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    if sealed.len() < NONCE_LEN + 16 {
        return None;
    }
    let nonce = Nonce::try_assume_unique_for_key(&sealed[..NONCE_LEN]).ok()?;
    let mut buf = Zeroizing::new(sealed[NONCE_LEN..].to_vec());
    let n = key
        .open_in_place(nonce, Aad::from(aad), &mut buf)
        .ok()?
        .len();
    buf.truncate(n);
    Some(buf)
}

/// Writes `bytes` to `path` atomically (temporary file, sync, rename),
/// readable by the owner only.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.tmp"));
    let _ = std::fs::remove_file(&tmp);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(&tmp)
        .map_err(|e| PoolError::io("create", &tmp, &e))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| PoolError::io("write", &tmp, &e))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(|e| PoolError::io("replace", path, &e))?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

pub(crate) fn random_u64() -> Result<u64> {
    let mut b = [0u8; 8];
    SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| PoolError::Crypto("the system random generator failed"))?;
    Ok(u64::from_be_bytes(b))
}
