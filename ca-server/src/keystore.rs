//! CA private keys at rest: encrypted with AES-256-GCM under a key derived
//! from the operator's passphrase (PBKDF2-HMAC-SHA256), one file per key.
//!
//! The passphrase comes from `TRUSTCA_PASSPHRASE` or a passphrase file; there
//! is no way to store a key in the clear. Keys and the passphrase are never
//! formatted into logs or errors (`Passphrase` and `Keystore` print as
//! redacted).

use std::fmt;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use trustca_datadir::CaFiles;

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

use crate::CaError;

const PBKDF2_ITERATIONS: u32 = 600_000;
const MIN_PASSPHRASE: usize = 8;
const KEY_MAGIC: &[u8; 4] = b"TCK1";
const CHECK_PLAINTEXT: &[u8] = b"trustca keystore check v1";
const PEM_TAG: &str = "TRUSTCA ENCRYPTED PRIVATE KEY";

/// The passphrase that protects CA keys. Never printed.
pub struct Passphrase {
    bytes: Vec<u8>,
    /// PBKDF2 iterations of the keystores this passphrase creates (opening
    /// a keystore follows the count its `keystore.toml` records).
    creation_iterations: u32,
}

impl Passphrase {
    /// Wraps a passphrase, refusing one shorter than 8 bytes.
    pub fn new(bytes: Vec<u8>) -> Result<Self, CaError> {
        let trimmed_len = bytes
            .iter()
            .rev()
            .skip_while(|b| **b == b'\n' || **b == b'\r')
            .count();
        let mut bytes = bytes;
        bytes.truncate(trimmed_len);
        if bytes.len() < MIN_PASSPHRASE {
            return Err(CaError::Passphrase(format!(
                "passphrase must be at least {MIN_PASSPHRASE} bytes"
            )));
        }
        Ok(Self {
            bytes,
            creation_iterations: PBKDF2_ITERATIONS,
        })
    }

    /// The same passphrase, creating keystores with `iterations` PBKDF2
    /// rounds instead of the 600,000 every other passphrase uses. For test
    /// fixtures only: the test kit makes its data directories with it, so
    /// the hundreds of keystore openings of a test run (every server start,
    /// every credential) cost microseconds instead of a fifth of a second of
    /// CPU each. Nothing in the product calls it; `Passphrase::new` keeps
    /// the strong setting, which the keystore's own tests and the CLI's
    /// `init` tests cover.
    #[doc(hidden)]
    #[must_use]
    pub fn with_test_only_kdf_iterations(self, iterations: NonZeroU32) -> Self {
        Self {
            creation_iterations: iterations.get(),
            ..self
        }
    }
}

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Passphrase(<redacted>)")
    }
}

/// `ca/keystore.toml`: the KDF parameters and a check value.
#[derive(serde::Serialize, serde::Deserialize)]
struct KeystoreMeta {
    kdf: String,
    iterations: u32,
    salt: String,
    check: String,
}

/// Opens and writes encrypted key files in one directory.
pub struct Keystore {
    dir: PathBuf,
    key: LessSafeKey,
}

impl fmt::Debug for Keystore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keystore")
            .field("dir", &self.dir)
            .field("key", &"<redacted>")
            .finish()
    }
}

fn derive(passphrase: &Passphrase, salt: &[u8], iterations: u32) -> Result<LessSafeKey, CaError> {
    let mut key = [0u8; 32];
    let iterations =
        NonZeroU32::new(iterations).ok_or_else(|| CaError::Keystore("zero iterations".into()))?;
    ring::pbkdf2::derive(
        ring::pbkdf2::PBKDF2_HMAC_SHA256,
        iterations,
        salt,
        &passphrase.bytes,
        &mut key,
    );
    let unbound = UnboundKey::new(&AES_256_GCM, &key)
        .map_err(|_| CaError::Keystore("bad key length".into()))?;
    Ok(LessSafeKey::new(unbound))
}

