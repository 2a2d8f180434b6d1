#!/usr/bin/env python3
"""An independent IEEE 1609.2 EncryptedData implementation (ECIES P-256 key
wrapping + AES-128-CCM), and the generator of testdata/encrypted-data.json.

Uses only Python `cryptography` (ECDH, AES-CCM), `hashlib`, `hmac` and
`asn1tools` (compiled from the published modules in $V2X_ASN1_DIR, default
<repo>/../shared/spec/v2x-asn1, for the COER encoding). It shares no code
with the Rust crate; it follows IEEE 1609.2-2016 clause 5.3.5:

* Z = x coordinate of the ECDH point (ephemeral secret x recipient key);
* K1 || K2 = KDF2/SHA-256 (IEEE 1363a): SHA-256(Z || counter32 || P1) for
  counter = 1, 2, ...; the first 48 octets, K1 = 16, K2 = 32;
* c = AES key XOR K1; t = HMAC-SHA-256(K2, c), first 16 octets;
* P1 = SHA-256(COER of the recipient certificate) for certRecipInfo,
  SHA-256(COER of the signed Ieee1609Dot2Data that carried the key) for
  signedDataRecipInfo, SHA-256(b"") for rekRecipInfo (the RecipientInfo
  definitions of IEEE 1609.2 as amended);
* the data: AES-128-CCM, 12-octet nonce, 16-octet tag appended.

Usage: ecies_vectors.py OUT.json   (writes the fixed vectors; deterministic)
independent.py imports decrypt() from here.
"""

import hashlib
import hmac
import json
import os
import sys

import asn1tools
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESCCM
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

MODULES = ["IEEE1609dot2BaseTypes.asn", "IEEE1609dot2.asn", "TS103097v131.asn"]
KINDS = ("certRecipInfo", "signedDataRecipInfo", "rekRecipInfo")
P1_EMPTY = hashlib.sha256(b"").digest()


def asn1_dir():
    d = os.environ.get("V2X_ASN1_DIR")
    if d:
        return d
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.dirname(os.path.dirname(here))
    return os.path.join(os.path.dirname(repo), "shared", "spec", "v2x-asn1")


def compile_spec():
    return asn1tools.compile_files([os.path.join(asn1_dir(), m) for m in MODULES], "oer")


def hashed_id8(b):
    return hashlib.sha256(b).digest()[-8:]


def kdf2_sha256(z, p1, length):
    out, counter = b"", 1
    while len(out) < length:
        out += hashlib.sha256(z + counter.to_bytes(4, "big") + p1).digest()
        counter += 1
    return out[:length]


def ecdh_x(private_key, public_key):
    return private_key.exchange(ec.ECDH(), public_key)


def point_to_asn1(pub):
    comp = pub.public_bytes(Encoding.X962, PublicFormat.CompressedPoint)
    return ("compressed-y-0" if comp[0] == 2 else "compressed-y-1", comp[1:])


def point_from_asn1(point):
    kind, value = point
    if kind == "compressed-y-0":
        enc = b"\x02" + value
    elif kind == "compressed-y-1":
        enc = b"\x03" + value
    elif kind == "uncompressedP256":
        enc = b"\x04" + value["x"] + value["y"]
    else:
        raise ValueError("point form %s" % kind)
    return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), enc)


def private_key(secret):
    return ec.derive_private_key(int.from_bytes(secret, "big"), ec.SECP256R1())


def response_key_id(spec, pub):
    """HashedId8 of the COER PublicEncryptionKey (rekRecipInfo recipientId)."""
    pek = {"supportedSymmAlg": "aes128Ccm", "publicKey": ("eciesNistP256", point_to_asn1(pub))}
    return hashed_id8(spec.encode("PublicEncryptionKey", pek))


