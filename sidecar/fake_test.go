package sidecar

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"io"
	"sync"
	"testing"
)

// fakeAnswer is a canned answer of fakeServer: rows (values as strings) or an error.
type fakeAnswer struct {
	rows [][]string
	err  error
}

// fakeServer answers statements from a table of canned answers and records every statement,
// queries and execs alike, in order. A statement not in the table is an error for a query and
// succeeds for an exec.
type fakeServer struct {
	mu      sync.Mutex
	answers map[string]fakeAnswer
	log     []string
}

// newFakeConn returns a *sql.Conn to a fake server answering from answers.
func newFakeConn(t *testing.T, answers map[string]fakeAnswer) (*fakeServer, *sql.Conn) {
	t.Helper()
	s := &fakeServer{answers: answers}
	db := sql.OpenDB(fakeConnector{s})
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = conn.Close()
		if err := db.Close(); err != nil {
			t.Errorf("close fake db: %v", err)
		}
	})
	return s, conn
}

func (s *fakeServer) statements() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.log...)
}

func (s *fakeServer) answer(query string) (fakeAnswer, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log = append(s.log, query)
	a, ok := s.answers[query]
	return a, ok
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
	a, ok := c.s.answer(query)
	switch {
	case !ok:
		return nil, fmt.Errorf("fake server: unexpected query %q", query)
	case a.err != nil:
		return nil, a.err
	}
	return &fakeRows{rows: a.rows}, nil
}

func (c fakeConn) ExecContext(_ context.Context, query string, _ []driver.NamedValue) (driver.Result, error) {
	if a, _ := c.s.answer(query); a.err != nil {
		return nil, a.err
	}
	return driver.RowsAffected(0), nil
}

type fakeRows struct {
	rows [][]string
	next int
}

func (r *fakeRows) Columns() []string {
	if len(r.rows) == 0 {
		return []string{"c"}
	}
	cols := make([]string, len(r.rows[0]))
	for i := range cols {
		cols[i] = fmt.Sprintf("c%d", i)
	}
	return cols
}

func (r *fakeRows) Close() error { return nil }

func (r *fakeRows) Next(dest []driver.Value) error {
	if r.next >= len(r.rows) {
		return io.EOF
	}
	for i, v := range r.rows[r.next] {
		dest[i] = []byte(v)
	}
	r.next++
	return nil
}
