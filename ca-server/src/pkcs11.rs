//! CA keys inside a PKCS#11 token (an HSM, or SoftHSM2 in tests), through
//! the `cryptoki` crate. All `unsafe` FFI lives in that dependency.
//!
//! Keys are generated on the token (`CKA_TOKEN`, `CKA_SENSITIVE`, not
//! extractable), labelled `trustca-<name>` and found again by a random
//! `CKA_ID` that the data directory records in `ca/<name>.pkcs11`. The CA
//! only ever asks the token to sign: it hashes the message itself and uses
//! `CKM_ECDSA`, which returns raw `r ‖ s`; [`ecdsa_raw_to_der`] turns that
//! into the DER `ECDSA-Sig-Value` that X.509, TLS and our statements carry.
//!
//! The user PIN is held in a [`Pkcs11Pin`] that prints as redacted, and is
//! never part of an error message.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use rcgen::{PublicKeyData, SignatureAlgorithm, SigningKey};
use ring::rand::{SecureRandom, SystemRandom};
use trustca_model::policy::KeyAlgorithm;
use trustca_model::{SignError, StatementAlgorithm, StatementSigner, ecdsa_raw_to_der};

use crate::CaError;

/// DER of the named-curve OID of P-256 (`CKA_EC_PARAMS`).
const P256_PARAMS: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// DER of the named-curve OID of P-384 (`CKA_EC_PARAMS`).
const P384_PARAMS: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];

/// The token's user PIN. Never printed, never part of an error.
pub struct Pkcs11Pin(AuthPin);

impl Pkcs11Pin {
    /// Wraps a PIN (a trailing newline, as a PIN file has, is dropped);
    /// an empty PIN is refused.
    pub fn new(mut pin: String) -> Result<Self, CaError> {
        while pin.ends_with('\n') || pin.ends_with('\r') {
            pin.pop();
        }
        if pin.is_empty() {
            return Err(CaError::Pkcs11("the PKCS#11 PIN is empty".into()));
        }
        Ok(Self(AuthPin::from(pin)))
    }
}

impl fmt::Debug for Pkcs11Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pkcs11Pin(<redacted>)")
    }
}

/// Where the token is and how to log in.
#[derive(Debug)]
pub struct Pkcs11Settings {
    /// Path of the PKCS#11 module (shared library).
    pub module: PathBuf,
    /// Label of the token.
    pub token: String,
    /// User PIN.
    pub pin: Pkcs11Pin,
}

/// One loaded and initialised module per path for the whole process:
/// `C_Initialize` may run only once per process and module, and several
/// hierarchies (tests, `init` then `serve`) may open the same token.
fn module_context(module: &Path) -> Result<Pkcs11, CaError> {
    static MODULES: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();
    let map = MODULES.get_or_init(|| Mutex::new(HashMap::new()));
    let mut map = map.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(ctx) = map.get(module) {
        return Ok(ctx.clone());
    }
    if !module.is_file() {
        return Err(CaError::Pkcs11(format!(
            "PKCS#11 module {} does not exist",
            module.display()
        )));
    }
    let ctx = Pkcs11::new(module).map_err(|e| {
        CaError::Pkcs11(format!(
            "PKCS#11 module {} cannot be loaded: {}",
            module.display(),
            one_line(&e)
        ))
    })?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => {
            return Err(CaError::Pkcs11(format!(
                "PKCS#11 module {} does not initialise: {}",
                module.display(),
                one_line(&e)
            )));
        }
    }
    map.insert(module.to_path_buf(), ctx.clone());
    Ok(ctx)
}

/// cryptoki's error text, cut to its first sentence and line: the return
/// value descriptions run on for several sentences.
fn one_line(e: &dyn fmt::Display) -> String {
    let text = e.to_string();
    let first = text.lines().next().unwrap_or_default();
    match first.find(". ") {
        Some(i) => first[..=i].to_owned(),
        None => first.to_owned(),
    }
}

/// An open, logged-in token. Sessions are pooled: a `Session` may be used
/// by one thread at a time, and CA signing runs on many.
pub struct Pkcs11Token {
    module: PathBuf,
    label: String,
    ctx: Pkcs11,
    slot: Slot,
    idle: Mutex<Vec<Session>>,
}

