#!/usr/bin/env python3
"""Independent check of what the separated V2X authorities (trustca-scms)
produce: authorization tickets, encrypted responses and the linkage CRL.

Usage: independent.py MANIFEST.json

Uses only Python asn1tools (compiled, unmodified, from the published modules
IEEE1609dot2BaseTypes.asn, IEEE1609dot2.asn, TS103097v131.asn in
$V2X_ASN1_DIR, default <repo>/../shared/spec/v2x-asn1, OER codec),
cryptography, hashlib, hmac, json and tomllib; for ECIES it imports
v2x/tests/ecies_vectors.py (itself only cryptography, hashlib, hmac and
asn1tools). No trustca code.

MANIFEST.json (written by independent.rs): {"policy": v2x-tickets.toml,
"root", "pca": COER certificates, "crl": linkage CRL, "tickets": [{"path",
"vehicle", "level", "period", "j"}], "responses": [{"path", "cocoon_secret"
(hex), "ticket" (index into tickets)}], "revoked": {"vehicle",
"from_period"}}. The vehicle/level/period/j of each ticket are the test's
ground truth (what the vehicle asked for); everything else is recomputed
here.

Checks:

* root: decodes as IEEE 1609.2 Certificate, re-encodes byte-identically,
  issuer self(sha256), signature verifies with its own key (signer = empty);
  PCA: issuer sha256AndDigest = HashedId8(root COER), signature verifies
  under the root's key.
* every ticket: decodes as Certificate (OER), re-encodes byte-identically;
  version 3, explicit, issuer sha256AndDigest = low 8 octets of SHA-256 of
  the PCA's COER; id linkageData with iCert = period, a 9-octet linkage
  value and no group linkage value; cracaId = HashedId3 of the root (the
  CRACA); crlSeries = the policy's; validityPeriod = start of the period
  (policy epoch + period x period_hours) minus overlap, as Time32 (TAI
  seconds since 2004-01-01, 5 leap seconds since then), duration
  hours(period_hours + 2 x overlap), except that it must lie within the
  PCA's validity (start no earlier, end no later; a clamped start is the
  PCA's start);
  assuranceLevel octet = level << 5; appPermissions = the policy's table for
  the level (per PSID the row with the highest min_level <= level), in PSID
  order, bitmapSsp as in the policy; verification key ecdsaNistP256 in
  compressed form; no other fields; ECDSA P-256 signature over
  SHA-256(SHA-256(tbs as received) || SHA-256(PCA COER)) (IEEE 1609.2
  5.3.1) with the PCA's key; linkage values and keys all distinct.
* every response: an IEEE 1609.2.1 AcaEeCertResponsePrivateSpdu (decoded
  with the 1609.2.1 modules through dot1_client.py, itself independent of
  trustca): signed data, psid 35, signed by the PCA certificate, signature
  verified; its payload an encryptedData with one rekRecipInfo to HashedId8
  of the cocoon public key (derived here from the cocoon private key); ECIES
  P-256 + AES-128-CCM decrypts (P1 = SHA-256 of the empty string) to an
  ScmsPdu aca-ee acaEeCertResponse whose certificate is byte-identical to
  the ticket written for it; (cocoon private + privateKeyInfo) x G is the
  ticket's verification key.
* linkage CRL: decoded with asn1tools as `SecuredCrl` (IEEE 1609.2 CRL
  modules in ieee1609dot2dot1/), re-encoded byte-identically, psid 256,
  payload `CrlContents` (also re-encoded identically) with fullLinkedCrl;
  series = policy; crlCraca = HashedId8(root); signer = one certificate,
  issued by the root (signature verified), whose appPermissions give PSID
  256 an opaque `CrlSsp` (decoded with asn1tools) with issuerIsCraca
  listing the series; the CRL's signature verifies under the 1609.2 rule
  with that certificate's key over tbsData as received (equal to
  asn1tools' encoding); jmax = certificates_per_period; for every entry
  (seeds for period iRev) the linkage values lv(i, j) are
  recomputed from the two released seeds with the CAMP construction
  (ls(i) = SHA-256(BE16(la_id) || ls(i-1) || 00 x 14)[0..16]; plv =
  (AES-128_{ls(i)}(BE16(la_id) || BE32(j) || 00 x 10) XOR that block)[0..9];
  lv = plv1 XOR plv2) for every period from the release period to the last
  ticket period and j < certificates_per_period; exactly the revoked
  vehicle's tickets of periods >= the revocation period must match.

Prints one JSON object (counts and a list of failures); exit status 1 when
any check failed.
"""

