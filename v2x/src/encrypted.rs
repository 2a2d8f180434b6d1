//! IEEE 1609.2 `EncryptedData` for public-key recipients: ECIES on NIST
//! P-256 wraps a fresh AES-128 key, AES-128-CCM encrypts the data
//! (IEEE 1609.2-2016 clause 5.3.5, the `eciesNistP256` and `aes128ccm`
//! alternatives), with a strict, bounded COER codec.
//!
//! ```text
//! EncryptedData ::= SEQUENCE { recipients SequenceOfRecipientInfo,
//!                              ciphertext SymmetricCiphertext }
//! RecipientInfo: certRecipInfo | signedDataRecipInfo | rekRecipInfo
//!                (PKRecipientInfo { recipientId HashedId8,
//!                  encKey eciesNistP256 EciesP256EncryptedKey { v, c, t } })
//! SymmetricCiphertext: aes128ccm AesCcmCiphertext { nonce (12), ccmCiphertext }
//! ```
//!
//! Key wrapping (ECIES as in IEEE 1363a, the choices of IEEE 1609.2):
//!
//! * an ephemeral key pair `(u, V = uG)`; `Z` = the x coordinate of `uR`
//!   (ECSVDP-DH, `R` the recipient's public encryption key);
//! * `K1 || K2` = KDF2 with SHA-256 (`SHA-256(Z || 00000001H || P1) ||
//!   SHA-256(Z || 00000002H || P1)`), the first 48 octets: `K1` 16 octets,
//!   `K2` 32 octets;
//! * `c = k XOR K1` (`k` the AES-128 key);
//! * `t` = HMAC-SHA-256(`K2`, `c`) truncated to 16 octets (MAC1 with an
//!   empty P2).
//!
//! `P1` is SHA-256 of the COER encoding of the recipient's certificate for
//! `certRecipInfo`, SHA-256 of the COER `Ieee1609Dot2Data` (signed data)
//! that carried the recipient's response encryption key for
//! `signedDataRecipInfo`, and SHA-256 of the empty string ([`P1_EMPTY`])
//! for `rekRecipInfo` (the `RecipientInfo` definitions of IEEE 1609.2 as
//! amended; the caller passes P1 to [`EncryptedData::seal`] and
//! [`EncryptedData::open`]). The data is encrypted with
//! AES-128-CCM, a random 12-octet nonce and a 16-octet tag;
//! `ccmCiphertext` is the ciphertext followed by the tag.
//!
//! Not supported: `pskRecipInfo` and `symmRecipInfo` recipients, Brainpool
//! keys, an uncompressed or x-only `v` (the decoder reports them as
//! [`V2xError::Unsupported`] or [`V2xError::Invalid`]). The ETSI
//! TS 103 097 `EtsiTs103097Data-Encrypted` profile forbids `rekRecipInfo`;
//! this module encodes the bare IEEE 1609.2 `EncryptedData`, without the
//! `Ieee1609Dot2Data` wrapper.

use ccm::Ccm;
use ccm::aead::{Aead, KeyInit};
use ccm::consts::{U12, U16};
use p256::elliptic_curve::sec1::{FromEncodedPoint, ToEncodedPoint};
use ring::rand::{SecureRandom, SystemRandom};
use ring::{agreement, digest, hmac};
use zeroize::Zeroizing;

use crate::V2xError;
use crate::cert::Certificate;
use crate::coer::{Reader, Writer};
use crate::keys::{PublicKeyP256, hashed_id8, sha256};

/// Largest `EncryptedData` encoding accepted by the decoder and produced
/// by [`EncryptedData::seal`] (64 KiB).
pub const MAX_ENCRYPTED_DATA_LEN: usize = 64 * 1024;

/// Most recipients accepted by the decoder.
pub const MAX_RECIPIENTS: usize = 16;

/// SHA-256 of the empty string: the ECIES parameter `P1` for
/// `rekRecipInfo` recipients.
pub const P1_EMPTY: [u8; 32] = [
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];

type Aes128Ccm = Ccm<aes::Aes128, U16, U12>;

