//! A fresh SoftHSM2 token in a temporary directory, for the PKCS#11 tests
//! and the `hsm` benchmark stage: the module found where Debian and others
//! install it, a private `softhsm2.conf`, and a token initialised with a
//! label and PINs. SoftHSM2 reads `SOFTHSM2_CONF` when the module loads, so
//! callers pass [`SoftHsmToken::conf`] to the process that loads it.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Where SoftHSM2's PKCS#11 module is installed on the systems we know.
const MODULES: &[&str] = &[
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
];

/// How to install SoftHSM2, for skip messages.
pub const INSTALL: &str = "SoftHSM2 is not installed (Debian: apt-get install softhsm2)";

/// SoftHSM2's module, if installed.
pub fn module() -> Option<PathBuf> {
    MODULES.iter().map(PathBuf::from).find(|p| p.exists())
}

/// A token made by [`SoftHsmToken::create`]; its directory goes when it
/// is dropped.
#[derive(Debug)]
pub struct SoftHsmToken {
    /// The temporary directory holding the configuration and the token.
    pub dir: tempfile::TempDir,
    /// `softhsm2.conf` for `SOFTHSM2_CONF`.
    pub conf: PathBuf,
    /// The PKCS#11 module.
    pub module: PathBuf,
}

impl SoftHsmToken {
    /// Initialises a token `label` with the user `pin` and `so_pin` in a
    /// fresh directory. `Ok(None)` when SoftHSM2 is not installed (the
    /// caller decides whether that skips or fails); `Err` with softhsm2-util's
    /// words when it is installed but fails.
    pub fn create(label: &str, pin: &str, so_pin: &str) -> Result<Option<Self>, String> {
        let Some(module) = module() else {
            return Ok(None);
        };
        let dir = tempfile::tempdir().map_err(|e| format!("temporary directory: {e}"))?;
        let tokens = dir.path().join("tokens");
        std::fs::create_dir(&tokens).map_err(|e| format!("{}: {e}", tokens.display()))?;
        let conf = dir.path().join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
                tokens.display()
            ),
        )
        .map_err(|e| format!("{}: {e}", conf.display()))?;
        let out = Command::new("softhsm2-util")
            .args(["--init-token", "--free", "--label", label])
            .args(["--so-pin", so_pin, "--pin", pin])
            .env("SOFTHSM2_CONF", &conf)
            .output()
            .map_err(|e| format!("softhsm2-util: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "softhsm2-util --init-token failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Some(Self { dir, conf, module }))
    }

    /// The token directory's path.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}
