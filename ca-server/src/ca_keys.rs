//! The CA's private keys, wherever they live: an encrypted file in `ca/`
//! (the default, [`Keystore`]) or a non-extractable key in a PKCS#11 token
//! ([`Pkcs11Token`]). Callers get a [`CaKey`] that signs certificates and
//! CRLs (rcgen) and statements ([`StatementSigner`]) the same way for both.
//!
//! A key in the token is recorded in `ca/<name>.pkcs11` (token label,
//! object label and `CKA_ID`; nothing secret), so the data directory says
//! where every key is, and `open` needs only the token and the PIN. The
//! module path and token label `init` used are kept in `ca/pkcs11.toml`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use trustca_datadir::{CaFiles, DataDir};

use rcgen::{KeyPair, PublicKeyData, SignatureAlgorithm, SigningKey};
use trustca_model::policy::{KeyAlgorithm, KeyBackend, KeyRole, PkiPolicy};
use trustca_model::{SignError, StatementAlgorithm, StatementSigner};

use crate::CaError;
use crate::keystore::{Keystore, write_new};
use crate::pkcs11::{Pkcs11Key, Pkcs11Token};

/// File name of the record of the module and token `init` used.
const TOKEN_RECORD: &str = "pkcs11.toml";

/// A CA private key: a file key loaded in memory, or a key in a token.
#[derive(Debug)]
pub enum CaKey {
    /// Decrypted from `ca/<name>.key`.
    File(KeyPair),
    /// In the PKCS#11 token; only a handle is held here.
    Pkcs11(Pkcs11Key),
}

impl CaKey {
    /// The PKCS#8 DER of a file key (for rustls and tonic, which load file
    /// keys themselves); `None` for a key in a token. Never log it.
    pub fn pkcs8(&self) -> Option<&[u8]> {
        match self {
            CaKey::File(k) => Some(k.serialized_der()),
            CaKey::Pkcs11(_) => None,
        }
    }

    /// The signature algorithm (what rcgen writes into certificates and
    /// what the CRL builder names).
    pub fn algorithm(&self) -> &'static SignatureAlgorithm {
        PublicKeyData::algorithm(self)
    }

    /// Where the key lives, for messages: `file` or `pkcs11`.
    pub fn backend(&self) -> KeyBackend {
        match self {
            CaKey::File(_) => KeyBackend::File,
            CaKey::Pkcs11(_) => KeyBackend::Pkcs11,
        }
    }
}

impl PublicKeyData for CaKey {
    fn der_bytes(&self) -> &[u8] {
        match self {
            CaKey::File(k) => k.der_bytes(),
            CaKey::Pkcs11(k) => k.der_bytes(),
        }
    }
    fn algorithm(&self) -> &'static SignatureAlgorithm {
        match self {
            CaKey::File(k) => k.algorithm(),
            CaKey::Pkcs11(k) => PublicKeyData::algorithm(k),
        }
    }
}

impl SigningKey for CaKey {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        match self {
            CaKey::File(k) => k.sign(msg),
            CaKey::Pkcs11(k) => SigningKey::sign(k, msg),
        }
    }
}

impl StatementSigner for CaKey {
    fn algorithm(&self) -> StatementAlgorithm {
        if PublicKeyData::algorithm(self) == &rcgen::PKCS_ECDSA_P384_SHA384 {
            StatementAlgorithm::EcdsaP384Sha384
        } else {
            StatementAlgorithm::EcdsaP256Sha256
        }
    }
    fn public_key(&self) -> &[u8] {
        self.der_bytes()
    }
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        match self {
            // rcgen signs ECDSA file keys with ring's ASN.1 (DER) variant.
            CaKey::File(k) => k.sign(message).map_err(|e| SignError(e.to_string())),
            CaKey::Pkcs11(k) => StatementSigner::sign(k, message),
        }
    }
}

/// `ca/<name>.pkcs11`: which token object a key is.
#[derive(serde::Serialize, serde::Deserialize)]
struct KeyReference {
    token: String,
    label: String,
    id: String,
}

/// `ca/pkcs11.toml`: the module and token `init` created keys in.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TokenRecord {
    /// Path of the PKCS#11 module.
    pub module: PathBuf,
    /// Label of the token.
    pub token: String,
}

impl TokenRecord {
    /// Reads `DATA/ca/pkcs11.toml`, if `init` wrote one.
    pub fn read(data: &Path) -> Result<Option<Self>, CaError> {
        let path = DataDir::new(data).ca().join(TOKEN_RECORD);
        if !path.exists() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path).map_err(|e| CaError::io(&path, e))?;
        toml::from_str(&text)
            .map(Some)
            .map_err(|e| CaError::Pkcs11(format!("{}: {}", path.display(), e.message())))
    }
}

/// Creates, loads and replaces the CA's keys in one `ca/` directory.
#[derive(Debug)]
pub struct CaKeys {
    keystore: Keystore,
    token: Option<Arc<Pkcs11Token>>,
    placement: BTreeMap<KeyRole, KeyBackend>,
}

