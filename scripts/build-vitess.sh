#!/usr/bin/env bash
# Builds the Vitess v23 programs used as interoperability peers (vtgate, vttablet, vtctld,
# vtctldclient, mysqlctld, mysqlctl) from the vitess.io/vitess Go module, into $VITESS_BIN
# (default: /opt/vitess-v23/bin, which the non-root user that Vitess must run as can read).
# Nothing is written into the project. `make vitess` runs it; scripts/vitess-local.sh and
# the interop tests run what it builds.
#
# Vitess v23 needs Go 1.25 (it refuses to compile with Go 1.26's map runtime), so the
# build asks the go command for the go1.25.4 toolchain, which it downloads through the Go
# module proxy like the vitess.io/vitess module itself (network access needed the first time).
# First run: about 5-8 minutes on 2 cores. Later runs return at once.
set -euo pipefail
source "$(dirname "$0")/env.sh"
VERSION=${VITESS_VERSION:-v0.23.0}
BIN=${VITESS_BIN:-/opt/vitess-v23/bin}
progs=(vtgate vttablet vtctld vtctldclient mysqlctld mysqlctl)
missing=0
for p in "${progs[@]}"; do [ -x "$BIN/$p" ] || missing=1; done
if [ $missing = 0 ]; then echo "vitess $VERSION programs already in $BIN"; exit 0; fi
mkdir -p "$BIN"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
cat > go.mod <<MOD
module vitesspeer

go 1.25.1
MOD
export GOTOOLCHAIN=go1.25.4 GOFLAGS="-buildvcs=false -mod=mod"
go get "vitess.io/vitess@$VERSION" >/dev/null
pkgs=()
for p in "${progs[@]}"; do pkgs+=("vitess.io/vitess/go/cmd/$p"); done
go build -o "$BIN/" "${pkgs[@]}"
echo "built ${progs[*]} into $BIN"
