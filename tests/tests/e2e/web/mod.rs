//! The web front end (issue 22 §2) against a real server on loopback:
//! - the device's QR code (PNG, fetched with curl) is decoded with an
//!   independent reader (`rqrr`), and headless Chromium (WebDriver) opens
//!   the URL it holds and shows the level and status; the device is
//!   revoked over gRPC and the page shows it; a hostile model name renders
//!   as text and runs nothing; screenshots go to `target/web-screenshots/`;
//! - plain HTTPS with curl: security headers, the JSON variant, 405 on
//!   other methods, the label endpoint's caller check, lookup by serial as
//!   the sector policy says, and 429 past the rate limit.
//!
//! Chromium and chromedriver are optional on a developer's machine (the
//! browser test says it skipped) and required in CI
//! (`TRUSTCA_REQUIRE_INTEROP=1`).
//!
//! `kit.rs` has what the tests share; `public.rs` the label pages,
//! `console.rs` the console, `systems.rs` the console's systems of linked
//! devices.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod console;
mod kit;
mod label_key;
mod public;
mod systems;
