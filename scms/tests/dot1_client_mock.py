#!/usr/bin/env python3
"""Exercises dot1_client.py's `run` and `attack` against a tiny in-process
mock ECA/RA (plain HTTP, made-up certificates), built from the same
protocol description. It tests the client's plumbing, not trustca: the mock
shares the client's codec, so it proves nothing about interoperability.

Usage: dot1_client_mock.py   (prints one JSON object; exit 1 on failure)
"""

import base64
import http.server
import io
import json
import os
import secrets
import sys
import tempfile
import threading
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import dot1_client as d  # noqa: E402

TICKETS_PER_PERIOD = 3
FIRST_I = 0x1f


class Mock:
    """The ECA, RA and ACA of the protocol description, minimal."""

    def __init__(self):
        self.c = d.Codec()
        now = d.time32()
        self.root_d = d.new_private()
        self.root_tbs = {"id": ("name", "mock root"), "cracaId": b"\x00\x00\x00", "crlSeries": 0,
                         "validityPeriod": {"start": now - 3600, "duration": ("years", 2)},
                         "certIssuePermissions": [{"subjectPermissions": ("all", None), "minChainLength": 2,
                                                   "chainLengthRange": 0, "eeType": (b"\xc0", 8)}],
                         "verifyKeyIndicator": self.vki(self.root_d)}
        self.root = d.make_cert(self.c, self.root_tbs, self.root_d)
        self.eca_d, self.aca_d, self.ra_d, self.ra_enc, self.crl_d = (d.new_private() for _ in range(5))
        self.eca = self.issued("eca", self.eca_d)
        self.aca = self.issued("aca", self.aca_d)
        self.ra = self.issued("ra", self.ra_d, self.ra_enc)
        self.crl = self.issued("ra", self.crl_d)
        self.seen, self.requests, self.not_ready = set(), {}, set()

    @staticmethod
    def vki(k):
        return ("verificationKey", ("ecdsaNistP256", d.point_to_asn1(d.private_to_point(k))))

    def issued(self, role, k, enc=None):
        tbs = dict(self.root_tbs, id=("name", "mock " + role), verifyKeyIndicator=self.vki(k),
                   appPermissions=[{"psid": 35, "ssp": ("opaque", bytes.fromhex(d.SCMS_ROLES[role] + "0002"))}])
        del tbs["certIssuePermissions"]
        if enc:
            tbs["encryptionKey"] = {"supportedSymmAlg": "aes128Ccm",
                                    "publicKey": ("eciesNistP256", d.point_to_asn1(d.private_to_point(enc)))}
        return d.make_cert(self.c, tbs, self.root_d, self.root)

    def certificates(self):
        return self.c.enc("SequenceOfCertificate", [x.value for x in (self.root, self.eca, self.aca, self.ra, self.crl)])

    def enrol(self, body):
        data = self.c.dec("Ieee1609Dot2Data", body)
        scr = self.c.dec("SignedCertificateRequest", data["content"][1])
        tbs = self.c.enc("ScmsPdu", scr["tbsRequest"])
        req = d.scms_content(self.c, tbs, "eca-ee", "eeEcaCertRequest")
        key = d.point_from_asn1(req["tbsCert"]["verifyKeyIndicator"][1][1])
        if scr["signer"][0] != "self" or not d.verify(key, scr["signature"], tbs, b""):
            return 401, b"bad self-signature"
        ec_tbs = dict(self.root_tbs, id=("name", "VIN123"), assuranceLevel=b"\x40",
                      verifyKeyIndicator=req["tbsCert"]["verifyKeyIndicator"],
                      certRequestPermissions=[{"subjectPermissions": ("explicit", [{"psid": 32}, {"psid": 38}]),
                                               "minChainLength": 0, "chainLengthRange": 0, "eeType": (b"\x80", 8)}])
        del ec_tbs["certIssuePermissions"]
        ec = d.make_cert(self.c, ec_tbs, self.eca_d, self.eca)
        pdu = d.scms_pdu(self.c, "eca-ee", "ecaEeCertResponse",
                         {"version": 2, "requestHash": d.hashed_id8(body),
                          "ecaCertChain": [self.eca.value, self.root.value], "certificate": ec.value})
        return 200, d.signed_spdu(self.c, pdu, self.eca_d, self.eca)

    def decrypt(self, body):
        data = self.c.dec("Ieee1609Dot2Data", body)
        if data["content"][0] != "encryptedData":
            raise d.Fail("not encrypted")
        enc = data["content"][1]
        if [r[1]["recipientId"] for r in enc["recipients"]] != [self.ra.id8]:
            return None
        plain, _ = d.ecies_vectors.decrypt(self.c.spec, self.c.enc("EncryptedData", enc),
                                           self.ra_enc.to_bytes(32, "big"), self.ra.id8, d.sha256(self.ra.raw))
        return plain

    def ec_ok(self, ec):
        try:
            d.verify_cert(ec, self.eca)
            return True
        except d.Fail:
            return False

    def batch(self, body):
        try:
            plain = self.decrypt(body)
        except d.Fail as e:
            return 400, str(e).encode()
        except ValueError as e:
            return 400, str(e).encode()
        if plain is None:
            return 421, b"not encrypted to this RA"
        scr = self.c.dec("SignedCertificateRequest", self.c.dec("Ieee1609Dot2Data", plain)["content"][1])
        ec = d.Cert(self.c, self.c.enc("Certificate", scr["signer"][1][0]))
        tbs = self.c.enc("ScmsPdu", scr["tbsRequest"])
        if not self.ec_ok(ec) or not d.verify(ec.explicit_key(), scr["signature"], tbs, ec.raw):
            return 401, b"signer is not a valid enrolment certificate"
        h = d.hashed_id8(body)
        if h in self.seen:
            return 409, b"replayed request"
        self.seen.add(h)
        req = d.scms_content(self.c, tbs, "ee-ra", "eeRaCertRequest")
        A = d.point_from_asn1(req["tbsCert"]["verifyKeyIndicator"][1][1])
        self.requests[h.hex()] = (A, req["additionalParams"][1][1])
        self.not_ready.add(h.hex())
        pdu = d.scms_pdu(self.c, "ee-ra", "raEeCertAck", {"version": 2, "generationTime": d.time32(),
                                                          "requestHash": h, "firstI": FIRST_I,
                                                          "nextDlTime": d.time32()})
        return 200, d.signed_spdu(self.c, pdu, self.ra_d, self.ra)

    def download(self, header):
        plain = self.decrypt(base64.b64decode(header))
        payload, ec = d.open_signed_spdu(self.c, plain)
        if not self.ec_ok(ec):
            return 401, b"bad signer", {}
        name = d.scms_content(self.c, payload, "ee-ra", "eeRaDownloadRequest")["filename"]
        rh, i = name[:-4].split("_")
        if rh not in self.requests:
            return 404, b"unknown file", {}
        if rh in self.not_ready:
            self.not_ready.discard(rh)
            return 503, b"not ready", {"Retry-After": "1"}
        A, k = self.requests[rh]
        i = int(i, 16)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
            for j in range(TICKETS_PER_PERIOD):
                z.writestr("%x_%x.oer" % (i, j), self.ticket(A, k, i, j))
        return 200, buf.getvalue(), {"Content-Type": "application/zip"}

    def ticket(self, A, k, i, j):
        B, c = d.cocoon_public(A, k, i, j), d.new_private()
        start = d.time32() - 3600 + (i - FIRST_I) * 168 * 3600
        tbs = {"id": ("linkageData", {"iCert": i, "linkage-value": secrets.token_bytes(9)}),
               "cracaId": self.root.id8[-3:], "crlSeries": 1,
               "validityPeriod": {"start": start, "duration": ("hours", 170)},
               "appPermissions": [{"psid": 32}],
               "verifyKeyIndicator": ("verificationKey", ("ecdsaNistP256", d.point_to_asn1(
                   d.point_add(B, d.point_mul(c, d.P256_G)))))}
        t = d.make_cert(self.c, tbs, self.aca_d, self.aca)
        pdu = d.scms_pdu(self.c, "aca-ee", "acaEeCertResponse", {
            "version": 2, "generationTime": d.time32(), "certificate": t.value, "privateKeyInfo": c.to_bytes(32, "big")})
        enc = d.encrypt_to(self.c, pdu, B, d.response_key_id(self.c, B), d.sha256(b""), "rekRecipInfo")
        return d.signed_spdu(self.c, enc, self.aca_d, self.aca)