fn seal(key: &LessSafeKey, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CaError> {
    let mut nonce = [0u8; NONCE_LEN];
    SystemRandom::new()
        .fill(&mut nonce)
        .map_err(|_| CaError::Keystore("no randomness".into()))?;
    let mut buf = plaintext.to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(aad),
        &mut buf,
    )
    .map_err(|_| CaError::Keystore("encryption failed".into()))?;
    let mut out = Vec::with_capacity(4 + NONCE_LEN + buf.len());
    out.extend_from_slice(KEY_MAGIC);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&buf);
    Ok(out)
}

fn open(key: &LessSafeKey, aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
    if sealed.len() < 4 + NONCE_LEN + 16 || &sealed[..4] != KEY_MAGIC {
        return None;
    }
    let nonce = Nonce::try_assume_unique_for_key(&sealed[4..4 + NONCE_LEN]).ok()?;
    let mut buf = sealed[4 + NONCE_LEN..].to_vec();
    let plain = key.open_in_place(nonce, Aad::from(aad), &mut buf).ok()?;
    Some(plain.to_vec())
}

impl Keystore {
    /// Creates a keystore in `dir` (which must not hold one yet).
    pub fn create(dir: &Path, passphrase: &Passphrase) -> Result<Self, CaError> {
        let meta_path = dir.join(trustca_datadir::KEYSTORE_META);
        if meta_path.exists() {
            return Err(CaError::AlreadyInitialized(dir.to_path_buf()));
        }
        let mut salt = [0u8; 16];
        SystemRandom::new()
            .fill(&mut salt)
            .map_err(|_| CaError::Keystore("no randomness".into()))?;
        let iterations = passphrase.creation_iterations;
        let key = derive(passphrase, &salt, iterations)?;
        let check = seal(&key, b"check", CHECK_PLAINTEXT)?;
        let meta = KeystoreMeta {
            kdf: "pbkdf2-hmac-sha256".into(),
            iterations,
            salt: trustca_model::hexfmt::encode(&salt),
            check: trustca_model::hexfmt::encode(&check),
        };
        let text = toml::to_string(&meta).map_err(|e| CaError::Keystore(e.to_string()))?;
        write_new(&meta_path, text.as_bytes())?;
        Ok(Self {
            dir: dir.to_path_buf(),
            key,
        })
    }

    /// Opens the keystore in `dir`; a wrong passphrase is a clear error.
    pub fn open(dir: &Path, passphrase: &Passphrase) -> Result<Self, CaError> {
        let meta_path = dir.join(trustca_datadir::KEYSTORE_META);
        let text = std::fs::read_to_string(&meta_path).map_err(|e| CaError::io(&meta_path, e))?;
        let meta: KeystoreMeta = toml::from_str(&text)
            .map_err(|e| CaError::Keystore(format!("{}: {}", meta_path.display(), e.message())))?;
        if meta.kdf != "pbkdf2-hmac-sha256" {
            return Err(CaError::Keystore(format!("unsupported kdf {}", meta.kdf)));
        }
        let salt = trustca_model::hexfmt::decode(&meta.salt)
            .ok_or_else(|| CaError::Keystore("bad salt".into()))?;
        let key = derive(passphrase, &salt, meta.iterations)?;
        let check = trustca_model::hexfmt::decode(&meta.check)
            .ok_or_else(|| CaError::Keystore("bad check value".into()))?;
        match open(&key, b"check", &check) {
            Some(p) if p == CHECK_PLAINTEXT => Ok(Self {
                dir: dir.to_path_buf(),
                key,
            }),
            _ => Err(CaError::Passphrase(
                "wrong passphrase for this data directory".into(),
            )),
        }
    }