import hashlib
import json
import os
import sys
import tomllib

import asn1tools
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, encode_dss_signature
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "..", "v2x", "tests"))
import ecies_vectors  # noqa: E402  (independent ECIES, no trustca code)

MODULES = ["IEEE1609dot2BaseTypes.asn", "IEEE1609dot2.asn", "TS103097v131.asn"]
N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
# 2004-01-01T00:00:00Z; leap seconds inserted since: end of 2005, 2008,
# mid 2012, mid 2015, end of 2016 (none since).
TIME32_EPOCH_UNIX = 1072915200
LEAPS_SINCE_2004 = 5
SIG_LEN = 66  # ecdsaNistP256Signature: choice tag, rSig (tag + 32), sSig (32)


def asn1_dir():
    d = os.environ.get("V2X_ASN1_DIR")
    if d:
        return d
    repo = os.path.dirname(os.path.dirname(HERE))
    return os.path.join(os.path.dirname(repo), "shared", "spec", "v2x-asn1")


def sha256(b):
    return hashlib.sha256(b).digest()


def hashed_id8(b):
    return sha256(b)[-8:]


class Fail(Exception):
    pass


def decode_cert(spec, raw):
    """(decoded, tbs bytes as received) of a COER certificate."""
    try:
        c = spec.decode("Certificate", raw)
    except Exception as e:  # asn1tools raises several error types
        raise Fail("asn1tools decode failed: %s" % e)
    if spec.encode("Certificate", c) != raw:
        raise Fail("re-encoding with asn1tools differs (not canonical)")
    if c["version"] != 3:
        raise Fail("version %r" % c["version"])
    if c["type"] != "explicit":
        raise Fail("type %r" % c["type"])
    if "signature" not in c or c["signature"][0] != "ecdsaNistP256Signature":
        raise Fail("signature absent or not ecdsaNistP256Signature")
    # preamble, version, type, then the issuer choice: self (tag + hash
    # algorithm) or a digest (tag + 8 octets).
    header = 5 if c["issuer"][0] == "self" else 12
    tbs = raw[header : len(raw) - SIG_LEN]
    if spec.encode("ToBeSignedCertificate", c["toBeSigned"]) != tbs:
        raise Fail("toBeSigned is not the octets between issuer and signature")
    return c, tbs


def public_key(c):
    vki = c["toBeSigned"]["verifyKeyIndicator"]
    if vki[0] != "verificationKey" or vki[1][0] != "ecdsaNistP256":
        raise Fail("verifyKeyIndicator %r" % (vki,))
    return ecies_vectors.point_from_asn1(vki[1][1])


def verify_ieee(key, tbs, signer_coer, sig):
    """ECDSA over SHA-256(SHA-256(tbs) || SHA-256(signer COER))."""
    e = sha256(sha256(tbs) + sha256(signer_coer))
    try:
        key.verify(sig, e, ec.ECDSA(Prehashed(hashes.SHA256())))
    except InvalidSignature:
        raise Fail("signature does not verify")


def cert_signature(c):
    sig = c["signature"][1]
    r_kind, r = sig["rSig"]
    if r_kind not in ("x-only", "compressed-y-0", "compressed-y-1"):
        raise Fail("rSig form %s" % r_kind)
    return encode_dss_signature(int.from_bytes(r, "big"), int.from_bytes(sig["sSig"], "big"))


def time32(unix):
    return unix - TIME32_EPOCH_UNIX + LEAPS_SINCE_2004


def expected_permissions(policy, level):
    chosen = {}
    for row in policy["permissions"]:
        if row["min_level"] > level:
            continue
        prev = chosen.get(row["psid"])
        if prev is None or row["min_level"] > prev["min_level"]:
            chosen[row["psid"]] = row
    out = []
    for psid in sorted(chosen):
        p = {"psid": psid}
        ssp = chosen[psid].get("ssp")
        if ssp is not None:
            p["ssp"] = ("bitmapSsp", bytes.fromhex(ssp.replace(" ", "")))
        out.append(p)
    return out


def compressed(pub):
    return pub.public_bytes(Encoding.X962, PublicFormat.CompressedPoint)


def duration_seconds(d):
    unit, v = d
    return v * {"microseconds": 0, "milliseconds": 0, "seconds": 1, "minutes": 60,
                "hours": 3600, "sixtyHours": 216000, "years": 31556952}[unit]


