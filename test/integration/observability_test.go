package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tabletd/tabletd/proto/querypb"
)

// obsWorkload runs what the observability pages then show: inserts, point and range reads,
// a duplicate key, a committed and a rolled-back transaction, a stream and a slow query.
func obsWorkload(t *testing.T, q *qt) {
	t.Helper()
	q.mustExec(t, 0, "create table t (id bigint primary key, name varchar(64))", nil)
	for i := int64(1); i <= 5; i++ {
		q.mustExec(t, 0, "insert into t (id, name) values (:id, :name)", map[string]*querypb.BindVariable{"id": i64(i), "name": str("secret-value")})
	}
	for i := int64(1); i <= 3; i++ {
		q.mustExec(t, 0, "select * from t where id = :id", map[string]*querypb.BindVariable{"id": i64(i)})
	}
	if _, err := q.exec(t, 0, "insert into t (id, name) values (1, 'dup')", nil); err == nil {
		t.Fatal("duplicate insert succeeded")
	}
	ctx := context.Background()
	for _, commit := range []bool{true, false} {
		be, err := q.qs.BeginExecute(ctx, &querypb.BeginExecuteRequest{Target: q.target, ImmediateCallerId: q.caller,
			Query: &querypb.BoundQuery{Sql: "update t set name = 'tx' where id = 2"}})
		if err != nil || be.Error != nil {
			t.Fatalf("BeginExecute: %v %v", err, be.GetError())
		}
		if commit {
			_, err = q.qs.Commit(ctx, &querypb.CommitRequest{Target: q.target, TransactionId: be.TransactionId})
		} else {
			_, err = q.qs.Rollback(ctx, &querypb.RollbackRequest{Target: q.target, TransactionId: be.TransactionId})
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	st, err := q.qs.StreamExecute(ctx, &querypb.StreamExecuteRequest{Target: q.target, ImmediateCallerId: q.caller,
		Query: &querypb.BoundQuery{Sql: "select * from t"}})
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := st.Recv(); err != nil {
			break
		}
	}
	q.mustExec(t, 0, "select sleep(0.15) from dual", nil)
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	code, body := httpGet(t, url)
	if code != http.StatusOK {
		t.Fatalf("%s: %d %s", url, code, body)
	}
	if err := json.Unmarshal([]byte(body), v); err != nil {
		t.Fatalf("%s: %v\n%s", url, err, body)
	}
}

// TestDebugVars: /debug/vars carries vttablet's names with their values after a workload:
// what Vitess's end-to-end harness waits on (TabletStateName, TabletType), the query,
// error, transaction and pool variables its tests and tools read.
func TestDebugVars(t *testing.T) {
	q := newQT(t, nil)
	obsWorkload(t, q)
	base := "http://" + q.t.HTTPAddr()
	var vars map[string]json.RawMessage
	getJSON(t, base+"/debug/vars", &vars)
	str := func(name string) string {
		var s string
		if err := json.Unmarshal(vars[name], &s); err != nil {
			t.Errorf("%s = %s: not a string", name, vars[name])
		}
		return s
	}
	num := func(name string) float64 {
		var n float64
		if err := json.Unmarshal(vars[name], &n); err != nil {
			t.Errorf("%s = %s: not a number", name, vars[name])
		}
		return n
	}
	counts := func(name string) map[string]float64 {
		var m map[string]float64
		if err := json.Unmarshal(vars[name], &m); err != nil {
			t.Errorf("%s = %s: not counts", name, vars[name])
		}
		return m
	}
	for name, want := range map[string]string{"TabletStateName": "SERVING", "TabletType": "primary",
		"TabletAlias": "zone1-0000000200", "TabletKeyspace": "commerce", "TabletShard": "0"} {
		if got := str(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if got := num("TabletState"); got != 2 {
		t.Errorf("TabletState = %v, want 2 (serving)", got)
	}
	if got := counts("TabletServerState"); len(got) != 1 || got["SERVING.PRIMARY.commerce.0"] != 1 {
		t.Errorf("TabletServerState = %v", got)
	}
	qc := counts("QueryCounts")
	// The table label is vttablet's: the one table of a single-table statement, else Join.
	if qc["t.Insert"] != 6 || qc["t.Select"] != 3 || qc["t.UpdateLimit"] != 2 || qc["t.SelectStream"] != 1 || qc["Join.Select"] != 1 || qc["Join.DDL"] != 1 {
		t.Errorf("QueryCounts = %v, want t.Insert 6 (one failed), t.Select 3, t.UpdateLimit 2, t.SelectStream 1, Join.Select 1 (no table), Join.DDL 1", qc)
	}
	if got := counts("QueryErrorCounts")["t.Insert"]; got != 1 {
		t.Errorf("QueryErrorCounts[t.Insert] = %v, want 1", got)
	}
	if got := counts("QueryErrorCountsWithCode")["t.Insert.ALREADY_EXISTS"]; got != 1 {
		t.Errorf("QueryErrorCountsWithCode = %s", vars["QueryErrorCountsWithCode"])
	}
	if got := counts("QueryRowsReturned")["t.Select"]; got != 3 {
		t.Errorf("QueryRowsReturned[t.Select] = %v, want 3", got)
	}
	if got := counts("QueryRowsAffected")["t.Insert"]; got != 5 {
		t.Errorf("QueryRowsAffected[t.Insert] = %v, want 5", got)
	}
	errs := counts("Errors")
	if errs["ALREADY_EXISTS"] != 1 || len(errs) < 17 {
		t.Errorf("Errors = %v, want every vtrpc code, ALREADY_EXISTS 1", errs)
	}
	var timings struct {
		TotalCount int64
		Histograms map[string]struct{ Count, Time int64 }
	}
	if err := json.Unmarshal(vars["Transactions"], &timings); err != nil || timings.Histograms["commit"].Count != 1 || timings.Histograms["rollback"].Count != 1 {
		t.Errorf("Transactions = %s (%v)", vars["Transactions"], err)
	}
	if err := json.Unmarshal(vars["Queries"], &timings); err != nil || timings.Histograms["Insert"].Count != 6 || timings.TotalCount != 14 {
		t.Errorf("Queries = %s (%v)", vars["Queries"], err)
	}
	if err := json.Unmarshal(vars["Mysql"], &timings); err != nil || timings.Histograms["Exec"].Count == 0 || timings.Histograms["ExecStream"].Count != 1 {
		t.Errorf("Mysql = %s (%v)", vars["Mysql"], err)
	}
	for name, want := range map[string]float64{"ConnPoolCapacity": 16, "StreamConnPoolCapacity": 200, "TransactionPoolCapacity": 20,
		"TransactionPoolInUse": 0, "ConnPoolAvailable": 16, "MaxResultSize": 10000, "HeartbeatCurrentLagNs": 0} {
		if got := num(name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if got := num("QueryTimeout"); got != float64(30*time.Second) {
		t.Errorf("QueryTimeout = %v ns, want 30s", got)
	}
	var kills map[string]float64
	if err := json.Unmarshal(vars["Kills"], &kills); err != nil || len(kills) != 3 {
		t.Errorf("Kills = %s, want Queries, Transactions, ReservedConnection", vars["Kills"])
	}
	if _, ok := vars["QPS"]; !ok {
		t.Error("QPS missing")
	}
	if _, ok := vars["cmdline"]; !ok {
		t.Error("cmdline missing (expvar's)")
	}
}

// promSample is one line of the Prometheus text format.
var promLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$`)

// TestVitessMetrics: /metrics has the vttablet_* names vitess-mixin's dashboards query
// (testdata/vttablet_metrics.golden: name and type), beside tabletd's own series.
func TestVitessMetrics(t *testing.T) {
	q := newQT(t, nil)
	obsWorkload(t, q)
	_, body := httpGet(t, "http://"+q.t.HTTPAddr()+"/metrics")
	types := map[string]string{}
	samples := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if f := strings.Fields(line); len(f) == 4 && f[0] == "#" && f[1] == "TYPE" {
			types[f[2]] = f[3]
			continue
		}
		if m := promLine.FindStringSubmatch(line); m != nil {
			v, _ := strconv.ParseFloat(m[3], 64)
			samples[m[1]+m[2]] = v
		}
	}
	f, err := os.Open("testdata/vttablet_metrics.golden")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gs := bufio.NewScanner(f)
	n := 0
	for gs.Scan() {
		name, typ, ok := strings.Cut(gs.Text(), "\t")
		if !ok || strings.HasPrefix(name, "#") {
			continue
		}
		n++
		if got := types[name]; got != typ {
			t.Errorf("%s: type %q, want %q", name, got, typ)
		}
	}
	if n < 20 {
		t.Fatalf("only %d golden metric names", n)
	}
	for series, want := range map[string]float64{
		`vttablet_tablet_state`: 2,
		`vttablet_tablet_server_state{keyspace="commerce",name="SERVING",shard="0",type="PRIMARY"}`: 1,
		`vttablet_query_counts{plan="Insert",table="t"}`:                                            6,
		`vttablet_query_error_counts{plan="Insert",table="t"}`:                                      1,
		`vttablet_errors{error_code="ALREADY_EXISTS"}`:                                              1,
		`vttablet_queries_count{plan_type="Insert"}`:                                                6,
		`vttablet_transactions_count{operation="commit"}`:                                           1,
		`vttablet_conn_pool_capacity`:                                                               16,
		`vttablet_transaction_pool_available`:                                                       20,
		`tabletd_serving{keyspace="commerce",shard="0",tablet_type="PRIMARY"}`:                      1,
	} {
		if got, ok := samples[series]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", series, got, ok, want)
		}
	}
	checkDashboard(t, types)
	// Bounded labels: the only table label values are the statement tables and Join.
	for s := range samples {
		if m := regexp.MustCompile(`table="([^"]*)"`).FindStringSubmatch(s); m != nil && m[1] != "t" && m[1] != "Join" {
			t.Errorf("unexpected table label in %s", s)
		}
	}
}

