package tabletserver

import (
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/tabletd/tabletd/tabletserver/plan"
)

// queryzRow is one statement's line on /queryz: vttablet's columns (times in seconds with
// six decimals, per-query averages) and its colour by time per query (10 ms, 100 ms).
type queryzRow struct {
	Query          string
	Table          string
	Plan           string
	Count          int64
	Time           string
	MysqlTime      string
	RowsAffected   int64
	RowsReturned   int64
	Errors         int64
	TimePQ         string
	MysqlTimePQ    string
	RowsAffectedPQ string
	RowsReturnedPQ string
	ErrorsPQ       string
	Color          string
	timePQ         float64
}

func newQueryzRow(r queryStatRow) queryzRow {
	n := float64(max(r.QueryCount, 1))
	secs := func(ns int64) string { return strconv.FormatFloat(float64(ns)/1e9, 'f', 6, 64) }
	per := func(v float64) string { return strconv.FormatFloat(v/n, 'f', 6, 64) }
	q := queryzRow{Query: truncateSQL(r.Query), Table: r.Table, Plan: r.Plan, Count: r.QueryCount,
		Time: secs(r.Time), MysqlTime: secs(r.MysqlTime), RowsAffected: r.RowsAffected, RowsReturned: r.RowsReturned,
		Errors: r.ErrorCount, TimePQ: per(float64(r.Time) / 1e9), MysqlTimePQ: per(float64(r.MysqlTime) / 1e9),
		RowsAffectedPQ: per(float64(r.RowsAffected)), RowsReturnedPQ: per(float64(r.RowsReturned)),
		ErrorsPQ: per(float64(r.ErrorCount)), timePQ: float64(r.Time) / n}
	q.Color = durationLevel(time.Duration(q.timePQ), 10*time.Millisecond, 100*time.Millisecond)
	return q
}

const queryzHeader = `<thead><tr><th>Query</th><th>Table</th><th>Plan</th><th>Count</th><th>Time</th><th>MySQL Time</th>
<th>Rows affected</th><th>Rows returned</th><th>Errors</th><th>Time per query</th><th>MySQL Time per query</th>
<th>Rows affected per query</th><th>Rows returned per query</th><th>Errors per query</th></tr></thead>
`

var queryzRowTemplate = template.Must(template.New("queryz").Parse(`<tr class="{{.Color}}"><td class="sql">{{.Query}}</td><td>{{.Table}}</td><td>{{.Plan}}</td>
<td>{{.Count}}</td><td>{{.Time}}</td><td>{{.MysqlTime}}</td><td>{{.RowsAffected}}</td><td>{{.RowsReturned}}</td><td>{{.Errors}}</td>
<td>{{.TimePQ}}</td><td>{{.MysqlTimePQ}}</td><td>{{.RowsAffectedPQ}}</td><td>{{.RowsReturnedPQ}}</td><td>{{.ErrorsPQ}}</td></tr>
`))

// ServeQueryz answers /queryz: every tracked statement's totals and per-query averages,
// slowest per query first, as vttablet's HTML table, or as a JSON array of the same columns
// (?format=json or Accept: application/json). The table holds at most the plan cache's size
// of statements.
func (s *Server) ServeQueryz(w http.ResponseWriter, r *http.Request) {
	stats := s.stats.statRows()
	rows := make([]queryzRow, len(stats))
	for i, st := range stats {
		rows[i] = newQueryzRow(st)
	}
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].timePQ > rows[j].timePQ })
	if wantsJSON(r) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rows)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write([]byte(logzHead + queryzHeader))
	for _, row := range rows {
		if err := queryzRowTemplate.Execute(w, row); err != nil {
			return
		}
	}
	_, _ = w.Write([]byte(logzFoot))
}

// ServeTabletPlans answers /debug/tablet_plans as vttablet does: for every cached plan, its
// SQL as a Go-quoted string, the plan as indented JSON, and a blank line.
func (s *Server) ServeTabletPlans(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	s.exec.plans.Range(func(sql string, p *plan.Plan) bool {
		fmt.Fprintf(w, "%#v\n", truncateSQL(sql))
		b, err := json.MarshalIndent(p, "", "  ")
		if err != nil {
			_, _ = w.Write([]byte(err.Error()))
		} else {
			_, _ = w.Write(b)
		}
		_, _ = w.Write([]byte("\n\n"))
		return true
	})
}
