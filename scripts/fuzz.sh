#!/usr/bin/env bash
# Runs every go test -fuzz target of the project, one after another, each for FUZZTIME
# (default 2m) with FUZZ_PARALLEL workers (default 1: the machines here have 2 shared cores),
# and prints one line per target with its executions, so the durations in
# docs/reliability.md come from a command. A target that finds a failure stops the script
# (exit 1) and leaves the input under the package's testdata/fuzz/<Target>/ to commit as a
# seed once fixed. FuzzPlanTablesMatchMariaDB and FuzzBindVarRoundTrip start a real mariadbd.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-2m}
parallel=${FUZZ_PARALLEL:-1}
targets=(
  "FuzzPlanTablesMatchMariaDB ./tabletserver/plan"
  "FuzzBindVarRoundTrip ./tabletserver/plan"
  "FuzzScan ./tabletserver/plan"
  "FuzzBuild ./tabletserver/plan"
  "FuzzParseConfig ./acl"
  "FuzzParse ./tabletserver/rules"
  "FuzzConfigFile ./cmd/tabletd"
  "FuzzCorruptServer ./mysqlconn"
)
echo "fuzz: $(git rev-parse --short HEAD)$(git diff --quiet HEAD || echo ' (dirty tree)'), ${fuzztime} each, -parallel ${parallel}, $(go version | cut -d' ' -f3)"
for t in "${targets[@]}"; do
  read -r name pkg <<<"$t"
  log=$(mktemp)
  if ! go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" -parallel "$parallel" "$pkg" >"$log" 2>&1; then
    cat "$log"; rm -f "$log"
    echo "fuzz: ${name} (${pkg}) FAILED" >&2
    exit 1
  fi
  # The last progress line: "fuzz: elapsed: 2m0s, execs: 123456 (1029/sec), new interesting: 3 (total: 40)"
  last=$(grep -E '^fuzz: elapsed: ' "$log" | tail -1 || true)
  rm -f "$log"
  echo "${name} ${pkg}: ok — ${last#fuzz: }"
done