/// Which `PKRecipientInfo` alternative of `RecipientInfo` a recipient is,
/// i.e. where the sender found the recipient's public encryption key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecipientKind {
    /// `certRecipInfo`: the `encryptionKey` of the recipient's certificate.
    /// `recipientId` is the certificate's HashedId8, `P1` SHA-256 of its
    /// COER encoding.
    Certificate,
    /// `signedDataRecipInfo`: the `encryptionKey` header field of a signed
    /// message from the recipient. `recipientId` is the HashedId8 of the
    /// COER encoding of that `Ieee1609Dot2Data`, `P1` its SHA-256.
    SignedData,
    /// `rekRecipInfo`: a response encryption key the recipient sent in its
    /// request (how a pseudonym CA encrypts its response to a vehicle).
    /// `recipientId` is the HashedId8 of the COER encoding of the
    /// `PublicEncryptionKey` ([`response_key_id`]), `P1` is [`P1_EMPTY`].
    ResponseEncryptionKey,
}

impl RecipientKind {
    fn tag(self) -> u8 {
        match self {
            RecipientKind::Certificate => 2,
            RecipientKind::SignedData => 3,
            RecipientKind::ResponseEncryptionKey => 4,
        }
    }
}

/// IEEE 1609.2 `EciesP256EncryptedKey`: the wrapped AES key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EciesP256EncryptedKey {
    /// `v`: the sender's ephemeral public key (written compressed).
    pub v: PublicKeyP256,
    /// `c`: the AES-128 key XOR `K1`.
    pub c: [u8; 16],
    /// `t`: HMAC-SHA-256(`K2`, `c`), first 16 octets.
    pub t: [u8; 16],
}

/// IEEE 1609.2 `PKRecipientInfo` with its `RecipientInfo` alternative.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PkRecipientInfo {
    /// The `RecipientInfo` alternative.
    pub kind: RecipientKind,
    /// `recipientId` (see [`RecipientKind`] for what it hashes).
    pub recipient_id: [u8; 8],
    /// `encKey.eciesNistP256`.
    pub enc_key: EciesP256EncryptedKey,
}

/// IEEE 1609.2 `EncryptedData` with public-key recipients (or one
/// pre-shared-key recipient) and an AES-128-CCM ciphertext.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EncryptedData {
    recipients: Vec<PkRecipientInfo>,
    /// `pskRecipInfo`: the one recipient, when the data is encrypted with
    /// a key both sides already hold (ETSI TS 102 941 responses, under the
    /// AES key of the request they answer). `recipients` is then empty.
    psk_recipient: Option<[u8; 8]>,
    nonce: [u8; 12],
    ccm_ciphertext: Vec<u8>,
}

/// The HashedId8 that identifies a response encryption key in
/// `rekRecipInfo`: of the COER encoding of the `PublicEncryptionKey`
/// `{ supportedSymmAlg aes128Ccm, publicKey eciesNistP256 }` with the key
/// as a compressed point (`00 80 82|83 x`).
pub fn response_key_id(key: &PublicKeyP256) -> [u8; 8] {
    let mut w = Writer::new();
    w.u8(0); // aes128Ccm
    w.tag(0); // eciesNistP256
    encode_point(&mut w, key);
    hashed_id8(&w.buf)
}

/// The P-256 public key of the secret scalar `secret` (big-endian, in
/// 1..n-1), compressed.
pub fn encryption_public_key(secret: &[u8; 32]) -> Result<PublicKeyP256, V2xError> {
    let sk = p256::SecretKey::from_slice(secret).map_err(|_| V2xError::InvalidKey)?;
    PublicKeyP256::from_sec1(sk.public_key().to_encoded_point(true).as_bytes())
}

/// The `pskRecipInfo` HashedId8 of a pre-shared AES-128 key: of the COER
/// encoding of the `SymmetricEncryptionKey` `aes128Ccm` holding it
/// (`80`H followed by the 16 key octets), as IEEE 1609.2 defines
/// `PreSharedKeyRecipientInfo`.
pub fn psk_id(key: &[u8; 16]) -> [u8; 8] {
    let mut w = Writer::new();
    w.tag(0); // aes128Ccm
    w.fixed(key);
    hashed_id8(&w.buf)
}

