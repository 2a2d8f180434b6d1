//! The server's half of credential activation (TPM 2.0 Part 1, 24;
//! `TPM2_MakeCredential` done outside a TPM): a secret encrypted so that
//! only the TPM holding the EK's private key can recover it, and only for
//! an object with the AK's name loaded beside it (`TPM2_ActivateCredential`).
//! That binds the AK to the EK whose certificate the server checked.
//!
//! Only RSA 2048 EKs with the TCG default template (EK Credential Profile
//! template L-1: nameAlg SHA-256, AES-128-CFB) are supported: that is the
//! EK whose certificate sits at NV index 0x01c00002 on every TPM, swtpm
//! included. The seed is encrypted with RSA-OAEP (SHA-256, label
//! `"IDENTITY\0"`).

use aes::Aes128;
use aes::cipher::{BlockEncrypt, KeyInit};
use num_bigint::BigUint;
use ring::rand::SecureRandom;
use ring::{digest, hmac};

use crate::AttestationError;
use crate::wire::put_tpm2b;

/// The credential blob and encrypted seed `TPM2_ActivateCredential` takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MadeCredential {
    /// `TPM2B_ID_OBJECT`: the HMAC-protected, encrypted secret.
    pub id_object: Vec<u8>,
    /// `TPM2B_ENCRYPTED_SECRET`: the seed, RSA-OAEP encrypted to the EK.
    pub encrypted_secret: Vec<u8>,
}

/// The RSA EK size supported (bytes of modulus).
const EK_BYTES: usize = 256;
const SHA256_LEN: usize = 32;

/// Encrypts `secret` (at most 32 bytes) for the TPM whose RSA EK has
/// `modulus`/`exponent`, bound to the object named `ak_name`.
pub fn make_credential(
    modulus: &[u8],
    exponent: &[u8],
    ak_name: &[u8],
    secret: &[u8],
    rng: &dyn SecureRandom,
) -> Result<MadeCredential, AttestationError> {
    let modulus = strip(modulus);
    if modulus.len() != EK_BYTES {
        return Err(AttestationError::Credential(format!(
            "the EK is RSA {} bits; only RSA 2048 EKs (template L-1) are supported",
            modulus.len() * 8
        )));
    }
    if secret.len() > SHA256_LEN || secret.is_empty() {
        return Err(AttestationError::Credential(
            "the secret must be 1-32 bytes".into(),
        ));
    }
    let mut seed = [0u8; SHA256_LEN];
    rng.fill(&mut seed)
        .map_err(|_| AttestationError::Credential("no randomness".into()))?;
    let encrypted_seed = rsa_oaep_sha256(modulus, exponent, &seed, b"IDENTITY\0", rng)?;
    let mut sym_key = [0u8; 16];
    sym_key.copy_from_slice(&kdfa(&seed, b"STORAGE", ak_name, &[], 128));
    let hmac_key = kdfa(&seed, b"INTEGRITY", &[], &[], 256);
    let mut plain = Vec::with_capacity(2 + secret.len());
    put_tpm2b(&mut plain, secret);
    let enc_identity = aes128_cfb_encrypt(&sym_key, &plain);
    let key = hmac::Key::new(hmac::HMAC_SHA256, &hmac_key);
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(&enc_identity);
    ctx.update(ak_name);
    let outer = ctx.sign();
    let mut body = Vec::with_capacity(2 + SHA256_LEN + enc_identity.len());
    put_tpm2b(&mut body, outer.as_ref());
    body.extend_from_slice(&enc_identity);
    let mut id_object = Vec::with_capacity(2 + body.len());
    put_tpm2b(&mut id_object, &body);
    let mut encrypted_secret = Vec::with_capacity(2 + EK_BYTES);
    put_tpm2b(&mut encrypted_secret, &encrypted_seed);
    Ok(MadeCredential {
        id_object,
        encrypted_secret,
    })
}