def encrypt(spec, recipient_pub, recipient_id, kind, p1, plaintext, eph_secret, aes_key, nonce):
    """EncryptedData to one recipient, with the given ephemeral secret, AES
    key and nonce (deterministic, for vectors). Returns (coer, details)."""
    eph = private_key(eph_secret)
    z = ecdh_x(eph, recipient_pub)
    k = kdf2_sha256(z, p1, 48)
    k1, k2 = k[:16], k[16:]
    c = bytes(a ^ b for a, b in zip(aes_key, k1))
    t = hmac.new(k2, c, hashlib.sha256).digest()[:16]
    ct = AESCCM(aes_key, tag_length=16).encrypt(nonce, plaintext, None)
    value = {
        "recipients": [
            (
                kind,
                {
                    "recipientId": recipient_id,
                    "encKey": ("eciesNistP256", {"v": point_to_asn1(eph.public_key()), "c": c, "t": t}),
                },
            )
        ],
        "ciphertext": ("aes128ccm", {"nonce": nonce, "ccmCiphertext": ct}),
    }
    coer = spec.encode("EncryptedData", value)
    v = eph.public_key().public_bytes(Encoding.X962, PublicFormat.CompressedPoint)
    return coer, {"v": v, "c": c, "t": t}


def decrypt(spec, coer, recipient_secret, recipient_id, p1):
    """Decrypts an EncryptedData for the recipient with `recipient_id`.
    Returns (plaintext, kind). Raises ValueError on any failure."""
    data = spec.decode("EncryptedData", coer)
    if spec.encode("EncryptedData", data) != coer:
        raise ValueError("re-encoding with asn1tools differs (not canonical)")
    sym_kind, sym = data["ciphertext"]
    if sym_kind != "aes128ccm":
        raise ValueError("symmetric ciphertext %s" % sym_kind)
    priv = private_key(recipient_secret)
    for kind, info in data["recipients"]:
        if kind not in KINDS or info["recipientId"] != recipient_id:
            continue
        enc_kind, enc = info["encKey"]
        if enc_kind != "eciesNistP256":
            raise ValueError("encKey %s" % enc_kind)
        z = ecdh_x(priv, point_from_asn1(enc["v"]))
        k = kdf2_sha256(z, p1, 48)
        t = hmac.new(k[16:], enc["c"], hashlib.sha256).digest()[:16]
        if not hmac.compare_digest(t, enc["t"]):
            raise ValueError("ECIES tag does not verify")
        aes_key = bytes(a ^ b for a, b in zip(enc["c"], k[:16]))
        return AESCCM(aes_key, tag_length=16).decrypt(sym["nonce"], sym["ccmCiphertext"], None), kind
    raise ValueError("no recipient with id %s" % recipient_id.hex())


