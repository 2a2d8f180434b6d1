#!/usr/bin/env python3
"""An ITS station built only from the ETSI TS 102 941 / TS 103 097 / IEEE
1609.2 ASN.1 modules (asn1tools) and Python cryptography: no trustca code.

Usage: etsi_station.py CTL_URL ROOT.oer CANONICAL_SECRET_HEX ITS_ID OUT_DIR [--ignore-crl]
                       [--ectl ECTL_URL TLM.oer]

With --ectl the station holds only the trust list manager's certificate:
it downloads the TLM's European CTL, checks the TLM's signature and that
every root CA on it is self-signed, and takes the root whose HashedId8
CTL_URL names from it (ROOT.oer is then ignored; "-" will do).

Downloads the root's CTL and CRL (getctl/getcrl), checks the root's
signatures and that the EA and AA certificates in the CTL are issued by the
root, and takes the EA, the AA and their URLs from it; if the CTL lists no
EA or AA, or the CRL revokes the one it lists, it refuses (prints
{"refused": "aa revoked"} and the like) and asks nothing; with
--ignore-crl it plays a station that does not read the CRL (to test the
authorities' own refusals) and goes on. Then it
enrols with the canonical key (EnrolmentRequestMessage: InnerEcRequest
signed by the new key for proof of possession, signed again by the
canonical key with signer self, encrypted to the EA's encryptionKey),
checks the EA's signed, pskRecipInfo-encrypted answer and the enrolment
credential; then asks the AA for a ticket (AuthorizationRequestMessage:
keyTag = HMAC over the ticket's verification key, ecSignature over the
SharedAtRequest by the credential, encrypted to the EA) and checks the
AA's answer and the ticket. Writes ec.oer and at.oer to OUT_DIR and prints
one JSON line with what it found. The ECIES key wrapping is the independent
implementation in v2x/tests/ecies_vectors.py.
"""

import glob
import hashlib
import hmac
import json
import os
import sys
import time
import urllib.request

import asn1tools
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    Prehashed, decode_dss_signature, encode_dss_signature)
from cryptography.hazmat.primitives.ciphers.aead import AESCCM

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "v2x", "tests"))
import ecies_vectors as ecies  # noqa: E402

PSID_SCR = 623
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
# TAI - UTC since 2017 is 37 s, 32 s of it before 2004.
TAI_2004_UNIX = 1072915200


def compile_spec():
    d = ecies.asn1_dir()
    files = [os.path.join(d, f) for f in
             ["IEEE1609dot2BaseTypes.asn", "IEEE1609dot2.asn", "TS103097v131.asn"]]
    files += sorted(glob.glob(os.path.join(d, "TS102941v131-*.asn")))
    return asn1tools.compile_files(files, "oer")


SPEC = compile_spec()
sha256 = lambda b: hashlib.sha256(b).digest()  # noqa: E731


def time64():
    return (int(time.time()) - TAI_2004_UNIX + 5) * 1_000_000


def digest(tbs, signer):
    return sha256(sha256(tbs) + sha256(signer))


def sign(tbs_value, key, signer_id, signer_cert):
    """Ieee1609Dot2Data signedData over tbs_value, value form."""
    tbs = SPEC.encode("ToBeSignedData", tbs_value)
    der = key.sign(digest(tbs, signer_cert), ec.ECDSA(Prehashed(hashes.SHA256())))
    r, s = decode_dss_signature(der)
    return {"protocolVersion": 3, "content": ("signedData", {
        "hashId": "sha256", "tbsData": tbs_value, "signer": signer_id,
        "signature": ("ecdsaNistP256Signature", {
            "rSig": ("x-only", r.to_bytes(32, "big")), "sSig": s.to_bytes(32, "big")})})}


def signed_data(payload, key, signer_id=("self", None), signer_cert=b""):
    return sign({"payload": {"data": {"protocolVersion": 3, "content": ("unsecuredData", payload)}},
                 "headerInfo": {"psid": PSID_SCR, "generationTime": time64()}},
                key, signer_id, signer_cert)