impl EncryptedData {
    /// Encrypts `plaintext` to one recipient with public encryption key
    /// `recipient`.
    ///
    /// * `recipient_id`: for [`RecipientKind::Certificate`] the HashedId8
    ///   of the recipient's certificate; for [`RecipientKind::SignedData`]
    ///   the HashedId8 of the signed `Ieee1609Dot2Data` that carried the
    ///   key; for [`RecipientKind::ResponseEncryptionKey`] the HashedId8 of
    ///   the COER `PublicEncryptionKey` ([`response_key_id`]).
    /// * `p1`: the ECIES parameter P1, 32 octets: SHA-256 of the COER
    ///   encoding of the recipient's certificate for
    ///   [`RecipientKind::Certificate`], SHA-256 of the COER signed
    ///   `Ieee1609Dot2Data` for [`RecipientKind::SignedData`],
    ///   [`P1_EMPTY`] for [`RecipientKind::ResponseEncryptionKey`]. It is
    ///   a parameter because the certificate or signed data is not
    ///   otherwise known here; [`EncryptedData::seal_to_certificate`] and
    ///   [`EncryptedData::seal_to_response_key`] compute it.
    ///
    /// The AES key, the nonce and the ephemeral key come from ring's
    /// `SystemRandom`.
    pub fn seal(
        recipient: &PublicKeyP256,
        recipient_id: [u8; 8],
        kind: RecipientKind,
        p1: &[u8],
        plaintext: &[u8],
    ) -> Result<Self, V2xError> {
        let mut k = Zeroizing::new([0u8; 16]);
        fill(&SystemRandom::new(), &mut k[..])?;
        Self::seal_with_key(recipient, recipient_id, kind, p1, &k, plaintext)
    }

    /// Like [`EncryptedData::seal`] with the AES-128 key `k` chosen by the
    /// caller, who keeps it to decrypt the answer ([`EncryptedData::seal_with_psk`]
    /// on the other side), as ETSI TS 102 941 requests do.
    pub fn seal_with_key(
        recipient: &PublicKeyP256,
        recipient_id: [u8; 8],
        kind: RecipientKind,
        p1: &[u8],
        k: &[u8; 16],
        plaintext: &[u8],
    ) -> Result<Self, V2xError> {
        let p1 = p1_array(p1)?;
        let rng = SystemRandom::new();
        let enc_key = ecies_wrap(&rng, recipient, &p1, k)?;
        let recipients = vec![PkRecipientInfo {
            kind,
            recipient_id,
            enc_key,
        }];
        Self::encrypt(recipients, None, k, plaintext)
    }

    /// Encrypts `plaintext` under the pre-shared AES-128 key `k`
    /// (`pskRecipInfo`, [`psk_id`]): ETSI TS 102 941 encrypts each
    /// response with the key of the request it answers.
    pub fn seal_with_psk(k: &[u8; 16], plaintext: &[u8]) -> Result<Self, V2xError> {
        Self::encrypt(Vec::new(), Some(psk_id(k)), k, plaintext)
    }

    fn encrypt(
        recipients: Vec<PkRecipientInfo>,
        psk_recipient: Option<[u8; 8]>,
        k: &[u8; 16],
        plaintext: &[u8],
    ) -> Result<Self, V2xError> {
        if plaintext.len() > MAX_ENCRYPTED_DATA_LEN {
            return Err(V2xError::Limit("plaintext longer than 64 KiB"));
        }
        let mut nonce = [0u8; 12];
        fill(&SystemRandom::new(), &mut nonce)?;
        let cipher =
            Aes128Ccm::new_from_slice(&k[..]).map_err(|_| V2xError::Encryption("AES key"))?;
        let ccm_ciphertext = cipher
            .encrypt(&nonce.into(), plaintext)
            .map_err(|_| V2xError::Encryption("AES-CCM encryption failed"))?;
        let sealed = Self {
            recipients,
            psk_recipient,
            nonce,
            ccm_ciphertext,
        };
        if sealed.to_coer().len() > MAX_ENCRYPTED_DATA_LEN {
            return Err(V2xError::Limit("EncryptedData longer than 64 KiB"));
        }
        Ok(sealed)
    }