def within(inner, outer):
    end = lambda v: v["start"] + duration_seconds(v["duration"])
    return inner["start"] >= outer["start"] and end(inner) <= end(outer)


def check_ticket(spec, policy, t, raw, pca_raw, pca_key, ctx):
    c, tbs = decode_cert(spec, raw)
    if c["issuer"] != ("sha256AndDigest", hashed_id8(pca_raw)):
        raise Fail("issuer %r is not the PCA's HashedId8" % (c["issuer"],))
    b = c["toBeSigned"]
    allowed = {"id", "cracaId", "crlSeries", "validityPeriod", "assuranceLevel",
               "appPermissions", "verifyKeyIndicator"}
    if set(b) - allowed:
        raise Fail("unexpected fields %s" % sorted(set(b) - allowed))
    kind, link = b["id"]
    if kind != "linkageData":
        raise Fail("id is %s" % kind)
    if link["iCert"] != t["period"]:
        raise Fail("iCert %d, period %d" % (link["iCert"], t["period"]))
    if len(link["linkage-value"]) != 9 or "group-linkage-value" in link:
        raise Fail("linkage data %r" % (link,))
    if b["cracaId"] != ctx["craca_id"]:
        raise Fail("cracaId %r is not the root's HashedId3" % b["cracaId"])
    if b["crlSeries"] != policy["crl_series"]:
        raise Fail("crlSeries %d" % b["crlSeries"])
    start = policy["epoch_unix"] + t["period"] * policy["period_hours"] * 3600 \
        - policy["overlap_hours"] * 3600
    want = {"start": time32(start),
            "duration": ("hours", policy["period_hours"] + 2 * policy["overlap_hours"])}
    got = b["validityPeriod"]
    if not within(got, ctx["pca_validity"]):
        raise Fail("validity %r not within the PCA's" % (got,))
    if got != want:
        clamped_start = max(want["start"], ctx["pca_validity"]["start"])
        if got["start"] != clamped_start or not within(got, want):
            raise Fail("validity %r, expected %r (clamped to the PCA's)" % (got, want))
    if b.get("assuranceLevel") != bytes([t["level"] << 5]):
        raise Fail("assuranceLevel %r for level %d" % (b.get("assuranceLevel"), t["level"]))
    want = expected_permissions(policy, t["level"])
    if b.get("appPermissions") != want:
        raise Fail("appPermissions %r, expected %r" % (b.get("appPermissions"), want))
    point = b["verifyKeyIndicator"][1][1]
    if point[0] not in ("compressed-y-0", "compressed-y-1"):
        raise Fail("verification key in form %s" % point[0])
    key = public_key(c)
    verify_ieee(pca_key, tbs, pca_raw, cert_signature(c))
    return c, key, (link["iCert"], link["linkage-value"])


def check_response(r, tickets_raw, ticket_keys, pca_raw):
    import dot1_client as d1  # noqa: E402  (the independent 1609.2.1 client)
    codec = getattr(d1.Codec, "shared", None) or d1.Codec()
    b = int.from_bytes(r["cocoon_secret_bytes"], "big")
    raw = open(r["path"], "rb").read()
    try:
        payload, _ = d1.open_signed_spdu(codec, raw, d1.Cert(codec, pca_raw))
        enc = codec.dec("Ieee1609Dot2Data", payload)
        if enc["content"][0] != "encryptedData":
            raise Fail("payload is not encryptedData")
        recips = enc["content"][1]["recipients"]
        if len(recips) != 1 or recips[0][0] != "rekRecipInfo":
            raise Fail("expected one rekRecipInfo recipient")
        rid = d1.response_key_id(codec, d1.private_to_point(b))
        if recips[0][1]["recipientId"] != rid:
            raise Fail("recipient id is not the cocoon key's")
        enc_raw = codec.enc("EncryptedData", enc["content"][1])
        try:
            pt, _ = ecies_vectors.decrypt(codec.spec, enc_raw, r["cocoon_secret_bytes"], rid,
                                          ecies_vectors.P1_EMPTY)
        except Exception as e:
            raise Fail("does not decrypt: %s: %s" % (type(e).__name__, e))
        resp = d1.scms_content(codec, pt, "aca-ee", "acaEeCertResponse")
    except d1.Fail as e:
        raise Fail(str(e))
    ticket = codec.enc("Certificate", resp["certificate"])
    if ticket != tickets_raw[r["ticket"]]:
        raise Fail("ticket inside differs from ticket %d" % r["ticket"])
    c = int.from_bytes(resp.get("privateKeyInfo", b""), "big")
    if not 0 < c < N:
        raise Fail("privateKeyInfo missing or out of range")
    p = ec.derive_private_key((b + c) % N, ec.SECP256R1())
    if compressed(p.public_key()) != compressed(ticket_keys[r["ticket"]]):
        raise Fail("(cocoon + c)G is not the ticket's verification key")