def verify_signed(data_value, cert_bytes, psid=PSID_SCR):
    """Checks a signedData by the certificate cert_bytes (signer digest or
    certificate); returns the unsecuredData octets."""
    kind, sd = data_value["content"]
    assert kind == "signedData", kind
    signer_kind, signer = sd["signer"]
    if signer_kind == "digest":
        assert signer == ecies.hashed_id8(cert_bytes), "signer digest"
    else:
        assert signer_kind == "certificate" and SPEC.encode("EtsiTs103097Certificate", signer[0]) == cert_bytes
    assert sd["tbsData"]["headerInfo"]["psid"] == psid
    cert = SPEC.decode("EtsiTs103097Certificate", cert_bytes)
    check_signature(SPEC.encode("ToBeSignedData", sd["tbsData"]), sd["signature"], cert, cert_bytes)
    return sd["tbsData"]["payload"]["data"]["content"][1]


def verification_key(cert):
    _, (_, point) = cert["toBeSigned"]["verifyKeyIndicator"]
    return ecies.point_from_asn1(point)


def check_signature(tbs, signature, issuer, issuer_bytes):
    _, sig = signature
    r = int.from_bytes(sig["rSig"][1], "big")
    s = int.from_bytes(sig["sSig"], "big")
    verification_key(issuer).verify(encode_dss_signature(r, s), digest(tbs, issuer_bytes),
                                    ec.ECDSA(Prehashed(hashes.SHA256())))


def check_issued(cert_value, issuer_bytes):
    cert_bytes = SPEC.encode("EtsiTs103097Certificate", cert_value)
    assert cert_value["issuer"] == ("sha256AndDigest", ecies.hashed_id8(issuer_bytes))
    tbs = SPEC.encode("ToBeSignedCertificate", cert_value["toBeSigned"])
    check_signature(tbs, cert_value["signature"], SPEC.decode("EtsiTs103097Certificate", issuer_bytes),
                    issuer_bytes)
    return cert_bytes


def encrypt_to(cert_bytes, plaintext):
    """Ieee1609Dot2Data encryptedData to the certificate's encryptionKey;
    returns (value, aes_key)."""
    cert = SPEC.decode("EtsiTs103097Certificate", cert_bytes)
    _, point = cert["toBeSigned"]["encryptionKey"]["publicKey"]
    aes_key = os.urandom(16)
    while True:
        eph = os.urandom(32)
        if 0 < int.from_bytes(eph, "big") < P256_ORDER:
            break
    coer, _ = ecies.encrypt(SPEC, ecies.point_from_asn1(point), ecies.hashed_id8(cert_bytes),
                            "certRecipInfo", sha256(cert_bytes), plaintext, eph, aes_key,
                            os.urandom(12))
    return {"protocolVersion": 3, "content": ("encryptedData", SPEC.decode("EncryptedData", coer))}, aes_key


def open_answer(answer, aes_key):
    value = SPEC.decode("Ieee1609Dot2Data", answer)
    assert SPEC.encode("Ieee1609Dot2Data", value) == answer, "answer not canonical"
    kind, enc = value["content"]
    assert kind == "encryptedData", kind
    psk_id = ecies.hashed_id8(SPEC.encode("SymmetricEncryptionKey", ("aes128Ccm", aes_key)))
    assert enc["recipients"] == [("pskRecipInfo", psk_id)], enc["recipients"]
    _, ct = enc["ciphertext"]
    return AESCCM(aes_key, tag_length=16).decrypt(ct["nonce"], ct["ccmCiphertext"], None)


def get(url):
    with urllib.request.urlopen(url, timeout=30) as resp:
        return resp.read()


