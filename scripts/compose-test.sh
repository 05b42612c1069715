#!/usr/bin/env bash
# make compose-test: the compose integration and chaos tests (test/compose, build tag
# compose) against a cluster of their own (project tabletdtest<pid>, host ports chosen by
# Docker, so they can run beside make compose-up and other engineers' runs). The cluster is
# removed afterwards even when a test fails or go test is killed by its timeout. Recovery
# times go to the test log (RECOVERY lines) and to $COMPOSE_RESULTS (JSON).
#   scripts/compose-test.sh [TIMEOUT]   (default 25m)
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$here"
timeout=${1:-25m}
export COMPOSE_PROJECT_NAME=tabletdtest$$
export TABLETD_SECRETS=/tmp/tabletd-compose-$COMPOSE_PROJECT_NAME
export COMPOSE_RESULTS=${COMPOSE_RESULTS:-/tmp/tabletd-compose-results.json}
trap 'scripts/compose.sh down >/dev/null 2>&1 || true' EXIT
go test -tags compose -count=1 -timeout "$timeout" -v ./test/compose/