// TestStatusDetails: the JSON vttablet's end-to-end harness reads (the first entry's Class
// and Value).
func TestStatusDetails(t *testing.T) {
	q := newQT(t, nil)
	var details []struct{ Key, Class, Value string }
	getJSON(t, "http://"+q.t.HTTPAddr()+"/debug/status_details", &details)
	if len(details) == 0 || details[0].Key != "Current State" || details[0].Class != "healthy" ||
		!strings.HasPrefix(details[0].Value, "PRIMARY: Serving, ") {
		t.Errorf("/debug/status_details = %+v", details)
	}
}

// TestQueryzAndPlans: /queryz lists every statement with vttablet's columns (HTML and JSON),
// /debug/tablet_plans every cached plan.
func TestQueryzAndPlans(t *testing.T) {
	q := newQT(t, nil)
	obsWorkload(t, q)
	base := "http://" + q.t.HTTPAddr()
	var rows []struct {
		Query, Table, Plan, Time, TimePQ, Color   string
		Count, RowsAffected, RowsReturned, Errors int64
	}
	getJSON(t, base+"/queryz?format=json", &rows)
	byQuery := map[string]int{}
	for i, r := range rows {
		byQuery[r.Query] = i
	}
	ins, ok := byQuery["insert into t (id, name) values (:id, :name)"]
	if !ok {
		t.Fatalf("/queryz has no row for the insert: %+v", rows)
	}
	if r := rows[ins]; r.Table != "t" || r.Plan != "Insert" || r.Count != 5 || r.RowsAffected != 5 || r.Errors != 0 || r.Color == "" {
		t.Errorf("insert row %+v", r)
	}
	if r := rows[byQuery["insert into t (id, name) values (1, 'dup')"]]; r.Errors != 1 {
		t.Errorf("failed insert row %+v", r)
	}
	for i := 1; i < len(rows); i++ { // slowest per query first
		prev, _ := strconv.ParseFloat(rows[i-1].TimePQ, 64)
		cur, _ := strconv.ParseFloat(rows[i].TimePQ, 64)
		if cur > prev {
			t.Errorf("row %d (%s per query) after one with %s: not sorted slowest first", i, rows[i].TimePQ, rows[i-1].TimePQ)
		}
	}
	code, html := httpGet(t, base+"/queryz")
	if code != http.StatusOK || !strings.Contains(html, "<th>MySQL Time per query</th>") ||
		!strings.Contains(html, "insert into t (id, name) values (:id, :name)") || strings.Contains(html, "secret-value") {
		t.Errorf("/queryz HTML: %d\n%s", code, html)
	}
	_, plans := httpGet(t, base+"/debug/tablet_plans")
	if !strings.Contains(plans, `"select * from t where id = :id"`+"\n{") || !strings.Contains(plans, `"Type": "Select"`) {
		t.Errorf("/debug/tablet_plans:\n%s", plans)
	}
}