def serve(mock):
    class H(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def reply(self, status, body, headers=None):
            self.send_response(status)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            try:
                fn = {d.PATH_ENROL: mock.enrol, d.PATH_BATCH: mock.batch}[self.path]
                self.reply(*fn(body))
            except (d.Fail, ValueError) as e:
                self.reply(400, str(e).encode())

        def do_GET(self):
            if self.path == d.PATH_CERTS:
                self.reply(200, mock.certificates())
            elif self.path == d.PATH_CRL:
                self.reply(404, b"no CRL")
            elif self.path == d.PATH_DOWNLOAD:
                self.reply(*mock.download(self.headers["Download-Req"]))
            else:
                self.reply(404, b"?")

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def main():
    mock = Mock()
    srv = serve(mock)
    url = "http://127.0.0.1:%d" % srv.server_address[1]
    tmp = tempfile.mkdtemp()
    root = os.path.join(tmp, "root.oer")
    open(root, "wb").write(mock.root.raw)
    state = os.path.join(tmp, "state")
    out, ok = {}, True
    dummy = os.path.join(tmp, "unused.pem")  # plain HTTP: TLS files are not read
    open(dummy, "w").close()
    common = ["--ca-pem", dummy, "--root", root]
    argv = ["run", "--eca-url", url, "--ra-url", url, "--device-cert", dummy, "--device-key", dummy,
            "--periods", "2", "--timeout", "20", "--state", state] + common
    buf = io.StringIO()
    sys.stdout, saved = buf, sys.stdout
    try:
        rc = d.main(argv)
    finally:
        sys.stdout = saved
    run = json.loads(buf.getvalue())
    out["run"] = {"rc": rc, "tickets": run.get("tickets"), "failures": run.get("failures")}
    ok &= rc == 0 and run["tickets"] == 2 * TICKETS_PER_PERIOD and run["crl"] == "absent"
    want = {"truncated": [400], "non-canonical": [400], "wrong-signer": [401], "unknown-ec": [401],
            "wrong-recipient": [421], "wrong-recipient-key": [400], "replay": [409]}
    for case, statuses in want.items():
        buf = io.StringIO()
        sys.stdout = buf
        try:
            rc = d.main(["attack", "--ra-url", url, "--state", state, "--case", case] + common)
        finally:
            sys.stdout = saved
        res = json.loads(buf.getvalue())
        out[case] = res.get("statuses", res.get("status"))
        ok &= rc == 0 and res["status"] in statuses and (case != "replay" or res["statuses"] == [200, 409])
    srv.shutdown()
    out["ok"] = bool(ok)
    print(json.dumps(out, indent=1))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
