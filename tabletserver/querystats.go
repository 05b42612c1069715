package tabletserver

import (
	"encoding/json"
	"io"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tabletd/tabletd/proto/querypb"
	"github.com/tabletd/tabletd/stats"
	"github.com/tabletd/tabletd/tabletserver/plan"
)

// queryStats is what the executor records about every statement a caller sends:
// per-statement counters (/debug/query_stats, /queryz), vttablet's query variables
// (/debug/vars, /metrics), the latency histogram and slow-query list of the status page,
// and the query and transaction log streams (/debug/querylog, /querylogz, /txlogz). The
// executor calls begin when a statement arrives and end when it is answered.
type queryStats struct {
	// per-statement counters, keyed by the SQL as sent (with its bind variables, so one
	// entry per normalized query); at most maxEntries statements are tracked.
	maxEntries int
	m          sync.Map // string → *queryStat
	n          atomic.Int64

	vars    *serverVars
	latency stats.Latency // every statement's total time, for p50/p99 over intervals
	slow    slowQueries   // the last statements slower than SlowThreshold
	health  healthHistory // the last serving-state transitions
	history historySampler
	qlog    logStream[*QueryRecord]
	txlog   logStream[*TxRecord]
}

// init readies the recorders; the Server calls it once in New.
func (q *queryStats) init(maxEntries int) {
	q.maxEntries = maxEntries
	q.vars = newServerVars()
	q.slow.n, q.health.n = maxSlowQueries, maxHealthEvents
	q.qlog.init(querylogBuffer)
	q.txlog.init(txlogBuffer)
}

type queryStat struct {
	plan         *plan.Plan
	count        atomic.Int64
	nanos        atomic.Int64
	mysqlNanos   atomic.Int64
	maxNanos     atomic.Int64
	rowsReturned atomic.Int64
	rowsAffected atomic.Int64
	errors       atomic.Int64
}

// statement is one caller statement on its way through the executor. It lives on the
// caller's stack; the executor's MySQL calls add their time to it through request.stmt.
type statement struct {
	method   string // queryservice method: Execute, StreamExecute, BeginExecute, …
	call     *Call
	id       int64 // transaction or reserved connection it ran on (0: none)
	start    time.Time
	mysql    time.Duration // time spent in MySQL round trips
	queries  int           // MySQL statements sent for it
	streamed bool
	rows     uint64 // rows sent so far (streams)
	affected uint64
}

// begin starts recording a statement of method.
func (q *queryStats) begin(method string, c *Call, id int64) statement {
	return statement{method: method, call: c, id: id, start: time.Now()}
}

// planOrNil is r's plan; nil when r is (the statement failed before it had one).
func (r *request) planOrNil() *plan.Plan {
	if r == nil {
		return nil
	}
	return r.plan
}

// inConnMethod names the queryservice method that ran c's statement on st, from what the
// connection and the call say: BeginExecute (a new transaction, or one begun on the call's
// reserved connection), ReserveBeginExecute (a new reservation with a transaction),
// ReserveExecute (a reservation, of the call's transaction or without one); with Stream
// for the streaming variants.
func inConnMethod(st *stateful, c *Call, streaming bool) string {
	m := "ReserveExecute"
	switch {
	case !st.reserved, c.ReservedID != 0:
		m = "BeginExecute"
	case st.inTx && c.TxID == 0:
		m = "ReserveBeginExecute"
	}
	if streaming {
		m = strings.TrimSuffix(m, "Execute") + "StreamExecute"
	}
	return m
}

// counting wraps a stream's send so the rows sent are counted for st.
func (st *statement) counting(send func(*querypb.QueryResult) error) func(*querypb.QueryResult) error {
	st.streamed = true
	return func(qr *querypb.QueryResult) error {
		st.rows += uint64(len(qr.Rows))
		st.affected += qr.RowsAffected
		return send(qr)
	}
}

