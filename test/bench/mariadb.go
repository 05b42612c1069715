package main

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

const (
	// dbName is the database both tablets serve (--init-db-name-override).
	dbName = "benchdb"
	// dbPassword is the password of every vt_* account.
	dbPassword = "bench-secret"
	// loadBatch is the number of rows per multi-row INSERT.
	loadBatch = 1000
)

// vtUsers are the accounts vttablet's --db-<role>-user flags name (tabletd
// uses the first five). Privileges as Vitess's init_db.sql.
var vtUsers = []struct{ role, privileges string }{
	{"dba", "ALL PRIVILEGES"},
	{"app", appPrivileges},
	{"allprivs", appPrivileges},
	{"filtered", appPrivileges},
	{"repl", "REPLICATION SLAVE"},
	{"appdebug", "SELECT, SHOW DATABASES, PROCESS"},
	{"erepl", "REPLICATION SLAVE"},
}

const appPrivileges = "SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, RELOAD, PROCESS, FILE, " +
	"REFERENCES, INDEX, ALTER, SHOW DATABASES, CREATE TEMPORARY TABLES, LOCK TABLES, EXECUTE, " +
	"REPLICATION SLAVE, REPLICATION CLIENT, CREATE VIEW, SHOW VIEW, CREATE ROUTINE, ALTER ROUTINE, " +
	"CREATE USER, EVENT, TRIGGER"

// mariadb is the one mariadbd all three targets read.
type mariadb struct {
	proc    *child
	port    int
	socket  string
	version string
	status  *sql.DB // root, one connection: reads the Questions counter
}

// questions reads mariadbd's Questions status counter.
func (m *mariadb) questions() (uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var name string
	var v uint64
	err := m.status.QueryRowContext(ctx, "SHOW GLOBAL STATUS LIKE 'Questions'").Scan(&name, &v)
	return v, err
}

// mariadbSettings are the server options that matter for the numbers; they
// are printed in the report.
func mariadbSettings() []string {
	return []string{
		"--innodb-buffer-pool-size=1G", // both tables stay in memory
		"--innodb-log-file-size=256M",
		"--innodb-flush-log-at-trx-commit=2",
		"--max-connections=2000",
		"--performance-schema=OFF",
		"--skip-name-resolve",
		"--character-set-server=utf8mb4",
		"--collation-server=utf8mb4_general_ci",
		"--innodb-buffer-pool-dump-at-shutdown=0",
		"--innodb-buffer-pool-load-at-startup=0",
	}
}

