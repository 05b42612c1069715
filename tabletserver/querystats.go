package tabletserver

import (
	"encoding/json"
	"io"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tabletd/tabletd/proto/querypb"
	"github.com/tabletd/tabletd/tabletserver/plan"
)

// queryStats keeps per-statement counters for /debug/query_stats, keyed by the SQL as sent
// (with its bind variables, so one entry per normalized query). Updating an entry is a map
// load and a few atomic adds; at most maxEntries statements are tracked.
type queryStats struct {
	maxEntries int
	m          sync.Map // string → *queryStat
	n          atomic.Int64
}

type queryStat struct {
	plan         *plan.Plan
	count        atomic.Int64
	nanos        atomic.Int64
	maxNanos     atomic.Int64
	rowsReturned atomic.Int64
	rowsAffected atomic.Int64
	errors       atomic.Int64
}

func (q *queryStats) record(sql string, p *plan.Plan, took time.Duration, res *querypb.QueryResult, err error) {
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
	for m := st.maxNanos.Load(); d > m && !st.maxNanos.CompareAndSwap(m, d); m = st.maxNanos.Load() {
	}
	if err != nil {
		st.errors.Add(1)
	}
	if res != nil {
		st.rowsReturned.Add(int64(len(res.Rows)))
		st.rowsAffected.Add(int64(res.RowsAffected))
	}
}

// WriteQueryStats writes /debug/query_stats: a JSON array with vttablet's field names
// (times in nanoseconds), busiest statements first.
func (s *Server) WriteQueryStats(w io.Writer) {
	type row struct {
		Query, Table, Plan                                                string
		QueryCount, Time, MaxTime, RowsAffected, RowsReturned, ErrorCount int64
	}
	var out []row
	s.stats.m.Range(func(k, v any) bool {
		st := v.(*queryStat)
		r := row{Query: k.(string), Plan: st.plan.Type.String(), QueryCount: st.count.Load(), Time: st.nanos.Load(),
			MaxTime: st.maxNanos.Load(), RowsAffected: st.rowsAffected.Load(), RowsReturned: st.rowsReturned.Load(),
			ErrorCount: st.errors.Load()}
		if names := st.plan.TableNames(); len(names) > 0 {
			r.Table = names[0]
		}
		out = append(out, r)
		return true
	})
	sort.Slice(out, func(i, j int) bool { return out[i].QueryCount > out[j].QueryCount })
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(out)
}