    /// Decrypts data sealed with [`EncryptedData::seal_with_psk`] under
    /// `k`: [`V2xError::NoRecipient`] unless its one recipient is `k`'s
    /// [`psk_id`], [`V2xError::Decryption`] when the ciphertext does not
    /// check out.
    pub fn open_with_psk(&self, k: &[u8; 16]) -> Result<Vec<u8>, V2xError> {
        if self.psk_recipient != Some(psk_id(k)) {
            return Err(V2xError::NoRecipient);
        }
        let cipher = Aes128Ccm::new_from_slice(&k[..]).map_err(|_| V2xError::Decryption)?;
        cipher
            .decrypt(&self.nonce.into(), self.ccm_ciphertext.as_slice())
            .map_err(|_| V2xError::Decryption)
    }

    /// The `pskRecipInfo` of data sealed under a pre-shared key.
    pub fn psk_recipient(&self) -> Option<[u8; 8]> {
        self.psk_recipient
    }

    /// Encrypts `plaintext` to the holder of `cert` (`certRecipInfo`) with
    /// the certificate's `encryptionKey`; `recipientId` is the
    /// certificate's HashedId8, P1 SHA-256 of its COER encoding.
    pub fn seal_to_certificate(cert: &Certificate, plaintext: &[u8]) -> Result<Self, V2xError> {
        let key = cert.tbs().encryption_key.ok_or(V2xError::NoEncryptionKey)?;
        Self::seal(
            &key,
            cert.hashed_id8(),
            RecipientKind::Certificate,
            &sha256(cert.as_coer()),
            plaintext,
        )
    }

    /// [`EncryptedData::seal_to_certificate`] under the caller's AES-128
    /// key `k` (see [`EncryptedData::seal_with_key`]).
    pub fn seal_to_certificate_with_key(
        cert: &Certificate,
        k: &[u8; 16],
        plaintext: &[u8],
    ) -> Result<Self, V2xError> {
        let key = cert.tbs().encryption_key.ok_or(V2xError::NoEncryptionKey)?;
        Self::seal_with_key(
            &key,
            cert.hashed_id8(),
            RecipientKind::Certificate,
            &sha256(cert.as_coer()),
            k,
            plaintext,
        )
    }

    /// Encrypts `plaintext` to a response encryption key (`rekRecipInfo`):
    /// `recipientId` is [`response_key_id`], P1 is [`P1_EMPTY`].
    pub fn seal_to_response_key(key: &PublicKeyP256, plaintext: &[u8]) -> Result<Self, V2xError> {
        Self::seal(
            key,
            response_key_id(key),
            RecipientKind::ResponseEncryptionKey,
            &P1_EMPTY,
            plaintext,
        )
    }

    /// Decrypts with the secret scalar `recipient_secret` (big-endian) of
    /// the recipient identified by `recipient_id`, with ECIES parameter
    /// `p1` (as for [`EncryptedData::seal`]). Fails with
    /// [`V2xError::NoRecipient`] when no recipient has that id and with
    /// [`V2xError::Decryption`] when the key, P1, the wrapped key or the
    /// ciphertext do not check out (one error for all, so it tells an
    /// attacker nothing more).
    pub fn open(
        &self,
        recipient_secret: &[u8; 32],
        recipient_id: [u8; 8],
        p1: &[u8],
    ) -> Result<Vec<u8>, V2xError> {
        Ok(self.open_keeping_key(recipient_secret, recipient_id, p1)?.1)
    }

    /// Like [`EncryptedData::open`], also returning the AES-128 key the
    /// data was encrypted with (an ETSI TS 102 941 authority answers under
    /// it, [`EncryptedData::seal_with_psk`]).
    pub fn open_keeping_key(
        &self,
        recipient_secret: &[u8; 32],
        recipient_id: [u8; 8],
        p1: &[u8],
    ) -> Result<(Zeroizing<[u8; 16]>, Vec<u8>), V2xError> {
        let p1 = p1_array(p1)?;
        let sk = p256::SecretKey::from_slice(recipient_secret).map_err(|_| V2xError::InvalidKey)?;
        let mut found = false;
        for r in self
            .recipients
            .iter()
            .filter(|r| r.recipient_id == recipient_id)
        {
            found = true;
            let Some(k) = ecies_unwrap(&sk, &p1, &r.enc_key)? else {
                continue;
            };
            let cipher = Aes128Ccm::new_from_slice(&k[..]).map_err(|_| V2xError::Decryption)?;
            let plain = cipher
                .decrypt(&self.nonce.into(), self.ccm_ciphertext.as_slice())
                .map_err(|_| V2xError::Decryption)?;
            return Ok((k, plain));
        }
        Err(if found {
            V2xError::Decryption
        } else {
            V2xError::NoRecipient
        })
    }

