// Package mariadbtest starts throwaway MariaDB servers (real mariadbd processes) for integration tests.
//
// Every server is a fresh copy of a data dir that mariadb-install-db builds
// once per test process, runs with binlogs (ROW, log_slave_updates) and
// gtid_strict_mode, listens on a free 127.0.0.1 port and a unix socket, and
// has the Vitess users (see Password and the User constants). The server is
// killed and its files removed when the test ends, pass or fail.
//
// Durability: innodb_flush_log_at_trx_commit=2, so committed data survives
// Kill (the process dies, the OS keeps its writes) but not a machine crash.
// skip_slave_start is set, as Vitess does: after Restart, replication stays
// stopped until started explicitly.
package mariadbtest

import (
	"context"
	"database/sql"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

const (
	// readyTimeout bounds one start, including InnoDB crash recovery after Kill.
	// Servers are normally ready in well under a second; the slack is for
	// loaded CI machines running many servers under -race.
	readyTimeout = 60 * time.Second
	// stopTimeout bounds a clean shutdown.
	stopTimeout = 60 * time.Second
	// killTimeout bounds waiting for a killed process to be reaped.
	killTimeout = 30 * time.Second
	// execTimeout bounds one Exec call.
	execTimeout = 60 * time.Second
	// dialTimeout is the connect timeout in DSNs.
	dialTimeout = 5 * time.Second
	// maxPortAttempts bounds retries when the picked free port is taken by
	// someone else before mariadbd binds it.
	maxPortAttempts = 5
)

// Options configures a server. The zero value is valid.
type Options struct {
	// ServerID is @@server_id. 0 derives one from the process id and the
	// port, unique among the servers running on this host at the same time.
	ServerID uint32
	// ExtraArgs are appended to the mariadbd command line, after the
	// defaults, so they override them (e.g. "--gtid-domain-id=2").
	ExtraArgs []string
}

// Server is a running (or stopped, after Stop/Kill) mariadbd owned by one test.
// The exported fields do not change after Start.
type Server struct {
	Host     string // always 127.0.0.1
	Port     int
	Socket   string // unix socket path
	DataDir  string
	ServerID uint32

	baseDir   string   // holds DataDir and Socket; removed at cleanup
	mariadbd  string   // server binary
	extraArgs []string // Options.ExtraArgs

	mu   sync.Mutex
	proc *process // nil when not running
}

// Start starts a server and waits until it accepts connections. The test
// fails (never skips) if mariadbd is not installed or does not start.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	tmpl, err := shared.get()
	if err != nil {
		t.Fatalf("mariadbtest: %v", err)
	}
	if !shared.reported.Swap(true) {
		t.Logf("mariadbtest: template data dir built in %v (once per test process)", shared.duration.Round(time.Millisecond))
	}
	base, err := os.MkdirTemp(tempRoot(), dirPrefix())
	if err != nil {
		t.Fatalf("mariadbtest: create server dir: %v", err)
	}
	s := &Server{
		Host:      "127.0.0.1",
		Socket:    filepath.Join(base, "mysql.sock"),
		DataDir:   filepath.Join(base, "data"),
		baseDir:   base,
		mariadbd:  tmpl.mariadbd,
		extraArgs: opts.ExtraArgs,
	}
	t.Cleanup(func() { s.cleanup(t) })
	begin := time.Now()
	if err := copyDir(tmpl.dataDir, s.DataDir); err != nil {
		t.Fatalf("mariadbtest: %v", err)
	}
	if err := os.Mkdir(s.tmpDir(), 0o700); err != nil {
		t.Fatalf("mariadbtest: %v", err)
	}
	for attempt := 1; ; attempt++ {
		if s.Port, err = freePort(); err != nil {
			t.Fatalf("mariadbtest: %v", err)
		}
		s.ServerID = opts.ServerID
		if s.ServerID == 0 {
			s.ServerID = deriveServerID(os.Getpid(), s.Port)
		}
		err = s.launch()
		if err == nil {
			break
		}
		if !isPortInUse(err) || attempt == maxPortAttempts {
			t.Fatalf("mariadbtest: %v", err)
		}
	}
	t.Logf("mariadbtest: mariadbd ready on %s:%d, server_id %d, in %v",
		s.Host, s.Port, s.ServerID, time.Since(begin).Round(time.Millisecond))
	return s
}

// deriveServerID combines the low 16 bits of pid with the port: two servers
// running at the same time on one host have different ports, and the pid
// makes a reused port in another test process unlikely to repeat an id.
func deriveServerID(pid, port int) uint32 {
	return uint32(pid&0xffff)<<16 | uint32(port&0xffff)
}

// freePort returns a 127.0.0.1 port that is free right now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	return port, l.Close()
}

// DSN returns a go-sql-driver/mysql DSN for user over TCP, with
// interpolateParams and a dial timeout; parseTime is not set, so DATETIME
// columns scan as []byte/string as Vitess expects.
func (s *Server) DSN(user, password, db string) string {
	cfg := mysql.NewConfig()
	cfg.User = user
	cfg.Passwd = password
	cfg.Net = "tcp"
	cfg.Addr = net.JoinHostPort(s.Host, strconv.Itoa(s.Port))
	cfg.DBName = db
	cfg.InterpolateParams = true
	cfg.Timeout = dialTimeout
	return cfg.FormatDSN()
}

// rootConfig is the driver config for root over the unix socket.
func (s *Server) rootConfig() *mysql.Config {
	cfg := mysql.NewConfig()
	cfg.User = "root"
	cfg.Net = "unix"
	cfg.Addr = s.Socket
	cfg.InterpolateParams = true
	cfg.Timeout = dialTimeout
	return cfg
}

// RootDB returns a connection pool for root over the unix socket, closed
// when t ends. It keeps working across Restart (stale connections are
// replaced).
func (s *Server) RootDB(t testing.TB) *sql.DB {
	t.Helper()
	connector, err := mysql.NewConnector(s.rootConfig())
	if err != nil {
		t.Fatalf("mariadbtest: root connector: %v", err)
	}
	db := sql.OpenDB(connector)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// Exec runs admin statements as root, in order, on one connection (so USE
// and session variables carry over; a statement may also hold several
// statements separated by ';'). It fails the test on the first error.
func (s *Server) Exec(t testing.TB, stmts ...string) {
	t.Helper()
	cfg := s.rootConfig()
	cfg.MultiStatements = true
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatalf("mariadbtest: root connector: %v", err)
	}
	db := sql.OpenDB(connector)
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), execTimeout)
	defer cancel()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatalf("mariadbtest: connect to %s as root: %v", s.Socket, err)
	}
	defer conn.Close()
	for _, stmt := range stmts {
		if _, err := conn.ExecContext(ctx, stmt); err != nil {
			t.Fatalf("mariadbtest: exec %q: %v", stmt, err)
		}
	}
}