// follow starts a GET whose handler subscribes before it answers with headers (the log
// pages and streams): once it returns, statements run are seen.
func follow(t *testing.T, url string) *http.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %d", url, resp.StatusCode)
	}
	return resp
}

// TestLogStreams: /debug/querylog and /querylogz show the statements answered while they
// follow, /debug/txlog and /txlogz the finished transactions, in vttablet's formats, with
// ?limit= and ?filter=; bind values are never shown.
func TestLogStreams(t *testing.T) {
	q := newQT(t, nil)
	q.mustExec(t, 0, "create table t (id bigint primary key, name varchar(64))", nil)
	base := "http://" + q.t.HTTPAddr()

	ql := follow(t, base+"/debug/querylog?limit=1&filter=marker_one")
	qz := follow(t, base+"/querylogz?limit=1&timeout=30&filter=marker_one")
	q.mustExec(t, 0, "select 1 from dual", nil) // filtered out
	q.mustExec(t, 0, "select * from t where name = :n /* marker_one */", map[string]*querypb.BindVariable{"n": str("secret-value")})
	line, err := bufio.NewReader(ql.Body).ReadString('\n')
	if err != nil {
		t.Fatalf("/debug/querylog: %v", err)
	}
	cols := strings.Split(line, "\t")
	if len(cols) != 22 || cols[0] != "Execute" || cols[3] != "'alice'" || cols[8] != "Select" ||
		cols[9] != `"select * from t where name = :n /* marker_one */"` || !strings.Contains(cols[10], `"12 bytes"`) {
		t.Errorf("/debug/querylog line (%d columns): %q", len(cols), line)
	}
	if strings.Contains(line, "secret-value") {
		t.Error("a bind value is in the query log")
	}
	page := readBody(t, qz, nil)
	if !strings.Contains(page, "<th>Immediate Caller</th>") || strings.Count(page, "<tr class=") != 1 ||
		!strings.Contains(page, "marker_one") || strings.Contains(page, "select 1 from dual") {
		t.Errorf("/querylogz:\n%s", page)
	}

	tl := follow(t, base+"/debug/txlog?limit=1")
	tz := follow(t, base+"/txlogz?limit=1&timeout=30")
	ctx := context.Background()
	be, err := q.qs.BeginExecute(ctx, &querypb.BeginExecuteRequest{Target: q.target, ImmediateCallerId: q.caller,
		Query: &querypb.BoundQuery{Sql: "insert into t (id, name) values (7, 'x')"}})
	if err != nil || be.Error != nil {
		t.Fatalf("BeginExecute: %v %v", err, be.GetError())
	}
	q.mustExec(t, be.TransactionId, "update t set name = 'y' where id = 7", nil)
	if _, err := q.qs.Commit(ctx, &querypb.CommitRequest{Target: q.target, ImmediateCallerId: q.caller, TransactionId: be.TransactionId}); err != nil {
		t.Fatal(err)
	}
	line, err = bufio.NewReader(tl.Body).ReadString('\n')
	if err != nil {
		t.Fatalf("/debug/txlog: %v", err)
	}
	cols = strings.Split(line, "\t")
	if len(cols) != 9 || cols[0] != strconv.FormatInt(be.TransactionId, 10) || cols[2] != "'alice'" || cols[6] != "commit" ||
		cols[7] != "insert into t (id, name) values (7, 'x');update t set name = 'y' where id = 7;" {
		t.Errorf("/debug/txlog line (%d columns): %q", len(cols), line)
	}
	page = readBody(t, tz, nil)
	if !strings.Contains(page, "<th>Decision</th>") || !strings.Contains(page, "<td>commit</td>") ||
		!strings.Contains(page, "update t set name = &#39;y&#39; where id = 7<br>") {
		t.Errorf("/txlogz:\n%s", page)
	}

	// A page asked for no time answers at once with an empty table.
	if code, body := httpGet(t, base+"/querylogz?timeout=0"); code != http.StatusOK || strings.Contains(body, "<tr class=") {
		t.Errorf("/querylogz?timeout=0: %d\n%s", code, body)
	}
	if code, _ := httpGet(t, base+"/debug/querylog?limit=many"); code != http.StatusBadRequest {
		t.Errorf("bad limit: %d, want 400", code)
	}
}

