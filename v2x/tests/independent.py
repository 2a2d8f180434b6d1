#!/usr/bin/env python3
"""Independent check of trustca-v2x certificates with asn1tools and cryptography.

Usage: independent.py CERT.coer... [--must-fail CERT.coer]... [--ieee CERT.coer]...
       [--ieee-must-fail CERT.coer]...
                      [--decrypt JOBS.json]

Compiles the published ASN.1 modules (IEEE1609dot2BaseTypes.asn,
IEEE1609dot2.asn, TS103097v131.asn), unmodified, from $V2X_ASN1_DIR (default
<repo>/../shared/spec/v2x-asn1) with the OER codec, then for every file:

* decodes it as EtsiTs103097Certificate and re-encodes it: the bytes must be
  identical (asn1tools' encoder is a second, independent canonical encoder);
* checks the ETSI TS 103 097 profile constraints, which asn1tools does not
  enforce from the WITH COMPONENTS clauses: explicit, version 3, signature
  present, id not linkageData/binaryId, certRequestPermissions and
  canRequestRollover absent, verificationKey, issuer sha256AndDigest or
  self(sha256), cracaId 000000H, appPermissions or certIssuePermissions;
* finds the issuer among the given files by HashedId8 (low-order 8 octets
  of SHA-256 over the COER encoding) or takes the certificate itself when
  issuer is self, and verifies the ECDSA P-256 signature with cryptography
  over e = SHA-256(SHA-256(tbs) || SHA-256(signer)) (IEEE 1609.2 clause
  5.3.1; signer is the issuer's COER encoding, or empty when self-signed),
  as a prehashed digest, so the double hashing is done here explicitly;
  tbs is the slice of the received bytes, checked equal to asn1tools'
  encoding of the decoded toBeSigned.

Files after --must-fail must be rejected by one of these checks.

Files after --ieee-must-fail are decoded like --ieee files and must be
rejected (e.g. a flipped signature bit). Files after --ieee are IEEE 1609.2
certificates outside the ETSI profile
(SCMS tickets with id linkageData): they are decoded as the IEEE 1609.2
`Certificate` type, re-encoded byte-identically, checked against the
IEEE 1609.2 constraints only (no ETSI id/cracaId rules) and verified like
the others (their issuer must be among the plain files). Each must then be
rejected as EtsiTs103097Certificate: by asn1tools itself if it enforces the
WITH COMPONENTS constraint (it does not, as of asn1tools 0.169: the line
says which), otherwise by the profile check above.

With --decrypt, JOBS.json lists IEEE 1609.2 EncryptedData files made by
trustca-v2x ({"path", "recipient_secret", "recipient_id", "p1", "kind",
"must_fail"}, hex strings): each is decoded with asn1tools as
`EncryptedData`, re-encoded byte-identically, and decrypted by the
independent ECIES + AES-128-CCM implementation of ecies_vectors.py (Python
cryptography, hashlib, hmac); the line gives the recipient kind and
SHA-256 of the plaintext. Jobs with must_fail must not decrypt.

With V2X_DUMP=1 the decoded toBeSigned of each file is printed.
Prints one line per file and exits non-zero if any expectation fails.
"""

import hashlib
import json
import os
import sys

import asn1tools
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    Prehashed,
    encode_dss_signature,
)

MODULES = ["IEEE1609dot2BaseTypes.asn", "IEEE1609dot2.asn", "TS103097v131.asn"]


def asn1_dir():
    d = os.environ.get("V2X_ASN1_DIR")
    if d:
        return d
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.dirname(os.path.dirname(here))
    return os.path.join(os.path.dirname(repo), "shared", "spec", "v2x-asn1")


def sha256(b):
    return hashlib.sha256(b).digest()


def hashed_id8(b):
    return sha256(b)[-8:]


class Reject(Exception):
    pass


