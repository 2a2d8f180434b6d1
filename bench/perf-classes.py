#!/usr/bin/env python3
"""Where a `trustca-bench` run's CPU went, by class of work.

Reads `perf script` output of a `perf record -g` (or `--call-graph dwarf`)
run of the harness on standard input and prints, for the server's side and
for the harness's client side, the share of samples in each class:
crypto, TLS, gRPC/HTTP/2 framing, protobuf and other encoding, store,
policy, engine, locks, allocation and copies, logging, tokio runtime,
kernel. A sample is put in the class of the first frame, from the leaf up,
that matches a class (so a memcpy inside rustls counts as a copy, the
time inside `ring` called by rustls as crypto). A sample is the client's
when any frame belongs to the harness or to a gRPC/HTTP client.

    perf record -F 499 -g -o perf.data -- target/release/trustca-bench decide ...
    perf script -i perf.data | bench/perf-classes.py [--skip-setup]

`--skip-comm=PREFIX` leaves out threads whose name starts with PREFIX
(a peer CA's process, which perf follows as a child). `--skip-setup` leaves out samples under set-up work (CA creation, key
derivation, CSR generation, enrolling the world) so the shares are of the
serving work.
"""

import re
import sys
from collections import Counter

# Checked in order on each frame, leaf first.
CLASSES = [
    ("allocation and copies", r"\b(malloc|free|realloc|calloc|cfree|_int_malloc|_int_free|"
     r"_int_realloc|malloc_consolidate|__rust_alloc|__rust_dealloc|__rust_realloc|"
     r"alloc::raw_vec|__memcpy|__memmove|memcpy|memmove|__memset|memset)\b"),
    ("locks and wake-ups", r"(pthread_mutex|pthread_cond|futex|std::sys::sync|parking_lot|"
     r"std::sync::mutex|std::sync::rwlock|sched_yield)"),
    ("crypto", r"(ring::|ring_core|p256::|ecdsa|sha2::|GFp_|ecp_nistz256|sha256_block|"
     r"aes_hw|gcm_|chacha20|poly1305|hmac::)"),
    ("TLS", r"(rustls::|tokio_rustls)"),
    ("logging", r"(tracing::|tracing_core::|tracing_subscriber)"),
    ("store", r"(sled::|trustca_store::|postcard::|crossbeam_epoch)"),
    ("protobuf and DER encoding", r"(prost::|der::|x509_parser|x509_cert|rcgen::|asn1_rs|"
     r"der_parser|trustca_proto::)"),
    ("policy", r"trustca_model::cooperation"),
    ("engine", r"(trustca_db::|trustca_ca::|trustca_api::|trustca_model::|trustca_server::)"),
    ("gRPC / HTTP/2 framing", r"(h2::|hyper::|tonic::|http::|bytes::|http_body)"),
    ("tokio runtime", r"(tokio::|mio::|epoll_wait)"),
]
COMPILED = [(name, re.compile(rx)) for name, rx in CLASSES]
CLIENT = re.compile(r"(trustca_bench::|tonic::client|h2::client|hyper::client|"
                    r"tower::buffer|trustca_api::client|rustls::client|tokio_rustls::client)")
SETUP = re.compile(r"(pbkdf2|init_ca|fixture::devices|World::start|KeyPair::generate|"
                   r"serialize_request|CaHierarchy::open|hierarchy::create)")
KERNEL = re.compile(r"(\[kernel\.kallsyms\]|\[unknown\]\s*$|entry_SYSCALL)")


def samples(lines):
    """Yields each sample's thread name and frames (symbol and DSO text),
    leaf first."""
    comm, frames = "", []
    for line in lines:
        if not line.strip():
            if frames:
                yield comm, frames
            frames = []
        elif line[0] in " \t":
            parts = line.strip().split(" ", 1)
            frames.append(parts[1] if len(parts) > 1 else parts[0])
        else:
            comm, frames = line.split(" ", 1)[0], []
    if frames:
        yield comm, frames


def classify(frames):
    for frame in frames:
        for name, rx in COMPILED:
            if rx.search(frame):
                return name
    if frames and KERNEL.search(frames[0]):
        return "kernel"
    return "other"


def main():
    skip_setup = "--skip-setup" in sys.argv
    # Threads of child processes (a peer CA the harness started) are left
    # out: `--skip-comm trustca-bench-s` (step-ca's binary name, cut to 15).
    skip_comm = [a.split("=", 1)[1] for a in sys.argv if a.startswith("--skip-comm=")]
    sides = {"server": Counter(), "client (harness)": Counter()}
    skipped = 0
    for comm, frames in samples(sys.stdin):
        if any(comm.startswith(c) for c in skip_comm):
            continue
        text = "\n".join(frames)
        if skip_setup and SETUP.search(text):
            skipped += 1
            continue
        side = "client (harness)" if CLIENT.search(text) else "server"
        sides[side][classify(frames)] += 1
    total = sum(sum(c.values()) for c in sides.values())
    print(f"{total} samples ({skipped} set-up samples left out)")
    for side, counts in sides.items():
        n = sum(counts.values())
        print(f"\n{side}: {n} samples, {100.0 * n / max(total, 1):.1f} % of all")
        for name, k in counts.most_common():
            print(f"  {name:<28} {100.0 * k / max(n, 1):5.1f} %  ({100.0 * k / max(total, 1):4.1f} % of all)")


if __name__ == "__main__":
    main()