def trust_lists(ctl_url, root_bytes, ignore_crl=False):
    """The EA and AA (certificate, URL) from the root's CTL, checked."""
    ctl = SPEC.decode("RcaCertificateTrustListMessage", get(ctl_url))
    data = SPEC.decode("EtsiTs102941Data", verify_signed(ctl, root_bytes, 624))
    kind, ctl = data["content"]
    assert kind == "certificateTrustListRca" and ctl["isFullCtl"], kind
    crl_url = ctl_url.replace("/getctl/", "/getcrl/")
    crl = SPEC.decode("CertificateRevocationListMessage", get(crl_url))
    kind, crl = SPEC.decode("EtsiTs102941Data", verify_signed(crl, root_bytes, 622))["content"]
    assert kind == "certificateRevocationList", kind
    found = {}
    for command, entry in ctl["ctlCommands"]:
        assert command == "add", command
        kind, value = entry
        if kind == "ea":
            cert = check_issued(value["eaCertificate"], root_bytes)
            found["ea"] = (cert, value["itsAccessPoint"])
        elif kind == "aa":
            cert = check_issued(value["aaCertificate"], root_bytes)
            found["aa"] = (cert, value["accessPoint"])
    for kind in ("ea", "aa"):
        if kind not in found:
            return "no " + kind
        if not ignore_crl and ecies.hashed_id8(found[kind][0]) in crl["entries"]:
            return kind + " revoked"
    return found["ea"], found["aa"], len(crl["entries"])


def ectl_roots(ectl_url, tlm_bytes):
    """The root CA certificates the TLM's ECTL recognises, each checked."""
    ectl = SPEC.decode("TlmCertificateTrustListMessage", get(ectl_url))
    data = SPEC.decode("EtsiTs102941Data", verify_signed(ectl, tlm_bytes, 624))
    kind, ctl = data["content"]
    assert kind == "certificateTrustListTlm" and ctl["isFullCtl"], kind
    roots = []
    for command, entry in ctl["ctlCommands"]:
        assert command == "add", command
        kind, value = entry
        assert kind in ("rca", "dc", "tlm"), kind
        if kind == "rca":
            cert = value["selfsignedRootCa"]
            assert cert["issuer"] == ("self", "sha256"), cert["issuer"]
            tbs = SPEC.encode("ToBeSignedCertificate", cert["toBeSigned"])
            check_signature(tbs, cert["signature"], cert, b"")
            roots.append(SPEC.encode("EtsiTs103097Certificate", cert))
    return roots


