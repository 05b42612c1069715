package tabletserver

import (
	"errors"
	"strings"
	"time"

	"github.com/tabletd/tabletd/pool"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/rpcerr"
	"github.com/tabletd/tabletd/stats"
	"github.com/tabletd/tabletd/tabletserver/plan"
)

// serverVars are the query service's variables under vttablet v23's names and shapes
// (tabletenv/stats.go, query_engine.go, tx_pool.go): what /debug/vars shows and what
// vitess-mixin's dashboards query as vttablet_*. Every label set is bounded: plan types and
// codes are fixed lists, tables are capped (stats.DefaultMaxKeys, then "other").
type serverVars struct {
	queries      *stats.Timings  // Queries: every caller statement, by plan type
	qps          *stats.Rates    // QPS: Queries' rates, sampled by the Set's owner
	mysql        *stats.Timings  // Mysql: time in MySQL, by operation (Exec, ExecStream)
	transactions *stats.Timings  // Transactions: lifetime of finished transactions, by conclusion
	counts       *stats.Counters // QueryCounts and the four below: by (Table, Plan)
	times        *stats.Counters // QueryTimesNs
	affected     *stats.Counters // QueryRowsAffected
	returned     *stats.Counters // QueryRowsReturned
	errCounts    *stats.Counters // QueryErrorCounts
	errByCode    *stats.Counters // QueryErrorCountsWithCode: (Table, Plan, Code)
	errors       *stats.Counters // Errors: every error a request got, by vtrpc code
	kills        *stats.Counters // Kills: by query_type (Queries, Transactions, ReservedConnection)
}

type poolStats = pool.Stats

// qpsSamples is how many intervals QPS keeps: 15 minutes at the 5 s Vitess samples at.
const qpsSamples = 15 * 60 / 5

func newServerVars() *serverVars {
	codes := make([]string, 0, len(vtrpcpb.Code_name))
	for c := range vtrpcpb.Code_name {
		codes = append(codes, vtrpcpb.Code(c).String())
	}
	tableAndPlan := []string{"Table", "Plan"}
	v := &serverVars{
		queries:      stats.NewTimings("plan_type", 0),
		mysql:        stats.NewTimings("operation", 0),
		transactions: stats.NewTimings("operation", 0),
		counts:       stats.NewCounters(tableAndPlan, 0),
		times:        stats.NewCounters(tableAndPlan, 0),
		affected:     stats.NewCounters(tableAndPlan, 0),
		returned:     stats.NewCounters(tableAndPlan, 0),
		errCounts:    stats.NewCounters(tableAndPlan, 0),
		errByCode:    stats.NewCounters([]string{"Table", "Plan", "Code"}, 0),
		errors:       stats.NewCounters([]string{"error_code"}, 0, codes...),
		kills:        stats.NewCounters([]string{"query_type"}, 0, "Transactions", "Queries", "ReservedConnection"),
	}
	v.qps = stats.NewRates(v.queries.Counts, qpsSamples)
	return v
}

// tableLabel is vttablet's Table label: the one table of a single-table statement, "Join"
// for anything else (joins, no table), as query_executor.go names it.
func tableLabel(p *plan.Plan) string {
	if p.Target != nil && p.Target.Name != "" {
		return p.Target.Name
	}
	return "Join"
}

// statementDone records one caller statement in vttablet's query variables (as
// QueryExecutor's deferred AddStats: a failed statement counts with 0 rows and 1 error).
func (v *serverVars) statementDone(planName, table string, took time.Duration, affected, returned uint64, err error) {
	v.queries.Add(planName, took)
	key := stats.JoinLabels(table, planName)
	v.counts.AddKey(key, 1)
	v.times.AddKey(key, int64(took))
	if err != nil {
		v.errCounts.AddKey(key, 1)
		v.errByCode.Add(1, table, planName, rpcerr.Code(err).String())
		return
	}
	v.errCounts.AddKey(key, 0)
	// Reads count their rows as returned, everything else as affected (query_engine.go's
	// AddStats), with the other side added when non-zero.
	if isRead(planName) {
		v.returned.AddKey(key, int64(returned))
		if affected > 0 {
			v.affected.AddKey(key, int64(affected))
		}
		return
	}
	v.affected.AddKey(key, int64(affected))
	if returned > 0 {
		v.returned.AddKey(key, int64(returned))
	}
}