/// The file `tpm2_makecredential -o` writes and `tpm2_activatecredential
/// -i` reads: magic `0xBADCC0DE`, version 1, the `TPM2B_ID_OBJECT`, the
/// `TPM2B_ENCRYPTED_SECRET`. Devices using tpm2-tools write it from the
/// two fields of the challenge.
pub fn tpm2_tools_blob(made: &MadeCredential) -> Vec<u8> {
    let mut out = vec![0xBA, 0xDC, 0xC0, 0xDE, 0, 0, 0, 1];
    out.extend_from_slice(&made.id_object);
    out.extend_from_slice(&made.encrypted_secret);
    out
}

fn strip(v: &[u8]) -> &[u8] {
    let start = v.iter().position(|b| *b != 0).unwrap_or(v.len());
    &v[start..]
}

/// KDFa with SHA-256 (Part 1, 11.4.10.2): HMAC in counter mode over
/// `i ‖ label ‖ 0 ‖ contextU ‖ contextV ‖ bits`.
fn kdfa(key: &[u8], label: &[u8], context_u: &[u8], context_v: &[u8], bits: u32) -> Vec<u8> {
    let want = (bits / 8) as usize;
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let mut out = Vec::with_capacity(want + SHA256_LEN);
    let mut counter: u32 = 1;
    while out.len() < want {
        let mut ctx = hmac::Context::with_key(&key);
        ctx.update(&counter.to_be_bytes());
        ctx.update(label);
        // The label is a NUL-terminated string; ours carry no NUL yet.
        if label.last() != Some(&0) {
            ctx.update(&[0]);
        }
        ctx.update(context_u);
        ctx.update(context_v);
        ctx.update(&bits.to_be_bytes());
        out.extend_from_slice(ctx.sign().as_ref());
        counter += 1;
    }
    out.truncate(want);
    out
}

/// AES-128 in CFB mode with a zero IV (Part 1, 24.4: the credential's
/// symmetric encryption), whole and partial blocks.
fn aes128_cfb_encrypt(key: &[u8; 16], plain: &[u8]) -> Vec<u8> {
    let cipher = Aes128::new(key.into());
    let mut feedback = [0u8; 16];
    let mut out = Vec::with_capacity(plain.len());
    for chunk in plain.chunks(16) {
        let mut block = aes::Block::from(feedback);
        cipher.encrypt_block(&mut block);
        let start = out.len();
        out.extend(chunk.iter().zip(block.iter()).map(|(p, k)| p ^ k));
        if chunk.len() == 16 {
            feedback.copy_from_slice(&out[start..]);
        }
    }
    out
}

fn mgf1_sha256(seed: &[u8], len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + SHA256_LEN);
    let mut counter: u32 = 0;
    while out.len() < len {
        let mut ctx = digest::Context::new(&digest::SHA256);
        ctx.update(seed);
        ctx.update(&counter.to_be_bytes());
        out.extend_from_slice(ctx.finish().as_ref());
        counter += 1;
    }
    out.truncate(len);
    out
}

