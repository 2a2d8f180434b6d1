#!/usr/bin/env python3
"""Writes the trust-level extension test vectors by hand-assembling DER.

Independent of the Rust encoder on purpose: the unit tests in
trust-model/src/extension.rs check that the Rust code produces and reads
exactly these bytes. Run from this directory: python3 generate.py
"""


def tlv(tag, content):
    n = len(content)
    if n < 0x80:
        length = bytes([n])
    else:
        b = n.to_bytes((n.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(b)]) + b
    return bytes([tag]) + length + content


def base128(v):
    out = [v & 0x7F]
    v >>= 7
    while v:
        out.append(0x80 | (v & 0x7F))
        v >>= 7
    return bytes(reversed(out))


def oid(arcs):
    assert all(a < 2**31 for a in arcs), "every arc must fit in 31 bits"
    body = base128(arcs[0] * 40 + arcs[1]) + b"".join(base128(a) for a in arcs[2:])
    return tlv(0x06, body)


def utf8(s):
    return tlv(0x0C, s.encode())


# The UUID of the extension, once written as 2.25.<uuid>; Microsoft's
# generator splits a GUID into 16/16/16/16/16/24/24-bit arcs under
# 1.2.840.113556.1.8000.2554.
UUID = 0xE5650DB5_3CF7_403E_9B9A_6EC706D18551
assert UUID == 304917911047948023692104962459481245009
arcs = [1, 2, 840, 113556, 1, 8000, 2554]
shift = 128
for width in (16, 16, 16, 16, 16, 24, 24):
    shift -= width
    arcs.append((UUID >> shift) & ((1 << width) - 1))
OID = oid(arcs)

basis = tlv(
    0x30,
    utf8("evaluation")
    + utf8("iso-sae-21434")
    + utf8("CAL3")
    + tlv(0x18, b"20260301000000Z"),
)
value = tlv(
    0x30,
    tlv(0x02, b"\x01")  # version v1
    + tlv(0x0A, b"\x00")  # kind longTerm
    + utf8("automotive")
    + tlv(0x02, b"\x04")  # level 4
    + utf8("2026.11-1")
    + tlv(0x30, basis),
)
# Extension ::= SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE (omitted), extnValue }
extension = tlv(0x30, OID + tlv(0x04, value))

# A certification body's credential: kind certificationBody(8), no level,
# no basis, authorizedSectors [0] {automotive}, permittedSchemes [1]
# {iso-sae-21434, unece-r155}.
certification_body = tlv(
    0x30,
    tlv(0x02, b"\x01")
    + tlv(0x0A, b"\x08")
    + utf8("automotive")
    + utf8("2026.11-1")
    + tlv(0x30, b"")
    + tlv(0xA0, utf8("automotive"))
    + tlv(0xA1, utf8("iso-sae-21434") + utf8("unece-r155")),
)

for name, data in [
    ("oid.hex", OID),
    ("long-term-lv4.hex", value),
    ("extension-long-term-lv4.hex", extension),
    ("certification-body.hex", certification_body),
]:
    with open(name, "w") as f:
        f.write(data.hex() + "\n")
print(".".join(map(str, arcs)))
