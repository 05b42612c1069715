package schema

import (
	"context"
	"errors"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"go.uber.org/zap"

	"github.com/tabletd/tabletd/mysqlconn"
	"github.com/tabletd/tabletd/proto/querypb"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/rpcerr"
)

// Engine runs the schema and fetch RPCs of one tablet. It is safe for concurrent use.
type Engine struct {
	cfg   Config
	log   *zap.Logger
	deps  Deps
	split splitter
	// sidecar is the keyspace's sidecar database name, which the tablet manager learns from
	// the topology after the engine exists (SetSidecarDBName).
	sidecar atomic.Pointer[string]

	// mu guards the fields below; never held across a statement except by the lock-tables
	// bookkeeping, whose statements are bounded (UNLOCK TABLES).
	mu     sync.Mutex
	closed bool
	lock   *tableLock // the LockTables session, nil when tables are not locked
}

// New returns an engine; it opens no connection until an RPC needs one.
func New(cfg Config, d Deps) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if d.Log == nil {
		d.Log = zap.NewNop()
	}
	// Every fetch keeps the OK packet's info ("Rows matched: 1 Changed: 1 Warnings: 0"), as
	// vttablet's connections do.
	cfg.Dba.QueryInfo, cfg.AllPrivs.QueryInfo, cfg.App.QueryInfo = true, true, true
	e := &Engine{cfg: cfg, log: d.Log, deps: d}
	e.SetSidecarDBName(cfg.SidecarDBName)
	return e, nil
}

// SetSidecarDBName sets the sidecar database that replaces the "_vt" qualifier in fetched
// statements (the keyspace's sidecar_db_name); "" means Vitess's default, _vt.
func (e *Engine) SetSidecarDBName(name string) {
	if name == "" {
		name = DefaultSidecarDBName
	}
	e.sidecar.Store(&name)
}

func (e *Engine) sidecarDBName() string { return *e.sidecar.Load() }

// Close releases a table lock still held and refuses LockTables from then on. Fetches in
// flight keep their own connections and finish.
func (e *Engine) Close() {
	e.mu.Lock()
	e.closed = true
	l := e.lock
	e.lock = nil
	e.mu.Unlock()
	if l != nil {
		l.release(e.log, "the tablet is closing")
	}
}

// role is a MySQL user the engine connects as.
type role int

const (
	roleDba role = iota
	roleAllPrivs
	roleApp
)

func (r role) String() string {
	return [...]string{"dba", "allprivs", "app"}[r]
}

// connect opens a connection as r. multi allows several statements in one round trip
// (ApplySchema scripts); without it the server refuses a text with more than one.
func (e *Engine) connect(ctx context.Context, r role, multi bool) (*mysqlconn.Conn, error) {
	cfg := [...]mysqlconn.Config{e.cfg.Dba, e.cfg.AllPrivs, e.cfg.App}[r]
	cfg.MultiStatements = multi
	c, err := mysqlconn.Connect(ctx, cfg)
	if err != nil {
		return nil, rpcerr.FromMySQL(err, "cannot connect to MySQL as the "+r.String()+" user")
	}
	return c, nil
}

// maxRows converts a request's max_rows to Vitess's int limit: values beyond int are no
// limit (-1), as int(uint64) wraps to a negative number in vttablet.
func maxRows(n uint64) int {
	if n > math.MaxInt {
		return -1
	}
	return int(n)
}

// fetch runs one statement with all field metadata and Vitess's row limit: a result of more
// than limit rows fails with ABORTED "Row count exceeded <limit>" (limit 0 allows none,
// a negative limit means no limit). MySQL errors keep their errno and name the statement.
func fetch(ctx context.Context, c *mysqlconn.Conn, sql string, limit int) (*querypb.QueryResult, error) {
	read := limit
	switch {
	case limit == 0:
		read = 1 // one row is enough to know the limit is exceeded
	case limit < 0:
		read = 0 // mysqlconn: no limit
	}
	qr, err := c.Execute(ctx, sql, read, mysqlconn.FieldsAll)
	if errors.Is(err, mysqlconn.ErrRowsExceeded) || (err == nil && limit == 0 && len(qr.Rows) > 0) {
		return nil, rpcerr.WithCause(vtrpcpb.Code_ABORTED, "Row count exceeded "+strconv.Itoa(limit), mysqlconn.ErrRowsExceeded)
	}
	if err != nil {
		return nil, sqlError(err, sql)
	}
	return qr, nil
}

// exec runs a statement whose result does not matter (session settings, DDL).
func exec(ctx context.Context, c *mysqlconn.Conn, sql string) error {
	if _, err := c.Execute(ctx, sql, 0, mysqlconn.FieldsNone); err != nil {
		return sqlError(err, sql)
	}
	return nil
}

// maxQueryInError bounds the statement text quoted in an error.
const maxQueryInError = 1024

// sqlError is vttablet's form of a failed statement: "<message> (errno N) (sqlstate S)
// during query: <sql>", coded by errno (rpcerr.FromMySQL). Errors without an errno (a
// cancelled context) keep their own code.
func sqlError(err error, sql string) error {
	coded := rpcerr.FromMySQL(err, "")
	if _, _, ok := rpcerr.Errno(err); !ok {
		return coded
	}
	return rpcerr.WithCause(rpcerr.Code(coded), coded.Error()+" during query: "+truncate(sql, maxQueryInError), err)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + " [TRUNCATED]"
}

// value is one column of a row as text; null marks SQL NULL.
type value struct {
	s    string
	null bool
}

// rowValues splits a text-protocol row into its columns.
func rowValues(r *querypb.Row) []value {
	out := make([]value, len(r.Lengths))
	off := int64(0)
	for i, l := range r.Lengths {
		if l < 0 {
			out[i].null = true
			continue
		}
		out[i].s = string(r.Values[off : off+l])
		off += l
	}
	return out
}

// quoteIdent quotes an identifier with backticks (Vitess's sqlescape.EscapeID).
func quoteIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

// quoteString quotes a string literal as Vitess's EncodeStringSQL does (backslash escapes,
// the server's default; the values quoted are database and table names).
func quoteString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\x00", `\0`).Replace(s) + "'"
}