    /// Decrypts as the holder of `cert` (the secret of its
    /// `encryptionKey`): recipient id and P1 from the certificate.
    pub fn open_as_certificate(
        &self,
        recipient_secret: &[u8; 32],
        cert: &Certificate,
    ) -> Result<Vec<u8>, V2xError> {
        self.open(recipient_secret, cert.hashed_id8(), &sha256(cert.as_coer()))
    }

    /// Decrypts with the secret of the response encryption key `key`.
    pub fn open_with_response_key(
        &self,
        recipient_secret: &[u8; 32],
        key: &PublicKeyP256,
    ) -> Result<Vec<u8>, V2xError> {
        self.open(recipient_secret, response_key_id(key), &P1_EMPTY)
    }

    /// The recipients, in encoding order.
    pub fn recipients(&self) -> &[PkRecipientInfo] {
        &self.recipients
    }

    /// The AES-CCM nonce.
    pub fn nonce(&self) -> [u8; 12] {
        self.nonce
    }

    /// `ccmCiphertext`: the ciphertext followed by the 16-octet CCM tag.
    pub fn ccm_ciphertext(&self) -> &[u8] {
        &self.ccm_ciphertext
    }

    /// The COER encoding.
    pub fn to_coer(&self) -> Vec<u8> {
        let mut w = Writer::new();
        if let Some(id) = &self.psk_recipient {
            w.quantity(1);
            w.tag(0); // pskRecipInfo
            w.fixed(id);
        } else {
            w.quantity(self.recipients.len());
        }
        for r in &self.recipients {
            w.tag(r.kind.tag());
            w.fixed(&r.recipient_id);
            w.tag(0); // eciesNistP256
            encode_point(&mut w, &r.enc_key.v);
            w.fixed(&r.enc_key.c);
            w.fixed(&r.enc_key.t);
        }
        w.tag(0); // aes128ccm
        w.fixed(&self.nonce);
        w.octets(&self.ccm_ciphertext);
        w.buf
    }

    /// Decodes an `EncryptedData`, strictly: canonical COER only, no
    /// trailing bytes, at most [`MAX_ENCRYPTED_DATA_LEN`] octets and
    /// 1..=[`MAX_RECIPIENTS`] recipients, every `v` a valid compressed
    /// P-256 point, `ccmCiphertext` at least the 16-octet tag.
    pub fn from_coer(bytes: &[u8]) -> Result<Self, V2xError> {
        if bytes.len() > MAX_ENCRYPTED_DATA_LEN {
            return Err(V2xError::Limit("EncryptedData longer than 64 KiB"));
        }
        let mut r = Reader::new(bytes);
        let at = r.pos();
        let n = r.quantity()?;
        if n > MAX_RECIPIENTS {
            return Err(V2xError::Limit("more than 16 recipients"));
        }
        if n == 0 {
            return Err(V2xError::Invalid {
                offset: at,
                what: "EncryptedData without recipients",
            });
        }
        let mut recipients = Vec::with_capacity(n);
        let mut psk_recipient = None;
        for _ in 0..n {
            match decode_recipient(&mut r)? {
                Recipient::Pk(pk) => recipients.push(pk),
                // A pre-shared key is the only recipient (TS 102 941).
                Recipient::Psk(id) if n == 1 => psk_recipient = Some(id),
                Recipient::Psk(_) => {
                    return Err(V2xError::Unsupported(
                        "pskRecipInfo beside other recipients",
                    ));
                }
            }
        }
        match r.tag()? {
            0 => {}
            _ => {
                return Err(V2xError::Unsupported(
                    "symmetric ciphertext other than aes128ccm",
                ));
            }
        }
        let nonce = r.array()?;
        let at = r.pos();
        let ccm_ciphertext = r.octets()?.to_vec();
        if ccm_ciphertext.len() < 16 {
            return Err(V2xError::Invalid {
                offset: at,
                what: "ccmCiphertext shorter than the CCM tag",
            });
        }
        if r.remaining() != 0 {
            return Err(V2xError::TrailingBytes(r.remaining()));
        }
        let data = Self {
            recipients,
            psk_recipient,
            nonce,
            ccm_ciphertext,
        };
        // Belt and braces: the only encoding of what was decoded must be
        // the input itself.
        if data.to_coer() != bytes {
            return Err(V2xError::NonCanonical {
                offset: 0,
                what: "re-encoding differs from the input",
            });
        }
        Ok(data)
    }
}

