#!/usr/bin/env python3
"""Independent check of a hash-based IEEE 1609.2 CRL (fullHashCrl) as a
vehicle or RA would do it, with no trustca code: asn1tools compiled from the
published IEEE 1609.2-2022 modules (shared/spec/v2x-asn1/ieee1609.2-2022/:
Ieee1609Dot2Crl SecuredCrl, Ieee1609Dot2CrlBaseTypes CrlContents, whose
HashBasedRevocationInfo is extensible) and `cryptography` for the signature.
The CRL signer's CrlSsp (not in the 2022 folder) is decoded with the
1609.2 CRL SSP module of shared/spec/v2x-asn1/ieee1609dot2dot1/, and the
certificates with the base modules, through dot1_client.py's codec.

    hash_crl_check.py --url https://host:port/v2x/crl/3 --ca-pem ca.pem \
        --root v2x-root.oer --series 3 [--listed ec.oer ...] [--not-listed x.oer ...]
    hash_crl_check.py --file crl.oer --root v2x-root.oer --series 2 ...

Checks, each a failure when it does not hold: the body is canonical COER
(asn1tools' re-encoding is byte-identical); SecuredCrl is signedData, hash
sha256, header psid 256 only, signer one certificate verified under the root
(the CRACA: crlCraca = HashedId8(root)); the signature over the re-encoded
ToBeSignedData under IEEE 1609.2 5.3.1; the signer's appPermissions hold PSID
256 with a CrlSsp (version 1, issuerIsCraca) permitting the series; CrlContents
version 1, crlSeries = --series, issueDate < nextCrl, typeSpecific
fullHashCrl; each --listed certificate has an entry with id =
HashedId10 (last 10 octets of SHA-256 of its COER) and expiry = the end of its
validity; no --not-listed certificate has one. Prints JSON; exit 1 on failure.
"""

import argparse
import glob
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import dot1_client as d1  # noqa: E402  (the independent client's codec and crypto)

CRL_PSID = 256


class Spec2022:
    """asn1tools over the IEEE 1609.2-2022 base and CRL modules only."""

    def __init__(self):
        d = d1.asn1_dir()
        sys.path.insert(0, d)
        import compile_check  # noqa: E402  (shared helper, not trustca code)
        files = sorted(glob.glob(os.path.join(d, "ieee1609.2-2022", "*.asn")))
        if not files:
            raise d1.Fail("no IEEE 1609.2-2022 modules in %s" % d)
        self.spec, _ = compile_check.load_spec(files)

    def t(self, module, name):
        return self.spec.modules[module][name]

    def dec(self, module, name, data):
        try:
            value = self.t(module, name).decode(data)
        except Exception as e:  # asn1tools raises several error types
            raise d1.Fail("%s does not decode: %s" % (name, e))
        if self.t(module, name).encode(value) != data:
            raise d1.Fail("%s: re-encoding differs (not canonical COER or trailing data)" % name)
        return value


def validity_end(cert):
    v = cert.tbs["validityPeriod"]
    return v["start"] + d1.duration_seconds(v["duration"])


