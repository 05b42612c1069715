#!/usr/bin/env bash
# The demo command (README, Quick start): a local mariadbd and one tabletd in front of it,
# with a single-node etcd (`tabletctl topo-server`) as the topology; runs a few statements through tabletd's
# queryservice and stays up until Ctrl-C, which stops tabletd, then etcd and mariadbd, and exits 0.
# Installs what is missing first (scripts/install-deps.sh --demo). Everything it writes is
# under $DEMO_DIR (default /tmp/tabletd-demo), logs included.
set -euo pipefail
source "$(dirname "$0")/env.sh"
state=${DEMO_DIR:-/tmp/tabletd-demo}
port=${DEMO_MYSQL_PORT:-33306}
http=15100 grpc=16100

"$here/scripts/install-deps.sh" --demo

mkdir -p "$state"
data=$state/mysql sock=$state/mysql.sock
mysqld_log=$state/mysqld.err tabletd_log=$state/tabletd.log etcd_log=$state/etcd.log
if [ ! -d "$data/mysql" ]; then
  echo "demo: initializing a MariaDB data directory in $data"
  mariadb-install-db --no-defaults --datadir="$data" --auth-root-authentication-method=socket \
    --skip-test-db --user="$(id -un)" >"$state/install.log" 2>&1 ||
    { echo "demo: mariadb-install-db failed, see $state/install.log" >&2; exit 1; }
fi

mysqld_pid="" tabletd_pid="" etcd_pid=""
# stop ends tabletd before etcd and mariadbd, so tabletd never sees its servers vanish mid-query.
stop() {
  local pid
  for pid in "$tabletd_pid" "$etcd_pid" "$mysqld_pid"; do
    [ -n "$pid" ] || continue
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  tabletd_pid="" etcd_pid="" mysqld_pid=""
}
fail() {
  echo "demo: $1" >&2
  [ -z "${2:-}" ] || { echo "demo: last lines of $2:" >&2; tail -n 20 "$2" >&2; }
  stop
  exit 1
}
# Ctrl-C (or SIGTERM) is how the demo is meant to end: a clean stop, exit 0.
trap 'echo; echo "demo: stopping tabletd, etcd and mariadbd"; stop; echo "demo: stopped; logs in $state"; exit 0' INT TERM
trap stop EXIT

# setsid: the servers get no Ctrl-C from the terminal; the trap above stops them in order.
setsid mariadbd --no-defaults --datadir="$data" --socket="$sock" --port="$port" --bind-address=127.0.0.1 \
  --user="$(id -un)" --log-bin=mysql-bin --binlog-format=ROW --server-id=100 --gtid-strict-mode=1 \
  --log-error="$mysqld_log" --pid-file="$state/mysqld.pid" --skip-name-resolve >>"$mysqld_log" 2>&1 &
mysqld_pid=$!
for i in $(seq 300); do
  mariadb --no-defaults -S "$sock" -uroot -e 'select 1' >/dev/null 2>&1 && break
  kill -0 "$mysqld_pid" 2>/dev/null || fail "mariadbd exited at start" "$mysqld_log"
  [ "$i" -lt 300 ] || fail "mariadbd did not answer within 30 s" "$mysqld_log"
  sleep 0.1
done
v=$(mariadbd --version); v=${v#*Ver }
echo "demo: mariadbd ${v%% *} on $sock (and 127.0.0.1:$port)"
# The users and database a tablet expects (README, "Running beside real Vitess").
mariadb --no-defaults -S "$sock" -uroot <<'SQL'
DROP USER IF EXISTS ''@'localhost';
CREATE USER IF NOT EXISTS 'vt_dba'@'localhost' IDENTIFIED BY 'demo';
GRANT ALL ON *.* TO 'vt_dba'@'localhost' WITH GRANT OPTION;
CREATE USER IF NOT EXISTS 'vt_app'@'localhost' IDENTIFIED BY 'demo';
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, ALTER, INDEX, CREATE TEMPORARY TABLES, LOCK TABLES ON *.* TO 'vt_app'@'localhost';
CREATE DATABASE IF NOT EXISTS vt_commerce;
SQL

echo "demo: building tabletd and tabletctl into $state"
(cd "$here" && go build -o "$state/" ./cmd/tabletd ./cmd/tabletctl)
# The topology: a single-node etcd with cell zone1 registered (tabletd carries no etcd server).
rm -f "$state/etcd.endpoint"
setsid "$state/tabletctl" topo-server --dir "$state/etcd" --cell zone1 --root /vitess/global \
  --endpoint-file "$state/etcd.endpoint" >"$etcd_log" 2>&1 &
etcd_pid=$!
for i in $(seq 300); do
  [ -s "$state/etcd.endpoint" ] && break
  kill -0 "$etcd_pid" 2>/dev/null || fail "tabletctl topo-server exited at start" "$etcd_log"
  [ "$i" -lt 300 ] || fail "etcd did not serve within 30 s" "$etcd_log"
  sleep 0.1
done
etcd_endpoint=$(cat "$state/etcd.endpoint")
echo "demo: etcd on $etcd_endpoint (tabletctl topo-server), cell zone1 registered"
setsid "$state/tabletd" --tablet-path zone1-100 --tablet-hostname 127.0.0.1 --init-keyspace commerce \
  --init-shard 0 --init-tablet-type PRIMARY --db-socket "$sock" --db-dba-user vt_dba --db-dba-password demo \
  --db-app-user vt_app --db-app-password demo --port "$http" --grpc-port "$grpc" \
  --topo-global-server-address "$etcd_endpoint" --topo-global-root /vitess/global --log-format console >"$tabletd_log" 2>&1 &
tabletd_pid=$!
echo "demo: tabletd started, logging to $tabletd_log; waiting for it to serve"
# /debug/health answers 200 only while the tablet serves.
for i in $(seq 600); do
  curl -fs -o /dev/null "http://127.0.0.1:$http/debug/health" && break
  kill -0 "$tabletd_pid" 2>/dev/null || fail "tabletd exited at start" "$tabletd_log"
  [ "$i" -lt 600 ] || fail "tabletd is not SERVING after 60 s: $(curl -s "http://127.0.0.1:$http/debug/health")" "$tabletd_log"
  sleep 0.1
done
echo "demo: tabletd is SERVING (curl http://127.0.0.1:$http/debug/health answers 200)"
echo
echo "demo: statements through tabletd's queryservice (what vtgate sends):"
q() { echo "+ tabletctl query --server 127.0.0.1:$grpc \"$1\""; "$state/tabletctl" query --server "127.0.0.1:$grpc" "$1"; }
q "create table if not exists greetings (id int primary key, msg varchar(64))"
q "replace into greetings values (1, 'hello from tabletd')"
q "select id, msg, @@version as mariadb from greetings"
echo
echo "demo: status page: http://127.0.0.1:$http/debug/status (curl it, or open it in a browser)"
echo "demo: gRPC (Vitess queryservice + tabletmanager) on 127.0.0.1:$grpc"
echo "demo: logs: $tabletd_log, $mysqld_log"
echo "demo: Ctrl-C to stop"
wait "$tabletd_pid" || true
tabletd_pid=""
fail "tabletd exited by itself" "$tabletd_log"