/// One decoded `RecipientInfo`.
enum Recipient {
    Pk(PkRecipientInfo),
    Psk([u8; 8]),
}

fn decode_recipient(r: &mut Reader<'_>) -> Result<Recipient, V2xError> {
    let at = r.pos();
    let kind = match r.tag()? {
        0 => return Ok(Recipient::Psk(r.array()?)),
        1 => return Err(V2xError::Unsupported("symmRecipInfo")),
        2 => RecipientKind::Certificate,
        3 => RecipientKind::SignedData,
        4 => RecipientKind::ResponseEncryptionKey,
        _ => {
            return Err(V2xError::Invalid {
                offset: at,
                what: "unknown RecipientInfo alternative",
            });
        }
    };
    let recipient_id = r.array()?;
    match r.tag()? {
        0 => {}
        1 => return Err(V2xError::Unsupported("eciesBrainpoolP256r1")),
        _ => {
            return Err(V2xError::Unsupported(
                "EncryptedDataEncryptionKey extension",
            ));
        }
    }
    let at = r.pos();
    let odd = match r.tag()? {
        2 => false,
        3 => true,
        4 => return Err(V2xError::Unsupported("uncompressed ephemeral key v")),
        _ => {
            return Err(V2xError::Invalid {
                offset: at,
                what: "ephemeral key v must be a compressed point",
            });
        }
    };
    let v = PublicKeyP256::from_x(&r.array()?, odd)?;
    let c = r.array()?;
    let t = r.array()?;
    Ok(Recipient::Pk(PkRecipientInfo {
        kind,
        recipient_id,
        enc_key: EciesP256EncryptedKey { v, c, t },
    }))
}

fn encode_point(w: &mut Writer, k: &PublicKeyP256) {
    w.tag(if k.y_is_odd() { 3 } else { 2 });
    w.fixed(&k.x());
}

fn p1_array(p1: &[u8]) -> Result<[u8; 32], V2xError> {
    <[u8; 32]>::try_from(p1).map_err(|_| V2xError::OutOfRange("P1 must be a 32-octet SHA-256 hash"))
}

fn fill(rng: &SystemRandom, buf: &mut [u8]) -> Result<(), V2xError> {
    rng.fill(buf)
        .map_err(|_| V2xError::Encryption("no randomness"))
}

/// `Z`: the x coordinate of `secret · peer` (ECSVDP-DH), with the p256
/// crate: the recipient's key is static and ring computes ECDH only with
/// a key it generated itself. `peer` was decompressed when it was decoded,
/// so the point is read from its uncompressed form (an on-curve check, no
/// square root); p256 multiplies with a fixed 4-bit window over
/// projective points, and one inversion gives the affine x.
fn shared_x(
    secret: &p256::SecretKey,
    peer: &PublicKeyP256,
) -> Result<Zeroizing<[u8; 32]>, V2xError> {
    let ep =
        p256::EncodedPoint::from_bytes(peer.uncompressed()?).map_err(|_| V2xError::InvalidKey)?;
    let point: Option<p256::AffinePoint> = p256::AffinePoint::from_encoded_point(&ep).into();
    let point = point.ok_or(V2xError::InvalidKey)?;
    let shared = (p256::ProjectivePoint::from(point) * *secret.to_nonzero_scalar()).to_affine();
    let enc = shared.to_encoded_point(false);
    let x = enc.x().ok_or(V2xError::InvalidKey)?;
    let mut z = Zeroizing::new([0u8; 32]);
    z.copy_from_slice(x);
    Ok(z)
}