def check_ieee(c):
    """IEEE 1609.2 constraints that asn1tools does not enforce, for the
    explicit certificates this crate issues."""
    if c["version"] != 3:
        raise Reject("version is not 3")
    if c["type"] != "explicit":
        raise Reject("not an explicit certificate")
    if "signature" not in c:
        raise Reject("signature absent")
    t = c["toBeSigned"]
    if not any(k in t for k in ("appPermissions", "certIssuePermissions", "certRequestPermissions")):
        raise Reject("no permissions field")
    if t["verifyKeyIndicator"][0] != "verificationKey":
        raise Reject("verifyKeyIndicator is not verificationKey")


def check_profile(c):
    if c["version"] != 3:
        raise Reject("version is not 3")
    if c["type"] != "explicit":
        raise Reject("not an explicit certificate")
    if "signature" not in c:
        raise Reject("signature absent")
    issuer = c["issuer"]
    if issuer[0] == "self":
        if issuer[1] != "sha256":
            raise Reject("self-signed with a hash other than sha256")
    elif issuer[0] != "sha256AndDigest":
        raise Reject("issuer is not sha256AndDigest or self")
    t = c["toBeSigned"]
    if t["id"][0] in ("linkageData", "binaryId"):
        raise Reject("id %s forbidden by TS 103 097" % t["id"][0])
    if "certRequestPermissions" in t:
        raise Reject("certRequestPermissions present")
    if "canRequestRollover" in t:
        raise Reject("canRequestRollover present")
    if t["cracaId"] != b"\x00\x00\x00":
        raise Reject("cracaId is not 000000H")
    if "appPermissions" not in t and "certIssuePermissions" not in t:
        raise Reject("neither appPermissions nor certIssuePermissions")
    vki = t["verifyKeyIndicator"]
    if vki[0] != "verificationKey":
        raise Reject("verifyKeyIndicator is not verificationKey")
    if vki[1][0] != "ecdsaNistP256":
        raise Reject("verification key is not ecdsaNistP256")
    if c["signature"][0] != "ecdsaNistP256Signature":
        raise Reject("signature is not ecdsaNistP256Signature")


def public_key(c):
    point = c["toBeSigned"]["verifyKeyIndicator"][1][1]
    kind, value = point
    if kind == "compressed-y-0":
        enc = b"\x02" + value
    elif kind == "compressed-y-1":
        enc = b"\x03" + value
    elif kind == "uncompressedP256":
        enc = b"\x04" + value["x"] + value["y"]
    else:
        raise Reject("verification key point form %s" % kind)
    return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), enc)


def load(spec, path, ieee=False):
    raw = open(path, "rb").read()
    typ = "Certificate" if ieee else "EtsiTs103097Certificate"
    try:
        c = spec.decode(typ, raw)
    except Exception as e:  # asn1tools raises several error types
        raise Reject("asn1tools decode failed: %s" % e)
    if spec.encode(typ, c) != raw:
        raise Reject("re-encoding with asn1tools differs (not canonical)")
    if ieee:
        check_ieee(c)
    else:
        check_profile(c)
    tbs = spec.encode("ToBeSignedCertificate", c["toBeSigned"])
    header = 5 if c["issuer"][0] == "self" else 12
    if raw[header : header + len(tbs)] != tbs:
        raise Reject("toBeSigned not found at its offset")
    if os.environ.get("V2X_DUMP") == "1":
        print("decoded %s: %r" % (path, c["toBeSigned"]))
    return raw, c, tbs


def verify(raw, c, tbs, by_id):
    issuer = c["issuer"]
    if issuer[0] == "self":
        key, signer = public_key(c), b""
    else:
        parent = by_id.get(issuer[1])
        if parent is None:
            raise Reject("issuer %s not among the given files" % issuer[1].hex())
        key, signer = public_key(parent[1]), parent[0]
    e = sha256(sha256(tbs) + sha256(signer))
    sig = c["signature"][1]
    r_kind, r = sig["rSig"]
    if r_kind not in ("x-only", "compressed-y-0", "compressed-y-1"):
        raise Reject("rSig form %s" % r_kind)
    der = encode_dss_signature(int.from_bytes(r, "big"), int.from_bytes(sig["sSig"], "big"))
    try:
        key.verify(der, e, ec.ECDSA(Prehashed(hashes.SHA256())))
    except InvalidSignature:
        raise Reject("signature does not verify")


