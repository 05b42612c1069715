package mysqlconn

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/tabletd/tabletd/test/mariadbtest"
)

// waitRunning waits until the server shows connection id running a statement
// that starts with prefix.
func waitRunning(t *testing.T, db *sql.DB, id uint32, prefix string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		var n int
		err := db.QueryRow("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = ? AND INFO LIKE ?",
			id, prefix+"%").Scan(&n)
		if err != nil {
			t.Errorf("processlist: %v", err)
			return
		}
		if n > 0 {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Errorf("connection %d never ran %q", id, prefix)
}

// TestCancelWithKill is how the query engine cancels: the ctx is cancelled
// and KILL QUERY is sent from another connection. The blocked read returns
// with the server's error 1317 and the connection stays usable.
func TestCancelWithKill(t *testing.T) {
	s := mariadbtest.Start(t, mariadbtest.Options{})
	root := s.RootDB(t)
	// A long grace: the error being the server's 1317 (not 2013) and the
	// connection staying open prove the read returned on the server's answer.
	c := connect(t, s, func(c *Config) { c.DBName, c.CancelGrace = "mysql", 10*time.Second })
	// Statements that end with error 1317 when killed. (MariaDB's SELECT
	// SLEEP(n) and SELECT BENCHMARK(...) return a row, 1 and 0, instead.)
	// (A second statement on a sequence table right after a killed one has been seen to fail
	// with MariaDB's 1939 "Engine SEQUENCE failed to discover table"; the cross join avoids it.)
	for _, stmt := range []string{"select max(md5(seq)) from seq_1_to_100000000000",
		"select count(*) from information_schema.collations a, information_schema.collations b, information_schema.collations c, information_schema.collations d"} {
		t.Run(stmt, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			killed := make(chan time.Time, 1)
			killDone := make(chan struct{})
			go func() {
				defer close(killDone)
				waitRunning(t, root, c.ID(), stmt[:12])
				cancel()
				killed <- time.Now()
				if _, err := root.Exec("KILL QUERY " + strconv.FormatUint(uint64(c.ID()), 10)); err != nil {
					t.Errorf("kill: %v", err)
				}
			}()
			_, err := c.Execute(ctx, stmt, 0, FieldsAll)
			returned := time.Now()
			<-killDone
			var se *SQLError
			if !errors.As(err, &se) || se.Num != ERQueryInterrupted || se.State != "70100" {
				t.Fatalf("got %v, want errno %d", err, ERQueryInterrupted)
			}
			wait := returned.Sub(<-killed)
			if wait > 5*time.Second {
				t.Errorf("returned %v after the cancel", wait)
			}
			t.Logf("returned %v after the cancel and KILL QUERY", wait)
			if c.IsClosed() {
				t.Fatal("connection closed")
			}
			if got := value(exec(t, c, "select 'usable'").Rows[0], 0); got != "usable" {
				t.Fatalf("next statement returned %q", got)
			}
		})
	}
}

// TestCancelWithoutKill: nobody kills the statement, so after CancelGrace the
// connection is closed and the error wraps the ctx's.
func TestCancelWithoutKill(t *testing.T) {
	s := mariadbtest.Start(t, mariadbtest.Options{})
	c := connect(t, s, func(c *Config) { c.CancelGrace = 100 * time.Millisecond })
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	begin := time.Now()
	_, err := c.Execute(ctx, "select sleep(30)", 0, FieldsAll)
	elapsed := time.Since(begin)
	var se *SQLError
	if !errors.As(err, &se) || se.Num != CRServerLost || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want errno %d wrapping context.DeadlineExceeded", err, CRServerLost)
	}
	if !c.IsClosed() {
		t.Fatal("connection not closed")
	}
	if elapsed < 300*time.Millisecond || elapsed > 5*time.Second {
		t.Errorf("returned after %v, want about 300ms", elapsed)
	}
}

// TestServerKilled: mysqld dies mid-statement → CR_SERVER_LOST, IsClosed.
func TestServerKilled(t *testing.T) {
	s := mariadbtest.Start(t, mariadbtest.Options{})
	root := s.RootDB(t)
	c := connect(t, s, nil)
	unix := connect(t, s, func(c *Config) { c.Network, c.Address = "unix", s.Socket })
	done := make(chan struct{})
	go func() {
		defer close(done)
		waitRunning(t, root, c.ID(), "select sleep")
		waitRunning(t, root, unix.ID(), "select sleep")
		_ = root.Close()
		s.Kill(t)
	}()
	errs := make(chan error, 1)
	go func() {
		_, err := unix.Execute(context.Background(), "select sleep(60)", 0, FieldsAll)
		errs <- err
	}()
	_, err := c.Execute(context.Background(), "select sleep(60)", 0, FieldsAll)
	<-done
	for i, err := range []error{err, <-errs} {
		var se *SQLError
		if !errors.As(err, &se) || se.Num != CRServerLost {
			t.Errorf("conn %d: got %v, want errno %d", i, err, CRServerLost)
		}
	}
	if !c.IsClosed() || !unix.IsClosed() {
		t.Fatal("connections not closed")
	}
	var se *SQLError
	if _, err := c.Execute(context.Background(), "select 1", 0, FieldsAll); !errors.As(err, &se) || se.Num != CRServerGone {
		t.Fatalf("after the crash: %v, want errno %d", err, CRServerGone)
	}
}

// TestCloseWhileRunning: Close from another goroutine ends a running statement.
func TestCloseWhileRunning(t *testing.T) {
	s := mariadbtest.Start(t, mariadbtest.Options{})
	root := s.RootDB(t)
	c := connect(t, s, nil)
	go func() {
		waitRunning(t, root, c.ID(), "select sleep")
		_ = c.Close()
	}()
	_, err := c.Execute(context.Background(), "select sleep(30)", 0, FieldsAll)
	var se *SQLError
	if !errors.As(err, &se) || se.Num != CRServerLost || !c.IsClosed() {
		t.Fatalf("got %v (closed %v), want errno %d", err, c.IsClosed(), CRServerLost)
	}
}
