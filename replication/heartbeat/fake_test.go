package heartbeat

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// fakeClock is a settable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// fakeDB stands in for MySQL: exec and query answer every statement; each call is recorded.
type fakeDB struct {
	mu    sync.Mutex
	exec  func(ctx context.Context, query string, args []driver.NamedValue) error
	query func(ctx context.Context, query string, args []driver.NamedValue) ([][]driver.Value, error)
	calls []fakeCall
}

type fakeCall struct {
	query string
	args  []any
}

// open is a drop-in for the package's openDB.
func (f *fakeDB) open(*mysql.Config) (*sql.DB, error) { return sql.OpenDB(fakeConnector{f}), nil }

func (f *fakeDB) record(query string, args []driver.NamedValue) {
	c := fakeCall{query: query}
	for _, a := range args {
		c.args = append(c.args, a.Value)
	}
	f.mu.Lock()
	f.calls = append(f.calls, c)
	f.mu.Unlock()
}

func (f *fakeDB) recorded() []fakeCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fakeCall(nil), f.calls...)
}

type fakeConnector struct{ f *fakeDB }

func (c fakeConnector) Connect(context.Context) (driver.Conn, error) { return fakeConn(c), nil }
func (c fakeConnector) Driver() driver.Driver                        { return fakeDriver{} }

type fakeDriver struct{}

func (fakeDriver) Open(string) (driver.Conn, error) {
	return nil, fmt.Errorf("fake driver: use sql.OpenDB")
}

type fakeConn struct{ f *fakeDB }

func (c fakeConn) Prepare(query string) (driver.Stmt, error) {
	return nil, fmt.Errorf("fake driver: Prepare(%q) not supported", query)
}
func (c fakeConn) Close() error              { return nil }
func (c fakeConn) Begin() (driver.Tx, error) { return nil, fmt.Errorf("fake driver: no transactions") }

// CheckNamedValue accepts every argument as it is (uint32 included).
func (c fakeConn) CheckNamedValue(*driver.NamedValue) error { return nil }

func (c fakeConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	c.f.record(query, args)
	if c.f.exec == nil {
		return driver.RowsAffected(1), nil
	}
	if err := c.f.exec(ctx, query, args); err != nil {
		return nil, err
	}
	return driver.RowsAffected(1), nil
}

func (c fakeConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	c.f.record(query, args)
	if c.f.query == nil {
		return nil, fmt.Errorf("fake db: unexpected query %q", query)
	}
	rows, err := c.f.query(ctx, query, args)
	if err != nil {
		return nil, err
	}
	return &fakeRows{rows: rows}, nil
}

type fakeRows struct {
	rows [][]driver.Value
	next int
}

func (r *fakeRows) Columns() []string { return []string{"ts"} }
func (r *fakeRows) Close() error      { return nil }

func (r *fakeRows) Next(dest []driver.Value) error {
	if r.next >= len(r.rows) {
		return io.EOF
	}
	copy(dest, r.rows[r.next])
	r.next++
	return nil
}

// metricValue returns the value of the one counter or gauge c collects.
func metricValue(c prometheus.Collector) float64 {
	ch := make(chan prometheus.Metric, 1)
	c.Collect(ch)
	close(ch)
	var m dto.Metric
	if err := (<-ch).Write(&m); err != nil {
		panic(err)
	}
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.Gauge.GetValue()
}
