//! The IEEE 1609.2 codec's integration tests, in one test binary (one link
//! instead of one per file): certificates, linkage certificates, CRLs,
//! `EncryptedData`, `ScmsPdu` messages and the cross-check with an
//! independent implementation. Shared set-up is `common`.

mod certificates;
mod common;
mod crl;
mod encrypted;
mod independent;
mod linkage;
mod scms_pdu;