CRL_MODULES = ["IEEE1609dot2BaseTypes.asn", "IEEE1609dot2.asn",
               "ieee1609dot2dot1/crl-base-types.asn", "ieee1609dot2dot1/crl-protocol.asn",
               "ieee1609dot2dot1/crl-ssp.asn"]


def parse_crl(spec, crl_spec, b, root_raw, root_key):
    """The IEEE 1609.2 SecuredCrl `b`, decoded and verified with asn1tools
    and cryptography only."""
    try:
        d = crl_spec.decode("SecuredCrl", b)
    except Exception as e:
        raise Fail("asn1tools cannot decode the SecuredCrl: %s" % e)
    if crl_spec.encode("SecuredCrl", d) != b:
        raise Fail("SecuredCrl re-encoding differs")
    kind, sd = d["content"]
    if kind != "signedData" or sd["hashId"] != "sha256":
        raise Fail("not signedData with sha256")
    tbs = sd["tbsData"]
    if tbs["headerInfo"] != {"psid": 256}:
        raise Fail("headerInfo %r" % (tbs["headerInfo"],))
    inner = tbs["payload"]["data"]["content"]
    if inner[0] != "unsecuredData":
        raise Fail("payload is %s" % inner[0])
    contents = crl_spec.decode("CrlContents", inner[1])
    if crl_spec.encode("CrlContents", contents) != inner[1]:
        raise Fail("CrlContents re-encoding differs")
    tbs_raw = crl_spec.encode("ToBeSignedData", tbs)
    if tbs_raw not in b:
        raise Fail("tbsData is not in the bytes received")
    signer_kind, certs = sd["signer"]
    if signer_kind != "certificate" or len(certs) != 1:
        raise Fail("signer %s" % signer_kind)
    signer_raw = crl_spec.encode("Certificate", certs[0])
    signer, signer_tbs = decode_cert(spec, signer_raw)
    if signer["issuer"] != ("sha256AndDigest", hashed_id8(root_raw)):
        raise Fail("the CRL signer is not issued by the root")
    verify_ieee(root_key, signer_tbs, root_raw, cert_signature(signer))
    perms = {p["psid"]: p.get("ssp") for p in signer["toBeSigned"].get("appPermissions", [])}
    ssp = perms.get(256)
    if ssp is None or ssp[0] != "opaque":
        raise Fail("the CRL signer has no opaque SSP for PSID 256")
    crl_ssp = crl_spec.decode("CrlSsp", ssp[1])
    if crl_ssp["associatedCraca"] != "issuerIsCraca":
        raise Fail("CrlSsp %r" % (crl_ssp,))
    if contents["crlSeries"] not in crl_ssp["crls"]:
        raise Fail("the CRL signer may not sign series %d" % contents["crlSeries"])
    if contents["cracaId"] != hashed_id8(root_raw):
        raise Fail("crlCraca is not the root")
    sig = sd["signature"][1]
    der = encode_dss_signature(int.from_bytes(sig["rSig"][1], "big"),
                               int.from_bytes(sig["sSig"], "big"))
    verify_ieee(public_key(signer), tbs_raw, signer_raw, der)
    kind, body = contents["typeSpecific"]
    if kind != "fullLinkedCrl":
        raise Fail("typeSpecific %s" % kind)
    entries, jmaxes = [], set()
    for jg in body.get("individual", []):
        jmaxes.add(jg["jmax"])
        for la in jg["contents"]:
            id1 = int.from_bytes(la["la1Id"], "big")
            id2 = int.from_bytes(la["la2Id"], "big")
            for im in la["contents"]:
                for e in im["contents"]:
                    entries.append([(id1, body["iRev"], e["linkage-seed1"]),
                                    (id2, body["iRev"], e["linkage-seed2"])])
    return {
        "series": contents["crlSeries"],
        "number": body["indexWithinI"],
        "this_update": contents["issueDate"],
        "next_update": contents["nextCrl"],
        "jmax": sorted(jmaxes),
        "entries": entries,
    }