func isRead(planName string) bool {
	switch planName {
	case "Select", "SelectStream", "SelectImpossible", "Show", "OtherRead":
		return true
	}
	return false
}

// requestFailed counts an error a caller got, by its vtrpc code (vttablet's Errors).
func (v *serverVars) requestFailed(err error) {
	if err != nil {
		v.errors.Add(1, rpcerr.Code(err).String())
	}
}

// txConclusion is vttablet's name for how a transaction ended (tx.ReleaseReason.Name), from
// the reason tabletd's transaction engine gives: commit, rollback, kill, close, initFail,
// release.
func txConclusion(reason string) string {
	switch {
	case reason == "transaction committed":
		return "commit"
	case reason == "transaction rolled back":
		return "rollback"
	case reason == "release connection":
		return "release"
	case reason == "begin failed":
		return "initFail"
	case strings.HasPrefix(reason, "exceeded timeout"), strings.HasPrefix(reason, "connection killed"):
		return "kill"
	}
	return "close" // rolled back by a state transition or shutdown, a failed commit or rollback
}

// PublishVars publishes the query service's variables in set: vttablet's query, error,
// kill, transaction and QPS variables, its state, the pools' gauges and the limits it runs
// with. Call it once, before serving /debug/vars.
func (s *Server) PublishVars(set *stats.Set) error {
	v := s.stats.vars
	pub := []struct {
		name, help string
		v          stats.Var
	}{
		{"Queries", "MySQL query timings", v.queries},
		{"QPS", "Queries per second, per plan type, over the last 15 minutes", v.qps},
		{"Mysql", "MySQl query time", v.mysql},
		{"Transactions", "Transaction stats", v.transactions},
		{"QueryCounts", "query counts", v.counts},
		{"QueryTimesNs", "query times in ns", v.times},
		{"QueryRowsAffected", "query rows affected", v.affected},
		{"QueryRowsReturned", "query rows returned", v.returned},
		{"QueryErrorCounts", "query error counts", v.errCounts},
		{"QueryErrorCountsWithCode", "query error counts with error code", v.errByCode},
		{"Errors", "Critical errors", v.errors},
		{"Kills", "Number of connections being killed", v.kills},
		{"TabletState", "Tablet server state", stats.IntFunc{F: s.tabletStateValue}},
		{"TabletStateName", "", stats.StringFunc(s.tabletStateName)},
		{"TabletServerState", "Tablet server state with dimensions", stats.CountsFunc{
			Labels: []string{"name", "type", "keyspace", "shard"}, F: s.tabletServerState}},
		{"QueryTimeout", "Tablet server query timeout", durationVar(s.cfg.Query.QueryTimeout)},
		{"TransactionTimeout", "Transaction timeout", durationVar(s.cfg.Query.TxTimeout)},
		{"OlapTransactionTimeout", "OLAP transaction timeout", durationVar(s.cfg.Query.OLAPTxTimeout)},
		{"MaxResultSize", "Query engine max result size", intVar(s.cfg.Query.MaxResultSize)},
		{"WarnResultSize", "Query engine warn result size", intVar(s.cfg.Query.WarnResultSize)},
		{"StreamBufferSize", "Query engine stream buffer size", intVar(s.cfg.Query.StreamBufferSize)},
		{"QueryEnginePlanCacheLength", "Query engine query plan cache length", stats.IntFunc{F: func() int64 { return int64(s.exec.plans.Len()) }}},
		{"QueryEnginePlanCacheCapacity", "Query engine query plan cache capacity", intVar(s.exec.plans.Capacity())},
	}
	var errs []error
	for _, p := range pub {
		errs = append(errs, set.Publish(p.name, p.help, p.v))
	}
	for _, p := range s.exec.pools() {
		errs = append(errs, s.publishPool(set, p))
	}
	return errors.Join(errs...)
}

