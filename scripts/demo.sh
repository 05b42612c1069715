#!/usr/bin/env bash
# make demo: a local MariaDB and one tabletd in front of it, with an in-process etcd as the
# topology. Installs MariaDB from Debian when it is missing. Ctrl-C stops everything.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
state=${DEMO_DIR:-/tmp/tabletd-demo}
port=${DEMO_MYSQL_PORT:-33306}

if ! command -v mariadbd >/dev/null && [ ! -x /usr/sbin/mariadbd ]; then
  echo "demo: installing MariaDB (apt-get install mariadb-server)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mariadb-server mariadb-client >/dev/null
fi
export PATH=$PATH:/usr/sbin

mkdir -p "$state"
data=$state/mysql
if [ ! -d "$data/mysql" ]; then
  echo "demo: initializing a MariaDB data directory in $data"
  mariadb-install-db --no-defaults --datadir="$data" --auth-root-authentication-method=socket \
    --skip-test-db --user="$(id -un)" >"$state/install.log" 2>&1
fi
sock=$state/mysql.sock
mariadbd --no-defaults --datadir="$data" --socket="$sock" --port="$port" --bind-address=127.0.0.1 \
  --user="$(id -un)" --log-bin=mysql-bin --binlog-format=ROW --server-id=100 --gtid-strict-mode=1 \
  --log-error="$state/mysqld.err" --pid-file="$state/mysqld.pid" --skip-name-resolve &
mysqld_pid=$!
cleanup() { kill "${tabletd_pid:-}" 2>/dev/null || true; kill "$mysqld_pid" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM
for _ in $(seq 100); do mariadb --no-defaults -S "$sock" -uroot -e 'select 1' >/dev/null 2>&1 && break; sleep 0.1; done
mariadb --no-defaults -S "$sock" -uroot <<'SQL'
DROP USER IF EXISTS ''@'localhost';
CREATE USER IF NOT EXISTS 'vt_dba'@'localhost' IDENTIFIED BY 'demo';
GRANT ALL ON *.* TO 'vt_dba'@'localhost' WITH GRANT OPTION;
CREATE USER IF NOT EXISTS 'vt_app'@'localhost' IDENTIFIED BY 'demo';
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, ALTER, INDEX, CREATE TEMPORARY TABLES, LOCK TABLES ON *.* TO 'vt_app'@'localhost';
CREATE DATABASE IF NOT EXISTS vt_commerce;
SQL

echo "demo: building tabletd and tabletctl"
(cd "$here" && go build -o "$state/" ./cmd/tabletd ./cmd/tabletctl)
"$state/tabletd" --tablet-path zone1-100 --tablet-hostname 127.0.0.1 --init-keyspace commerce --init-shard 0 \
  --init-tablet-type PRIMARY --db-socket "$sock" --db-dba-user vt_dba --db-dba-password demo \
  --db-app-user vt_app --db-app-password demo --port 15100 --grpc-port 16100 \
  --embedded-topo-dir "$state/etcd" --log-format console &
tabletd_pid=$!
for _ in $(seq 100); do curl -fs http://127.0.0.1:15100/debug/health >/dev/null 2>&1 && break; sleep 0.1; done
echo
echo "demo: a query through tabletd's queryservice (what vtgate sends):"
q() { echo "+ tabletctl query --server 127.0.0.1:16100 \"$1\""; "$state/tabletctl" query --server 127.0.0.1:16100 "$1"; }
q "create table if not exists greetings (id int primary key, msg varchar(64))"
q "replace into greetings values (1, 'hello from tabletd')"
q "select id, msg, @@version as mariadb from greetings"
echo "demo: tabletd is up — status page: http://127.0.0.1:15100/debug/status"
echo "demo: gRPC (Vitess queryservice + tabletmanager) on 127.0.0.1:16100; Ctrl-C to stop"
wait "$tabletd_pid"