impl fmt::Debug for Pkcs11Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Token")
            .field("module", &self.module)
            .field("token", &self.label)
            .finish_non_exhaustive()
    }
}

impl Pkcs11Token {
    /// Loads the module, finds the token by label and logs in. A missing
    /// module, a missing token and a wrong PIN each give one clear line.
    pub fn open(settings: &Pkcs11Settings) -> Result<Arc<Self>, CaError> {
        let ctx = module_context(&settings.module)?;
        let module = settings.module.display();
        let slots = ctx.get_slots_with_initialized_token().map_err(|e| {
            CaError::Pkcs11(format!(
                "PKCS#11 module {module} lists no slots: {}",
                one_line(&e)
            ))
        })?;
        let mut labels = Vec::new();
        let mut found = None;
        for slot in slots {
            if let Ok(info) = ctx.get_token_info(slot) {
                let label = info.label().trim_end().to_owned();
                if label == settings.token {
                    found = Some(slot);
                    break;
                }
                labels.push(label);
            }
        }
        let Some(slot) = found else {
            let have = if labels.is_empty() {
                "it has no initialised token".to_owned()
            } else {
                format!("it has {}", labels.join(", "))
            };
            return Err(CaError::Pkcs11(format!(
                "no PKCS#11 token labelled {:?} in module {module} ({have})",
                settings.token
            )));
        };
        let session = ctx.open_rw_session(slot).map_err(|e| {
            CaError::Pkcs11(format!(
                "cannot open a session on PKCS#11 token {:?}: {}",
                settings.token,
                one_line(&e)
            ))
        })?;
        match session.login(UserType::User, Some(&settings.pin.0)) {
            // Login state is per application: another hierarchy of this
            // process already logged in to the same token.
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(CkError::Pkcs11(RvError::PinIncorrect | RvError::PinInvalid, _)) => {
                return Err(CaError::Pkcs11(format!(
                    "wrong PIN for PKCS#11 token {:?}",
                    settings.token
                )));
            }
            Err(CkError::Pkcs11(RvError::PinLocked, _)) => {
                return Err(CaError::Pkcs11(format!(
                    "the user PIN of PKCS#11 token {:?} is locked",
                    settings.token
                )));
            }
            Err(e) => {
                return Err(CaError::Pkcs11(format!(
                    "cannot log in to PKCS#11 token {:?}: {}",
                    settings.token,
                    one_line(&e)
                )));
            }
        }
        Ok(Arc::new(Self {
            module: settings.module.clone(),
            label: settings.token.clone(),
            ctx,
            slot,
            // This first session is never closed while the token is open,
            // which keeps the login alive for every other session.
            idle: Mutex::new(vec![session]),
        }))
    }

    /// The token's label.
    pub fn label(&self) -> &str {
        &self.label
    }

    fn error(&self, what: &str, e: &dyn fmt::Display) -> CaError {
        CaError::Pkcs11(format!(
            "PKCS#11 token {:?}: {what}: {}",
            self.label,
            one_line(e)
        ))
    }

    /// Runs `f` with an idle session (opening one if all are busy) and
    /// returns the session to the pool afterwards.
    fn with_session<T>(
        &self,
        what: &str,
        f: impl FnOnce(&Session) -> cryptoki::error::Result<T>,
    ) -> Result<T, CaError> {
        let session = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let session = match session {
            Some(s) => s,
            None => self
                .ctx
                .open_rw_session(self.slot)
                .map_err(|e| self.error("opening a session", &e))?,
        };
        let result = f(&session).map_err(|e| self.error(what, &e));
        self.idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(session);
        result
    }

