#!/usr/bin/env python3
"""An independent IEEE 1609.2.1 end-entity (vehicle) client for trustca.

Built only from the published ASN.1 (IEEE 1609.2-2016 base modules as printed
in ETSI TS 103 097 v1.3.1, IEEE 1609.2.1-2020 modules, IEEE 1609.2 CRL
modules; ../shared/spec/v2x-asn1, compiled with asn1tools' OER codec through
that folder's compile_check.load_spec) and the protocol description
docs/v2x-1609dot2dot1.md. No trustca code was read to write it. Dependencies:
Python stdlib, asn1tools, cryptography, requests; ECIES comes from
v2x/tests/ecies_vectors.py (itself independent of the Rust code).

Interface (stable; one JSON object on stdout; on failure exit status 1 and
one line on stderr that starts with "dot1_client:"):

  dot1_client.py selftest
      Offline checks: CAMP butterfly-expansion vectors (bfkeyexp.txt),
      OpenSCMS COER vectors (decode + byte-identical re-encode), the IEEE
      1609.2 signature rule on OpenSCMS' signed messages (notably the
      SignedCertificateRequest in DecryptedEeRaCertRequestSpdu.dat), ECIES
      round trips and the COER round trip of every message this client builds.
      JSON: {"ok", "checks": {name: {...}}, "failures": [...]}.

  dot1_client.py run --eca-url URL --ra-url URL --ca-pem PEM
                     --device-cert PEM --device-key PEM --root ROOT.oer
                     [--periods N] [--period-hours H] [--timeout S]
                     [--state DIR] [--psid P ...]
      The vehicle journey: enrolment (mutual TLS), RA certificates, unified
      butterfly request for N ticket periods, downloads (retrying 503 with
      Retry-After until --timeout seconds), full ticket checks, CRL.
      With --state DIR it writes DIR/ec.oer (enrolment certificate COER),
      DIR/ec-key.pem (its PKCS#8 private key) and DIR/certificates.oer (the
      RA's SequenceOfCertificate) for `attack`.
      JSON: {"ok", "enrolment", "certificates", "requestHash", "firstI",
      "periods": [{"i", "tickets", ...}], "tickets", "crl", "failures"}.

  dot1_client.py attack --ra-url URL --ca-pem PEM --root ROOT.oer
                        (--state DIR | --enrolment-cert EC.oer --enrolment-key KEY.pem)
                        --case CASE [--start-offset-hours H]
      Sends one bad EeRaCertRequestSpdu to
      /v2x/provision-pseudonym-certificate-batch and prints
      {"case", "status", "body"} (replay: also "statuses": [first, second]).
      Cases: truncated, non-canonical, wrong-signer, unknown-ec, replay,
      wrong-recipient, wrong-recipient-key. The requested validity starts
      --start-offset-hours (default 20 weeks) from now, so that a period
      already provisioned by `run` does not mask the rejection under test.
      Exit status 0 whenever an HTTP answer was received (the caller judges
      the status), 1 on a local error or a connection failure.

Selftest findings (stable facts about the vectors, reported in its JSON):
the SignedCertificateRequest in OpenSCMS' DecryptedEeRaCertRequestSpdu.dat
verifies under the IEEE 1609.2 rule H(H(tbsRequest) || H(signer cert)); its
signer is an implicit enrolment certificate whose key reconstructs only with
e = H(H(tbsCert) || H(ECA cert)) mod n (not SEC 4's leftmost 255 bits); the
ECA certificate comes from OpenSCMS' own repository (see OPENSCMS_ECA).
OpenSCMS' CertificateManagementInfoStatusSpdu has no generationTime; its
composite CRL's signature verifies under none of the rules tried.

dot1_client_mock.py (beside this file) drives `run` and every `attack` case
against an in-process mock ECA/RA over plain HTTP.

Rules used (the comments at each function cite the clause / ASN.1 type):
Time32 = TAI seconds since 2004-01-01 (Unix - 1072915200 + 5 leap seconds),
Time64 = the same in microseconds; HashedId8 = last 8 octets of SHA-256;
signatures: ECDSA P-256 over SHA-256(SHA-256(tbs) || SHA-256(signer cert or
"")), rSig x-only (IEEE 1609.2-2016 5.3.1); ECIES as in ecies_vectors.py
(IEEE 1609.2 5.3.5); butterfly expansion as in IEEE 1609.2.1 9.3 / CAMP.
"""

import argparse
import base64
import glob
import hashlib
import io
import json
import os
import secrets
import sys
import time
import zipfile

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    Prehashed, decode_dss_signature, encode_dss_signature)
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "v2x", "tests"))
import ecies_vectors  # noqa: E402  (independent IEEE 1609.2 ECIES)

# --------------------------------------------------------------------------
# Constants: published standards only.
# --------------------------------------------------------------------------

# NIST P-256 (FIPS 186-4 D.1.2.3).
P256_P = 2**256 - 2**224 + 2**192 + 2**96 - 1
P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
P256_B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
P256_G = (0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296,
          0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5)

SECURITY_MGMT_PSID = 35      # IEEE 1609.2.1 protocol.asn SecurityMgmtPsid
TIME32_EPOCH_UNIX = 1072915200  # 2004-01-01T00:00:00Z
LEAP_SECONDS_SINCE_2004 = 5     # end 2005, end 2008, mid 2012, mid 2015, end 2016
SCMS_ROLES = {"eca": "84", "aca": "85", "ra": "8b"}  # ScmsSsp CHOICE tags (doc)

# Resource paths (docs/v2x-1609dot2dot1.md).
PATH_ENROL = "/v2x/eca/enrolment-certificate"
PATH_CERTS = "/v2x/certificates"
PATH_CRL = "/v2x/crl"
PATH_BATCH = "/v2x/provision-pseudonym-certificate-batch"
PATH_DOWNLOAD = "/v2x/download"
OCTETS = {"Content-Type": "application/octet-stream"}


class Fail(Exception):
    """A check failed; the message says which and why."""


# --------------------------------------------------------------------------
# ASN.1 (COER) codec
# --------------------------------------------------------------------------

def asn1_dir():
    """The published modules: $V2X_ASN1_DIR, default <repo>/../shared/spec/v2x-asn1."""
    return os.environ.get("V2X_ASN1_DIR") or os.path.join(
        os.path.dirname(REPO), "shared", "spec", "v2x-asn1")


def vector_dir():
    """OpenSCMS COER vectors (see their README.md)."""
    return os.environ.get("V2X_OPENSCMS_DIR") or os.path.join(
        asn1_dir(), "..", "v2x-vectors", "openscms")



