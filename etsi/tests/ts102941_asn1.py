#!/usr/bin/env python3
"""Decode trustca's ETSI TS 102 941 messages with asn1tools.

Usage: ts102941_asn1.py JOBS.json

Compiles the published modules (IEEE 1609.2 base and schema, ETSI TS 103 097
and every TS 102 941 v1.3.1 module) from $V2X_ASN1_DIR, unmodified, with the
OER codec. JOBS.json lists {"path", "type", "expect"}: each file is decoded
as that type, re-encoded by asn1tools (an independent canonical encoder)
and must give the same bytes; "expect" (optional) is a dict of dotted paths
into the decoded value and the values they must have. Prints one line per
file; exits non-zero on the first failure.
"""

import glob
import json
import os
import sys

import asn1tools


def asn1_dir():
    d = os.environ.get("V2X_ASN1_DIR")
    if d:
        return d
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.join(here, "..", "..", "..", "shared", "spec", "v2x-asn1")


def compile_spec():
    d = asn1_dir()
    files = [os.path.join(d, f) for f in
             ["IEEE1609dot2BaseTypes.asn", "IEEE1609dot2.asn", "TS103097v131.asn"]]
    files += sorted(glob.glob(os.path.join(d, "TS102941v131-*.asn")))
    return asn1tools.compile_files(files, "oer")


def walk(value, path):
    for part in path.split("."):
        if isinstance(value, tuple):
            name, inner = value
            if name != part:
                raise KeyError(f"{path}: CHOICE is {name}, not {part}")
            value = inner
        else:
            value = value[part]
    return value


def main():
    spec = compile_spec()
    with open(sys.argv[1]) as f:
        jobs = json.load(f)
    for job in jobs:
        data = open(job["path"], "rb").read()
        value = spec.decode(job["type"], data)
        again = spec.encode(job["type"], value)
        if again != data:
            print(f"FAIL {job['path']}: asn1tools re-encodes {job['type']} differently")
            sys.exit(1)
        for path, want in job.get("expect", {}).items():
            got = walk(value, path)
            if isinstance(got, bytes):
                got = got.hex()
            if got != want:
                print(f"FAIL {job['path']}: {path} is {got!r}, expected {want!r}")
                sys.exit(1)
        print(f"ok {os.path.basename(job['path'])} as {job['type']} ({len(data)} octets)")


if __name__ == "__main__":
    main()
