//! The PKCS#11 command-line flags (`--pkcs11-module`, `--pkcs11-token`,
//! `--pkcs11-pin-file`); opening the token and the TLS key in a token are in
//! `trustca_server::pkcs11`.

use std::path::PathBuf;

use clap::Args;
pub use trustca_server::pkcs11::{OpenToken, PIN_ENV, Pkcs11Options};

/// Where the token is. There is deliberately no PIN argument: command lines
/// end up in shell histories and process listings.
#[derive(Debug, Clone, Default, Args)]
pub struct Pkcs11Args {
    /// PKCS#11 module (shared library) of the token holding CA keys; at
    /// init, CA keys are generated in the token.
    #[arg(long, env = "TRUSTCA_PKCS11_MODULE")]
    pub pkcs11_module: Option<PathBuf>,
    /// Label of the PKCS#11 token.
    #[arg(long, env = "TRUSTCA_PKCS11_TOKEN")]
    pub pkcs11_token: Option<String>,
    /// File holding the token's user PIN (else $TRUSTCA_PKCS11_PIN).
    #[arg(long, env = "TRUSTCA_PKCS11_PIN_FILE")]
    pub pkcs11_pin_file: Option<PathBuf>,
}

impl Pkcs11Args {
    /// The options the server crate takes.
    pub fn options(&self) -> Pkcs11Options {
        Pkcs11Options {
            pkcs11_module: self.pkcs11_module.clone(),
            pkcs11_token: self.pkcs11_token.clone(),
            pkcs11_pin_file: self.pkcs11_pin_file.clone(),
        }
    }
}