/// KDF2 (IEEE 1363a) with SHA-256: `K1` (16 octets) || `K2` (32 octets).
fn kdf2(z: &[u8; 32], p1: &[u8; 32]) -> Zeroizing<[u8; 48]> {
    let mut out = Zeroizing::new([0u8; 64]);
    for (i, counter) in [1u32, 2].iter().enumerate() {
        let mut ctx = digest::Context::new(&digest::SHA256);
        ctx.update(z);
        ctx.update(&counter.to_be_bytes());
        ctx.update(p1);
        out[i * 32..(i + 1) * 32].copy_from_slice(ctx.finish().as_ref());
    }
    let mut k = Zeroizing::new([0u8; 48]);
    k.copy_from_slice(&out[..48]);
    k
}

/// MAC1: HMAC-SHA-256 with key `K2` over `c`, first 16 octets.
fn mac1(k2: &[u8], c: &[u8; 16]) -> [u8; 16] {
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, k2), c);
    let mut t = [0u8; 16];
    t.copy_from_slice(&tag.as_ref()[..16]);
    t
}

fn ecies_wrap(
    rng: &SystemRandom,
    recipient: &PublicKeyP256,
    p1: &[u8; 32],
    k: &[u8; 16],
) -> Result<EciesP256EncryptedKey, V2xError> {
    // The ephemeral key pair and `Z` from ring's ECDH: its base-point
    // table and field arithmetic are several times faster than p256's
    // generic ladder, and the sender never needs the ephemeral scalar.
    let eph = agreement::EphemeralPrivateKey::generate(&agreement::ECDH_P256, rng)
        .map_err(|_| V2xError::Encryption("no usable ephemeral key"))?;
    let v_point = eph
        .compute_public_key()
        .map_err(|_| V2xError::Encryption("no usable ephemeral key"))?;
    let v = PublicKeyP256::from_sec1(v_point.as_ref())?;
    let peer = agreement::UnparsedPublicKey::new(&agreement::ECDH_P256, recipient.uncompressed()?);
    let z = agreement::agree_ephemeral(eph, &peer, |shared| {
        let mut z = Zeroizing::new([0u8; 32]);
        z.copy_from_slice(shared);
        z
    })
    .map_err(|_| V2xError::InvalidKey)?;
    let keys = kdf2(&z, p1);
    let mut c = [0u8; 16];
    for (i, b) in c.iter_mut().enumerate() {
        *b = k[i] ^ keys[i];
    }
    let t = mac1(&keys[16..], &c);
    Ok(EciesP256EncryptedKey { v, c, t })
}

/// The AES key, or `None` when the tag does not verify.
fn ecies_unwrap(
    secret: &p256::SecretKey,
    p1: &[u8; 32],
    enc: &EciesP256EncryptedKey,
) -> Result<Option<Zeroizing<[u8; 16]>>, V2xError> {
    let z = shared_x(secret, &enc.v)?;
    let keys = kdf2(&z, p1);
    let t = mac1(&keys[16..], &enc.c);
    // Constant-time comparison of the tags.
    let diff = t
        .iter()
        .zip(enc.t.iter())
        .fold(0u8, |d, (a, b)| d | (a ^ b));
    if diff != 0 {
        return Ok(None);
    }
    let mut k = Zeroizing::new([0u8; 16]);
    for (i, b) in k.iter_mut().enumerate() {
        *b = enc.c[i] ^ keys[i];
    }
    Ok(Some(k))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p1_empty_is_sha256_of_nothing() {
        assert_eq!(P1_EMPTY, sha256(b""));
    }

    /// KDF2 known answer: the first block is SHA-256(Z || 00000001 || P1),
    /// computed here independently of `kdf2`'s loop.
    #[test]
    fn kdf2_blocks() {
        let z = [7u8; 32];
        let p1 = P1_EMPTY;
        let mut m = Vec::new();
        m.extend_from_slice(&z);
        m.extend_from_slice(&[0, 0, 0, 2]);
        m.extend_from_slice(&p1);
        let k = kdf2(&z, &p1);
        let mut m1 = z.to_vec();
        m1.extend_from_slice(&[0, 0, 0, 1]);
        m1.extend_from_slice(&p1);
        assert_eq!(k[..32], sha256(&m1));
        assert_eq!(k[32..], sha256(&m)[..16]);
    }
}