def post(url, body):
    req = urllib.request.Request(url, data=body, method="POST",
                                 headers={"Content-Type": "application/x-its-request"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.headers["Content-Type"] == "application/x-its-response"
        return resp.read()


def public_point(key):
    return ("ecdsaNistP256", ecies.point_to_asn1(key.public_key()))


def enrol(ea_url, ea_bytes, canonical, its_id):
    ec_key = ec.generate_private_key(ec.SECP256R1())
    inner = {"itsId": its_id, "certificateFormat": 1,
             "publicKeys": {"verificationKey": public_point(ec_key)},
             "requestedSubjectAttributes": {"appPermissions": [{"psid": 36}]}}
    pop = signed_data(SPEC.encode("InnerEcRequest", inner), ec_key)
    data = SPEC.encode("EtsiTs102941Data", {"version": 1, "content": ("enrolmentRequest", pop)})
    outer = SPEC.encode("Ieee1609Dot2Data", signed_data(data, canonical))
    message, aes_key = encrypt_to(ea_bytes, outer)
    message = SPEC.encode("EnrolmentRequestMessage", message)
    answer = open_answer(post(ea_url, message), aes_key)
    data = verify_signed(SPEC.decode("Ieee1609Dot2Data", answer), ea_bytes)
    version, (kind, response) = (lambda v: (v["version"], v["content"]))(SPEC.decode("EtsiTs102941Data", data))
    assert version == 1 and kind == "enrolmentResponse", kind
    assert response["requestHash"] == sha256(message)[:16], "requestHash"
    return response, ec_key


def authorize(aa_url, ea_bytes, aa_bytes, ec_bytes, ec_key):
    at_key = ec.generate_private_key(ec.SECP256R1())
    hmac_key = os.urandom(32)
    key_tag = hmac.new(hmac_key, SPEC.encode("PublicVerificationKey", public_point(at_key)),
                       hashlib.sha256).digest()[:16]
    shared = {"eaId": ecies.hashed_id8(ea_bytes), "keyTag": key_tag, "certificateFormat": 1,
              "requestedSubjectAttributes": {"appPermissions": [{"psid": 36}]}}
    ec_signature = sign({"payload": {"extDataHash": ("sha256HashedData", sha256(SPEC.encode("SharedAtRequest", shared)))},
                         "headerInfo": {"psid": PSID_SCR, "generationTime": time64()}},
                        ec_key, ("digest", ecies.hashed_id8(ec_bytes)), ec_bytes)
    encrypted_sig, _ = encrypt_to(ea_bytes, SPEC.encode("Ieee1609Dot2Data", ec_signature))
    inner = {"publicKeys": {"verificationKey": public_point(at_key)}, "hmacKey": hmac_key,
             "sharedAtRequest": shared, "ecSignature": ("encryptedEcSignature", encrypted_sig)}
    data = SPEC.encode("EtsiTs102941Data", {"version": 1, "content": ("authorizationRequest", inner)})
    unsecured = SPEC.encode("Ieee1609Dot2Data", {"protocolVersion": 3, "content": ("unsecuredData", data)})
    message, aes_key = encrypt_to(aa_bytes, unsecured)
    message = SPEC.encode("AuthorizationRequestMessage", message)
    answer = open_answer(post(aa_url, message), aes_key)
    data = verify_signed(SPEC.decode("Ieee1609Dot2Data", answer), aa_bytes)
    content = SPEC.decode("EtsiTs102941Data", data)["content"]
    assert content[0] == "authorizationResponse", content[0]
    assert content[1]["requestHash"] == sha256(message)[:16], "requestHash"
    return content[1], at_key


def main():
    ctl_url, root_path, secret_hex, its_id, out = sys.argv[1:6]
    extra = sys.argv[6:]
    if "--ectl" in extra:
        at = extra.index("--ectl")
        roots = ectl_roots(extra[at + 1], open(extra[at + 2], "rb").read())
        wanted = ctl_url.rstrip("/").rsplit("/", 1)[1].lower()
        chosen = [r for r in roots if ecies.hashed_id8(r).hex() == wanted]
        if not chosen:
            print(json.dumps({"refused": "root not on the ECTL", "ectl_roots": len(roots)}))
            return
        root_bytes = chosen[0]
    else:
        roots = None
        root_bytes = open(root_path, "rb").read()
    lists = trust_lists(ctl_url, root_bytes, "--ignore-crl" in extra)
    if isinstance(lists, str):
        # A station uses no authority the CTL leaves out or the CRL lists.
        print(json.dumps({"refused": lists}))
        return
    (ea_bytes, ea_url), (aa_bytes, aa_url), revoked = lists
    canonical = ecies.private_key(bytes.fromhex(secret_hex))
    response, ec_key = enrol(ea_url, ea_bytes, canonical, its_id.encode())
    result = {"enrolment": response["responseCode"], "crl_entries": revoked}
    if roots is not None:
        result["ectl_roots"] = len(roots)
    if response["responseCode"] != "ok":
        print(json.dumps(result))
        return
    ec_value = response["certificate"]
    ec_bytes = check_issued(ec_value, ea_bytes)
    assert ec_value["toBeSigned"]["verifyKeyIndicator"][1] == public_point(ec_key), "EC key"
    result["ec_level"] = ec_value["toBeSigned"]["assuranceLevel"][0] >> 5
    result["ec_id"] = ec_value["toBeSigned"]["id"][0]
    open(os.path.join(out, "ec.oer"), "wb").write(ec_bytes)
    response, at_key = authorize(aa_url, ea_bytes, aa_bytes, ec_bytes, ec_key)
    result["authorization"] = response["responseCode"]
    if response["responseCode"] == "ok":
        at = response["certificate"]
        at_bytes = check_issued(at, aa_bytes)
        assert at["toBeSigned"]["verifyKeyIndicator"][1] == public_point(at_key), "AT key"
        tbs = at["toBeSigned"]
        result.update(at_level=tbs["assuranceLevel"][0] >> 5, at_id=tbs["id"][0],
                      at_craca=tbs["cracaId"].hex(), at_crl_series=tbs["crlSeries"],
                      at_psids=[p["psid"] for p in tbs["appPermissions"]],
                      at_hours=tbs["validityPeriod"]["duration"][1])
        open(os.path.join(out, "at.oer"), "wb").write(at_bytes)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
