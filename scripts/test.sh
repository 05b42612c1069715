#!/usr/bin/env bash
# The test command (README, Quick start; .ci/run runs exactly this): installs what is
# missing (scripts/install-deps.sh), then go vet and the whole suite with the race detector:
# unit tests and integration tests against real mariadbd processes and an in-process etcd.
# Arguments replace ./... (e.g. ./scripts/test.sh ./pool/). About 4-5 minutes on 2 cores
# once the packages and Go modules are there.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$here"
"$here/scripts/install-deps.sh"
pkgs=("$@")
[ ${#pkgs[@]} -gt 0 ] || pkgs=(./...)

# go test -race needs cgo, and the go command turns cgo off when it finds no C compiler
# (install-deps.sh installs gcc; this is for machines where it could not).
race=(-race)
norace() {
  echo "test: ************************************************************************" >&2
  echo "test: WARNING: cgo is off (no working C compiler): the tests run WITHOUT the race detector" >&2
  echo "test: ************************************************************************" >&2
}
[ "$(go env CGO_ENABLED)" = 1 ] || { race=(); norace; }

go vet "${pkgs[@]}"
echo "test: go test ${race[*]} -count=1 -timeout 20m ${pkgs[*]}"
rc=0
go test "${race[@]}" -count=1 -timeout 20m "${pkgs[@]}" || rc=$?
[ ${#race[@]} -gt 0 ] || norace
exit $rc