def check(raw, root_path, series, listed, not_listed):
    codec = d1.Codec()
    s22 = Spec2022()
    out = {"ok": False, "failures": []}
    fail = out["failures"].append
    root = d1.load_root(codec, root_path)
    secured = s22.dec("Ieee1609Dot2Crl", "SecuredCrl", raw)
    if secured["protocolVersion"] != 3 or secured["content"][0] != "signedData":
        raise d1.Fail("SecuredCrl is not version 3 signedData")
    sd = secured["content"][1]
    if sd["hashId"] != "sha256":
        fail("hashId is not sha256")
    header = sd["tbsData"]["headerInfo"]
    if header != {"psid": CRL_PSID}:
        fail("headerInfo is not psid 256 alone: %r" % (header,))
    kind, certs = sd["signer"]
    if kind != "certificate" or len(certs) != 1:
        raise d1.Fail("the signer is not one certificate")
    signer_raw = s22.t("Ieee1609Dot2", "Certificate").encode(certs[0])
    signer = d1.Cert(codec, signer_raw)
    d1.verify_cert(signer, root)
    tbs_raw = s22.t("Ieee1609Dot2", "ToBeSignedData").encode(sd["tbsData"])
    if not d1.verify(signer.explicit_key(), sd["signature"], tbs_raw, signer.raw):
        raise d1.Fail("the CRL signature does not verify")
    out["signature"] = "verified"
    ssp = None
    for p in signer.tbs.get("appPermissions") or []:
        if p["psid"] == CRL_PSID and p.get("ssp") and p["ssp"][0] == "opaque":
            ssp = codec.dec("CrlSsp", p["ssp"][1])
    if ssp is None:
        raise d1.Fail("the CRL signer has no CrlSsp under PSID 256")
    out["signer_crls"] = list(ssp["crls"])
    data = sd["tbsData"]["payload"].get("data")
    if not data or data["content"][0] != "unsecuredData":
        raise d1.Fail("the payload is not unsecuredData")
    contents = s22.dec("Ieee1609Dot2CrlBaseTypes", "CrlContents", data["content"][1])
    out["crlSeries"] = contents["crlSeries"]
    if contents["version"] != 1:
        fail("CrlContents version %r" % contents["version"])
    if contents["crlSeries"] != series:
        fail("crlSeries %d, expected %d" % (contents["crlSeries"], series))
    if series not in ssp["crls"] or ssp["associatedCraca"] != "issuerIsCraca":
        fail("the signer's CrlSsp %r does not permit series %d with the issuer as CRACA" % (ssp, series))
    if contents["crlCraca"] != root.id8:
        fail("crlCraca %s is not the root %s" % (contents["crlCraca"].hex(), root.id8.hex()))
    if not contents["issueDate"] < contents["nextCrl"]:
        fail("nextCrl is not after issueDate")
    kind, body = contents["typeSpecific"]
    if kind != "fullHashCrl":
        raise d1.Fail("typeSpecific is %s, not fullHashCrl" % kind)
    entries = {e["id"]: e["expiry"] for e in body["entries"]}
    out["crlSerial"] = body["crlSerial"]
    out["entries"] = sorted(i.hex() for i in entries)
    out["listed"] = {}
    for path in listed:
        c = d1.Cert(codec, open(path, "rb").read())
        id10 = d1.sha256(c.raw)[-10:]
        out["listed"][os.path.basename(path)] = id10.hex()
        if id10 not in entries:
            fail("%s (HashedId10 %s) is not listed" % (path, id10.hex()))
        elif entries[id10] != validity_end(c):
            fail("%s is listed with expiry %d, its validity ends %d" % (path, entries[id10], validity_end(c)))
    for path in not_listed:
        c = d1.Cert(codec, open(path, "rb").read())
        if d1.sha256(c.raw)[-10:] in entries:
            fail("%s is listed but should not be" % path)
    out["ok"] = not out["failures"]
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description="Independent check of an IEEE 1609.2 hash CRL.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--url", help="GET the CRL here (HTTPS)")
    src.add_argument("--file", help="read the CRL from this file")
    p.add_argument("--ca-pem", help="PEM bundle for the server's TLS certificate (with --url)")
    p.add_argument("--root", required=True, help="COER V2X root certificate (the CRACA)")
    p.add_argument("--series", type=int, required=True, help="the expected crlSeries")
    p.add_argument("--listed", action="append", default=[], help="COER certificate that must be listed")
    p.add_argument("--not-listed", action="append", default=[], help="COER certificate that must not be")
    args = p.parse_args(argv)
    try:
        if args.url:
            resp = d1.http().get(args.url, verify=args.ca_pem, timeout=30)
            raw = d1.expect_ok(resp, "GET " + args.url)
            ctype = resp.headers.get("Content-Type", "")
            if ctype != "application/octet-stream":
                raise d1.Fail("Content-Type %r, expected application/octet-stream" % ctype)
        else:
            raw = open(args.file, "rb").read()
        out = check(raw, args.root, args.series, args.listed, args.not_listed)
    except (d1.Fail, OSError) as e:
        print(json.dumps({"ok": False, "failures": [str(e)]}))
        print("hash_crl_check: %s" % e, file=sys.stderr)
        return 1
    print(json.dumps(out, indent=1, sort_keys=True))
    return 0 if out["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