func durationVar(d time.Duration) stats.DurationFunc {
	return stats.DurationFunc{F: func() time.Duration { return d }}
}

func intVar(n int) stats.IntFunc { return stats.IntFunc{F: func() int64 { return int64(n) }} }

// publishPool publishes one pool's gauges under vttablet's smartconnpool names
// (<Pool>Capacity, …Available, …Active, …InUse, …WaitCount, …WaitTime, …).
func (s *Server) publishPool(set *stats.Set, p *dbPool) error {
	name := p.Stats().Name
	gauge := func(f func(st poolStats) int64) stats.IntFunc {
		return stats.IntFunc{F: func() int64 { return f(p.Stats()) }}
	}
	counter := func(f func(st poolStats) int64) stats.IntFunc {
		return stats.IntFunc{F: func() int64 { return f(p.Stats()) }, Counter: true}
	}
	idle := s.cfg.Query.IdleTimeout
	vars := []struct {
		suffix, help string
		v            stats.Var
	}{
		{"Capacity", "Tablet server conn pool capacity", gauge(func(st poolStats) int64 { return int64(st.Capacity) })},
		{"Available", "Tablet server conn pool available", gauge(func(st poolStats) int64 { return int64(st.Capacity - st.InUse) })},
		{"Active", "Tablet server conn pool active", gauge(func(st poolStats) int64 { return int64(st.Open) })},
		{"InUse", "Tablet server conn pool in use", gauge(func(st poolStats) int64 { return int64(st.InUse) })},
		{"MaxCap", "Tablet server conn pool max cap", gauge(func(st poolStats) int64 { return int64(st.Capacity) })},
		// tabletd's pools keep up to their capacity idle: the idle limit is the capacity.
		{"IdleAllowed", "Tablet server conn pool idle allowed limit", gauge(func(st poolStats) int64 { return int64(st.Capacity) })},
		{"WaitCount", "Tablet server conn pool wait count", counter(func(st poolStats) int64 { return st.WaitCount })},
		{"WaitTime", "Tablet server wait time", stats.DurationFunc{F: func() time.Duration { return p.Stats().WaitTime }, Counter: true}},
		{"IdleTimeout", "Tablet server idle timeout", durationVar(idle)},
		{"IdleClosed", "Tablet server conn pool idle closed", counter(func(st poolStats) int64 { return st.ClosedIdle })},
		{"MaxLifetimeClosed", "Tablet server conn pool refresh closed", counter(func(st poolStats) int64 { return st.ClosedLifetime })},
	}
	var errs []error
	for _, v := range vars {
		errs = append(errs, set.Publish(name+v.suffix, v.help, v.v))
	}
	return errors.Join(errs...)
}

// tabletStateValue is vttablet's TabletState: 0 while MySQL does not answer (or was not
// checked), 1 not serving, 2 serving.
func (s *Server) tabletStateValue() int64 {
	st := s.Status()
	switch {
	case st.Serving:
		return 2
	case st.State == StateNotConnected:
		return 0
	}
	return 1
}

// tabletStateName is vttablet's TabletStateName: SERVING or NOT_SERVING (the end-to-end
// harness waits for one of the two).
func (s *Server) tabletStateName() string {
	if s.Status().Serving {
		return "SERVING"
	}
	return "NOT_SERVING"
}

// tabletServerState is vttablet's TabletServerState: one key "<name>.<TYPE>.<keyspace>.<shard>"
// at 1, the Prometheus form of TabletStateName (vttablet_tablet_server_state{name=…}).
func (s *Server) tabletServerState() map[string]int64 {
	st := s.Status()
	name := "NOT_SERVING"
	if st.Serving {
		name = "SERVING"
	}
	return map[string]int64{strings.Join([]string{name, st.TabletType.String(), s.cfg.Keyspace, s.cfg.Shard}, "."): 1}
}