// end records st, answered with res (nil for a stream, or when it failed) or err; p is its
// plan, nil when the statement failed before it had one (a parse error, an ACL denial).
func (q *queryStats) end(st *statement, p *plan.Plan, res *querypb.QueryResult, err error) {
	took := time.Since(st.start)
	returned, affected := st.rows, st.affected
	if res != nil {
		returned, affected = uint64(len(res.Rows)), res.RowsAffected
	}
	q.vars.requestFailed(err)
	q.latency.Observe(took)
	planName := ""
	if p != nil {
		planName = p.Type.String()
		if st.streamed {
			if t, terr := p.StreamType(); terr == nil {
				planName = t.String()
			}
		}
		q.vars.statementDone(planName, tableLabel(p), took, affected, returned, err)
		q.recordStatement(st.call.SQL, p, took, st.mysql, returned, affected, err)
	}
	if took >= SlowThreshold {
		q.slow.add(SlowQuery{At: st.start, Took: took, SQL: truncateSQL(st.call.SQL), Plan: planName,
			Caller: st.call.Caller, Rows: max(returned, affected), Err: errText(err)})
	}
	if q.qlog.active() {
		q.qlog.send(&QueryRecord{Method: st.method, Caller: st.call.Caller, Start: st.start, End: st.start.Add(took),
			PlanType: planName, SQL: st.call.SQL, BindVars: st.call.BindVars, Queries: st.queries,
			MySQL: st.mysql, RowsAffected: affected, RowsReturned: returned, TransactionID: st.id, Err: err})
	}
}

// mysqlDone records one MySQL round trip of r (operation Exec or ExecStream, as vttablet's
// Mysql timings name them) and adds it to r's statement.
func (q *queryStats) mysqlDone(r *request, operation string, took time.Duration) {
	q.vars.mysql.Add(operation, took)
	if r.stmt != nil {
		r.stmt.mysql += took
		r.stmt.queries++
	}
}

func (q *queryStats) recordStatement(sql string, p *plan.Plan, took, mysql time.Duration, returned, affected uint64, err error) {
	v, ok := q.m.Load(sql)
	if !ok {
		if q.n.Load() >= int64(q.maxEntries) {
			return
		}
		v, ok = q.m.LoadOrStore(sql, &queryStat{plan: p})
		if !ok {
			q.n.Add(1)
		}
	}
	st := v.(*queryStat)
	st.count.Add(1)
	d := int64(took)
	st.nanos.Add(d)
	st.mysqlNanos.Add(int64(mysql))
	for m := st.maxNanos.Load(); d > m && !st.maxNanos.CompareAndSwap(m, d); m = st.maxNanos.Load() {
	}
	if err != nil {
		st.errors.Add(1)
		return
	}
	st.rowsReturned.Add(int64(returned))
	st.rowsAffected.Add(int64(affected))
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// queryStatRow is one statement's totals, as /debug/query_stats and /queryz show them.
type queryStatRow struct {
	Query, Table, Plan                                                           string
	QueryCount, Time, MysqlTime, MaxTime, RowsAffected, RowsReturned, ErrorCount int64
}

// statRows returns every tracked statement's totals, busiest first.
func (q *queryStats) statRows() []queryStatRow {
	var out []queryStatRow
	q.m.Range(func(k, v any) bool {
		st := v.(*queryStat)
		r := queryStatRow{Query: k.(string), Plan: st.plan.Type.String(),
			QueryCount: st.count.Load(), Time: st.nanos.Load(), MysqlTime: st.mysqlNanos.Load(),
			MaxTime: st.maxNanos.Load(), RowsAffected: st.rowsAffected.Load(),
			RowsReturned: st.rowsReturned.Load(), ErrorCount: st.errors.Load()}
		if t := st.plan.Target; t != nil {
			r.Table = t.Name // vttablet's plan.TableName(): empty unless one table
		}
		out = append(out, r)
		return true
	})
	sort.Slice(out, func(i, j int) bool {
		if out[i].QueryCount != out[j].QueryCount {
			return out[i].QueryCount > out[j].QueryCount
		}
		return out[i].Query < out[j].Query
	})
	return out
}

// WriteQueryStats writes /debug/query_stats: a JSON array with vttablet's field names
// (times in nanoseconds), busiest statements first.
func (s *Server) WriteQueryStats(w io.Writer) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(s.stats.statRows())
}