def etsi_rejection(spec, path):
    """Why `path` is not an EtsiTs103097Certificate, or None if it is."""
    raw = open(path, "rb").read()
    try:
        c = spec.decode("EtsiTs103097Certificate", raw)
    except Exception as e:
        return "by asn1tools: %s" % e
    try:
        check_profile(c)
    except Reject as e:
        return "by the profile check (asn1tools decoded it): %s" % e
    return None


def decrypt_jobs(spec, path):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import ecies_vectors

    failures = 0
    for job in json.load(open(path)):
        raw = open(job["path"], "rb").read()
        try:
            pt, kind = ecies_vectors.decrypt(
                spec,
                raw,
                bytes.fromhex(job["recipient_secret"]),
                bytes.fromhex(job["recipient_id"]),
                bytes.fromhex(job["p1"]),
            )
            if kind != job["kind"]:
                raise ValueError("recipient kind %s, expected %s" % (kind, job["kind"]))
            ok, why = True, "kind=%s plaintext-sha256=%s" % (kind, hashlib.sha256(pt).hexdigest())
        except Exception as e:  # asn1tools, cryptography and ours
            ok, why = False, "%s: %s" % (type(e).__name__, e)
        expected = not job.get("must_fail", False)
        if ok != expected:
            failures += 1
        print(
            "%s %s %s %s"
            % ("OK" if ok == expected else "FAIL", "decrypted" if ok else "refused", job["path"], why)
        )
    return failures


def main(argv):
    good, bad, ieee, ieee_bad, jobs = [], [], [], [], []
    it = iter(argv)
    for a in it:
        if a == "--must-fail":
            bad.append(next(it))
        elif a == "--ieee":
            ieee.append(next(it))
        elif a == "--ieee-must-fail":
            ieee_bad.append(next(it))
        elif a == "--decrypt":
            jobs.append(next(it))
        else:
            good.append(a)
    d = asn1_dir()
    spec = asn1tools.compile_files([os.path.join(d, m) for m in MODULES], "oer")
    loaded, by_id = {}, {}
    failures = 0
    for j in jobs:
        failures += decrypt_jobs(spec, j)
    for path in good + bad:
        try:
            raw, c, tbs = load(spec, path)
            loaded[path] = (raw, c, tbs)
            if path in good:
                by_id[hashed_id8(raw)] = (raw, c)
        except Reject as e:
            loaded[path] = e
    for path in ieee + ieee_bad:
        try:
            loaded[path] = load(spec, path, ieee=True)
            # CA certificates in the IEEE profile (cracaId set) issue others.
            if path in ieee:
                by_id[hashed_id8(loaded[path][0])] = loaded[path][:2]
        except Reject as e:
            loaded[path] = e
    for path in ieee:
        why = etsi_rejection(spec, path)
        if why is None:
            failures += 1
            print("FAIL etsi-accepted %s" % path)
        else:
            print("OK etsi-rejected %s %s" % (path, why))
    for path in good + bad + ieee + ieee_bad:
        v = loaded[path]
        try:
            if isinstance(v, Reject):
                raise v
            verify(*v, by_id)
            ok, why = True, "hashedid8=%s" % hashed_id8(v[0]).hex()
        except Reject as e:
            ok, why = False, str(e)
        expected = path in good or path in ieee
        status = "OK" if ok == expected else "FAIL"
        if ok != expected:
            failures += 1
        print("%s %s %s %s" % (status, "verified" if ok else "rejected", path, why))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