    /// Generates a key pair on the token: the private key sensitive, not
    /// extractable, usable for signing only; labelled `trustca-<name>`, with
    /// a fresh random `CKA_ID`.
    pub fn generate(self: &Arc<Self>, name: &str, alg: KeyAlgorithm) -> Result<Pkcs11Key, CaError> {
        let params = match alg {
            KeyAlgorithm::EcdsaP384 => P384_PARAMS,
            KeyAlgorithm::EcdsaP256 => P256_PARAMS,
            other => {
                return Err(CaError::Pkcs11(format!(
                    "key {name}: {} keys cannot be kept in a PKCS#11 token by trustca; use ecdsa-p256 or ecdsa-p384",
                    other.as_str()
                )));
            }
        };
        let mut id = vec![0u8; 16];
        SystemRandom::new()
            .fill(&mut id)
            .map_err(|_| CaError::Pkcs11("no randomness for a key id".into()))?;
        let label = format!("trustca-{name}").into_bytes();
        let public = [
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::Verify(true),
            Attribute::EcParams(params.to_vec()),
            Attribute::Label(label.clone()),
            Attribute::Id(id.clone()),
        ];
        let private = [
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
            Attribute::Label(label),
            Attribute::Id(id.clone()),
        ];
        self.with_session("generating a key", |s| {
            s.generate_key_pair(&Mechanism::EccKeyPairGen, &public, &private)
        })?;
        self.find(name, &id)
    }

    /// Finds the key pair with `id` (recorded at generation).
    pub fn find(self: &Arc<Self>, name: &str, id: &[u8]) -> Result<Pkcs11Key, CaError> {
        let missing = || {
            CaError::Pkcs11(format!(
                "key {name} (trustca-{name}, id {}) is not on PKCS#11 token {:?}",
                trustca_model::hexfmt::encode(id),
                self.label
            ))
        };
        let (private, params, point) = self.with_session("finding a key", |s| {
            let private = s.find_objects(&[
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::KeyType(KeyType::EC),
                Attribute::Id(id.to_vec()),
            ])?;
            let public = s.find_objects(&[
                Attribute::Class(ObjectClass::PUBLIC_KEY),
                Attribute::KeyType(KeyType::EC),
                Attribute::Id(id.to_vec()),
            ])?;
            let (Some(private), Some(public)) = (private.first(), public.first()) else {
                return Ok((None, Vec::new(), Vec::new()));
            };
            let mut params = Vec::new();
            let mut point = Vec::new();
            for a in
                s.get_attributes(*public, &[AttributeType::EcParams, AttributeType::EcPoint])?
            {
                match a {
                    Attribute::EcParams(p) => params = p,
                    Attribute::EcPoint(p) => point = p,
                    _ => {}
                }
            }
            Ok((Some(*private), params, point))
        })?;
        let handle = private.ok_or_else(missing)?;
        let (algorithm, field) = if params == P256_PARAMS {
            (&rcgen::PKCS_ECDSA_P256_SHA256, 32)
        } else if params == P384_PARAMS {
            (&rcgen::PKCS_ECDSA_P384_SHA384, 48)
        } else {
            return Err(CaError::Pkcs11(format!(
                "key {name} on PKCS#11 token {:?} is on a curve trustca does not use",
                self.label
            )));
        };
        let point = uncompressed_point(&point, field).ok_or_else(|| {
            CaError::Pkcs11(format!(
                "key {name} on PKCS#11 token {:?} has an unreadable public point",
                self.label
            ))
        })?;
        Ok(Pkcs11Key {
            token: Arc::clone(self),
            name: name.to_owned(),
            id: id.to_vec(),
            handle,
            algorithm,
            point,
        })
    }
}

/// `CKA_EC_POINT` is a DER OCTET STRING around the point in the standard,
/// and the bare point in some tokens; accept both, uncompressed only.
fn uncompressed_point(value: &[u8], field: usize) -> Option<Vec<u8>> {
    let len = 1 + 2 * field;
    let bare = if value.len() == len {
        value
    } else if value.len() == len + 2 && value[0] == 0x04 && value[1] as usize == len {
        &value[2..]
    } else {
        return None;
    };
    (bare[0] == 0x04).then(|| bare.to_vec())
}

/// A private key in a PKCS#11 token. Signs certificates and CRLs (rcgen
/// [`SigningKey`]), statements ([`StatementSigner`]) and, in the CLI, TLS
/// handshakes.
pub struct Pkcs11Key {
    token: Arc<Pkcs11Token>,
    name: String,
    id: Vec<u8>,
    handle: ObjectHandle,
    algorithm: &'static SignatureAlgorithm,
    point: Vec<u8>,
}

