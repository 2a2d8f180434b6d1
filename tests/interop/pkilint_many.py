"""Lints many certificates and CRLs with pkilint in one Python process.

Each job runs the very `main()` behind pkilint's `lint_pkix_cert` and
`lint_crl` console scripts, with the arguments those commands would get,
so the findings are the tools' own; only the interpreter start-up and
pkilint's import (about a second each under load) are paid once instead of
once per file (tests/tests/e2e/interop.rs).

Input (stdin): a JSON list of jobs, each {"tool": "lint_pkix_cert" or
"lint_crl", "args": [...]} where args follow the command name.
Output (stdout): a JSON list, one {"exit": int, "stdout": str,
"stderr": str} per job, in the same order.
"""

import contextlib
import io
import json
import sys

from pkilint.bin import lint_crl, lint_pkix_cert

TOOLS = {"lint_pkix_cert": lint_pkix_cert.main, "lint_crl": lint_crl.main}


def run(job):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = TOOLS[job["tool"]](job["args"])
        except SystemExit as e:  # argparse refusing the arguments
            code = e.code if isinstance(e.code, int) else 2
    return {"exit": code, "stdout": out.getvalue(), "stderr": err.getvalue()}


def main():
    jobs = json.load(sys.stdin)
    json.dump([run(job) for job in jobs], sys.stdout)


if __name__ == "__main__":
    main()