def main(out):
    spec = compile_spec()
    here = os.path.dirname(os.path.abspath(__file__))
    root = bytes.fromhex(open(os.path.join(here, "..", "testdata", "root.coer.hex")).read().strip())
    vectors = []

    # 1. rekRecipInfo: a pseudonym CA's response to the key in a request.
    r = bytes.fromhex("c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721")
    pub = private_key(r).public_key()
    rid = response_key_id(spec, pub)
    vectors.append(
        dict(
            name="rekRecipInfo, P1 = SHA-256(\"\")",
            kind="rekRecipInfo",
            recipient_secret=r,
            recipient_id=rid,
            p1=P1_EMPTY,
            plaintext=b"authorization response: 3 pseudonym certificates follow",
            eph_secret=bytes.fromhex("a6e3c57dd01abe90086538398355dd4c3b17aa873382b0f24d6129493d8aad60"),
            aes_key=bytes.fromhex("000102030405060708090a0b0c0d0e0f"),
            nonce=bytes.fromhex("101112131415161718191a1b"),
            note="recipientId = HashedId8(COER PublicEncryptionKey {aes128Ccm, eciesNistP256 compressed})",
        )
    )

    # 2. certRecipInfo to the published test root (testdata/root.coer.hex):
    # recipientId its HashedId8, P1 SHA-256 of its COER. (That root carries
    # no encryptionKey; the recipient key here is a separate test key.)
    r = bytes.fromhex("0f56db78ca460b055c500064824bed999a25aaf48ebb519ac201537b85479813")
    vectors.append(
        dict(
            name="certRecipInfo, P1 = SHA-256(certificate)",
            kind="certRecipInfo",
            recipient_secret=r,
            recipient_id=hashed_id8(root),
            p1=hashlib.sha256(root).digest(),
            plaintext=bytes(range(200)),
            eph_secret=bytes.fromhex("e4b3b3eb4b7c6bd1c5e3b0ef1e30e2c1a7b5d1c9e0f4a3b2c1d0e9f8a7b6c5d4"),
            aes_key=bytes.fromhex("f0e1d2c3b4a5968778695a4b3c2d1e0f"),
            nonce=bytes.fromhex("0a0b0c0d0e0f101112131415"),
            note="the certificate is testdata/root.coer.hex",
        )
    )

    # 3. Key material of the public IEEE 1609.2 ECIES test-vector scripts
    # ("Test vectors for ECIES as per 1609.2 v3": recipient r1/R1, AES key
    # k1, P1 p11, ephemeral v). They publish inputs only, no expected V/C/T;
    # the outputs here are computed by this script.
    r1 = bytes.fromhex("060E41440A4E35154CA0EFCB52412145836AD032833E6BC781E533BF14851085")
    pub1 = private_key(r1).public_key().public_numbers()
    assert pub1.x == int("8C5E20FE31935F6FA682A1F6D46E4468534FFEA1A698B14B0B12513EED8DEB11", 16)
    assert pub1.y == int("1270FEC2427E6A154DFCAE3368584396C8251A04E2AE7D87B016FF65D22D6F9E", 16)
    vectors.append(
        dict(
            name="signedDataRecipInfo, key material of the public 1609.2 ECIES vector scripts",
            kind="signedDataRecipInfo",
            recipient_secret=r1,
            recipient_id=bytes.fromhex("0102030405060708"),
            p1=bytes.fromhex("A6B7B52554B4203F7E3ACFDB3A3ED8674EE086CE5906A7CAC2F8A398306D3BE9"),
            plaintext=b"",
            eph_secret=bytes.fromhex("1384C31D6982D52BCA3BED8A7E60F52FECDAB44E5C0EA166815A8159E09FFB42"),
            aes_key=bytes.fromhex("9169155B08B07674CBADF75FB46A7B0D"),
            nonce=bytes.fromhex("000000000000000000000001"),
            note="r1, R1, k1, P1 and v from the 'Test vectors for ECIES as per 1609.2 v3' scripts "
            "(public GitHub; inputs only). P1 stands for the hash of the signed data that carried "
            "the key. Empty plaintext: ccmCiphertext is the bare tag.",
        )
    )

    out_vectors = []
    for v in vectors:
        pub = private_key(v["recipient_secret"]).public_key()
        coer, d = encrypt(
            spec, pub, v["recipient_id"], v["kind"], v["p1"], v["plaintext"],
            v["eph_secret"], v["aes_key"], v["nonce"],
        )
        pt, kind = decrypt(spec, coer, v["recipient_secret"], v["recipient_id"], v["p1"])
        assert pt == v["plaintext"] and kind == v["kind"]
        rec = {k: (x.hex() if isinstance(x, bytes) else x) for k, x in v.items()}
        rec.update({k: x.hex() for k, x in d.items()})
        rec["recipient_public"] = pub.public_bytes(Encoding.X962, PublicFormat.CompressedPoint).hex()
        rec["encrypted_data"] = coer.hex()
        out_vectors.append(rec)
    doc = {
        "description": "IEEE 1609.2 EncryptedData (ECIES P-256 + AES-128-CCM) test vectors, "
        "produced by v2x/tests/ecies_vectors.py (Python cryptography, hashlib, hmac, asn1tools), "
        "independently of the Rust code. Secrets are test-only.",
        "vectors": out_vectors,
    }
    with open(out, "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main(sys.argv[1])