    /// The directory holding the key files.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.key(name)
    }

    /// Encrypts and writes PKCS#8 `der` as `<name>.key`; never overwrites.
    pub fn store(&self, name: &str, pkcs8_der: &[u8]) -> Result<(), CaError> {
        let sealed = seal(&self.key, name.as_bytes(), pkcs8_der)?;
        let pem = pem::encode(&pem::Pem::new(PEM_TAG, sealed));
        write_new(&self.path(name), pem.as_bytes())
    }

    /// Reads and decrypts `<name>.key`.
    pub fn load(&self, name: &str) -> Result<Vec<u8>, CaError> {
        let path = self.path(name);
        let text = std::fs::read_to_string(&path).map_err(|e| CaError::io(&path, e))?;
        let parsed = pem::parse(&text)
            .map_err(|_| CaError::Keystore(format!("{} is not PEM", path.display())))?;
        if parsed.tag() != PEM_TAG {
            return Err(CaError::Keystore(format!(
                "{} is not an encrypted trustca key",
                path.display()
            )));
        }
        open(&self.key, name.as_bytes(), parsed.contents()).ok_or_else(|| {
            CaError::Keystore(format!(
                "{} does not decrypt (corrupt or swapped file)",
                path.display()
            ))
        })
    }

    /// Whether `<name>.key` exists.
    pub fn has(&self, name: &str) -> bool {
        self.path(name).exists()
    }
}

/// Writes a new file (never replacing one) and syncs it, readable by the
/// owner only where the platform allows.
pub(crate) fn write_new(path: &Path, bytes: &[u8]) -> Result<(), CaError> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(|e| CaError::io(path, e))?;
    f.write_all(bytes).map_err(|e| CaError::io(path, e))?;
    f.sync_all().map_err(|e| CaError::io(path, e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_wrong_passphrase() {
        let dir = tempfile::tempdir().unwrap();
        let pass = Passphrase::new(b"correct horse battery\n".to_vec()).unwrap();
        let ks = Keystore::create(dir.path(), &pass).unwrap();
        ks.store("root", b"secret pkcs8").unwrap();
        assert!(ks.store("root", b"other").is_err(), "must never overwrite");
        let text = std::fs::read_to_string(dir.path().join("root.key")).unwrap();
        assert!(!text.contains("secret"));
        let ks2 = Keystore::open(
            dir.path(),
            &Passphrase::new(b"correct horse battery".to_vec()).unwrap(),
        )
        .unwrap();
        assert_eq!(ks2.load("root").unwrap(), b"secret pkcs8");
        let wrong = Keystore::open(
            dir.path(),
            &Passphrase::new(b"wrong horse battery".to_vec()).unwrap(),
        );
        assert!(matches!(wrong, Err(CaError::Passphrase(_))));
        assert!(format!("{pass:?}").contains("redacted"));
        assert!(Passphrase::new(b"short".to_vec()).is_err());
    }

    #[test]
    fn keystores_get_the_strong_kdf_unless_a_test_asks_for_less() {
        let iterations = |dir: &Path| {
            let text = std::fs::read_to_string(dir.join("keystore.toml")).unwrap();
            toml::from_str::<KeystoreMeta>(&text).unwrap().iterations
        };
        let strong = tempfile::tempdir().unwrap();
        let pass = || Passphrase::new(b"correct horse battery".to_vec()).unwrap();
        Keystore::create(strong.path(), &pass()).unwrap();
        assert_eq!(iterations(strong.path()), 600_000);

        let cheap = tempfile::tempdir().unwrap();
        let fewer = NonZeroU32::new(1_000).unwrap();
        let ks =
            Keystore::create(cheap.path(), &pass().with_test_only_kdf_iterations(fewer)).unwrap();
        ks.store("root", b"secret pkcs8").unwrap();
        assert_eq!(iterations(cheap.path()), 1_000);
        // Opening follows the recorded cost, whatever the passphrase's own.
        let reopened = Keystore::open(cheap.path(), &pass()).unwrap();
        assert_eq!(reopened.load("root").unwrap(), b"secret pkcs8");
        let wrong = Keystore::open(
            cheap.path(),
            &Passphrase::new(b"wrong horse battery".to_vec()).unwrap(),
        );
        assert!(matches!(wrong, Err(CaError::Passphrase(_))));
    }

    #[test]
    fn swapped_files_do_not_decrypt() {
        let dir = tempfile::tempdir().unwrap();
        let pass = Passphrase::new(b"correct horse battery".to_vec()).unwrap();
        let ks = Keystore::create(dir.path(), &pass).unwrap();
        ks.store("a", b"key a").unwrap();
        std::fs::copy(dir.path().join("a.key"), dir.path().join("b.key")).unwrap();
        assert!(
            ks.load("b").is_err(),
            "a key file renamed must not load as another key"
        );
    }
}