impl CaKeys {
    /// Keys of `keystore`'s directory; new keys go where `pki` places them
    /// (`[keys.<role>]`, else the token when one is given, else a file).
    pub fn new(keystore: Keystore, token: Option<Arc<Pkcs11Token>>, pki: &PkiPolicy) -> Self {
        let placement = pki.keys.iter().map(|(r, p)| (*r, p.backend)).collect();
        Self {
            keystore,
            token,
            placement,
        }
    }

    /// The file keystore (also holds non-key secrets).
    pub fn keystore(&self) -> &Keystore {
        &self.keystore
    }

    /// The open token, if any.
    pub fn token(&self) -> Option<&Arc<Pkcs11Token>> {
        self.token.as_ref()
    }

    fn dir(&self) -> &Path {
        self.keystore.dir()
    }

    fn reference_path(&self, name: &str) -> PathBuf {
        self.dir().join(format!("{name}.pkcs11"))
    }

    /// Where keys of `role` are created.
    pub fn backend_for(&self, role: KeyRole) -> KeyBackend {
        match self.placement.get(&role) {
            Some(b) => *b,
            None if self.token.is_some() => KeyBackend::Pkcs11,
            None => KeyBackend::File,
        }
    }

    /// Whether a key called `name` exists (file or token reference).
    pub fn has(&self, name: &str) -> bool {
        self.keystore.has(name) || self.reference_path(name).exists()
    }

    /// Records the module and token in `ca/pkcs11.toml` (once).
    pub fn record_token(&self, module: &Path) -> Result<(), CaError> {
        let Some(token) = &self.token else {
            return Ok(());
        };
        let path = self.dir().join(TOKEN_RECORD);
        if path.exists() {
            return Ok(());
        }
        let record = TokenRecord {
            module: module.to_path_buf(),
            token: token.label().to_owned(),
        };
        let text = toml::to_string(&record).map_err(|e| CaError::Pkcs11(e.to_string()))?;
        write_new(&path, text.as_bytes())
    }

    /// Creates a new key `name` of `role` where the policy places it.
    /// Never replaces an existing key.
    pub fn generate(&self, name: &str, role: KeyRole, alg: KeyAlgorithm) -> Result<CaKey, CaError> {
        if self.has(name) {
            return Err(CaError::Keystore(format!(
                "key {name} exists already; refusing to replace it"
            )));
        }
        match self.backend_for(role) {
            KeyBackend::File => {
                let key = crate::issuer::generate_key(alg)?;
                self.keystore.store(name, &key.serialize_der())?;
                Ok(CaKey::File(key))
            }
            KeyBackend::Pkcs11 => {
                let token = self.token.as_ref().ok_or_else(|| {
                    CaError::Pkcs11(format!(
                        "pki.toml puts the {} key in a PKCS#11 token, but no token is configured: give --pkcs11-module and --pkcs11-token, or [pkcs11] in pki.toml",
                        role.as_str()
                    ))
                })?;
                let key = token.generate(name, alg)?;
                let reference = KeyReference {
                    token: token.label().to_owned(),
                    label: format!("trustca-{name}"),
                    id: trustca_model::hexfmt::encode(key.id()),
                };
                let text = format!(
                    "# trustca: this key is in a PKCS#11 token; this file only names it.\n{}",
                    toml::to_string(&reference).map_err(|e| CaError::Pkcs11(e.to_string()))?
                );
                write_new(&self.reference_path(name), text.as_bytes())?;
                Ok(CaKey::Pkcs11(key))
            }
        }
    }

    /// Loads key `name`, from its file or its token.
    pub fn load(&self, name: &str) -> Result<CaKey, CaError> {
        let path = self.reference_path(name);
        if !path.exists() {
            let pkcs8 = self.keystore.load(name)?;
            let key = KeyPair::try_from(pkcs8.as_slice())
                .map_err(|e| CaError::Keystore(format!("key {name} does not load: {e}")))?;
            return Ok(CaKey::File(key));
        }
        let text = std::fs::read_to_string(&path).map_err(|e| CaError::io(&path, e))?;
        let reference: KeyReference = toml::from_str(&text)
            .map_err(|e| CaError::Pkcs11(format!("{}: {}", path.display(), e.message())))?;
        let token = self.token.as_ref().ok_or_else(|| {
            CaError::Pkcs11(format!(
                "key {name} is in PKCS#11 token {:?}; give --pkcs11-module (and the PIN in TRUSTCA_PKCS11_PIN or --pkcs11-pin-file)",
                reference.token
            ))
        })?;
        if token.label() != reference.token {
            return Err(CaError::Pkcs11(format!(
                "key {name} is in PKCS#11 token {:?}, not in the open token {:?}",
                reference.token,
                token.label()
            )));
        }
        let id = trustca_model::hexfmt::decode(&reference.id)
            .ok_or_else(|| CaError::Pkcs11(format!("{}: bad id", path.display())))?;
        Ok(CaKey::Pkcs11(token.find(name, &id)?))
    }

    /// Drops key `name` from the directory so a new one can be created
    /// (service-certificate renewal). A token object is left on the token:
    /// deleting key material is the token officer's decision.
    pub fn forget(&self, name: &str) {
        let _ = std::fs::remove_file(self.dir().key(name));
        let _ = std::fs::remove_file(self.reference_path(name));
    }
}