// TestStatusPageHistory: /debug/status shows the health history, the charts once a point
// of history exists, errors by code and the slow query.
func TestStatusPageHistory(t *testing.T) {
	q := newQT(t, nil)
	obsWorkload(t, q)
	url := "http://" + q.t.HTTPAddr() + "/debug/status"
	var page string
	eventually(t, 20*time.Second, "a chart with data", func() bool {
		_, page = httpGet(t, url)
		return strings.Contains(page, "<polyline") || strings.Contains(page, "<circle")
	})
	for _, want := range []string{"<h2>Health history</h2>", "<span class=\"ok\">SERVING</span></td><td>PRIMARY</td>",
		"<td>ALREADY_EXISTS</td><td>1</td>", "select sleep(0.15) from dual", "Queries per second", "Latency", "Connections"} {
		if !strings.Contains(page, want) {
			t.Errorf("status page lacks %q", want)
		}
	}
	if strings.Contains(page, "<script") || strings.Contains(page, "secret-value") {
		t.Error("status page has a script or a bind value")
	}
}

// checkDashboard: every metric the Grafana dashboard (deploy/grafana/tabletd.json) queries
// is one a tablet exports (types: the metric families of a real /metrics).
func checkDashboard(t *testing.T, types map[string]string) {
	t.Helper()
	b, err := os.ReadFile("../../deploy/grafana/tabletd.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			ID      int
			Title   string
			Targets []struct{ Expr string }
		}
		Templating struct {
			List []struct{ Definition string }
		}
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	name := regexp.MustCompile(`\b(?:vttablet|tabletd)_[a-z0-9_]+`)
	ids, exprs := map[int]bool{}, 0
	check := func(where, expr string) {
		for _, m := range name.FindAllString(expr, -1) {
			family := m
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if base := strings.TrimSuffix(m, suffix); base != m && types[base] == "histogram" {
					family = base
				}
			}
			if _, ok := types[family]; !ok {
				t.Errorf("dashboard %s queries %s, which a tablet does not export", where, m)
			}
		}
	}
	for _, p := range dash.Panels {
		if ids[p.ID] {
			t.Errorf("dashboard panel id %d twice", p.ID)
		}
		ids[p.ID] = true
		for _, tg := range p.Targets {
			exprs++
			check(fmt.Sprintf("panel %q", p.Title), tg.Expr)
		}
	}
	for _, v := range dash.Templating.List {
		check("variable", v.Definition)
	}
	if exprs < 20 {
		t.Errorf("dashboard has only %d queries", exprs)
	}
}
