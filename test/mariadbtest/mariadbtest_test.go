package mariadbtest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// MySQL error numbers the tests expect.
const (
	errAccessDenied   = 1045 // ER_ACCESS_DENIED_ERROR
	errDBAccessDenied = 1044 // ER_DBACCESS_DENIED_ERROR
)

// queryString returns the single value of query, as root.
func queryString(t *testing.T, db *sql.DB, query string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var v sql.NullString
	if err := db.QueryRowContext(ctx, query).Scan(&v); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return v.String
}

// openTCP opens a pool to s over TCP as user, closed at cleanup.
func openTCP(t *testing.T, s *Server, user, password string) *sql.DB {
	t.Helper()
	db, err := sql.Open("mysql", s.DSN(user, password, ""))
	if err != nil {
		t.Fatalf("sql.Open: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// mysqlErrno returns the MySQL error number in err, or 0.
func mysqlErrno(err error) uint16 {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number
	}
	return 0
}

func TestParallelServers(t *testing.T) {
	var mu sync.Mutex
	ids := map[uint32]string{}
	t.Run("group", func(t *testing.T) {
		for i := range 2 {
			t.Run(fmt.Sprint("server", i), func(t *testing.T) {
				t.Parallel()
				begin := time.Now()
				s := Start(t, Options{})
				t.Logf("start took %v", time.Since(begin))
				mu.Lock()
				ids[s.ServerID] = t.Name()
				mu.Unlock()
				checkServer(t, s)
			})
		}
	})
	if len(ids) != 2 {
		t.Fatalf("server ids %v: want 2 distinct ids", ids)
	}
}

// checkServer verifies the settings and users of a fresh server.
func checkServer(t *testing.T, s *Server) {
	root := s.RootDB(t)
	t.Run("variables", func(t *testing.T) {
		tests := []struct{ variable, want string }{
			{"@@server_id", strconv.FormatUint(uint64(s.ServerID), 10)},
			{"@@port", strconv.Itoa(s.Port)},
			{"@@gtid_strict_mode", "1"},
			{"@@binlog_format", "ROW"},
			{"@@log_bin", "1"},
			{"@@log_slave_updates", "1"},
			{"@@skip_name_resolve", "1"},
			{"@@performance_schema", "0"},
			{"@@character_set_server", "utf8mb4"},
			{"@@gtid_binlog_pos", ""}, // users are created in the template, not binlogged
			{"(SELECT COUNT(*) FROM mysql.user WHERE User = '')", "0"},
		}
		for _, tt := range tests {
			if got := queryString(t, root, "SELECT "+tt.variable); got != tt.want {
				t.Errorf("%s = %q, want %q", tt.variable, got, tt.want)
			}
		}
	})
	t.Run("logins", func(t *testing.T) {
		tests := []struct {
			user, password string
			wantErrno      uint16
		}{
			{UserApp, Password, 0},
			{UserApp, "wrong", errAccessDenied},
			{UserDBA, Password, 0},
			{UserAppDebug, Password, 0},
			{UserAllPrivs, Password, 0},
			{UserRepl, Password, 0},
			{UserFiltered, Password, 0},
			{"nobody", "", errAccessDenied}, // no anonymous users
			{"root", "", 0},                 // root@127.0.0.1
		}
		for _, tt := range tests {
			err := openTCP(t, s, tt.user, tt.password).Ping()
			if got := mysqlErrno(err); got != tt.wantErrno || (tt.wantErrno == 0 && err != nil) {
				t.Errorf("login %s/%q: err %v (errno %d), want errno %d", tt.user, tt.password, err, got, tt.wantErrno)
			}
		}
	})
	t.Run("privileges", func(t *testing.T) {
		tests := []struct {
			user      string
			wantErrno uint16
		}{
			{UserDBA, 0},
			{UserApp, 0},
			{UserRepl, errDBAccessDenied},
			{UserAppDebug, errDBAccessDenied},
		}
		for _, tt := range tests {
			_, err := openTCP(t, s, tt.user, Password).Exec("CREATE DATABASE db_" + tt.user)
			if got := mysqlErrno(err); got != tt.wantErrno || (tt.wantErrno == 0 && err != nil) {
				t.Errorf("%s: CREATE DATABASE: err %v, want errno %d", tt.user, err, tt.wantErrno)
			}
		}
	})
}

func TestKillRestartKeepsData(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{ServerID: 4242, ExtraArgs: []string{"--gtid-domain-id=7"}})
	s.Exec(t,
		"CREATE DATABASE d",
		"USE d", // carries over: Exec uses one connection
		"CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(10))",
		"INSERT INTO t VALUES (1, 'one'); INSERT INTO t VALUES (2, 'two')",
	)
	app := openTCP(t, s, UserApp, Password)
	if _, err := app.Exec("INSERT INTO d.t VALUES (3, 'three')"); err != nil {
		t.Fatalf("insert as vt_app: %v", err)
	}
	port, id := s.Port, s.ServerID

	tests := []struct {
		name string
		down func(testing.TB)
	}{
		{name: "kill", down: s.Kill},
		{name: "stop", down: s.Stop},
		{name: "restart while running", down: func(testing.TB) {}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.down(t)
			tt.down(t) // idempotent when already down
			s.Restart(t)
			if s.Port != port || s.ServerID != id {
				t.Fatalf("after restart port %d id %d, want %d %d", s.Port, s.ServerID, port, id)
			}
			root := s.RootDB(t)
			if got := queryString(t, root, "SELECT GROUP_CONCAT(v ORDER BY id) FROM d.t"); got != "one,two,three" {
				t.Fatalf("rows after %s = %q, want one,two,three", tt.name, got)
			}
			if got := queryString(t, root, "SELECT @@server_id"); got != "4242" {
				t.Fatalf("@@server_id = %s, want 4242", got)
			}
			if got := queryString(t, root, "SELECT @@gtid_binlog_pos"); !strings.HasPrefix(got, "7-4242-") {
				t.Fatalf("@@gtid_binlog_pos = %q, want domain 7 server 4242", got)
			}
			// The pool opened before the restart reconnects.
			if _, err := app.Exec("UPDATE d.t SET v = v WHERE id = 1"); err != nil {
				t.Fatalf("vt_app after restart: %v", err)
			}
		})
	}
}

func TestKilledServerRefusesConnections(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{})
	db := openTCP(t, s, UserApp, Password)
	s.Kill(t)
	if err := db.Ping(); err == nil {
		t.Fatal("ping after Kill succeeded")
	}
}

func TestFindBinaryMissing(t *testing.T) {
	_, err := findBinary("mariadbd-that-does-not-exist")
	if !errors.Is(err, errMissingBinary) {
		t.Fatalf("findBinary = %v, want errMissingBinary", err)
	}
	// The message is the user interface here: it must name the set-up command.
	if !strings.Contains(err.Error(), installHint) {
		t.Fatalf("findBinary error %q does not name %q", err, installHint)
	}
}

func TestDeriveServerID(t *testing.T) {
	tests := []struct {
		pid, port int
		want      uint32
	}{
		{pid: 1, port: 3306, want: 1<<16 | 3306},
		{pid: 0x12345, port: 65535, want: 0x2345<<16 | 65535},
		{pid: 0x10000, port: 1, want: 1}, // never 0: ports are never 0
	}
	for _, tt := range tests {
		if got := deriveServerID(tt.pid, tt.port); got != tt.want {
			t.Errorf("deriveServerID(%d, %d) = %d, want %d", tt.pid, tt.port, got, tt.want)
		}
	}
}
