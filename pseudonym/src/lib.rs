//! V2X pseudonym cryptography (work in progress).
#![forbid(unsafe_code)]
