#!/bin/sh
# Builds step-ca (smallstep certificates 0.19, Debian's source package) for
# the bench's durable-peer stage (`trustca-bench stepca`), offline, with
# Debian's Go. Prints the binary's path. Run by the harness when no
# binary is given; safe to run again (reuses a built binary).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${STEPCA_BIN:-${TMPDIR:-/tmp}/trustca-bench-step-ca}
if [ -x "$out" ]; then echo "$out"; exit 0; fi
need=""
command -v go >/dev/null 2>&1 || need="golang-go"
[ -d /usr/share/gocode/src/github.com/smallstep/certificates ] ||
  need="$need golang-github-smallstep-certificates-dev"
if [ -n "$need" ]; then
  apt-get update -qq >&2
  # shellcheck disable=SC2086
  apt-get install -y -qq $need >&2
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$here/stepca/main.go" "$work/main.go"
cd "$work"
GOPATH=/usr/share/gocode GO111MODULE=off GOFLAGS= GOCACHE="$work/cache" \
  go build -o "$out" main.go >&2
echo "$out"