/// RSAES-OAEP-ENCRYPT (RFC 8017, 7.1.1) with SHA-256 and MGF1-SHA-256.
/// Only public values are involved (the seed is random and fresh), so the
/// modular exponentiation need not be constant-time.
fn rsa_oaep_sha256(
    modulus: &[u8],
    exponent: &[u8],
    message: &[u8],
    label: &[u8],
    rng: &dyn SecureRandom,
) -> Result<Vec<u8>, AttestationError> {
    let k = modulus.len();
    if message.len() + 2 * SHA256_LEN + 2 > k {
        return Err(AttestationError::Credential("message too long".into()));
    }
    let mut db = Vec::with_capacity(k - SHA256_LEN - 1);
    db.extend_from_slice(digest::digest(&digest::SHA256, label).as_ref());
    db.resize(k - message.len() - SHA256_LEN - 2, 0);
    db.push(1);
    db.extend_from_slice(message);
    let mut seed = [0u8; SHA256_LEN];
    rng.fill(&mut seed)
        .map_err(|_| AttestationError::Credential("no randomness".into()))?;
    for (d, m) in db.iter_mut().zip(mgf1_sha256(&seed, k - SHA256_LEN - 1)) {
        *d ^= m;
    }
    for (s, m) in seed.iter_mut().zip(mgf1_sha256(&db, SHA256_LEN)) {
        *s ^= m;
    }
    let mut em = Vec::with_capacity(k);
    em.push(0);
    em.extend_from_slice(&seed);
    em.extend_from_slice(&db);
    let n = BigUint::from_bytes_be(modulus);
    let e = BigUint::from_bytes_be(exponent);
    if e < BigUint::from(3u8) || n.bits() < 2040 {
        return Err(AttestationError::Credential("unusable RSA key".into()));
    }
    let c = BigUint::from_bytes_be(&em).modpow(&e, &n).to_bytes_be();
    let mut out = vec![0u8; k - c.len()];
    out.extend_from_slice(&c);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kdfa_is_length_exact_and_label_bound() {
        // The construction's shape only; that it matches the TPM's is
        // proved end to end, by tpm2_activatecredential in swtpm
        // recovering the secret (tests/tests/e2e/attestation.rs).
        let a = kdfa(b"key", b"STORAGE", b"name", &[], 128);
        let b = kdfa(b"key", b"STORAGE", b"name", &[], 256);
        assert_eq!(a.len(), 16);
        assert_eq!(b.len(), 32);
        // The bit count is hashed in, so a shorter output is not a prefix.
        assert_ne!(&a[..], &b[..16]);
        assert_ne!(kdfa(b"key", b"INTEGRITY", b"name", &[], 128), a);
    }

    #[test]
    fn cfb_round_trips_with_the_decryption() {
        let key = [7u8; 16];
        let plain: Vec<u8> = (0..37u8).collect();
        let c = aes128_cfb_encrypt(&key, &plain);
        // CFB decryption: P_i = C_i xor E(C_{i-1}).
        let cipher = Aes128::new((&key).into());
        let mut prev = [0u8; 16];
        let mut back = Vec::new();
        for chunk in c.chunks(16) {
            let mut block = aes::Block::from(prev);
            cipher.encrypt_block(&mut block);
            back.extend(chunk.iter().zip(block.iter()).map(|(x, k)| x ^ k));
            if chunk.len() == 16 {
                prev.copy_from_slice(chunk);
            }
        }
        assert_eq!(back, plain);
        assert_ne!(c, plain);
    }

    #[test]
    fn blob_has_the_tools_layout_and_refuses_other_eks() {
        let rng = ring::rand::SystemRandom::new();
        let ek = crate::ek::tests::swtpm_ek_rsa();
        let made =
            make_credential(&ek.0, &ek.1, &[0, 0xb, 1, 2], b"0123456789abcdef", &rng).unwrap();
        // TPM2B_ID_OBJECT: size, TPM2B_DIGEST(HMAC), 2+16 encrypted bytes.
        assert_eq!(made.id_object.len(), 2 + 2 + 32 + 18);
        assert_eq!(&made.id_object[2..4], &[0, 32]);
        assert_eq!(made.encrypted_secret.len(), 2 + 256);
        let blob = tpm2_tools_blob(&made);
        assert_eq!(&blob[..8], &[0xBA, 0xDC, 0xC0, 0xDE, 0, 0, 0, 1]);
        // Two credentials for the same input differ (fresh seed).
        let again =
            make_credential(&ek.0, &ek.1, &[0, 0xb, 1, 2], b"0123456789abcdef", &rng).unwrap();
        assert_ne!(made, again);
        assert!(make_credential(&ek.0[..128], &ek.1, &[0], b"x", &rng).is_err());
        assert!(make_credential(&ek.0, &ek.1, &[0], &[0; 33], &rng).is_err());
    }
}
