#!/usr/bin/env python3
"""Independent check of a signed trust snapshot (docs/trust-snapshot.asn1).

asn1tools compiles the published module and decodes the file (DER); the
signature is checked with `cryptography` over the body's DER exactly as
received, by the signer certificate, which must be signed by the root.
No trustca code is involved. Prints a JSON summary for the Rust test to
compare with its own reading.

Usage: snapshot_check.py SNAPSHOT_DER ROOT_PEM ASN1_MODULE
The module imports Certificate and CertificateList from PKIX1Explicit88,
which asn1tools does not ship: the IMPORTS clause is replaced by
`Certificate ::= ANY` and `CertificateList ::= ANY` (certificates are then
parsed by `cryptography`). That is the only change.
"""
import json
import re
import sys

import asn1tools
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

snapshot_path, root_path, module_path = sys.argv[1:4]
text = open(module_path, encoding="utf-8").read()
text = re.sub(r"IMPORTS.*?;", "", text, count=1, flags=re.S)
text = text.replace("BEGIN\n", "BEGIN\nCertificate ::= ANY\nCertificateList ::= ANY\n", 1)
spec = asn1tools.compile_string(text, "der")

data = open(snapshot_path, "rb").read()


def tlv(buf, at):
    """(start of content, end) of the DER TLV at `at`."""
    length = buf[at + 1]
    start = at + 2
    if length & 0x80:
        n = length & 0x7F
        length = int.from_bytes(buf[start:start + n], "big")
        start += n
    return start, start + length


outer_start, outer_end = tlv(data, 0)
assert outer_end == len(data), "trailing bytes after the signed snapshot"
_, body_end = tlv(data, outer_start)
body_der = data[outer_start:body_end]

signed = spec.decode("SignedTrustSnapshot", data)
body = signed["body"]
assert spec.decode("TrustSnapshot", body_der) == body

root = x509.load_pem_x509_certificate(open(root_path, "rb").read())
chain = [x509.load_der_x509_certificate(bytes(c)) for c in signed["signerChain"]]
leaf = chain[0]
root.public_key().verify(
    leaf.signature, leaf.tbs_certificate_bytes, ec.ECDSA(leaf.signature_hash_algorithm)
)
assert leaf.issuer == root.subject, "the signer is not issued by the root"
leaf.public_key().verify(bytes(signed["signature"]), body_der, ec.ECDSA(hashes.SHA256()))

tampered = bytearray(body_der)
tampered[len(tampered) // 2] ^= 1
try:
    leaf.public_key().verify(bytes(signed["signature"]), bytes(tampered), ec.ECDSA(hashes.SHA256()))
    sys.exit("a tampered body verified")
except Exception:
    pass

print(json.dumps({
    "serial": body["serial"],
    "scope": body.get("scope"),
    "sectors": body["sectors"],
    "cooperation_version": body["cooperationPolicy"]["version"],
    "models": [
        [m["sector"], m["manufacturer"], m["model"], m["firmware"], m["level"], m["status"]]
        for m in body["models"]
    ],
    "devices": [[d["identity"], d["level"], d["status"]] for d in body["devices"]],
    "revoked": len(body["revokedCertificates"]),
    "blocked_keys": [k.hex() for k in body["blockedKeys"]],
    "signer": leaf.subject.rfc4514_string(),
}))
