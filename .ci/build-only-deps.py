#!/usr/bin/env python3
"""Lists the packages that only run inside the compiler: proc macros, build
scripts' dependencies and their own dependencies, i.e. every package the
workspace reaches only through a build or proc-macro edge. Cargo.toml's
[profile.dev.package] builds these unoptimised; with --check, names the
ones missing there (a missing one only compiles more slowly, so CI warns)."""
import json
import re
import subprocess
import sys


def build_only():
    meta = json.loads(subprocess.check_output(
        ["cargo", "metadata", "--locked", "--format-version", "1"]))
    packages = {p["id"]: p for p in meta["packages"]}
    nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}

    def is_proc_macro(pkg):
        return any("proc-macro" in t["kind"] for t in packages[pkg]["targets"])

    runtime, stack = set(), list(meta["workspace_members"])
    while stack:
        pkg = stack.pop()
        if pkg in runtime:
            continue
        runtime.add(pkg)
        for dep in nodes[pkg]["deps"]:
            kinds = {k["kind"] for k in dep["dep_kinds"]}
            if kinds & {None, "dev"} and not is_proc_macro(dep["pkg"]):
                stack.append(dep["pkg"])
    runtime_names = {packages[p]["name"] for p in runtime}
    return sorted({packages[p]["name"] for p in set(nodes) - runtime} - runtime_names)


def main():
    names = build_only()
    if "--check" not in sys.argv:
        print("\n".join(names))
        return
    toml = open("Cargo.toml").read()
    listed = set(re.findall(r'^"?([A-Za-z0-9_-]+)"? = \{ opt-level = 0 \}', toml, re.M))
    missing = [n for n in names if n not in listed]
    if missing:
        print("warning: build-only packages compiled optimised (add them to "
              "[profile.dev.package] in Cargo.toml): " + " ".join(missing), file=sys.stderr)


if __name__ == "__main__":
    main()
