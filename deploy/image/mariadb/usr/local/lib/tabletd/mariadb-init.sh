# Sourced by mariadb-entrypoint and tablet-allinone (not run): writes the tablet's my.cnf and
# initializes an empty datadir with Vitess's users.
# The volume is /var/lib/mysql; the datadir a subdirectory of it, so that a restore can stage
# the backup beside the datadir on the same volume (tabletd writes .data.tabletd-restore).
volume=/var/lib/mysql
datadir=$volume/data
cnf=/etc/mysql/tablet.cnf

fail() { echo "$(basename "$0"): $*" >&2; exit 2; }

write_cnf() {
  case "${SERVER_ID:-}" in
    '' | *[!0-9]*) fail "SERVER_ID must be set to a number unique in the shard (got '${SERVER_ID:-}')" ;;
  esac
  sed "s/@SERVER_ID@/$SERVER_ID/" /etc/mysql/tablet.cnf.in >"$cnf"
  mkdir -p /run/mysqld "$datadir"
  chown mysql:mysql /run/mysqld "$volume" "$datadir"
}

# init_datadir creates the system tables and Vitess's users (config/init_db.sql's, README
# "Running beside real Vitess") on a private server without networking or binary log: the
# users are this server's own and never replicate. The password comes from a file (a secret),
# never from the command line or the environment.
init_datadir() {
  [ -d "$datadir/mysql" ] && return 0
  pwfile=${VT_PASSWORD_FILE:-/run/secrets/vt-password}
  [ -r "$pwfile" ] || fail "$pwfile (the password of Vitess's vt_* users) is missing: mount it as a secret, or set VT_PASSWORD_FILE"
  pw=$(cat "$pwfile")
  case "$pw" in '' | *"'"* | *\\*) fail "$pwfile: the password must be non-empty, without ' or \\" ;; esac
  log=/tmp/mariadb-init.log
  mariadb-install-db --defaults-file="$cnf" --skip-test-db --auth-root-authentication-method=socket >"$log" 2>&1 ||
    { cat "$log" >&2; fail "mariadb-install-db failed"; }
  mariadbd --defaults-file="$cnf" --skip-networking --skip-log-bin --socket=/run/mysqld/init.sock \
    --pid-file=/run/mysqld/init.pid >>"$log" 2>&1 &
  i=0
  until mariadb-admin --socket=/run/mysqld/init.sock ping --silent >/dev/null 2>&1; do
    i=$((i + 1)); [ $i -lt 600 ] || { cat "$log" >&2; fail "the initializing mariadbd did not answer in 60 s"; }
    sleep 0.1
  done
  mariadb --socket=/run/mysqld/init.sock <<SQL
DROP USER IF EXISTS ''@'localhost', ''@'%';
CREATE USER 'vt_dba'@'%' IDENTIFIED BY '$pw';
GRANT ALL ON *.* TO 'vt_dba'@'%' WITH GRANT OPTION;
CREATE USER 'vt_app'@'%' IDENTIFIED BY '$pw';
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, RELOAD, PROCESS, FILE, REFERENCES, INDEX,
  ALTER, SHOW DATABASES, CREATE TEMPORARY TABLES, LOCK TABLES, EXECUTE, REPLICATION CLIENT,
  CREATE VIEW, SHOW VIEW, CREATE ROUTINE, ALTER ROUTINE, CREATE USER, EVENT, TRIGGER
  ON *.* TO 'vt_app'@'%';
CREATE USER 'vt_allprivs'@'%' IDENTIFIED BY '$pw';
CREATE USER 'vt_filtered'@'%' IDENTIFIED BY '$pw';
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, RELOAD, PROCESS, FILE, REFERENCES, INDEX,
  ALTER, SHOW DATABASES, CREATE TEMPORARY TABLES, LOCK TABLES, EXECUTE, REPLICATION SLAVE,
  REPLICATION CLIENT, CREATE VIEW, SHOW VIEW, CREATE ROUTINE, ALTER ROUTINE, CREATE USER, EVENT,
  TRIGGER ON *.* TO 'vt_allprivs'@'%', 'vt_filtered'@'%';
CREATE USER 'vt_repl'@'%' IDENTIFIED BY '$pw';
GRANT REPLICATION SLAVE ON *.* TO 'vt_repl'@'%';
SQL
  mariadb-admin --socket=/run/mysqld/init.sock shutdown
  wait
  echo "$(basename "$0"): initialized $datadir (server-id $SERVER_ID) with Vitess's vt_* users"
}
