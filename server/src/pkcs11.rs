//! CA keys in a PKCS#11 token for `init` and `serve`: where the module and
//! token come from (the options, else `[pkcs11]` in `pki.toml`, else what
//! `init` recorded in `ca/pkcs11.toml`), the PIN (`TRUSTCA_PKCS11_PIN` or a
//! PIN file, never an argument), and the TLS server key in a token as a
//! rustls signing key. The command-line flags are the CLI's.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::SignatureScheme;
use rustls::sign::{Signer, SigningKey};
use trustca_ca::{CaKey, Pkcs11Pin, Pkcs11Settings, Pkcs11Token, TokenRecord};
use trustca_model::policy::PkiPolicy;
use trustca_model::{StatementAlgorithm, StatementSigner};

use crate::error::{Result, ServerError, io};

/// The environment variable holding the token's user PIN.
pub const PIN_ENV: &str = "TRUSTCA_PKCS11_PIN";

/// Where the token is. There is deliberately no PIN field: the PIN comes
/// from a file or the environment, never from a command line.
#[derive(Debug, Clone, Default)]
pub struct Pkcs11Options {
    /// PKCS#11 module (shared library) of the token holding CA keys; at
    /// init, CA keys are generated in the token.
    pub pkcs11_module: Option<PathBuf>,
    /// Label of the PKCS#11 token.
    pub pkcs11_token: Option<String>,
    /// File holding the token's user PIN (else $TRUSTCA_PKCS11_PIN).
    pub pkcs11_pin_file: Option<PathBuf>,
}

/// An open token and the module path it was opened from.
#[derive(Debug, Clone)]
pub struct OpenToken {
    /// The logged-in token.
    pub token: Arc<Pkcs11Token>,
    /// The module path (recorded by `init`).
    pub module: PathBuf,
}

fn load_pin(opts: &Pkcs11Options) -> Result<Pkcs11Pin> {
    let pin = if let Some(f) = &opts.pkcs11_pin_file {
        std::fs::read_to_string(f).map_err(|e| {
            io(
                format_args!("cannot read PKCS#11 PIN file {}", f.display()),
                e,
            )
        })?
    } else if let Ok(p) = std::env::var(PIN_ENV) {
        p
    } else {
        return Err(ServerError::Pkcs11(format!(
            "no PKCS#11 PIN: set {PIN_ENV} or pass --pkcs11-pin-file"
        )));
    };
    Ok(Pkcs11Pin::new(pin)?)
}

/// Opens the token the options, `pki.toml` or the data directory name, or
/// `None` when none is named. A missing module, missing token or wrong PIN
/// is one clear error.
pub fn open_token(data: &Path, pki: &PkiPolicy, opts: &Pkcs11Options) -> Result<Option<OpenToken>> {
    let recorded = TokenRecord::read(data)?;
    let module = opts
        .pkcs11_module
        .clone()
        .or_else(|| pki.pkcs11.as_ref().map(|p| PathBuf::from(&p.module)))
        .or_else(|| recorded.as_ref().map(|r| r.module.clone()));
    let token = opts
        .pkcs11_token
        .clone()
        .or_else(|| pki.pkcs11.as_ref().map(|p| p.token.clone()))
        .or_else(|| recorded.as_ref().map(|r| r.token.clone()));
    let (module, token) = match (module, token) {
        (None, None) => return Ok(None),
        (Some(_), None) => {
            return Err(ServerError::Pkcs11(
                "--pkcs11-module needs --pkcs11-token (the token's label)".into(),
            ));
        }
        (None, Some(_)) => {
            return Err(ServerError::Pkcs11(
                "--pkcs11-token needs --pkcs11-module (the module's path)".into(),
            ));
        }
        (Some(m), Some(t)) => (m, t),
    };
    let settings = Pkcs11Settings {
        module: module.clone(),
        token,
        pin: load_pin(opts)?,
    };
    let token = Pkcs11Token::open(&settings)?;
    Ok(Some(OpenToken { token, module }))
}

/// The TLS key of `serve` when it is in a token: rustls asks it to sign the
/// handshake, the token signs, and the signature goes out as DER.
#[derive(Debug)]
pub struct TokenTlsKey {
    key: Arc<CaKey>,
    scheme: SignatureScheme,
}

impl TokenTlsKey {
    /// Wraps an ECDSA key (P-256 or P-384).
    pub fn new(key: Arc<CaKey>) -> Self {
        let scheme = match StatementSigner::algorithm(key.as_ref()) {
            StatementAlgorithm::EcdsaP256Sha256 => SignatureScheme::ECDSA_NISTP256_SHA256,
            StatementAlgorithm::EcdsaP384Sha384 => SignatureScheme::ECDSA_NISTP384_SHA384,
        };
        Self { key, scheme }
    }
}

impl SigningKey for TokenTlsKey {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn Signer>> {
        offered.contains(&self.scheme).then(|| {
            Box::new(TokenTlsSigner {
                key: Arc::clone(&self.key),
                scheme: self.scheme,
            }) as Box<dyn Signer>
        })
    }
    fn algorithm(&self) -> rustls::SignatureAlgorithm {
        rustls::SignatureAlgorithm::ECDSA
    }
}

/// One handshake's signer.
#[derive(Debug)]
struct TokenTlsSigner {
    key: Arc<CaKey>,
    scheme: SignatureScheme,
}

impl Signer for TokenTlsSigner {
    fn sign(&self, message: &[u8]) -> std::result::Result<Vec<u8>, rustls::Error> {
        StatementSigner::sign(self.key.as_ref(), message)
            .map_err(|e| rustls::Error::General(e.to_string()))
    }
    fn scheme(&self) -> SignatureScheme {
        self.scheme
    }
}