def next_seed(la_id, seed):
    return sha256(la_id.to_bytes(2, "big") + seed + bytes(14))[:16]


def plv(la_id, seed, j):
    block = la_id.to_bytes(2, "big") + j.to_bytes(4, "big") + bytes(10)
    enc = Cipher(algorithms.AES(seed), modes.ECB()).encryptor()
    out = enc.update(block) + enc.finalize()
    return bytes(x ^ y for x, y in zip(out, block))[:9]


def linkage_values(entry, last_period, cpp):
    """{(period, lv)} from the two released seeds, release period..last."""
    (id1, p1, s1), (id2, p2, s2) = entry
    if p1 != p2:
        raise Fail("releases for periods %d and %d" % (p1, p2))
    if id1 == id2:
        raise Fail("both releases from linkage authority %d" % id1)
    out = set()
    for i in range(p1, last_period + 1):
        for j in range(cpp):
            lv = bytes(x ^ y for x, y in zip(plv(id1, s1, j), plv(id2, s2, j)))
            out.add((i, lv))
        s1, s2 = next_seed(id1, s1), next_seed(id2, s2)
    return p1, out


def main(manifest_path):
    m = json.load(open(manifest_path))
    with open(m["policy"], "rb") as f:
        policy = tomllib.load(f)
    cpp = policy["certificates_per_period"]
    spec = asn1tools.compile_files([os.path.join(asn1_dir(), mod) for mod in MODULES], "oer")
    failures = []
    res = {"failures": failures}

    root_raw = open(m["root"], "rb").read()
    pca_raw = open(m["pca"], "rb").read()
    res["root_self_signed_verified"] = False
    res["pca_verified_under_root"] = False
    pca_key = None
    try:
        root, root_tbs = decode_cert(spec, root_raw)
        if root["issuer"] != ("self", "sha256"):
            raise Fail("root issuer %r" % (root["issuer"],))
        root_key = public_key(root)
        verify_ieee(root_key, root_tbs, b"", cert_signature(root))
        res["root_self_signed_verified"] = True
        pca, pca_tbs = decode_cert(spec, pca_raw)
        if pca["issuer"] != ("sha256AndDigest", hashed_id8(root_raw)):
            raise Fail("PCA issuer %r" % (pca["issuer"],))
        verify_ieee(root_key, pca_tbs, root_raw, cert_signature(pca))
        pca_key = public_key(pca)
        res["pca_verified_under_root"] = True
        ctx = {"craca_id": sha256(root_raw)[-3:],
               "pca_validity": pca["toBeSigned"]["validityPeriod"]}
    except Fail as e:
        failures.append("root/PCA: %s" % e)
        print(json.dumps(res))
        return 1

    tickets = m["tickets"]
    tickets_raw, ticket_keys, ticket_links = [], [], []
    decoded = verified = 0
    for t in tickets:
        raw = open(t["path"], "rb").read()
        tickets_raw.append(raw)
        try:
            c, key, link = check_ticket(spec, policy, t, raw, pca_raw, pca_key, ctx)
            decoded += 1
            verified += 1
        except Fail as e:
            failures.append("ticket %s: %s" % (t["path"], e))
            key, link = None, None
        ticket_keys.append(key)
        ticket_links.append(link)
    res["tickets_decoded"] = decoded
    res["tickets_verified"] = verified
    links = [x for x in ticket_links if x is not None]
    if len(set(links)) != len(links):
        failures.append("linkage values repeat")
    if len(set(x[1] for x in links)) != len(links):
        failures.append("a 9-octet linkage value repeats across periods")
    keys = [compressed(k) for k in ticket_keys if k is not None]
    if len(set(keys)) != len(keys):
        failures.append("verification keys repeat")

    res["responses_decrypted"] = res["response_keys_matched"] = 0
    res["response_lengths"] = sorted({os.path.getsize(r["path"]) for r in m["responses"]})
    for r in m["responses"]:
        r["cocoon_secret_bytes"] = bytes.fromhex(r["cocoon_secret"])
        try:
            if ticket_keys[r["ticket"]] is None:
                raise Fail("its ticket failed")
            check_response(r, tickets_raw, ticket_keys, pca_raw)
            res["responses_decrypted"] += 1
            res["response_keys_matched"] += 1
        except Fail as e:
            failures.append("response %s: %s" % (r["path"], e))

    res["crl_signature_verified"] = False
    try:
        crl_spec = asn1tools.compile_files(
            [os.path.join(asn1_dir(), mod) for mod in CRL_MODULES], "oer", encoding="cp1252")
        crl = parse_crl(spec, crl_spec, open(m["crl"], "rb").read(), root_raw, root_key)
        res["crl_series"] = crl["series"]
        res["crl_number"] = crl["number"]
        res["crl_entries"] = len(crl["entries"])
        if crl["series"] != policy["crl_series"]:
            failures.append("CRL series %d" % crl["series"])
        if crl["next_update"] <= crl["this_update"]:
            failures.append("CRL nextUpdate not after thisUpdate")
        if crl["jmax"] != [cpp]:
            failures.append("CRL jmax %r, expected [%d]" % (crl["jmax"], cpp))
        res["crl_signature_verified"] = True
        last = max(t["period"] for t in tickets)
        revoked = set()
        computed = 0
        for entry in crl["entries"]:
            start, values = linkage_values(entry, last, cpp)
            if start != m["revoked"]["from_period"]:
                failures.append("CRL entry releases from period %d" % start)
            computed += len(values)
            revoked |= values
        res["linkage_values_computed"] = computed
        matched = [k for k, link in enumerate(ticket_links) if link is not None and link in revoked]
        res["matched_tickets"] = matched
        by = {}
        for k in matched:
            key = "%d/%d" % (tickets[k]["vehicle"], tickets[k]["period"])
            by[key] = by.get(key, 0) + 1
        res["matched_by_vehicle_period"] = by
        rv, rp = m["revoked"]["vehicle"], m["revoked"]["from_period"]
        want = [k for k, t in enumerate(tickets) if t["vehicle"] == rv and t["period"] >= rp]
        if matched != want:
            wrong = sorted(set(matched) ^ set(want))[:5]
            failures.append(
                "CRL matches %d tickets, expected the %d of vehicle %d from period %d; e.g. %s"
                % (len(matched), len(want), rv, rp,
                   [(tickets[k]["vehicle"], tickets[k]["period"], tickets[k]["j"]) for k in wrong])
            )
    except Fail as e:
        failures.append("CRL: %s" % e)

    check_2022(m, tickets_raw, failures, res)
    print(json.dumps(res, sort_keys=True))
    return 1 if failures else 0


