package tabletserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/tabletd/tabletd/mysqlconn"
	"github.com/tabletd/tabletd/pool"
	"github.com/tabletd/tabletd/proto/querypb"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/rpcerr"
	"github.com/tabletd/tabletd/tabletserver/consolidator"
	"github.com/tabletd/tabletd/tabletserver/plan"
)

// dbPool is a pool of MySQL connections.
type dbPool = pool.Pool[*mysqlconn.Conn]

// pooled is a connection borrowed from a dbPool.
type pooled = pool.Pooled[*mysqlconn.Conn]

// Connectors says how to open MySQL connections for each purpose. The tablet fills it from
// its database configuration; tests may point it anywhere.
type Connectors struct {
	App mysqlconn.Config // query, stream and transaction pools
	Dba mysqlconn.Config // KILL, schema reads, the brief table locks of snapshots
	// Filtered is the VReplication user (--db-filtered-user): the snapshot readers of
	// VStreamRows, VStreamTables and VStreamResults. Unset (no user): Dba.
	Filtered mysqlconn.Config
}

// executor is the one path from a statement to MySQL. Every statement the query service runs
// — Execute, StreamExecute, the Begin*/Reserve* variants, and the snapshot readers of the
// VReplication source and VDiff (reader.go) — goes through it:
//
//	prepare:    the cached plan, the table ACL on every table, the query rules, the
//	            statement limits, bind-variable substitution (exec.go)
//	connection: a pool chosen by the statement's class, or the stateful connection of a
//	            transaction or reservation (tx.go), or a snapshot reader's
//	MySQL:      run or stream with kill on context end, /livequeryz, the DML row cap
//	            (exec.go, stream.go, dmlcap.go); consolidation of identical reads
//	            (consolidate.go); result renaming, size warnings and statistics
//
// The Server in front of it only admits requests (serving state, target) and keeps the
// transaction and reserved-connection IDs of the wire protocol (rpc.go).
type executor struct {
	cfg      QueryConfig
	log      *zap.Logger
	now      func() time.Time
	dbName   string // the MySQL database served
	keyspace string // shown instead of dbName in result metadata
	plans    *plan.Cache
	builder  *plan.Builder
	// maxLimit is the #maxLimit bind variable: max rows + 1, so one row too many is enough
	// to know the limit was exceeded without reading a huge result.
	maxLimit *querypb.BindVariable
	conns    *dbPool // non-transactional reads
	streams  *dbPool // StreamExecute outside transactions
	dba      *dbPool // KILL, GetSchema, snapshot locks
	readers  *dbPool // snapshot readers (filtered user)
	tx       *txEngine
	acl      *tableACL
	rules    queryRules
	cons     *consolidator.Consolidator[*querypb.QueryResult]
	stats    *queryStats // the Server's, for /debug/query_stats
	kills    *prometheus.CounterVec
	// largeResults counts results above --queryserver-config-warn-result-size.
	largeResults prometheus.Counter
	// dmlCapped counts statements undone by --queryserver-config-max-dml-rows.
	dmlCapped prometheus.Counter

	bufPool sync.Pool // []byte for final SQL generation
	// live lists the statements running in MySQL, for /livequeryz (run and stream register).
	live liveQueries
}

func newExecutor(cfg Config, d Deps, labels prometheus.Labels, stats *queryStats) (*executor, error) {
	qc, conn := cfg.Query, cfg.Connectors
	e := &executor{cfg: qc, log: d.Log, now: d.Clock, dbName: cfg.DBName, keyspace: cfg.Keyspace, stats: stats,
		plans: plan.NewCache(qc.PlanCacheSize), builder: plan.NewBuilder(),
		maxLimit: &querypb.BindVariable{Type: querypb.Type_INT64, Value: []byte(strconv.Itoa(qc.MaxResultSize + 1))}}
	e.bufPool.New = func() any { b := make([]byte, 0, 1024); return &b }
	mk := func(name string, size int, wait time.Duration, c mysqlconn.Config) (*dbPool, error) {
		return pool.New[*mysqlconn.Conn](pool.Config{
			Name: name, Capacity: size, WaitTimeout: wait, MaxWaiters: qc.MaxWaiters,
			IdleTimeout: qc.IdleTimeout, MaxLifetime: qc.MaxLifetime,
		}, func(ctx context.Context) (*mysqlconn.Conn, error) {
			conn, err := mysqlconn.Connect(ctx, c)
			if err == nil && name != "DbaPool" {
				conn.SetKillHook(e.killHook)
			}
			return conn, err
		},
			pool.Deps{Log: d.Log, Registry: d.Registry, Clock: d.Clock, Labels: labels})
	}
	var err error
	if e.conns, err = mk("ConnPool", qc.PoolSize, qc.QueryPoolTimeout, conn.App); err != nil {
		return nil, err
	}
	if e.streams, err = mk("StreamConnPool", qc.StreamPoolSize, 0, conn.App); err != nil {
		return nil, err
	}
	if e.dba, err = mk("DbaPool", 3, 0, conn.Dba); err != nil {
		return nil, err
	}
	filtered := conn.Filtered
	if filtered.User == "" {
		filtered = conn.Dba
	}
	if e.readers, err = mk("SnapshotReaderPool", qc.ReaderPoolSize, 0, filtered); err != nil {
		return nil, err
	}
	found := conn.App
	found.ClientFoundRows = true
	txp, err := mk("TransactionPool", qc.TxCap, qc.TxPoolTimeout, conn.App)
	if err != nil {
		return nil, err
	}
	frp, err := mk("FoundRowsPool", qc.TxCap, qc.TxPoolTimeout, found)
	if err != nil {
		return nil, err
	}
	if err := e.newMetrics(d.Registry, labels); err != nil {
		return nil, err
	}
	if e.acl, err = newTableACL(cfg.ACL, cfg.DBName, d.Registry, labels); err != nil {
		return nil, err
	}
	if e.cons, err = newConsolidator(qc.Consolidator, d.Registry, labels); err != nil {
		return nil, err
	}
	e.tx = newTxEngine(qc, txp, frp, e, d)
	return e, nil
}

