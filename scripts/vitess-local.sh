#!/usr/bin/env bash
# The one place that says how vtctld and vtgate are started beside tabletd: the README's
# "Running beside real Vitess" shows what this script runs (`print`), and the interop tests
# (test/interop, newCluster) start Vitess through it; a test fails when the README drifts.
#
#   scripts/vitess-local.sh etcd            Debian's etcd on $VT_TOPO_ADDR (installs etcd-server)
#   scripts/vitess-local.sh cell            creates the cell in the topology (once)
#   scripts/vitess-local.sh vtctld [FLAG…]  runs vtctld in the foreground
#   scripts/vitess-local.sh vtgate [FLAG…]  runs vtgate in the foreground
#   scripts/vitess-local.sh print           prints the command lines above
#
# vtgate looks for new tablets in the topology every second (its default is a minute, which
# reads as "tabletd is not seen"). Extra flags are appended (later flags win). Vitess programs refuse to run as root, so as
# root they run as the user $VT_USER (created when missing) through runuser. The programs
# come from $VITESS_BIN (make vitess builds them there with scripts/build-vitess.sh).
set -euo pipefail
# Settings (environment), with their defaults:
VITESS_BIN=${VITESS_BIN:-/opt/vitess-v23/bin}
VT_USER=${VT_USER:-vt}
VT_TOPO_ADDR=${VT_TOPO_ADDR:-127.0.0.1:2379}
VT_CELL=${VT_CELL:-zone1}
VT_DIR=${VT_DIR:-/tmp/vitess-local}   # logs and etcd data; writable by $VT_USER
VTCTLD_PORT=${VTCTLD_PORT:-15000} VTCTLD_GRPC_PORT=${VTCTLD_GRPC_PORT:-15999}
VTGATE_PORT=${VTGATE_PORT:-15001} VTGATE_GRPC_PORT=${VTGATE_GRPC_PORT:-15991}
VTGATE_MYSQL_PORT=${VTGATE_MYSQL_PORT:-15306}

topo=(--topo-implementation etcd2 --topo-global-server-address "$VT_TOPO_ADDR" --topo-global-root /vitess/global)

# cmdline sets argv to the command line of one subcommand (without the user switch).
cmdline() {
  case "$1" in
    etcd)
      argv=(etcd --data-dir "$VT_DIR/etcd"
        --listen-client-urls "http://$VT_TOPO_ADDR" --advertise-client-urls "http://$VT_TOPO_ADDR") ;;
    cell)
      argv=("$VITESS_BIN/vtctldclient" --server internal "${topo[@]}"
        AddCellInfo --root "/vitess/$VT_CELL" --server-address "$VT_TOPO_ADDR" "$VT_CELL") ;;
    vtctld)
      argv=("$VITESS_BIN/vtctld" "${topo[@]}" --log_dir "$VT_DIR"
        --cell "$VT_CELL" --service-map grpc-vtctl,grpc-vtctld
        --port "$VTCTLD_PORT" --grpc-port "$VTCTLD_GRPC_PORT") ;;
    vtgate)
      argv=("$VITESS_BIN/vtgate" "${topo[@]}" --log_dir "$VT_DIR"
        --cell "$VT_CELL" --cells-to-watch "$VT_CELL" --tablet-types-to-wait PRIMARY
        --service-map grpc-vtgateservice --mysql-auth-server-impl none
        --mysql-server-port "$VTGATE_MYSQL_PORT" --mysql-server-bind-address 127.0.0.1
        --port "$VTGATE_PORT" --grpc-port "$VTGATE_GRPC_PORT" --tablet-refresh-interval 1s) ;;
    *) return 1 ;;
  esac
}


# show prints argv as a shell command wrapped at about 90 columns with backslashes, never
# between a --flag and its value.
show() {
  local line="" word i=1
  while [ $i -le $# ]; do
    word=${!i}
    i=$((i + 1))
    if [[ $word == --?* && $i -le $# && ${!i} != -* ]]; then word="$word ${!i}"; i=$((i + 1)); fi
    if [ -n "$line" ] && [ $((${#line} + ${#word})) -gt 88 ]; then
      printf '%s \\\n' "$line"
      line="  $word"
    else
      line="${line:+$line }$word"
    fi
  done
  printf '%s\n' "$line"
}

sub=${1:-}
[ $# -eq 0 ] || shift
case "$sub" in
  print)
    for s in etcd cell vtctld vtgate; do
      cmdline "$s"
      echo "# scripts/vitess-local.sh $s"
      if [ "$s" = etcd ]; then show "${argv[@]}"; else show runuser -u "$VT_USER" -- "${argv[@]}"; fi
    done ;;
  etcd | cell | vtctld | vtgate)
    cmdline "$sub"
    argv+=("$@")
    mkdir -p "$VT_DIR"
    if [ "$sub" = etcd ] && ! command -v etcd >/dev/null 2>&1; then
      "$(dirname "$0")/install-deps.sh" --etcd
    fi
    # print shows the root form; another user runs the programs as itself.
    if [ "$sub" != etcd ] && [ "$(id -u)" = 0 ]; then
      id "$VT_USER" >/dev/null 2>&1 || useradd -m "$VT_USER"
      chown "$VT_USER" "$VT_DIR"
      exec runuser -u "$VT_USER" -- "${argv[@]}"
    fi
    exec "${argv[@]}" ;;
  *)
    sed -n '2,/^VTGATE_MYSQL_PORT/{/^set -euo/d; s/^# \{0,1\}//; p}' "$0" >&2
    exit 2 ;;
esac
