//! Whether an independent checker can run here, decided one way for every
//! test: a missing tool skips the check loudly, except under
//! `TRUSTCA_REQUIRE_INTEROP=1` (set by CI), where it fails the test — a
//! check that did not run must not pass by accident. Needs only the
//! standard library, so the codec crates' tests use it without the server
//! part of the kit.

use std::path::PathBuf;
use std::process::Command;

/// Whether CI demands the external tools (`TRUSTCA_REQUIRE_INTEROP=1`).
pub fn interop_required() -> bool {
    std::env::var("TRUSTCA_REQUIRE_INTEROP").is_ok_and(|v| v == "1")
}

/// A check cannot run because of `why`: fails under
/// `TRUSTCA_REQUIRE_INTEROP=1`, otherwise says loudly that it is skipped.
/// Returns false, so callers write `if !ready(...) { return; }`.
pub fn skip_or_fail(why: &str) -> bool {
    assert!(
        !interop_required(),
        "independent check required (TRUSTCA_REQUIRE_INTEROP=1) but cannot run: {why}"
    );
    eprintln!(
        "\n*** SKIPPED independent check: {why} (set TRUSTCA_REQUIRE_INTEROP=1 to require it) ***\n"
    );
    false
}

/// Whether `program args` runs; if not, [`skip_or_fail`] with how to
/// install it.
pub fn available(program: &str, args: &[&str], install: &str) -> bool {
    let ok = Command::new(program)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success());
    ok || skip_or_fail(&format!("{program} is not usable ({install})"))
}

/// Why `python3` cannot import `modules`, if it cannot.
pub fn python_missing(modules: &[&str]) -> Option<String> {
    let import = format!("import {}", modules.join(", "));
    match Command::new("python3").args(["-c", &import]).output() {
        Ok(o) if o.status.success() => None,
        Ok(o) => Some(format!(
            "python3 cannot `{import}`: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Some(format!("python3 not runnable: {e}")),
    }
}

/// Whether `python3` imports `modules`; otherwise [`skip_or_fail`].
pub fn python_ready(modules: &[&str]) -> bool {
    match python_missing(modules) {
        None => true,
        Some(why) => skip_or_fail(&why),
    }
}

/// The V2X ASN.1 modules (`V2X_ASN1_DIR`, or `../shared/spec/v2x-asn1`
/// beside the repository).
pub fn asn1_dir() -> PathBuf {
    match std::env::var_os("V2X_ASN1_DIR") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/spec/v2x-asn1"),
    }
}

/// Whether the asn1tools checks can run: the ASN.1 `module_files` are in
/// [`asn1_dir`] and `python3` imports asn1tools, cryptography and `extra`;
/// otherwise [`skip_or_fail`].
pub fn asn1tools_ready(module_files: &[&str], extra: &[&str]) -> bool {
    let dir = asn1_dir();
    if let Some(f) = module_files.iter().find(|f| !dir.join(f).is_file()) {
        return skip_or_fail(&format!(
            "ASN.1 module {f} not found in {} (set V2X_ASN1_DIR)",
            dir.display()
        ));
    }
    let mut modules = vec!["asn1tools", "cryptography"];
    modules.extend_from_slice(extra);
    python_ready(&modules)
}

/// The repository's root directory.
pub fn repo_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}
