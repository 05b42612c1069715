package replication

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/go-sql-driver/mysql"
)

// fakeResult is a canned answer of fakeServer. Values are strings; JSON null
// (a nil *string) is SQL NULL.
type fakeResult struct {
	Columns []string    `json:"columns"`
	Rows    [][]*string `json:"rows"`
	err     error
}

// fakeServer answers queries from a table of canned results, and records
// executed statements, through a database/sql driver.
type fakeServer struct {
	mu      sync.Mutex
	results map[string]fakeResult
	execs   []string
	// log is every statement asked, in order: "query: ..." or "exec: ...",
	// with " -> error N" when it failed (N the MySQL errno, or "fake").
	log []string
	// answer, when set, answers queries missing from results (for
	// statements with variable text, such as wait timeouts).
	answer func(query string) (fakeResult, bool)
	// onExec changes results once a statement has been executed: the
	// server's state after it (e.g. variables after INSTALL PLUGIN).
	onExec map[string]map[string]fakeResult
}

// conversation returns the statement log.
func (s *fakeServer) conversation() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.log...)
}

// logLocked records one statement and its outcome; s.mu is held.
func (s *fakeServer) logLocked(kind, query string, err error) {
	line := kind + ": " + query
	if err != nil {
		var me *mysql.MySQLError
		if errors.As(err, &me) {
			line += fmt.Sprintf(" -> error %d", me.Number)
		} else {
			line += " -> error"
		}
	}
	s.log = append(s.log, line)
}

// newFakeServer returns a fake server and an *sql.DB connected to it.
func newFakeServer(t *testing.T, results map[string]fakeResult) (*fakeServer, *sql.DB) {
	t.Helper()
	if results == nil {
		results = map[string]fakeResult{}
	}
	s := &fakeServer{results: results}
	db := sql.OpenDB(fakeConnector{s})
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("close fake db: %v", err)
		}
	})
	return s, db
}

// loadFakeResult reads a canned result from testdata/status.
func loadFakeResult(t *testing.T, name string) fakeResult {
	t.Helper()
	return loadResult(t, filepath.Join("testdata", "status", name))
}

// loadCaptured reads a captured server answer from testdata/control.
func loadCaptured(t *testing.T, name string) fakeResult {
	t.Helper()
	return loadResult(t, filepath.Join("testdata", "control", name))
}

// loadResult reads a canned result file.
func loadResult(t *testing.T, name string) fakeResult {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	var r fakeResult
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return r
}

// single builds a one-row result from alternating column names and values.
func single(kv ...string) fakeResult {
	var r fakeResult
	row := make([]*string, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		r.Columns = append(r.Columns, kv[i])
		v := kv[i+1]
		row = append(row, &v)
	}
	r.Rows = [][]*string{row}
	return r
}

func (s *fakeServer) executed() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.execs...)
}

type fakeConnector struct{ s *fakeServer }

func (c fakeConnector) Connect(context.Context) (driver.Conn, error) { return fakeConn(c), nil }
func (c fakeConnector) Driver() driver.Driver                        { return fakeDriver{} }

type fakeDriver struct{}

func (fakeDriver) Open(string) (driver.Conn, error) {
	return nil, fmt.Errorf("fake driver: use sql.OpenDB")
}

type fakeConn struct{ s *fakeServer }

func (c fakeConn) Prepare(query string) (driver.Stmt, error) {
	return nil, fmt.Errorf("fake driver: Prepare(%q) not supported", query)
}
func (c fakeConn) Close() error              { return nil }
func (c fakeConn) Begin() (driver.Tx, error) { return nil, fmt.Errorf("fake driver: no transactions") }

func (c fakeConn) QueryContext(_ context.Context, query string, _ []driver.NamedValue) (driver.Rows, error) {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	r, ok := c.s.results[query]
	if !ok && c.s.answer != nil {
		r, ok = c.s.answer(query)
	}
	if !ok {
		err := fmt.Errorf("fake server: unexpected query %q", query)
		c.s.logLocked("query", query, err)
		return nil, err
	}
	c.s.logLocked("query", query, r.err)
	if r.err != nil {
		return nil, r.err
	}
	return &fakeRows{result: r}, nil
}

func (c fakeConn) ExecContext(_ context.Context, query string, _ []driver.NamedValue) (driver.Result, error) {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	if r, ok := c.s.results[query]; ok && r.err != nil {
		c.s.logLocked("exec", query, r.err)
		return nil, r.err
	}
	c.s.logLocked("exec", query, nil)
	c.s.execs = append(c.s.execs, query)
	for q, r := range c.s.onExec[query] {
		c.s.results[q] = r
	}
	return driver.RowsAffected(0), nil
}

type fakeRows struct {
	result fakeResult
	next   int
}

func (r *fakeRows) Columns() []string { return r.result.Columns }
func (r *fakeRows) Close() error      { return nil }

func (r *fakeRows) Next(dest []driver.Value) error {
	if r.next >= len(r.result.Rows) {
		return io.EOF
	}
	row := r.result.Rows[r.next]
	r.next++
	if len(row) != len(dest) {
		return fmt.Errorf("fake server: row has %d values for %d columns", len(row), len(dest))
	}
	for i, v := range row {
		if v == nil {
			dest[i] = nil
		} else {
			dest[i] = []byte(*v)
		}
	}
	return nil
}
