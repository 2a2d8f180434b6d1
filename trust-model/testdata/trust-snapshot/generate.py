#!/usr/bin/env python3
"""Writes the trust snapshot test vector by hand-assembling DER.

Independent of the Rust encoder on purpose: the unit test in
trust-model/src/snapshot.rs checks that the Rust code produces and reads
exactly these bytes. Python standard library only. Run from this
directory: python3 generate.py
"""

COOPERATION = """version = "c1"
depths = ["none", "observe", "exchange", "control"]
[operations]
read-telemetry = "observe"
remote-control = "control"
[[rule]]
name = "hems-local"
caller = "hems"
peer = "hems"
min_levels = { observe = [2, 2], exchange = [3, 3], control = [4, 4] }
"""

RECOGNITION = 'version = "r1"\n'


def tlv(tag, content):
    n = len(content)
    if n < 0x80:
        length = bytes([n])
    else:
        b = n.to_bytes((n.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(b)]) + b
    return bytes([tag]) + length + content


def integer(v):
    # Minimal two's complement of a non-negative value.
    b = v.to_bytes(max(1, (v.bit_length() + 7) // 8), "big")
    if b[0] & 0x80:
        b = b"\x00" + b
    return tlv(0x02, b)


def enumerated(v):
    return tlv(0x0A, bytes([v]))


def utf8(s):
    return tlv(0x0C, s.encode())


def seq(*parts):
    return tlv(0x30, b"".join(parts))


def gtime(s):
    return tlv(0x18, s.encode())


# ModelStatus: certified(0), provisional(1), suspended(2), withdrawn(3).
# TrustStatus: active(0), suspended(1), revoked(2), retired(3).
models = seq(
    # Sorted by (sector, manufacturer, model, firmware text), lower-cased:
    # "1.0..1.4.9" < "1.5..".
    seq(utf8("hems"), utf8("Acme"), utf8("HB-1"), utf8("1.0..1.4.9"),
        integer(4), enumerated(0), integer(2), utf8("2026.11-1")),
    seq(utf8("hems"), utf8("Acme"), utf8("HB-1"), utf8("1.5.."),
        integer(3), enumerated(1), integer(1), utf8("2026.11-1")),
)
devices = seq(
    seq(utf8("urn:trustca:hems:Acme:HB-1:SN7"), integer(4), enumerated(1), integer(3)),
)
# Serial 0x8001 as its certificate carries it: DER INTEGER content 00 80 01.
revoked = seq(seq(utf8("hems"), tlv(0x02, bytes([0x00, 0x80, 0x01]))))
blocked = seq(tlv(0x04, bytes([0xAB] * 32)))

body = seq(
    integer(1),  # version v1
    integer(7),  # serial
    tlv(0x80, b"hems"),  # scope [0] IMPLICIT UTF8String
    gtime("20261123100000Z"),  # issuedAt
    gtime("20261124100000Z"),  # nextUpdate
    seq(utf8("automotive"), utf8("hems")),  # sectors
    seq(utf8("c1"), utf8(COOPERATION)),  # cooperationPolicy
    seq(utf8("r1"), utf8(RECOGNITION)),  # recognitionPolicy
    models,
    devices,
    revoked,
    blocked,
)

with open("hems-serial7.hex", "w") as f:
    f.write(body.hex() + "\n")
print(f"hems-serial7.hex: {len(body)} bytes")