impl fmt::Debug for Pkcs11Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Key")
            .field("token", &self.token.label)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Pkcs11Key {
    /// The random `CKA_ID` the key was generated with.
    pub fn id(&self) -> &[u8] {
        &self.id
    }

    /// The token holding the key.
    pub fn token(&self) -> &Arc<Pkcs11Token> {
        &self.token
    }

    fn statement_algorithm(&self) -> StatementAlgorithm {
        if self.algorithm == &rcgen::PKCS_ECDSA_P384_SHA384 {
            StatementAlgorithm::EcdsaP384Sha384
        } else {
            StatementAlgorithm::EcdsaP256Sha256
        }
    }

    /// Hashes `message` and has the token sign the digest; returns DER.
    pub fn sign_der(&self, message: &[u8]) -> Result<Vec<u8>, CaError> {
        let digest = match self.statement_algorithm() {
            StatementAlgorithm::EcdsaP256Sha256 => {
                ring::digest::digest(&ring::digest::SHA256, message)
            }
            StatementAlgorithm::EcdsaP384Sha384 => {
                ring::digest::digest(&ring::digest::SHA384, message)
            }
        };
        let raw = self.token.with_session("signing", |s| {
            s.sign(&Mechanism::Ecdsa, self.handle, digest.as_ref())
        })?;
        if raw.len() != 2 * self.statement_algorithm().field_len() {
            return Err(CaError::Pkcs11(format!(
                "PKCS#11 token {:?} returned a {}-byte ECDSA signature",
                self.token.label,
                raw.len()
            )));
        }
        ecdsa_raw_to_der(&raw).ok_or_else(|| {
            CaError::Pkcs11("the token's ECDSA signature could not be converted to DER".into())
        })
    }
}

impl PublicKeyData for Pkcs11Key {
    fn der_bytes(&self) -> &[u8] {
        &self.point
    }
    fn algorithm(&self) -> &'static SignatureAlgorithm {
        self.algorithm
    }
}

impl SigningKey for Pkcs11Key {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        self.sign_der(msg).map_err(|e| {
            tracing::error!(error = %e, "PKCS#11 signing failed");
            rcgen::Error::RemoteKeyError
        })
    }
}

impl StatementSigner for Pkcs11Key {
    fn algorithm(&self) -> StatementAlgorithm {
        self.statement_algorithm()
    }
    fn public_key(&self) -> &[u8] {
        &self.point
    }
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        self.sign_der(message).map_err(|e| SignError(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_bare_or_wrapped() {
        let mut bare = vec![0x04];
        bare.extend([7u8; 64]);
        assert_eq!(uncompressed_point(&bare, 32).unwrap(), bare);
        let mut wrapped = vec![0x04, 65];
        wrapped.extend(&bare);
        assert_eq!(uncompressed_point(&wrapped, 32).unwrap(), bare);
        let mut compressed = bare.clone();
        compressed[0] = 0x02;
        assert!(uncompressed_point(&compressed, 32).is_none());
        assert!(uncompressed_point(&bare[..40], 32).is_none());
    }

    #[test]
    fn pins_print_redacted_and_lose_the_newline() {
        let pin = Pkcs11Pin::new("123456\n".into()).unwrap();
        assert_eq!(format!("{pin:?}"), "Pkcs11Pin(<redacted>)");
        let settings = Pkcs11Settings {
            module: "/m.so".into(),
            token: "t".into(),
            pin,
        };
        assert!(!format!("{settings:?}").contains("123456"));
        assert!(Pkcs11Pin::new("\n".into()).is_err());
    }

    #[test]
    fn a_missing_module_is_one_clear_line() {
        let err = Pkcs11Token::open(&Pkcs11Settings {
            module: "/nonexistent/libnothing.so".into(),
            token: "t".into(),
            pin: Pkcs11Pin::new("1234".into()).unwrap(),
        })
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "PKCS#11 module /nonexistent/libnothing.so does not exist"
        );
    }
}