def check_2022(m, tickets_raw, failures, res):
    """The same artefacts against the IEEE 1609.2-2022 base and CRL modules
    (compiled on their own with compile_check.py's load_spec, which rewrites
    only the information-object constructs asn1tools cannot compile): every
    certificate and the signed CRL decode as 2022 types and re-encode to
    the same bytes, and the CRL's contents decode as the 2022 CrlContents."""
    import glob

    res["ieee2022_certificates_reencoded"] = 0
    res["ieee2022_crl_reencoded"] = False
    sys.path.insert(0, asn1_dir())
    try:
        from compile_check import load_spec
    except ImportError as e:
        failures.append("2022: cannot import compile_check: %s" % e)
        return
    files = sorted(glob.glob(os.path.join(asn1_dir(), "ieee1609.2-2022", "*.asn")))
    spec22, _ = load_spec(files)
    certs = [open(m["root"], "rb").read(), open(m["pca"], "rb").read()] + tickets_raw
    for raw in certs:
        try:
            value = spec22.decode("Certificate", raw)
            if spec22.encode("Certificate", value) != raw:
                failures.append("2022: a certificate re-encodes differently")
                continue
            res["ieee2022_certificates_reencoded"] += 1
        except Exception as e:  # asn1tools raises several error types
            failures.append("2022: certificate does not decode: %s" % e)
    raw = open(m["crl"], "rb").read()
    try:
        crl = spec22.decode("SecuredCrl", raw)
        if spec22.encode("SecuredCrl", crl) != raw:
            failures.append("2022: the CRL re-encodes differently")
            return
        signed = crl["content"][1]
        inner = signed["tbsData"]["payload"]["data"]["content"]
        if inner[0] != "unsecuredData":
            failures.append("2022: CRL payload is %s" % inner[0])
            return
        contents = spec22.decode("CrlContents", inner[1])
        if spec22.encode("CrlContents", contents) != inner[1]:
            failures.append("2022: CrlContents re-encodes differently")
            return
        res["ieee2022_crl_reencoded"] = True
    except Exception as e:
        failures.append("2022: the CRL does not decode: %s" % e)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