func (e *executor) newMetrics(reg prometheus.Registerer, labels prometheus.Labels) error {
	e.kills = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tabletd_kills_total", Help: "Statements and transactions killed, by reason.", ConstLabels: labels,
	}, []string{"reason"})
	e.largeResults = prometheus.NewCounter(prometheus.CounterOpts{Name: "tabletd_large_results_total",
		Help: "Results with more rows than --queryserver-config-warn-result-size.", ConstLabels: labels})
	e.dmlCapped = prometheus.NewCounter(prometheus.CounterOpts{Name: "tabletd_dml_rows_capped_total",
		Help: "DML statements rolled back for affecting more rows than --queryserver-config-max-dml-rows.", ConstLabels: labels})
	for _, c := range []prometheus.Collector{e.kills, e.largeResults, e.dmlCapped} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// close rolls back what is left and closes every pool.
func (e *executor) close() {
	e.tx.close()
	e.conns.Close()
	e.streams.Close()
	e.readers.Close()
	e.dba.Close()
}

// getPlan returns the cached plan for sql, building and caching it on a miss.
func (e *executor) getPlan(sql string, skipCache bool) (*plan.Plan, error) {
	if !skipCache {
		if p, ok := e.plans.Get(sql); ok {
			return p, nil
		}
	}
	p, err := e.builder.Build(sql)
	if err != nil {
		return nil, rpcerr.Wrap(vtrpcpb.Code_INVALID_ARGUMENT, err, "")
	}
	if !skipCache {
		e.plans.Add(sql, p)
	}
	return p, nil
}

// killHook runs when a statement's context ends while it runs in MySQL (the caller went
// away or its deadline passed). The whole connection is killed: a killed connection is never
// reused anyway (a late KILL QUERY could hit its next statement), and a transaction's state
// is lost either way.
func (e *executor) killHook(c *mysqlconn.Conn, cause error) {
	reason := "canceled"
	if errors.Is(cause, context.DeadlineExceeded) {
		reason = "deadline"
	}
	e.kill(c.ID(), reason)
}

// kill ends MySQL connection id and the statement running on it (a killed connection is
// never reused, see killHook). It is bounded by KillTimeout and never blocks beyond that.
// The error (for /livequeryz/terminate; other callers only log) is nil when the KILL was
// sent, or when the connection was already gone (1094 unknown thread: it finished meanwhile).
func (e *executor) kill(id uint32, reason string) error {
	ctx, cancel := context.WithTimeout(context.Background(), e.cfg.KillTimeout)
	defer cancel()
	stmt := fmt.Sprintf("KILL %d", id)
	pc, err := e.dba.Get(ctx, nil)
	if err != nil {
		e.log.Warn("cannot kill a statement: no DBA connection", zap.Uint32("connection", id), zap.Error(err))
		return poolError(err, e.dba)
	}
	var killErr error
	if _, err := pc.Conn().Execute(ctx, stmt, 0, mysqlconn.FieldsNone); err != nil {
		// 1094 unknown thread: the statement finished meanwhile.
		e.log.Info("kill", zap.String("statement", stmt), zap.Error(err))
		var se *mysqlconn.SQLError
		if !errors.As(err, &se) || se.Num != 1094 {
			killErr = mysqlError(err, "", stmt, nil)
		}
		if pc.Conn().IsClosed() {
			pc.Discard()
			return killErr
		}
	}
	pc.Recycle()
	e.kills.WithLabelValues(reason).Inc()
	e.stats.vars.kills.Add(1, "Queries") // vttablet's Kills
	return killErr
}

// pools lists the executor's pools, for stats and status.
func (e *executor) pools() []*dbPool {
	return []*dbPool{e.conns, e.streams, e.tx.txPool, e.tx.foundRow, e.readers, e.dba}
}

// closeIdle closes the idle connections of every pool (mysqld came back: they are dead).
func (e *executor) closeIdle() {
	for _, p := range e.pools() {
		p.CloseIdle()
	}
}

// InUse is the number of connections borrowed from any pool plus open transactions and
// reserved connections: zero when the tablet is idle (tests use it to prove nothing leaked).
func (s *Server) InUse() int {
	n := s.exec.tx.count()
	for _, p := range s.exec.pools() {
		n += p.Stats().InUse
	}
	return n
}

// WriteQueryPlans writes the cached plans as a JSON array of {"SQL": …, "Plan": …}, for
// /debug/query_plans.
func (s *Server) WriteQueryPlans(w io.Writer) {
	type entry struct {
		SQL  string
		Plan *plan.Plan
	}
	var out []entry
	s.exec.plans.Range(func(sql string, p *plan.Plan) bool {
		out = append(out, entry{sql, p})
		return true
	})
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(out)
}
