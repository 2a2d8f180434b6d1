#!/usr/bin/env python3
"""Independent reference for the trustca-audit test vectors.

Written straight from the recursive definitions in RFC 9162 section 2.1
(MTH, PATH, PROOF/SUBPROOF) using only hashlib, so that the Rust code under
test is checked against values it did not produce itself.

Usage:  python3 gen_vectors.py > vectors.json
"""
import hashlib
import json


def sha256(b):
    return hashlib.sha256(b).digest()


def leaf_hash(d):
    return sha256(b"\x00" + d)


def node_hash(l, r):
    return sha256(b"\x01" + l + r)


def k_split(n):
    """Largest power of two strictly smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(d):
    n = len(d)
    if n == 0:
        return sha256(b"")
    if n == 1:
        return leaf_hash(d[0])
    k = k_split(n)
    return node_hash(mth(d[:k]), mth(d[k:]))


def path(m, d):
    n = len(d)
    if n <= 1:
        return []
    k = k_split(n)
    if m < k:
        return path(m, d[:k]) + [mth(d[k:])]
    return path(m - k, d[k:]) + [mth(d[:k])]


def subproof(m, d, b):
    n = len(d)
    if m == n:
        return [] if b else [mth(d)]
    k = k_split(n)
    if m <= k:
        return subproof(m, d[:k], b) + [mth(d[k:])]
    return subproof(m - k, d[k:], False) + [mth(d[:k])]


def proof(m, d):
    if m == 0 or m == len(d):
        return []
    return subproof(m, d, True)


# The eight leaves used by the RFC 6962 reference test suites of CT
# implementations (certificate-transparency, trillian, transparency-dev).
CT_LEAVES = [bytes.fromhex(h) for h in [
    "", "00", "10", "2021", "3031", "40414243",
    "5051525354555657", "606162636465666768696a6b6c6d6e6f",
]]

# Published roots for the first n of those leaves (n = 0..8); asserted here
# so that this script itself is checked against the published values.
CT_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]

# A few published proofs from the same suites (tree of all 8 leaves).
CT_INCLUSION = {
    (0, 8): ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
             "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
             "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"],
}
CT_CONSISTENCY = {
    (1, 8): ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
             "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
             "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"],
    (6, 8): ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
             "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
             "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"],
    (2, 5): ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
             "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"],
}


# Old sizes around powers of two, used for the larger synthetic trees.
INTERESTING = [0, 1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 69, 70]


def hx(hs):
    return [h.hex() for h in hs]


def tree_set(name, leaves, inclusion_sizes, consistency_sizes):
    n_max = len(leaves)
    out = {
        "name": name,
        "leaves": [l.hex() for l in leaves],
        "leaf_hashes": [leaf_hash(l).hex() for l in leaves],
        "roots": [mth(leaves[:n]).hex() for n in range(n_max + 1)],
        "inclusion": [],
        "consistency": [],
    }
    for n in inclusion_sizes:
        d = leaves[:n]
        for i in range(n):
            out["inclusion"].append({"index": i, "tree_size": n, "path": hx(path(i, d))})
    for (m, n) in consistency_sizes:
        out["consistency"].append({"old_size": m, "new_size": n, "path": hx(proof(m, leaves[:n]))})
    return out


def main():
    # Self-check against the published CT values.
    for n, want in enumerate(CT_ROOTS):
        assert mth(CT_LEAVES[:n]).hex() == want, ("root", n)
    for (i, n), want in CT_INCLUSION.items():
        assert hx(path(i, CT_LEAVES[:n])) == want, ("inclusion", i, n)
    for (m, n), want in CT_CONSISTENCY.items():
        assert hx(proof(m, CT_LEAVES[:n])) == want, ("consistency", m, n)

    ct = tree_set(
        "rfc6962-ct-8",
        CT_LEAVES,
        inclusion_sizes=range(1, 9),
        consistency_sizes=[(m, n) for n in range(0, 9) for m in range(0, n + 1)],
    )

    # A larger synthetic tree: leaf i is the ASCII text "trustca-leaf-<i>".
    synth_leaves = [("trustca-leaf-%d" % i).encode() for i in range(70)]
    synth = tree_set(
        "synthetic-70",
        synth_leaves,
        inclusion_sizes=list(range(1, 18)) + [33, 70],
        consistency_sizes=[(m, n) for n in range(1, 18) for m in range(0, n + 1)]
        + [(m, n) for n in [33, 64, 70] for m in INTERESTING if m <= n],
    )

    # Canonical signing bytes of a fixed tree head (see docs/audit-log.md).
    head_size = 70
    head_ts = 1_700_000_000_123
    head_root = mth(synth_leaves)
    sth_bytes = (b"trustca-sth-v1\x00" + head_size.to_bytes(8, "big")
                 + head_ts.to_bytes(8, "big") + head_root)
    sth = {
        "size": head_size,
        "timestamp_ms": head_ts,
        "root": head_root.hex(),
        "signing_bytes": sth_bytes.hex(),
    }

    # Version 2 (the head names its signer): prefix "trustca-sth-v2\0", the
    # same fields, then the signer key id = SHA-256 of the signer's
    # uncompressed SEC1 public key. The key here is the P-256 base point G.
    signer_pk = bytes.fromhex(
        "046b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296"
        "4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5")
    key_id = hashlib.sha256(signer_pk).digest()
    sth_v2_bytes = (b"trustca-sth-v2\x00" + head_size.to_bytes(8, "big")
                    + head_ts.to_bytes(8, "big") + head_root + key_id)
    sth_v2 = {
        "size": head_size,
        "timestamp_ms": head_ts,
        "root": head_root.hex(),
        "signer_public_key": signer_pk.hex(),
        "signer_key_id": key_id.hex(),
        "signing_bytes": sth_v2_bytes.hex(),
    }

    print(json.dumps({
        "generator": "audit-log/testdata/gen_vectors.py (hashlib only, RFC 9162 s2.1 recursive definitions)",
        "trees": [ct, synth],
        "tree_head": sth,
        "tree_head_v2": sth_v2,
    }, separators=(",", ":")))


if __name__ == "__main__":
    main()