def _load_spec_cached(compile_check, files):
    """compile_check.load_spec(files)[0], kept between runs when
    V2X_ASN1_CACHE names a directory: parsing the 1609.2.1 modules takes
    about 1.5 s of CPU and CI runs this client about twenty times. The key
    is the SHA-256 of every module and of compile_check.py itself, so an
    edited module or workaround compiles afresh; the file is written under
    a temporary name and renamed, so concurrent runs never read half of it."""
    import pickle
    cache_dir = os.environ.get("V2X_ASN1_CACHE")
    if not cache_dir:
        return compile_check.load_spec(files)[0]
    digest = hashlib.sha256()
    for path in list(files) + [compile_check.__file__]:
        with open(path, "rb") as f:
            digest.update(hashlib.sha256(f.read()).digest())
    path = os.path.join(cache_dir, "dot1-spec-%s.pickle" % digest.hexdigest())
    try:
        with open(path, "rb") as f:
            return pickle.load(f)
    except (OSError, EOFError, pickle.UnpicklingError):
        pass
    spec = compile_check.load_spec(files)[0]
    os.makedirs(cache_dir, exist_ok=True)
    tmp = "%s.%d.tmp" % (path, os.getpid())
    with open(tmp, "wb") as f:
        pickle.dump(spec, f, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(tmp, path)
    return spec

class Codec:
    """asn1tools OER codec over IEEE1609dot2BaseTypes, IEEE1609dot2 and the
    IEEE 1609.2.1 / 1609.2 CRL modules, loaded with compile_check.load_spec
    (the shared workaround for the open types asn1tools cannot compile).

    Names that exist in two modules (ToBeSignedCertificate, Signature,
    PublicVerificationKey) are taken from IEEE1609dot2 / BaseTypes, the
    definitions Certificate uses; they encode identically for P-256."""

    def __init__(self):
        d = asn1_dir()
        sys.path.insert(0, d)
        import compile_check  # noqa: E402  (shared helper, not trustca code)
        files = sorted(glob.glob(os.path.join(d, "IEEE1609dot2*.asn")))
        files += sorted(glob.glob(os.path.join(d, "ieee1609dot2dot1", "*.asn")))
        self.spec = _load_spec_cached(compile_check, files)
        self.base = self.spec.modules["IEEE1609dot2"]
        Codec.shared = self

    def _type(self, name):
        if name in self.spec.types:
            return self.spec.types[name]
        return self.base[name]

    def enc(self, name, value):
        return self._type(name).encode(value)

    def dec(self, name, data, canonical=True):
        """Decodes `data`; with canonical, requires that asn1tools' COER
        re-encoding is byte-identical (COER: IEEE 1609.2 6.1, X.696 canonical)."""
        try:
            value = self._type(name).decode(data)
        except Exception as e:  # asn1tools raises several error types
            raise Fail("%s does not decode: %s" % (name, e))
        if canonical and self.enc(name, value) != data:
            raise Fail("%s: re-encoding differs (not canonical COER or trailing data)" % name)
        return value


# --------------------------------------------------------------------------
# Hashes, time
# --------------------------------------------------------------------------

def sha256(b):
    return hashlib.sha256(b).digest()


def hashed_id8(b):
    """HashedId8: the low-order 8 octets of SHA-256 (IEEE 1609.2 6.3.6)."""
    return sha256(b)[-8:]


def time32(unix=None):
    """Time32 (IEEE 1609.2 6.3.11): TAI seconds since 2004-01-01 00:00:00 UTC."""
    unix = time.time() if unix is None else unix
    return int(unix) - TIME32_EPOCH_UNIX + LEAP_SECONDS_SINCE_2004


def time64(unix=None):
    """Time64 (IEEE 1609.2 6.3.12): TAI microseconds since 2004-01-01."""
    unix = time.time() if unix is None else unix
    return int((unix - TIME32_EPOCH_UNIX + LEAP_SECONDS_SINCE_2004) * 1_000_000)


def duration_seconds(duration):
    """Seconds of an IEEE 1609.2 Duration CHOICE (years = 31556952 s, 6.3.14)."""
    unit, v = duration
    mult = {"microseconds": 1e-6, "milliseconds": 1e-3, "seconds": 1, "minutes": 60,
            "hours": 3600, "sixtyHours": 216000, "years": 31556952}[unit]
    return int(v * mult)


# --------------------------------------------------------------------------
# P-256 point arithmetic (affine; only for butterfly / implicit certificates)
# --------------------------------------------------------------------------

def point_add(p1, p2):
    """Affine point addition on P-256 (None = point at infinity)."""
    if p1 is None:
        return p2
    if p2 is None:
        return p1
    (x1, y1), (x2, y2) = p1, p2
    if x1 == x2 and (y1 + y2) % P256_P == 0:
        return None
    if p1 == p2:
        lam = (3 * x1 * x1 - 3) * pow(2 * y1, -1, P256_P) % P256_P
    else:
        lam = (y2 - y1) * pow(x2 - x1, -1, P256_P) % P256_P
    x3 = (lam * lam - x1 - x2) % P256_P
    return x3, (lam * (x1 - x3) - y1) % P256_P


def point_mul(k, pt):
    """Scalar multiplication, double-and-add."""
    acc, k = None, k % P256_N
    while k:
        if k & 1:
            acc = point_add(acc, pt)
        pt = point_add(pt, pt)
        k >>= 1
    return acc


def point_from_asn1(point):
    """EccP256CurvePoint (IEEE 1609.2 6.3.23) -> (x, y); x-only is refused."""
    kind, v = point
    if kind == "uncompressedP256":
        return int.from_bytes(v["x"], "big"), int.from_bytes(v["y"], "big")
    if kind not in ("compressed-y-0", "compressed-y-1"):
        raise Fail("curve point form %s cannot be a public key" % kind)
    x = int.from_bytes(v, "big")
    y = pow((x * x * x - 3 * x + P256_B) % P256_P, (P256_P + 1) // 4, P256_P)
    if (y * y - (x * x * x - 3 * x + P256_B)) % P256_P:
        raise Fail("compressed point is not on P-256")
    if y & 1 != (kind == "compressed-y-1"):
        y = P256_P - y
    return x, y


def point_to_asn1(pt):
    """(x, y) -> EccP256CurvePoint in compressed form."""
    x, y = pt
    return ("compressed-y-1" if y & 1 else "compressed-y-0", x.to_bytes(32, "big"))


def to_crypto_pub(pt):
    return ec.EllipticCurvePublicNumbers(pt[0], pt[1], ec.SECP256R1()).public_key()


def private_to_point(d):
    nums = ec.derive_private_key(d % P256_N, ec.SECP256R1()).public_key().public_numbers()
    return nums.x, nums.y


def new_private():
    """A fresh random P-256 private scalar."""
    return ec.generate_private_key(ec.SECP256R1()).private_numbers().private_value


# --------------------------------------------------------------------------
# Signatures (IEEE 1609.2-2016 5.3.1)
# --------------------------------------------------------------------------

def data_hash(tbs, signer=b""):
    """IEEE 1609.2 5.3.1.2.2: H(H(data input) || H(signer identifier input));
    the signer input is the COER of the signing certificate, or the empty
    string when the signer is `self`."""
    return sha256(sha256(tbs) + sha256(signer))


def sign(d, tbs, signer=b""):
    """ECDSA P-256 over data_hash; returns the Signature CHOICE value with
    rSig x-only (EcdsaP256Signature, IEEE 1609.2 6.3.29)."""
    key = ec.derive_private_key(d, ec.SECP256R1())
    der = key.sign(data_hash(tbs, signer), ec.ECDSA(Prehashed(hashes.SHA256())))
    r, s = decode_dss_signature(der)
    return ("ecdsaNistP256Signature",
            {"rSig": ("x-only", r.to_bytes(32, "big")), "sSig": s.to_bytes(32, "big")})


def ecdsa_verify_digest(pub_pt, signature, digest):
    """True if the Signature value verifies over the 32-octet digest."""
    kind, sig = signature
    if kind != "ecdsaNistP256Signature":
        raise Fail("signature algorithm %s" % kind)
    rkind, rv = sig["rSig"]
    if rkind == "x-only":
        r = int.from_bytes(rv, "big")
    elif rkind in ("compressed-y-0", "compressed-y-1"):
        r = int.from_bytes(rv, "big")
    elif rkind == "uncompressedP256":
        r = int.from_bytes(rv["x"], "big")
    else:
        raise Fail("rSig form %s" % rkind)
    der = encode_dss_signature(r % P256_N, int.from_bytes(sig["sSig"], "big"))
    try:
        to_crypto_pub(pub_pt).verify(der, digest, ec.ECDSA(Prehashed(hashes.SHA256())))
        return True
    except InvalidSignature:
        return False


def verify(pub_pt, signature, tbs, signer=b""):
    return ecdsa_verify_digest(pub_pt, signature, data_hash(tbs, signer))


# --------------------------------------------------------------------------
# Certificates (IEEE 1609.2 6.4)
# --------------------------------------------------------------------------

class Cert:
    """A decoded certificate with its COER and HashedId8."""

    def __init__(self, codec, raw):
        self.raw = raw
        self.value = codec.dec("Certificate", raw)
        self.tbs_raw = codec.enc("ToBeSignedCertificate", self.value["toBeSigned"])
        self.id8 = hashed_id8(raw)
        self.tbs = self.value["toBeSigned"]

    @staticmethod
    def tbs_of(raw):
        """COER of the toBeSigned of a COER certificate (re-encoded)."""
        return Cert(Codec.shared, raw).tbs_raw

    def explicit_key(self):
        kind, key = self.tbs["verifyKeyIndicator"]
        if kind != "verificationKey" or key[0] != "ecdsaNistP256":
            raise Fail("certificate %s: no explicit ecdsaNistP256 key" % self.id8.hex())
        return point_from_asn1(key[1])

    def scms_role(self, codec):
        """The ScmsSsp CHOICE (eca, aca, ra, ...) granted to PSID 35, or None."""
        for p in self.tbs.get("appPermissions") or []:
            if p["psid"] == SECURITY_MGMT_PSID and p.get("ssp", ("", b""))[0] == "opaque":
                try:
                    return codec.dec("ScmsSsp", p["ssp"][1])[0]
                except Fail:
                    return None
        return None

    def covers(self, t32):
        v = self.tbs["validityPeriod"]
        return v["start"] <= t32 <= v["start"] + duration_seconds(v["duration"])


def implicit_e(cert, issuer_raw, mode="sec4"):
    """IEEE 1609.2 5.3.2 / SEC 4 3.5: e = Hn(H(H(tbsCert) || H(issuer cert)));
    SEC 4's Hn keeps the leftmost floor(log2 n) = 255 bits (>> 1); mode
    "modn" is the plausible alternative e = hash mod n."""
    h = int.from_bytes(data_hash(cert.tbs_raw, issuer_raw), "big")
    return h >> 1 if mode == "sec4" else h % P256_N


def cert_key(cert, issuer=None, mode="sec4"):
    """The verification key of `cert`; implicit certificates are
    reconstructed as Q_U = e * P_U + Q_CA (SEC 4 3.5)."""
    kind, key = cert.tbs["verifyKeyIndicator"]
    if kind == "verificationKey":
        return cert.explicit_key()
    if issuer is None:
        raise Fail("implicit certificate without its issuer")
    pu = point_from_asn1(key)
    return point_add(point_mul(implicit_e(cert, issuer.raw, mode), pu), issuer.explicit_key())


def verify_cert(cert, issuer=None):
    """Checks `cert`'s signature: issuer `self` (root; signer input empty) or
    sha256AndDigest = HashedId8(issuer COER), signature by the issuer's key over
    H(H(tbs) || H(issuer COER)). Raises Fail."""
    kind, ident = cert.value["issuer"]
    if cert.value["type"] != "explicit" or "signature" not in cert.value:
        raise Fail("certificate %s is not explicit" % cert.id8.hex())
    if kind == "self":
        if issuer is not None:
            raise Fail("certificate %s is self-signed, expected issued" % cert.id8.hex())
        ok = verify(cert.explicit_key(), cert.value["signature"], cert.tbs_raw, b"")
    elif kind == "sha256AndDigest":
        if issuer is None or ident != issuer.id8:
            raise Fail("certificate %s: issuer %s is not %s" % (
                cert.id8.hex(), ident.hex(), issuer.id8.hex() if issuer else "given"))
        ok = verify(issuer.explicit_key(), cert.value["signature"], cert.tbs_raw, issuer.raw)
    else:
        raise Fail("issuer choice %s" % kind)
    if not ok:
        raise Fail("certificate %s: signature does not verify" % cert.id8.hex())


def make_cert(codec, tbs, issuer_d, issuer=None):
    """Builds an explicit certificate (version 3) signed by issuer_d; issuer
    None means self-signed. Used for the attack cases only."""
    tbs_raw = codec.enc("ToBeSignedCertificate", tbs)
    signer = issuer.raw if issuer else b""
    value = {"version": 3, "type": "explicit",
             "issuer": ("sha256AndDigest", issuer.id8) if issuer else ("self", "sha256"),
             "toBeSigned": tbs, "signature": sign(issuer_d, tbs_raw, signer)}
    return Cert(codec, codec.enc("Certificate", value))


# --------------------------------------------------------------------------
# Butterfly key expansion (IEEE 1609.2.1 9.3; CAMP bfkeyexp)
# --------------------------------------------------------------------------

def x_cert(i, j):
    """Expansion input for signing / unified keys: 0^32 || i || j || 0^32."""
    return (i << 64) | (j << 32)


def x_enc(i, j):
    """Expansion input for encryption keys (original butterfly): 1^32 || i || j || 0^32."""
    return (0xFFFFFFFF << 96) | (i << 64) | (j << 32)


def f_k(k, x):
    """f_k(x) = (AES_k(x+1) ^ (x+1)) || (AES_k(x+2) ^ (x+2)) || (AES_k(x+3) ^ (x+3))
    as a 384-bit integer, mod n."""
    enc = Cipher(algorithms.AES(k), modes.ECB()).encryptor()
    out = 0
    for t in (1, 2, 3):
        xb = ((x + t) % 2**128).to_bytes(16, "big")
        block = int.from_bytes(enc.update(xb), "big") ^ int.from_bytes(xb, "big")
        out = (out << 128) | block
    return out % P256_N


def cocoon_private(a, k, i, j):
    """Unified butterfly cocoon private key b_ij = a + f_k(x_ij) mod n."""
    return (a + f_k(k, x_cert(i, j))) % P256_N


def cocoon_public(A, k, i, j):
    """Cocoon public key B_ij = A + f_k(x_ij) * G (what the RA computes)."""
    return point_add(A, point_mul(f_k(k, x_cert(i, j)), P256_G))


def response_key_id(codec, pt):
    """rekRecipInfo recipientId: HashedId8 of the COER PublicEncryptionKey
    {aes128Ccm, eciesNistP256 compressed} of the key (doc, Conventions)."""
    pek = {"supportedSymmAlg": "aes128Ccm", "publicKey": ("eciesNistP256", point_to_asn1(pt))}
    return hashed_id8(codec.enc("PublicEncryptionKey", pek))


# --------------------------------------------------------------------------
# SPDU construction (IEEE 1609.2.1 protocol.asn parameterized types)
# --------------------------------------------------------------------------

def scms_pdu(codec, interface, choice, value):
    """COER ScmsPdu {version 2, content interface: choice value}."""
    return codec.enc("ScmsPdu", {"version": 2, "content": (interface, (choice, value))})


def dot2data(codec, choice, value):
    """COER Ieee1609Dot2Data {protocolVersion 3, content}."""
    return codec.enc("Ieee1609Dot2Data", {"protocolVersion": 3, "content": (choice, value)})


def signed_spdu(codec, pdu, d, cert, now=None):
    """Ieee1609Dot2Data-Signed {Tbs, SecurityMgmtPsid}: signedData, hashId
    sha256, payload data = unsecuredData(pdu), headerInfo psid 35 +
    generationTime only, signer certificate [cert]."""
    tbs = {"payload": {"data": {"protocolVersion": 3, "content": ("unsecuredData", pdu)}},
           "headerInfo": {"psid": SECURITY_MGMT_PSID, "generationTime": time64(now)}}
    tbs_raw = codec.enc("ToBeSignedData", tbs)
    sd = {"hashId": "sha256", "tbsData": tbs, "signer": ("certificate", [codec.dec("Certificate", cert.raw)]),
          "signature": sign(d, tbs_raw, cert.raw)}
    return dot2data(codec, "signedData", sd)


def signed_cert_request(codec, tbs_request, d, cert=None):
    """SignedCertificateRequest (protocol.asn) over the COER ScmsPdu tbsRequest,
    signer self (cert None) or certificate [cert]; returned wrapped as
    Ieee1609Dot2Data signedCertificateRequest (Ieee1609Dot2Data-SignedCertRequest)."""
    signer = ("certificate", [codec.dec("Certificate", cert.raw)]) if cert else ("self", None)
    scr = {"hashAlgorithmId": "sha256",
           "tbsRequest": codec.dec("ScmsPdu", tbs_request),
           "signer": signer,
           "signature": sign(d, tbs_request, cert.raw if cert else b"")}
    return dot2data(codec, "signedCertificateRequest", codec.enc("SignedCertificateRequest", scr))


def encrypt_to(codec, plaintext, pub_pt, recipient_id, p1, kind="certRecipInfo"):
    """Ieee1609Dot2Data-Encrypted {Tbe}: ECIES P-256 + AES-128-CCM to one
    recipient (IEEE 1609.2 5.3.5, 6.3.30 ff.); the plaintext is Tbe's COER."""
    eph = new_private().to_bytes(32, "big")
    coer, _ = ecies_vectors.encrypt(codec.spec, to_crypto_pub(pub_pt), recipient_id, kind, p1,
                                    plaintext, eph, secrets.token_bytes(16), secrets.token_bytes(12))
    return dot2data(codec, "encryptedData", codec.dec("EncryptedData", coer))


def encrypt_to_cert(codec, plaintext, cert):
    """certRecipInfo to `cert`'s encryptionKey: recipient id = HashedId8(cert),
    P1 = SHA-256(cert COER) (doc, Conventions)."""
    ek = cert.tbs.get("encryptionKey")
    if not ek or ek["publicKey"][0] != "eciesNistP256" or ek["supportedSymmAlg"] != "aes128Ccm":
        raise Fail("certificate %s has no eciesNistP256/aes128Ccm encryptionKey" % cert.id8.hex())
    return encrypt_to(codec, plaintext, point_from_asn1(ek["publicKey"][1]), cert.id8, sha256(cert.raw))


def tbs_cert_request(key_pt, validity, app_psids=None, cert_request_psids=None):
    """ToBeSignedCertificate of a request: id none, cracaId 000000, crlSeries 0
    (the constraints of EeEcaCertRequest / EeRaCertRequest), verification key."""
    tbs = {"id": ("none", None), "cracaId": b"\x00\x00\x00", "crlSeries": 0,
           "validityPeriod": validity,
           "verifyKeyIndicator": ("verificationKey", ("ecdsaNistP256", point_to_asn1(key_pt)))}
    if app_psids is not None:
        tbs["appPermissions"] = [{"psid": p} for p in app_psids]
    if cert_request_psids is not None:
        tbs["certRequestPermissions"] = [{
            "subjectPermissions": ("explicit", [{"psid": p} for p in cert_request_psids]),
            "minChainLength": 1, "chainLengthRange": 0, "eeType": (b"\x80", 8)}]
    return tbs


def ee_eca_request(codec, d, now=None):
    """EeEcaCertRequestSpdu (eca-ee.asn EeEcaCertRequest, signer self)."""
    pt = private_to_point(d)
    req = {"version": 2, "generationTime": time32(now), "type": "explicit",
           "tbsCert": tbs_cert_request(pt, {"start": time32(now), "duration": ("years", 1)},
                                       cert_request_psids=[SECURITY_MGMT_PSID])}
    return signed_cert_request(codec, scms_pdu(codec, "eca-ee", "eeEcaCertRequest", req), d)


def ee_ra_request(codec, A, k, ec_cert, ec_d, ra_cert, psids, start, hours, now=None):
    """EeRaCertRequestSpdu (EeRa1609Dot2AuthenticatedCertRequestSpdu):
    encrypted to the RA (certRecipInfo) Ieee1609Dot2Data signedCertificateRequest
    with signer [enrolment cert], tbsRequest eeRaCertRequest with the
    caterpillar key A and additionalParams unified aes128 k (1609.2.1 9.3)."""
    req = {"version": 2, "generationTime": time32(now), "type": "explicit",
           "tbsCert": tbs_cert_request(A, {"start": start, "duration": ("hours", hours)}, app_psids=psids),
           "additionalParams": ("unified", ("aes128", k))}
    inner = signed_cert_request(codec, scms_pdu(codec, "ee-ra", "eeRaCertRequest", req), ec_d, ec_cert)
    return encrypt_to_cert(codec, inner, ra_cert), inner


def download_request(codec, filename, ec_cert, ec_d, ra_cert, now=None):
    """EeRaDownloadRequestSpdu: Ieee1609Dot2Data-SignedEncrypted, i.e. encrypted
    to the RA, the plaintext a signed SPDU (signer: enrolment certificate) of
    ScmsPdu ee-ra eeRaDownloadRequest {generationTime, filename}."""
    pdu = scms_pdu(codec, "ee-ra", "eeRaDownloadRequest",
                   {"generationTime": time32(now), "filename": filename})
    return encrypt_to_cert(codec, signed_spdu(codec, pdu, ec_d, ec_cert, now), ra_cert)


# --------------------------------------------------------------------------
# SPDU parsing / verification
# --------------------------------------------------------------------------

def open_signed_spdu(codec, raw, expect_signer=None, strict_header=True):
    """Checks an Ieee1609Dot2Data-Signed {Tbs, SecurityMgmtPsid}: canonical
    COER, signedData, hashId sha256, psid 35, generationTime present and no
    other header field (unless not strict_header), signer certificate with
    exactly one certificate (equal to expect_signer when given), signature by
    that certificate. Returns (payload bytes of unsecuredData, signer Cert)."""
    data = codec.dec("Ieee1609Dot2Data", raw)
    if data["protocolVersion"] != 3 or data["content"][0] != "signedData":
        raise Fail("not a signedData Ieee1609Dot2Data")
    sd = data["content"][1]
    hi = sd["tbsData"]["headerInfo"]
    if sd["hashId"] != "sha256":
        raise Fail("hashId %s" % sd["hashId"])
    if hi["psid"] != SECURITY_MGMT_PSID or (strict_header and (
            "generationTime" not in hi or set(hi) - {"psid", "generationTime"})):
        raise Fail("headerInfo %r is not psid 35 + generationTime" % sorted(hi))
    kind, certs = sd["signer"]
    if kind != "certificate" or len(certs) != 1:
        raise Fail("signer is %s, expected one certificate" % kind)
    signer = Cert(codec, codec.enc("Certificate", certs[0]))
    if expect_signer is not None and signer.raw != expect_signer.raw:
        raise Fail("signed by %s, expected %s" % (signer.id8.hex(), expect_signer.id8.hex()))
    tbs_raw = codec.enc("ToBeSignedData", sd["tbsData"])
    if not verify(signer.explicit_key(), sd["signature"], tbs_raw, signer.raw):
        raise Fail("SignedData signature by %s does not verify" % signer.id8.hex())
    inner = sd["tbsData"]["payload"].get("data")
    if not inner or inner["content"][0] != "unsecuredData":
        raise Fail("payload is not unsecuredData")
    return inner["content"][1], signer


def scms_content(codec, raw, interface, choice):
    """Decodes a COER ScmsPdu and returns content interface/choice's value."""
    pdu = codec.dec("ScmsPdu", raw)
    if pdu["version"] != 2:
        raise Fail("ScmsPdu version %s" % pdu["version"])
    iface, (ch, value) = pdu["content"]
    if (iface, ch) != (interface, choice):
        raise Fail("ScmsPdu is %s/%s, expected %s/%s" % (iface, ch, interface, choice))
    return value


# --------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------

def http():
    import requests  # imported late: selftest needs no network stack
    return requests


def expect_ok(resp, what):
    if resp.status_code != 200:
        raise Fail("%s: HTTP %d %s" % (what, resp.status_code, resp.text[:200].strip()))
    return resp.content


def fetch_certificates(codec, ra_url, ca_pem, root):
    """GET /v2x/certificates: SequenceOfCertificate [root, ECA, ACA, RA, CRL
    signer]; each verifies under the root (issuer = the root, or a certificate
    earlier in the list that does). Returns (dict role -> Cert, raw, notes)."""
    raw = expect_ok(http().get(ra_url + PATH_CERTS, verify=ca_pem, timeout=30), "GET " + PATH_CERTS)
    certs = [Cert(codec, codec.enc("Certificate", c)) for c in codec.dec("SequenceOfCertificate", raw)]
    if len(certs) != 5:
        raise Fail("%s: %d certificates, expected 5" % (PATH_CERTS, len(certs)))
    if certs[0].raw != root.raw:
        raise Fail("%s: first certificate is not the trusted root" % PATH_CERTS)
    known = {root.id8: root}
    for c in certs[1:]:
        kind, ident = c.value["issuer"]
        if kind != "sha256AndDigest" or ident not in known:
            raise Fail("certificate %s does not chain to the root" % c.id8.hex())
        verify_cert(c, known[ident])
        known[c.id8] = c
    roles = dict(zip(["root", "eca", "aca", "ra", "crl"], certs))
    for role in ("eca", "aca", "ra"):
        got = roles[role].scms_role(codec)
        if got != role:
            raise Fail("certificate %d (%s) has ScmsSsp %s" % (list(roles).index(role), role, got))
    return roles, raw


# --------------------------------------------------------------------------
# run: the vehicle journey
# --------------------------------------------------------------------------

# Base URL of the RA and the TLS CA bundle, set by cmd_run / cmd_attack.
ROLE_URL = {}


def enrol(codec, args, root):
    """Step 1: EeEcaCertRequestSpdu over mutual TLS; checks the
    EcaEeCertResponseSpdu (signature by the ECA, ECA under root, chain
    [ECA, root], requestHash, EC issued by the ECA with our key)."""
    d = new_private()
    body = ee_eca_request(codec, d)
    resp = http().post(args.eca_url + PATH_ENROL, data=body, headers=OCTETS, verify=args.ca_pem,
                       cert=(args.device_cert, args.device_key), timeout=30)
    raw = expect_ok(resp, "POST " + PATH_ENROL)
    payload, signer = open_signed_spdu(codec, raw)
    r = scms_content(codec, payload, "eca-ee", "ecaEeCertResponse")
    if r["version"] != 2:
        raise Fail("EcaEeCertResponse version %s" % r["version"])
    if r["requestHash"] != hashed_id8(body):
        raise Fail("EcaEeCertResponse requestHash %s != HashedId8(request) %s"
                   % (r["requestHash"].hex(), hashed_id8(body).hex()))
    chain = [Cert(codec, codec.enc("Certificate", c)) for c in r["ecaCertChain"]]
    if len(chain) != 2 or chain[1].raw != root.raw or chain[0].raw != signer.raw:
        raise Fail("ecaCertChain is not [signing ECA, root]")
    verify_cert(root)
    verify_cert(signer, root)
    if signer.scms_role(codec) != "eca":
        raise Fail("response signer is not an ECA (ScmsSsp)")
    ec_cert = Cert(codec, codec.enc("Certificate", r["certificate"]))
    verify_cert(ec_cert, signer)
    if ec_cert.explicit_key() != private_to_point(d):
        raise Fail("enrolment certificate key is not ours")
    info = {"ec": ec_cert.id8.hex(), "eca": signer.id8.hex(), "id": repr(ec_cert.tbs["id"]),
            "assuranceLevel": (ec_cert.tbs.get("assuranceLevel") or b"").hex()}
    return ec_cert, d, signer, info


def wanted_psids(codec, ec_cert, override):
    """The ticket PSIDs to ask for: --psid, else the explicit PSIDs of the
    enrolment certificate's certRequestPermissions (what the ECA granted)."""
    if override:
        return sorted(set(override))
    out = set()
    for g in ec_cert.tbs.get("certRequestPermissions") or []:
        kind, perms = g["subjectPermissions"]
        if kind == "explicit":
            out.update(p["psid"] for p in perms if p["psid"] != SECURITY_MGMT_PSID)
    if not out:
        raise Fail("enrolment certificate grants no ticket PSIDs; pass --psid")
    return sorted(out)


def request_tickets(codec, roles, ec_cert, ec_d, psids, periods, period_hours, start_unix):
    """Step 3: unified butterfly EeRaCertRequestSpdu; checks RaEeCertAckSpdu.
    The requested validity starts at start_unix and lasts (N-1) periods + 1
    hour, which overlaps N ticket periods unless it starts in the last hour
    of one (the client cannot know the period boundaries)."""
    a, k = new_private(), secrets.token_bytes(16)
    body, _ = ee_ra_request(codec, private_to_point(a), k, ec_cert, ec_d, roles["ra"], psids,
                            time32(start_unix), (periods - 1) * period_hours + 1)
    raw = expect_ok(http().post(ROLE_URL["ra"] + PATH_BATCH, data=body, headers=OCTETS,
                                verify=ROLE_URL["ca_pem"], timeout=30), "POST " + PATH_BATCH)
    payload, _ = open_signed_spdu(codec, raw, roles["ra"])
    ack = scms_content(codec, payload, "ee-ra", "raEeCertAck")
    if ack["version"] != 2:
        raise Fail("RaEeCertAck version %s" % ack["version"])
    if ack["requestHash"] != hashed_id8(body):
        raise Fail("RaEeCertAck requestHash %s != HashedId8(request) %s"
                   % (ack["requestHash"].hex(), hashed_id8(body).hex()))
    if "firstI" not in ack:
        raise Fail("RaEeCertAck has no firstI")
    return a, k, ack


def download(codec, roles, ec_cert, ec_d, filename, deadline):
    """Step 4: GET /v2x/download with Download-Req, retrying 503 + Retry-After."""
    while True:
        hdr = base64.b64encode(download_request(codec, filename, ec_cert, ec_d, roles["ra"])).decode()
        resp = http().get(ROLE_URL["ra"] + PATH_DOWNLOAD, headers={"Download-Req": hdr},
                          verify=ROLE_URL["ca_pem"], timeout=60)
        if resp.status_code != 503:
            return expect_ok(resp, "GET %s %s" % (PATH_DOWNLOAD, filename))
        try:
            wait = max(1.0, float(resp.headers.get("Retry-After", "1")))
        except ValueError:
            raise Fail("503 with a Retry-After that is not delta-seconds: %r" % resp.headers.get("Retry-After"))
        if time.time() + wait > deadline:
            raise Fail("%s not ready before the timeout (last Retry-After %s)" % (filename, wait))
        time.sleep(wait)


def check_entry(codec, roles, root, name, raw, a, k, i, period_instant):
    """Step 5 for one zip entry (AcaEeCertResponsePrivateSpdu): outer signature
    by the ACA, decryption with b_ij (rekRecipInfo to B_ij), AcaEeCertResponse,
    ticket key = (b_ij + c) * G, ticket signature under the ACA, validity.
    Returns (ticket Cert, j)."""
    payload, _ = open_signed_spdu(codec, raw, roles["aca"])
    enc = codec.dec("Ieee1609Dot2Data", payload)
    if enc["content"][0] != "encryptedData":
        raise Fail("%s: payload is not encryptedData" % name)
    recips = enc["content"][1]["recipients"]
    if len(recips) != 1 or recips[0][0] != "rekRecipInfo":
        raise Fail("%s: expected one rekRecipInfo recipient" % name)
    rid = recips[0][1]["recipientId"]
    stem = name.rsplit(".", 1)[0].split("_")
    if len(stem) != 2 or int(stem[0], 16) != i:
        raise Fail("entry name %s is not <i hex>_<j hex>.oer for i=%x" % (name, i))
    hinted = int(stem[1], 16)
    for j in [hinted] + [x for x in range(256) if x != hinted]:
        b = cocoon_private(a, k, i, j)
        if response_key_id(codec, private_to_point(b)) == rid:
            break
    else:
        raise Fail("%s: recipient id %s matches no cocoon key B_%d,j" % (name, rid.hex(), i))
    if j != hinted:
        raise Fail("%s: encrypted to j=%d" % (name, j))
    enc_raw = codec.enc("EncryptedData", enc["content"][1])
    try:
        plain, _ = ecies_vectors.decrypt(codec.spec, enc_raw, b.to_bytes(32, "big"), rid, sha256(b""))
    except ValueError as e:
        raise Fail("%s: decryption with b_ij failed: %s" % (name, e))
    resp = scms_content(codec, plain, "aca-ee", "acaEeCertResponse")
    if resp["version"] != 2 or "privateKeyInfo" not in resp:
        raise Fail("%s: AcaEeCertResponse version %s / no privateKeyInfo" % (name, resp["version"]))
    ticket = Cert(codec, codec.enc("Certificate", resp["certificate"]))
    verify_cert(ticket, roles["aca"])
    verify_cert(roles["aca"], root)
    c = int.from_bytes(resp["privateKeyInfo"], "big")
    if private_to_point((b + c) % P256_N) != ticket.explicit_key():
        raise Fail("%s: (b_ij + c) * G is not the ticket's key" % name)
    tid = ticket.tbs["id"]
    if tid[0] == "linkageData" and tid[1]["iCert"] != i:
        raise Fail("%s: linkageData.iCert %d != %d" % (name, tid[1]["iCert"], i))
    if not ticket.covers(time32(period_instant)):
        raise Fail("%s: validity %r does not cover period %d" % (name, ticket.tbs["validityPeriod"], i))
    return ticket, j


def check_period(codec, roles, root, zbytes, a, k, i, period_instant):
    """All entries of one period's zip; tickets must differ in key and linkage value."""
    out = {"i": i, "tickets": 0, "failures": []}
    keys, lvs = set(), set()
    with zipfile.ZipFile(io.BytesIO(zbytes)) as z:
        for info in z.infolist():
            if info.compress_type != zipfile.ZIP_STORED:
                out["failures"].append("%s: compressed (expected stored)" % info.filename)
            try:
                ticket, _ = check_entry(codec, roles, root, info.filename, z.read(info), a, k, i, period_instant)
            except Fail as e:
                out["failures"].append(str(e))
                continue
            out["tickets"] += 1
            keys.add(ticket.explicit_key())
            if ticket.tbs["id"][0] == "linkageData":
                lvs.add(ticket.tbs["id"][1]["linkage-value"])
    if out["tickets"] == 0:
        out["failures"].append("period %d: no valid ticket" % i)
    if len(keys) != out["tickets"]:
        out["failures"].append("period %d: repeated ticket keys" % i)
    if lvs and len(lvs) != out["tickets"]:
        out["failures"].append("period %d: repeated linkage values" % i)
    return out


def check_crl(codec, roles, root):
    """Step 6: GET /v2x/crl; 404 = none yet; 200 = a SecuredCrl, verified."""
    resp = http().get(ROLE_URL["ra"] + PATH_CRL, verify=ROLE_URL["ca_pem"], timeout=30)
    if resp.status_code == 404:
        return "absent"
    verify_secured_crl(codec, expect_ok(resp, "GET " + PATH_CRL), root)
    return "verified"


def verify_secured_crl(codec, raw, root):
    """SecuredCrl (IEEE 1609.2 CRL, crl-protocol.asn): canonical COER,
    signedData whose signer is one certificate issued by the root, signature
    over ToBeSignedData under the 5.3.1 rule, payload unsecuredData = CrlContents.
    Returns the CrlContents value."""
    secured = codec.dec("SecuredCrl", raw)
    if secured["content"][0] != "signedData":
        raise Fail("SecuredCrl is not signedData")
    sd = secured["content"][1]
    kind, certs = sd["signer"]
    if kind != "certificate" or len(certs) != 1:
        raise Fail("SecuredCrl signer is not one certificate")
    signer = Cert(codec, codec.enc("Certificate", certs[0]))
    verify_cert(signer, root)
    if not verify(signer.explicit_key(), sd["signature"], codec.enc("ToBeSignedData", sd["tbsData"]), signer.raw):
        raise Fail("SecuredCrl signature does not verify")
    data = sd["tbsData"]["payload"].get("data")
    if not data or data["content"][0] != "unsecuredData":
        raise Fail("SecuredCrl payload is not unsecuredData")
    return codec.dec("CrlContents", data["content"][1])


def load_root(codec, path):
    root = Cert(codec, open(path, "rb").read())
    verify_cert(root)
    return root


def save_state(state, ec_cert, ec_d, certs_raw):
    os.makedirs(state, exist_ok=True)
    with open(os.path.join(state, "ec.oer"), "wb") as f:
        f.write(ec_cert.raw)
    key = ec.derive_private_key(ec_d, ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    with open(os.path.join(state, "ec-key.pem"), "wb") as f:
        f.write(key)
    with open(os.path.join(state, "certificates.oer"), "wb") as f:
        f.write(certs_raw)


def cmd_run(args):
    codec = Codec()
    ROLE_URL.update(ra=args.ra_url.rstrip("/"), ca_pem=args.ca_pem)
    args.eca_url = args.eca_url.rstrip("/")
    deadline = time.time() + args.timeout
    out = {"ok": False, "failures": []}
    root = load_root(codec, args.root)
    ec_cert, ec_d, _, out["enrolment"] = enrol(codec, args, root)
    roles, certs_raw = fetch_certificates(codec, ROLE_URL["ra"], args.ca_pem, root)
    out["certificates"] = {r: c.id8.hex() for r, c in roles.items()}
    if args.state:
        save_state(args.state, ec_cert, ec_d, certs_raw)
    psids = wanted_psids(codec, ec_cert, args.psid)
    start = time.time()
    a, k, ack = request_tickets(codec, roles, ec_cert, ec_d, psids, args.periods, args.period_hours, start)
    rh = ack["requestHash"].hex()
    out.update(requestHash=rh, firstI=ack["firstI"], nextDlTime=ack["nextDlTime"], psids=psids, periods=[])
    for m in range(args.periods):
        i = ack["firstI"] + m
        try:
            z = download(codec, roles, ec_cert, ec_d, "%s_%x.zip" % (rh, i), deadline)
            res = check_period(codec, roles, root, z, a, k, i, start + m * args.period_hours * 3600)
        except Fail as e:
            res = {"i": i, "tickets": 0, "failures": [str(e)]}
        out["periods"].append(res)
        out["failures"] += res["failures"]
    out["tickets"] = sum(p["tickets"] for p in out["periods"])
    try:
        out["crl"] = check_crl(codec, roles, root)
    except Fail as e:
        out["crl"] = "failed"
        out["failures"].append("CRL: %s" % e)
    out["ok"] = not out["failures"]
    return out


# --------------------------------------------------------------------------
# attack: one bad request each
# --------------------------------------------------------------------------

def load_enrolment(codec, args):
    cert_path = args.enrolment_cert or os.path.join(args.state, "ec.oer")
    key_path = args.enrolment_key or os.path.join(args.state, "ec-key.pem")
    ec_cert = Cert(codec, open(cert_path, "rb").read())
    key = serialization.load_pem_private_key(open(key_path, "rb").read(), password=None)
    return ec_cert, key.private_numbers().private_value


def fake_ec(codec, ec_cert, issuer_d, issuer):
    """An EC-shaped certificate (the real EC's tbs, a new key) signed by issuer_d."""
    d = new_private()
    tbs = dict(ec_cert.tbs)
    tbs["verifyKeyIndicator"] = ("verificationKey", ("ecdsaNistP256", point_to_asn1(private_to_point(d))))
    return make_cert(codec, tbs, issuer_d, issuer), d


def fake_eca(codec, eca):
    """A self-made, self-signed ECA look-alike (the real ECA's tbs, a new key)."""
    d = new_private()
    tbs = dict(eca.tbs)
    tbs["verifyKeyIndicator"] = ("verificationKey", ("ecdsaNistP256", point_to_asn1(private_to_point(d))))
    return make_cert(codec, tbs, d, None), d


def non_canonical(body):
    """Re-encodes the outer EncryptedData's recipients quantity with its length
    determinant in long form (81 01 01 instead of 01 01): valid OER, not COER."""
    if body[:4] != b"\x03\x82\x01\x01":
        raise Fail("unexpected request prefix %s" % body[:4].hex())
    return body[:2] + b"\x81\x01\x01" + body[4:]


def cmd_attack(args):
    codec = Codec()
    ra_url = args.ra_url.rstrip("/")
    ROLE_URL.update(ra=ra_url, ca_pem=args.ca_pem)
    root = load_root(codec, args.root)
    roles, _ = fetch_certificates(codec, ra_url, args.ca_pem, root)
    ec_cert, ec_d = load_enrolment(codec, args)
    psids = wanted_psids(codec, ec_cert, args.psid)
    start = time32(time.time() + args.start_offset_hours * 3600)
    A, k = private_to_point(new_private()), secrets.token_bytes(16)

    def build(cert=ec_cert, d=ec_d, ra=roles["ra"]):
        return ee_ra_request(codec, A, k, cert, d, ra, psids, start, 1)

    case = args.case
    if case == "truncated":
        body = build()[0][:-10]
    elif case == "non-canonical":
        body = non_canonical(build()[0])
    elif case == "wrong-signer":
        cert, d = fake_ec(codec, ec_cert, new_private(), roles["eca"])
        body = build(cert, d)[0]
    elif case == "unknown-ec":
        eca, eca_d = fake_eca(codec, roles["eca"])
        cert, d = fake_ec(codec, ec_cert, eca_d, eca)
        body = build(cert, d)[0]
    elif case in ("wrong-recipient", "wrong-recipient-key"):
        inner = build()[1]
        rid = secrets.token_bytes(8) if case == "wrong-recipient" else roles["ra"].id8
        body = encrypt_to(codec, inner, private_to_point(new_private()), rid, sha256(roles["ra"].raw))
    elif case == "replay":
        body = build()[0]
        first = http().post(ra_url + PATH_BATCH, data=body, headers=OCTETS, verify=args.ca_pem, timeout=30)
        second = http().post(ra_url + PATH_BATCH, data=body, headers=OCTETS, verify=args.ca_pem, timeout=30)
        return {"case": case, "status": second.status_code, "statuses": [first.status_code, second.status_code],
                "body": second.text if second.status_code != 200 else base64.b64encode(second.content).decode()}
    else:
        raise Fail("unknown case %s" % case)
    resp = http().post(ra_url + PATH_BATCH, data=body, headers=OCTETS, verify=args.ca_pem, timeout=30)
    text = resp.text if resp.status_code != 200 else base64.b64encode(resp.content).decode()
    return {"case": case, "status": resp.status_code, "body": text}


# --------------------------------------------------------------------------
# selftest
# --------------------------------------------------------------------------

# CAMP butterfly expansion vectors, bfkeyexp.txt of github.com/conz27/crypto-test-vectors
# (published numbers only): i, j, then per expansion (key, seed private,
# seed public x, f_k(x), expanded private, expanded public x, y).
CAMP_I, CAMP_J = 0x217D79E1, 0x11
CAMP_BF = {
    "cert": dict(x=x_cert, k="121D14216715E11D2D3787434A673B1B",
                 seed="D418760F0CB2DCB856BC3C7217AD3AA36DB6742AE1DB655A3D28DF88CBBF84E1",
                 seed_x="ee9cc7fbd9edecea41f7c8bd258e8d2e988e75bd069addca1e5a38e534ac6818",
                 seed_y="5ae3c8d9fe0b1fc7438f29417c240f8bf81c358ec1a4d0c6e98d8edbcc714017",
                 f="79081DDD31EF9E5EA601250E584CD90FBA13EE7B518E72A2DB3AAAA158E12D5E",
                 exp="4D2093ED3EA27B15FCBD61806FFA13B36AE367F88C52397824A9BF67283D8CEE",
                 exp_x="2b18f3d93c4df3d9d1490e3a9ba5a0de9cfa73eddb95408bc1f2bf60cb3cf313",
                 exp_y="1a2ce511e0da86356329a5c22a36a8a53088dcb11a5a94fa903ef0087421666a"),
    "enc": dict(x=x_enc, k="F9FCE2371B4523C0A75FC352BA7EBD8D",
                seed="4624A6F9F6BC6BD088A71ED97B3AEE983B5CC2F574F64E96A531D2464137049F",
                seed_x="121aa495c6b2c07a2b2daec36bd207d6620d7e6081050df5de3e9696868fcdca",
                seed_y="46c31a1abea0bddaaaaefbba3afdbff1ac8d196bc313fc130926810c05503950",
                f="A1559B337D59834B32E364376C9915028E92D9392D89D4315BDA481ADD3BA317",
                exp="E77A422D7415EF1BBB8A8310E7D4039AC9EF9C2EA28022C8010C1A611E72A7B6",
                exp_x="b568fd55a7114254118e7463e85459bdd3c091342625b4a929541151bb8286be",
                exp_y="ed8dbe22200353d316cc5c3d8f1f281d8bfb34a9e6e1dbfe2043d928c64b430b"),
}

# The ECA certificate (HashedId8 5d215da31efc7f75) that issued the implicit
# enrolment certificate carried in OpenSCMS' DecryptedEeRaCertRequestSpdu.dat:
# github.com/OpenSCMS/OpenSCMS, eca/src/migrator/
# m20241024_000001_update_all_certificates_and_keys.rs (commit 61136b7c),
# row 'eca_certificate'. Apache-2.0, (c) 2025 LG Electronics.
OPENSCMS_ECA = bytes.fromhex(
    "80030080A5E944214BE5B9E6008210B95492D216ED9D183B5510AB6D3F770B0102030000"
    "2727388086000A808083651FB15720AE59AD415D691D2157437D38C0EAB97F90AE3F1CC1"
    "F241248DB0F28080D336537ED68FAEC71182343770F2003FBC7EBA6F2198CA3ADEF19B82"
    "7802E2F641AB230473C1D9B7C02B605C872AF2D3E51EFD3DBDCB993EAB3090D1E6ECDC6B")


def st_butterfly():
    """CAMP bfkeyexp: f_k(x), expanded private a + f_k(x), expanded public
    A + f_k(x)*G (computed with point addition, not from the private key)."""
    res = {}
    for name, v in CAMP_BF.items():
        k = bytes.fromhex(v["k"])
        seed = int(v["seed"], 16)
        A = private_to_point(seed)
        if A != (int(v["seed_x"], 16), int(v["seed_y"], 16)):
            raise Fail("butterfly %s: seed public key differs from the vector" % name)
        f = f_k(k, v["x"](CAMP_I, CAMP_J))
        if f != int(v["f"], 16):
            raise Fail("butterfly %s: f_k(x) %x differs from the vector" % (name, f))
        if (seed + f) % P256_N != int(v["exp"], 16):
            raise Fail("butterfly %s: expanded private key differs" % name)
        if point_add(A, point_mul(f, P256_G)) != (int(v["exp_x"], 16), int(v["exp_y"], 16)):
            raise Fail("butterfly %s: expanded public key differs" % name)
        res[name] = "f_k, expanded private and public keys match"
    if cocoon_public(A, k, 5, 7) != private_to_point(cocoon_private(seed, k, 5, 7)):
        raise Fail("butterfly: cocoon_public and cocoon_private disagree")
    return res


def _vec(name):
    with open(os.path.join(vector_dir(), name), "rb") as f:
        return f.read()


def st_vectors(codec):
    """Every OpenSCMS vector of its README: decode with the type named there,
    re-encode byte-identically, and the nested values too."""
    res = {}

    def same(type_name, data, label):
        value = codec.dec(type_name, data, canonical=False)
        res[label] = {"type": type_name, "bytes": len(data),
                      "reencode": "identical" if codec.enc(type_name, value) == data else "DIFFERS"}
        if res[label]["reencode"] != "identical":
            raise Fail("%s: re-encoding as %s differs" % (label, type_name))
        return value

    same("EeRaCertRequestSpdu", _vec("EeRaCertRequest.dat"), "EeRaCertRequest.dat")
    same("Ieee1609Dot2Data", _vec("CertificateManagementInfoStatusSpdu.dat"),
         "CertificateManagementInfoStatusSpdu.dat")
    same("ScmsPdu", _vec("CertManagementPdu.dat"), "CertManagementPdu.dat")
    same("Certificate", _vec("RaCertificate.dat"), "RaCertificate.dat")
    v = same("EeRa1609Dot2AuthenticatedCertRequestSpdu", _vec("DecryptedEeRaCertRequestSpdu.dat"),
             "DecryptedEeRaCertRequestSpdu.dat")
    scr = same("SignedCertificateRequest", v["content"][1], "DecryptedEeRaCertRequestSpdu.dat/SignedCertificateRequest")
    req = scr["tbsRequest"]["content"][1][1]
    codec.dec("EeRaCertRequest", codec.enc("EeRaCertRequest", req))
    v = same("ScmsPdu", _vec("composite-crl-scms-pdu.dat"), "composite-crl-scms-pdu.dat")
    for n, secured in enumerate(v["content"][1][1]["crl"]):
        s = same("SecuredCrl", codec.enc("SecuredCrl", secured), "composite-crl-scms-pdu.dat/crl[%d]" % n)
        same("CrlContents", s["content"][1]["tbsData"]["payload"]["data"]["content"][1],
             "composite-crl-scms-pdu.dat/crl[%d]/CrlContents" % n)
    v = same("CertificateChainSpdu", _vec("OscmsCertificateChainFileSpdu.dat"), "OscmsCertificateChainFileSpdu.dat")
    chain = codec.dec("ScmsPdu", v["content"][1])["content"][1][1]
    msctl = codec.dec("ScmsPdu", chain["homeCtl"]["content"][1])["content"][1][1]
    same("FullIeeeTbsCtl", msctl["tbsCtl"], "OscmsCertificateChainFileSpdu.dat/tbsCtl")
    same("SequenceOfCertificate", msctl["unsigned"], "OscmsCertificateChainFileSpdu.dat/unsigned")
    # Constraints asn1tools does not check (IEEE 1609.2.1-2020 EeRaCertRequest):
    notes = []
    if req["tbsCert"]["cracaId"] != b"\x00\x00\x00" or req["tbsCert"]["crlSeries"] != 0:
        notes.append("EeRaCertRequest.tbsCert cracaId %s / crlSeries %d violate the 2020 constraint "
                     "('000000'H, 0)" % (req["tbsCert"]["cracaId"].hex(), req["tbsCert"]["crlSeries"]))
    res["notes"] = notes
    return res


def signature_rules(tbs, signer_raw):
    """The IEEE 1609.2 5.3.1 digest and the plausible alternatives an
    implementation might use instead (label -> 32-octet ECDSA input)."""
    rules = {
        "1609.2: H(H(tbs) || H(signer cert))": data_hash(tbs, signer_raw),
        "H(H(tbs) || H(''))  (signer treated as self)": data_hash(tbs, b""),
        "H(tbs)  (plain ECDSA-SHA256 over tbs)": sha256(tbs),
        "H(H(H(tbs) || H(signer cert)))  (1609.2 digest hashed again)": sha256(data_hash(tbs, signer_raw)),
    }
    if signer_raw:
        rules["H(H(tbs) || H(signer toBeSigned))"] = data_hash(tbs, Cert.tbs_of(signer_raw))
    return rules


def rules_that_verify(keys, signature, tbs, signer_raw):
    """[(key label, rule label)] under which `signature` verifies."""
    return ["%s; %s" % (rule, klabel) if klabel else rule
            for klabel, key in keys.items()
            for rule, digest in signature_rules(tbs, signer_raw).items()
            if ecdsa_verify_digest(key, signature, digest)]


def st_openscms_signatures(codec):
    """IEEE 1609.2 5.3.1 on OpenSCMS' signed messages (findings, reported,
    not failures): the certificates of the chain file under their issuers,
    the CertificateManagementInfoStatusSpdu with its carried RA certificate,
    the composite CRL's SecuredCrl with its carried signer, and the
    SignedCertificateRequest of DecryptedEeRaCertRequestSpdu.dat with its
    carried (implicit) enrolment certificate, reconstructed with the OpenSCMS
    ECA certificate. For each: the rules under which the signature verifies."""
    res = {}
    v = codec.dec("CertificateChainSpdu", _vec("OscmsCertificateChainFileSpdu.dat"))
    others = [Cert(codec, codec.enc("Certificate", c))
              for c in codec.dec("ScmsPdu", v["content"][1])["content"][1][1]["others"]]
    by_id = {c.id8: c for c in others}
    for c in others:
        kind, ident = c.value["issuer"]
        issuer = c if kind == "self" else by_id[ident]
        res["chain-file certificate %s" % c.id8.hex()] = rules_that_verify(
            {"": issuer.explicit_key()}, c.value["signature"], c.tbs_raw, b"" if kind == "self" else issuer.raw)
    raw = _vec("CertificateManagementInfoStatusSpdu.dat")
    sd = codec.dec("Ieee1609Dot2Data", raw)["content"][1]
    signer = Cert(codec, codec.enc("Certificate", sd["signer"][1][0]))
    res["CertificateManagementInfoStatusSpdu (signer %s)" % signer.id8.hex()] = {
        "headerInfo": sorted(sd["tbsData"]["headerInfo"]),
        "verifies_under": rules_that_verify({"": signer.explicit_key()}, sd["signature"],
                                            codec.enc("ToBeSignedData", sd["tbsData"]), signer.raw)}
    v = codec.dec("ScmsPdu", _vec("composite-crl-scms-pdu.dat"))
    for n, secured in enumerate(v["content"][1][1]["crl"]):
        sd = secured["content"][1]
        s = Cert(codec, codec.enc("Certificate", sd["signer"][1][0]))
        res["composite CRL %d (signer %s)" % (n, s.id8.hex())] = {"verifies_under": rules_that_verify(
            {"": s.explicit_key()}, sd["signature"], codec.enc("ToBeSignedData", sd["tbsData"]), s.raw)}
    res["SignedCertificateRequest"] = st_request_signature(codec)
    return res


def st_request_signature(codec):
    """The SignedCertificateRequest of DecryptedEeRaCertRequestSpdu.dat: the
    1609.2 rule SHA-256(SHA-256(tbsRequest) || SHA-256(signer cert)) and the
    plausible alternatives, with the implicit EC's key reconstructed both
    with SEC 4's e (>> 1) and with e mod n."""
    outer = codec.dec("Ieee1609Dot2Data", _vec("DecryptedEeRaCertRequestSpdu.dat"))
    scr_raw = outer["content"][1]
    scr = codec.dec("SignedCertificateRequest", scr_raw)
    tbs = codec.enc("ScmsPdu", scr["tbsRequest"])
    if scr_raw[1:1 + len(tbs)] != tbs:
        raise Fail("tbsRequest as received differs from its re-encoding")
    ec_cert = Cert(codec, codec.enc("Certificate", scr["signer"][1][0]))
    eca = Cert(codec, OPENSCMS_ECA)
    if ec_cert.value["issuer"] != ("sha256AndDigest", eca.id8):
        raise Fail("OpenSCMS EC issuer %r is not the ECA %s" % (ec_cert.value["issuer"], eca.id8.hex()))
    keys = {"implicit key e=%s" % m: cert_key(ec_cert, eca, m) for m in ("sec4", "modn")}
    found = rules_that_verify(keys, scr["signature"], tbs, ec_cert.raw)
    return {"signer": "implicit EC %s issued by OpenSCMS ECA %s" % (ec_cert.id8.hex(), eca.id8.hex()),
            "verifies_under": found,
            "rule_1609_2": any(x.startswith("1609.2:") for x in found)}


def st_ecies(codec):
    """ECIES round trips (certRecipInfo, rekRecipInfo) through this client's
    encrypt_to and ecies_vectors.decrypt, and the fixed vectors in
    v2x/testdata/encrypted-data.json."""
    d = new_private()
    pt = private_to_point(d)
    for kind, p1 in (("certRecipInfo", sha256(b"cert")), ("rekRecipInfo", sha256(b""))):
        rid = response_key_id(codec, pt)
        data = codec.dec("Ieee1609Dot2Data", encrypt_to(codec, b"plaintext " + kind.encode(), pt, rid, p1, kind))
        plain, got = ecies_vectors.decrypt(codec.spec, codec.enc("EncryptedData", data["content"][1]),
                                           d.to_bytes(32, "big"), rid, p1)
        if plain != b"plaintext " + kind.encode() or got != kind:
            raise Fail("ECIES round trip %s" % kind)
    n = 0
    path = os.path.join(REPO, "v2x", "testdata", "encrypted-data.json")
    for v in json.load(open(path))["vectors"]:
        plain, _ = ecies_vectors.decrypt(codec.spec, bytes.fromhex(v["encrypted_data"]),
                                         bytes.fromhex(v["recipient_secret"]),
                                         bytes.fromhex(v["recipient_id"]), bytes.fromhex(v["p1"]))
        if plain != bytes.fromhex(v["plaintext"]):
            raise Fail("ECIES vector %s" % v["name"])
        n += 1
    return {"round trips": 2, "fixed vectors": n}


def st_messages(codec):
    """Builds every message this client sends with made-up certificates and
    parses it back: canonical COER, the signature rule, decryption by the
    recipient, the unified butterfly response path."""
    now = time.time()
    root_d = new_private()
    root_tbs = {"id": ("name", "selftest root"), "cracaId": b"\x00\x00\x00", "crlSeries": 0,
                "validityPeriod": {"start": time32(now) - 60, "duration": ("years", 1)},
                "certIssuePermissions": [{"subjectPermissions": ("all", None), "minChainLength": 2,
                                          "chainLengthRange": 0, "eeType": (b"\xc0", 8)}],
                "verifyKeyIndicator": ("verificationKey", ("ecdsaNistP256", point_to_asn1(private_to_point(root_d))))}
    root = make_cert(codec, root_tbs, root_d)
    verify_cert(root)

    def issued(role, key_d, enc_d=None):
        tbs = dict(root_tbs, id=("name", "selftest " + role),
                   appPermissions=[{"psid": 35, "ssp": ("opaque", bytes.fromhex(SCMS_ROLES[role] + "0002"))}],
                   verifyKeyIndicator=("verificationKey", ("ecdsaNistP256", point_to_asn1(private_to_point(key_d)))))
        del tbs["certIssuePermissions"]
        if enc_d:
            tbs["encryptionKey"] = {"supportedSymmAlg": "aes128Ccm",
                                    "publicKey": ("eciesNistP256", point_to_asn1(private_to_point(enc_d)))}
        c = make_cert(codec, tbs, root_d, root)
        verify_cert(c, root)
        if c.scms_role(codec) != role:
            raise Fail("ScmsSsp %s encodes wrong" % role)
        return c

    ra_d, ra_enc_d, aca_d = new_private(), new_private(), new_private()
    ra, aca = issued("ra", ra_d, ra_enc_d), issued("aca", aca_d)
    # 1. EeEcaCertRequestSpdu: signer self
    ec_d = new_private()
    body = ee_eca_request(codec, ec_d, now)
    data = codec.dec("Ieee1609Dot2Data", body)
    scr = codec.dec("SignedCertificateRequest", data["content"][1])
    tbs = codec.enc("ScmsPdu", scr["tbsRequest"])
    if scr["signer"][0] != "self" or not verify(private_to_point(ec_d), scr["signature"], tbs, b""):
        raise Fail("EeEcaCertRequestSpdu self-signature")
    scms_content(codec, tbs, "eca-ee", "eeEcaCertRequest")
    ec_tbs = dict(root_tbs, id=("name", "selftest vehicle"), certRequestPermissions=[{
        "subjectPermissions": ("explicit", [{"psid": 32}]), "minChainLength": 0, "chainLengthRange": 0,
        "eeType": (b"\x80", 8)}], verifyKeyIndicator=scr["tbsRequest"]["content"][1][1]["tbsCert"]["verifyKeyIndicator"])
    del ec_tbs["certIssuePermissions"]
    ec_cert = make_cert(codec, ec_tbs, ra_d, ra)  # any issuer will do here
    if wanted_psids(codec, ec_cert, None) != [32]:
        raise Fail("wanted_psids")
    # 2. EeRaCertRequestSpdu: decrypt as the RA, check signature and content
    a, k = new_private(), secrets.token_bytes(16)
    body, inner = ee_ra_request(codec, private_to_point(a), k, ec_cert, ec_d, ra, [32], time32(now), 168)
    enc = codec.dec("Ieee1609Dot2Data", body)["content"][1]
    plain, kind = ecies_vectors.decrypt(codec.spec, codec.enc("EncryptedData", enc), ra_enc_d.to_bytes(32, "big"),
                                        ra.id8, sha256(ra.raw))
    if plain != inner or kind != "certRecipInfo":
        raise Fail("EeRaCertRequestSpdu decryption by the RA")
    scr = codec.dec("SignedCertificateRequest", codec.dec("Ieee1609Dot2Data", plain)["content"][1])
    tbs = codec.enc("ScmsPdu", scr["tbsRequest"])
    if not verify(private_to_point(ec_d), scr["signature"], tbs, ec_cert.raw):
        raise Fail("EeRaCertRequest signature")
    req = scms_content(codec, tbs, "ee-ra", "eeRaCertRequest")
    if req["additionalParams"] != ("unified", ("aes128", k)):
        raise Fail("additionalParams")
    if non_canonical(body) == body or codec.dec("Ieee1609Dot2Data", non_canonical(body), canonical=False) != \
            codec.dec("Ieee1609Dot2Data", body):
        raise Fail("non_canonical() must keep the value and change the bytes")
    try:
        codec.dec("Ieee1609Dot2Data", non_canonical(body))
        raise Fail("non-canonical body passed the canonical check")
    except Fail as e:
        if "re-encoding" not in str(e):
            raise
    # 3. EeRaDownloadRequestSpdu: decrypt, signed SPDU by the EC
    body = download_request(codec, "%s_%x.zip" % ("00" * 8, 7), ec_cert, ec_d, ra, now)
    enc = codec.dec("Ieee1609Dot2Data", body)["content"][1]
    plain, _ = ecies_vectors.decrypt(codec.spec, codec.enc("EncryptedData", enc), ra_enc_d.to_bytes(32, "big"),
                                     ra.id8, sha256(ra.raw))
    payload, _ = open_signed_spdu(codec, plain, ec_cert)
    if scms_content(codec, payload, "ee-ra", "eeRaDownloadRequest")["filename"] != "0000000000000000_7.zip":
        raise Fail("download filename")
    # 4. The response path as an ACA would build it, checked by check_entry.
    i, j, c = 7, 2, new_private()
    B = cocoon_public(private_to_point(a), k, i, j)
    ticket_tbs = {"id": ("linkageData", {"iCert": i, "linkage-value": secrets.token_bytes(9)}),
                  "cracaId": b"\x00\x00\x00", "crlSeries": 1,
                  "validityPeriod": {"start": time32(now) - 3600, "duration": ("hours", 170)},
                  "appPermissions": [{"psid": 32}],
                  "verifyKeyIndicator": ("verificationKey", ("ecdsaNistP256",
                                                             point_to_asn1(point_add(B, point_mul(c, P256_G)))))}
    ticket = make_cert(codec, ticket_tbs, aca_d, aca)
    resp_pdu = scms_pdu(codec, "aca-ee", "acaEeCertResponse",
                        {"version": 2, "generationTime": time32(now), "certificate": ticket.value,
                         "privateKeyInfo": c.to_bytes(32, "big")})
    enc = encrypt_to(codec, resp_pdu, B, response_key_id(codec, B), sha256(b""), "rekRecipInfo")
    entry = signed_spdu(codec, enc, aca_d, aca, now)
    roles = {"aca": aca, "ra": ra}
    got, gj = check_entry(codec, roles, root, "7_2.oer", entry, a, k, i, now)
    if gj != j or got.raw != ticket.raw:
        raise Fail("check_entry")
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w", zipfile.ZIP_STORED) as z:
        z.writestr("7_2.oer", entry)
    per = check_period(codec, roles, root, zbuf.getvalue(), a, k, i, now)
    if per["failures"] or per["tickets"] != 1:
        raise Fail("check_period: %r" % per["failures"])
    # 5. A SecuredCrl as a CRL signer would build it (psid 256, CrlContents).
    crl = {"version": 1, "crlSeries": 1, "cracaId": root.id8, "issueDate": time32(now),
           "nextCrl": time32(now) + 86400, "priorityInfo": {},
           "typeSpecific": ("fullHashCrl", {"crlSerial": 1, "entries": [{"id": bytes(10), "expiry": time32(now)}]})}
    tbs = {"payload": {"data": {"protocolVersion": 3, "content": ("unsecuredData", codec.enc("CrlContents", crl))}},
           "headerInfo": {"psid": 256}}
    sd = {"hashId": "sha256", "tbsData": tbs, "signer": ("certificate", [ra.value]),
          "signature": sign(ra_d, codec.enc("ToBeSignedData", tbs), ra.raw)}
    raw = codec.enc("SecuredCrl", {"protocolVersion": 3, "content": ("signedData", sd)})
    if verify_secured_crl(codec, raw, root) != crl:
        raise Fail("verify_secured_crl")
    sd["signature"] = sign(aca_d, codec.enc("ToBeSignedData", tbs), ra.raw)
    try:
        verify_secured_crl(codec, codec.enc("SecuredCrl", {"protocolVersion": 3, "content": ("signedData", sd)}), root)
        raise Fail("a SecuredCrl signed by the wrong key verified")
    except Fail as e:
        if "does not verify" not in str(e):
            raise
    return {"built and parsed": ["EeEcaCertRequestSpdu", "EeRaCertRequestSpdu", "EeRaDownloadRequestSpdu",
                                 "AcaEeCertResponsePrivateSpdu (test ACA)", "zip period", "SecuredCrl"]}


def cmd_selftest(args):
    codec = Codec()
    out = {"ok": True, "checks": {}, "failures": []}
    for name, fn in [("butterfly (CAMP bfkeyexp)", lambda: st_butterfly()),
                     ("OpenSCMS vectors: decode / re-encode", lambda: st_vectors(codec)),
                     ("OpenSCMS signatures", lambda: st_openscms_signatures(codec)),
                     ("ECIES", lambda: st_ecies(codec)),
                     ("messages built by this client", lambda: st_messages(codec))]:
        try:
            out["checks"][name] = fn()
        except Fail as e:
            out["checks"][name] = {"failed": str(e)}
            out["failures"].append("%s: %s" % (name, e))
    out["ok"] = not out["failures"]
    return out


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------

def parser():
    p = argparse.ArgumentParser(
        description="Independent IEEE 1609.2.1 vehicle client (see the module docstring).")
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("selftest", help="offline checks: CAMP butterfly vectors, OpenSCMS vectors and "
                   "signatures, ECIES, COER of built messages")
    r = sub.add_parser("run", help="the whole vehicle journey against an ECA and an RA")
    r.add_argument("--eca-url", required=True, help="base URL of the ECA (EST listener, mutual TLS)")
    r.add_argument("--ra-url", required=True, help="base URL of the RA (one-way TLS)")
    r.add_argument("--ca-pem", required=True, help="PEM CA bundle to verify the servers' TLS certificates")
    r.add_argument("--device-cert", required=True, help="PEM X.509 device certificate (TLS client)")
    r.add_argument("--device-key", required=True, help="PEM private key of the device certificate")
    r.add_argument("--root", required=True, help="COER file of the trusted V2X root certificate")
    r.add_argument("--periods", type=int, default=1, help="ticket periods to request (default 1)")
    r.add_argument("--period-hours", type=int, default=168, help="ticket period length (default 168)")
    r.add_argument("--timeout", type=float, default=120, help="seconds to wait for downloads (default 120)")
    r.add_argument("--state", help="directory to save ec.oer, ec-key.pem, certificates.oer")
    r.add_argument("--psid", type=int, action="append", help="ticket PSID (repeatable); default: the "
                   "enrolment certificate's certRequestPermissions")
    a = sub.add_parser("attack", help="send one bad EeRaCertRequestSpdu; prints {case, status, body}")
    a.add_argument("--ra-url", required=True)
    a.add_argument("--ca-pem", required=True)
    a.add_argument("--root", required=True)
    a.add_argument("--state", help="directory written by run --state")
    a.add_argument("--enrolment-cert", help="COER enrolment certificate (instead of --state)")
    a.add_argument("--enrolment-key", help="PEM private key of it (instead of --state)")
    a.add_argument("--case", required=True, choices=["truncated", "non-canonical", "wrong-signer", "unknown-ec",
                                                     "replay", "wrong-recipient", "wrong-recipient-key"])
    a.add_argument("--psid", type=int, action="append")
    a.add_argument("--start-offset-hours", type=int, default=20 * 168,
                   help="requested validity start, hours from now (default 3360)")
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    try:
        if args.cmd == "attack" and not args.state and not (args.enrolment_cert and args.enrolment_key):
            raise Fail("attack needs --state or --enrolment-cert and --enrolment-key")
        out = {"selftest": cmd_selftest, "run": cmd_run, "attack": cmd_attack}[args.cmd](args)
    except Fail as e:
        print(json.dumps({"ok": False, "failures": [str(e)]}))
        print("dot1_client: %s" % e, file=sys.stderr)
        return 1
    except OSError as e:  # files, connections (requests' errors are OSError subclasses)
        print(json.dumps({"ok": False, "failures": [str(e)]}))
        print("dot1_client: %s" % e, file=sys.stderr)
        return 1
    print(json.dumps(out, indent=1, sort_keys=True))
    if out.get("ok") is False:
        print("dot1_client: %s" % out["failures"][0], file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