// findBinary looks a program up on PATH, then in the sbin directories
// Debian keeps mariadbd in.
func findBinary(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range []string{"/usr/sbin", "/usr/local/sbin", "/usr/bin", "/usr/local/bin"} {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found (apt-get install -y mariadb-server)", name)
}

// usersSQL is run by mariadb-install-db in bootstrap mode: Vitess's accounts,
// no anonymous users (vttablet's app user is refused while they exist).
func usersSQL() string {
	var b strings.Builder
	b.WriteString("FLUSH PRIVILEGES;\n")
	b.WriteString("DELETE FROM mysql.global_priv WHERE User = '';\n")
	b.WriteString("DELETE FROM mysql.global_priv WHERE User = 'root' AND Host NOT IN ('localhost', '127.0.0.1', '::1');\n")
	b.WriteString("FLUSH PRIVILEGES;\n")
	for _, u := range vtUsers {
		for _, host := range []string{"%", "localhost"} {
			fmt.Fprintf(&b, "CREATE USER 'vt_%s'@'%s' IDENTIFIED BY '%s';\n", u.role, host, dbPassword)
			opt := ""
			if u.role == "dba" {
				opt = " WITH GRANT OPTION"
			}
			fmt.Fprintf(&b, "GRANT %s ON *.* TO 'vt_%s'@'%s'%s;\n", u.privileges, u.role, host, opt)
		}
	}
	return b.String()
}

// startMariaDB installs a fresh data dir and starts mariadbd on a free port.
func startMariaDB(ctx context.Context, e *env) (*mariadb, error) {
	mariadbd, err := findBinary("mariadbd")
	if err != nil {
		return nil, err
	}
	installDB, err := findBinary("mariadb-install-db")
	if err != nil {
		return nil, err
	}
	base := filepath.Join(e.dir, "mariadb")
	dataDir := filepath.Join(base, "data")
	if err := os.MkdirAll(base, 0o755); err != nil {
		return nil, err
	}
	usersFile := filepath.Join(base, "users.sql")
	if err := os.WriteFile(usersFile, []byte(usersSQL()), 0o600); err != nil {
		return nil, err
	}
	var userArg []string
	if os.Geteuid() == 0 {
		userArg = []string{"--user=root"} // mariadbd refuses root without it
	}
	args := append([]string{"--no-defaults", "--datadir=" + dataDir,
		"--auth-root-authentication-method=normal", "--skip-test-db", "--extra-file=" + usersFile}, userArg...)
	args = append(args, mariadbSettings()...)
	ictx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ictx, installDB, args...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("mariadb-install-db: %w\n%s", err, out)
	}

	m := &mariadb{socket: filepath.Join(base, "mysql.sock")}
	if m.port, err = freePort(); err != nil {
		return nil, err
	}
	args = append([]string{"--no-defaults", "--datadir=" + dataDir,
		"--bind-address=127.0.0.1", "--port=" + strconv.Itoa(m.port), "--socket=" + m.socket,
		"--pid-file=" + filepath.Join(base, "mariadbd.pid"), "--log-error=" + filepath.Join(e.dir, "mariadbd.err"),
		"--server-id=1", "--log-bin=mysql-bin", "--binlog-format=ROW", "--log-slave-updates",
		"--gtid-strict-mode=1", "--skip-slave-start"}, userArg...)
	args = append(args, mariadbSettings()...)
	if m.proc, err = e.start("mariadbd", nil, nil, mariadbd, args...); err != nil {
		return nil, err
	}
	root, err := m.rootDB()
	if err != nil {
		return nil, err
	}
	defer root.Close()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		pctx, pcancel := context.WithTimeout(ctx, time.Second)
		err = root.PingContext(pctx)
		pcancel()
		if err == nil {
			break
		}
		if !m.proc.running() || time.Now().After(deadline) || ctx.Err() != nil {
			return nil, fmt.Errorf("mariadbd not ready (%v):\n%s", err, tailFile(filepath.Join(e.dir, "mariadbd.err"), 20))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := root.QueryRowContext(ctx, "SELECT VERSION()").Scan(&m.version); err != nil {
		return nil, err
	}
	if m.status, err = m.rootDB(); err != nil {
		return nil, err
	}
	m.status.SetMaxOpenConns(1)
	e.onClose(func() { _ = m.status.Close() })
	return m, nil
}

// rootDB is a root connection over the unix socket.
func (m *mariadb) rootDB() (*sql.DB, error) {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Net, cfg.Addr = "root", "unix", m.socket
	cfg.Logger = nopLogger{}
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	return sql.OpenDB(c), nil
}

// appDSN is what the direct-MySQL leg connects with: the vt_app account over
// the unix socket both tablets use (--db-socket), with client-side
// interpolation so a point select is one COM_QUERY round trip, as through a
// tablet.
func (m *mariadb) appDSN() string {
	return fmt.Sprintf("vt_app:%s@unix(%s)/%s?interpolateParams=true", dbPassword, m.socket, dbName)
}

// nopLogger silences the driver's connection-refused noise while polling.
type nopLogger struct{}

func (nopLogger) Print(...any) {}

// sbtestDDL is sysbench's own table (oltp_common.lua's create_table for
// MySQL), so sysbench's workloads run on the table the bench loads.
const sbtestDDL = `CREATE TABLE %s (
  id INTEGER NOT NULL AUTO_INCREMENT,
  k INTEGER DEFAULT '0' NOT NULL,
  c CHAR(120) DEFAULT '' NOT NULL,
  pad CHAR(60) DEFAULT '' NOT NULL,
  PRIMARY KEY (id),
  KEY k_1 (k)
) ENGINE=InnoDB`

// load creates benchdb.sbtest1 (rows rows, sysbench's value format) and
// sbtest2 (streamRows rows, copies of sbtest1's). Not binlogged.
func (m *mariadb) load(ctx context.Context, rows, streamRows int) error {
	root, err := m.rootDB()
	if err != nil {
		return err
	}
	defer root.Close()
	conn, err := root.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	for _, q := range []string{
		"SET sql_log_bin = 0",
		"CREATE DATABASE " + dbName,
		"USE " + dbName,
		fmt.Sprintf(sbtestDDL, "sbtest1"),
		fmt.Sprintf(sbtestDDL, "sbtest2"),
	} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var b strings.Builder
	for start := 1; start <= rows; start += loadBatch {
		b.Reset()
		b.WriteString("INSERT INTO sbtest1 (id, k, c, pad) VALUES ")
		for id := start; id < start+loadBatch && id <= rows; id++ {
			if id > start {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "(%d,%d,'%s','%s')", id, 1+rng.IntN(rows), digitGroups(rng, 10), digitGroups(rng, 5))
		}
		if _, err := conn.ExecContext(ctx, b.String()); err != nil {
			return fmt.Errorf("loading sbtest1: %w", err)
		}
	}
	for copied := 0; copied < streamRows; copied += rows {
		q := "INSERT INTO sbtest2 (k, c, pad) SELECT k, c, pad FROM sbtest1"
		if n := streamRows - copied; n < rows {
			q += " ORDER BY id LIMIT " + strconv.Itoa(n)
		}
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("loading sbtest2: %w", err)
		}
	}
	return nil
}

// digitGroups is sysbench's c/pad format: n groups of 11 digits joined by '-'.
func digitGroups(rng *rand.Rand, n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte('-')
		}
		for range 11 {
			b.WriteByte(byte('0' + rng.IntN(10)))
		}
	}
	return b.String()
}
