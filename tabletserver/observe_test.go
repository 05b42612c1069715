package tabletserver

import (
	"bufio"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tabletd/tabletd/proto/querypb"
	"github.com/tabletd/tabletd/proto/topodatapb"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/querylog"
	"github.com/tabletd/tabletd/rpcerr"
	"github.com/tabletd/tabletd/stats"
	"github.com/tabletd/tabletd/tabletserver/plan"
)

var t0 = time.Date(2026, 3, 4, 5, 6, 7, 890000000, time.UTC)

func testRecord() *QueryRecord {
	return &QueryRecord{Method: "Execute", Caller: "userData1", Start: t0, End: t0.Add(1500 * time.Microsecond),
		PlanType: "Select", SQL: "select * from t where id = :id and name = :n",
		BindVars: map[string]*querypb.BindVariable{
			"n":  {Type: querypb.Type_VARCHAR, Value: []byte("secret-name")},
			"id": {Type: querypb.Type_INT64, Value: []byte("42")},
			"l":  {Type: querypb.Type_TUPLE, Values: []*querypb.Value{{}, {}}},
		},
		Queries: 1, MySQL: 1200 * time.Microsecond, RowsReturned: 3, TransactionID: 7}
}

// golden reads testdata/name: "key<TAB>value" lines (# comments), the value with \t for tabs.
func golden(t *testing.T, name string) map[string]string {
	t.Helper()
	f, err := os.Open("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "\t")
		if !ok {
			t.Fatalf("%s: bad line %q", name, line)
		}
		out[k] = strings.ReplaceAll(v, `\t`, "\t")
	}
	return out
}

// TestQueryLogLines pins /debug/querylog's lines to vttablet's LogStats format (golden in
// testdata/querylog.golden); string bind values are never copied.
func TestQueryLogLines(t *testing.T) {
	want := golden(t, "querylog.golden")
	for _, tc := range []struct {
		name string
		cfg  querylog.Config
		mod  func(*QueryRecord)
	}{
		{"text", querylog.Config{Format: "text"}, nil},
		{"json", querylog.Config{Format: "json"}, nil},
		{"redacted", querylog.Config{Format: "text", Redact: true}, nil},
		{"error", querylog.Config{Format: "json"}, func(q *QueryRecord) {
			q.Err = rpcerr.New(vtrpcpb.Code_ALREADY_EXISTS, "Duplicate entry '1' for key 'PRIMARY' (errno 1062) (sqlstate 23000)")
			q.RowsReturned = 0
		}},
		{"tabs", querylog.Config{Format: "text"}, func(q *QueryRecord) { q.Caller, q.Method = "a\tb", "Execute\n" }},
	} {
		q := testRecord()
		if tc.mod != nil {
			tc.mod(q)
		}
		line, ok := formatQueryRecord(nil, tc.cfg, q)
		if !ok {
			t.Fatalf("%s: filtered out", tc.name)
		}
		if got := strings.TrimSuffix(string(line), "\n"); got != want[tc.name] {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, got, want[tc.name])
		}
		if strings.Contains(string(line), "secret-name") {
			t.Errorf("%s: a string bind value is in the log", tc.name)
		}
		if tc.cfg.Format == "json" && !json.Valid(line) {
			t.Errorf("%s: not JSON: %s", tc.name, line)
		}
	}
}

func TestQueryLogFilters(t *testing.T) {
	slow := func(q *QueryRecord) { q.End = q.Start.Add(2 * time.Second) }
	failed := func(q *QueryRecord) { q.Err = errors.New("boom") }
	for _, tc := range []struct {
		name   string
		cfg    querylog.Config
		mod    func(*QueryRecord)
		emit   bool
		reason string
	}{
		{"no filter", querylog.Config{}, nil, true, ""},
		{"time below", querylog.Config{TimeThreshold: time.Second}, nil, false, ""},
		{"time above", querylog.Config{TimeThreshold: time.Second}, slow, true, "time"},
		{"rows", querylog.Config{RowThreshold: 3}, nil, true, "row"},
		{"rows below", querylog.Config{RowThreshold: 4}, nil, false, ""},
		{"tag", querylog.Config{FilterTag: "name ="}, nil, true, "filtertag"},
		{"errors only, ok", querylog.Config{ErrorsOnly: true}, nil, false, ""},
		{"errors only, failed", querylog.Config{ErrorsOnly: true}, failed, true, "error"},
		{"all of them", querylog.Config{RowThreshold: 3, TimeThreshold: time.Second}, nil, false, "row"},
		{"any of them", querylog.Config{RowThreshold: 3, TimeThreshold: time.Second, EmitOnAny: true}, nil, true, "row"},
	} {
		q := testRecord()
		if tc.mod != nil {
			tc.mod(q)
		}
		reason, emit := emitReason(tc.cfg, q)
		if emit != tc.emit || reason != tc.reason {
			t.Errorf("%s: emit %v reason %q, want %v %q", tc.name, emit, reason, tc.emit, tc.reason)
		}
	}
}

func TestTxLogLine(t *testing.T) {
	want := golden(t, "txlog.golden")
	r := &TxRecord{ID: 1770000000000000042, Caller: "app", Start: t0, End: t0.Add(250 * time.Millisecond),
		Conclusion: "commit", Statements: []string{"insert into t values (1)", "update t\tset a = 1"}}
	if got := strings.TrimSuffix(string(appendTxLine(nil, r)), "\n"); got != want["commit"] {
		t.Errorf("line\n got %q\nwant %q", got, want["commit"])
	}
	r.More, r.Conclusion = 3, "kill"
	if got := strings.TrimSuffix(string(appendTxLine(nil, r)), "\n"); got != want["more"] {
		t.Errorf("line\n got %q\nwant %q", got, want["more"])
	}
}

func TestTxConclusion(t *testing.T) {
	for reason, want := range map[string]string{
		"transaction committed":                      "commit",
		"transaction rolled back":                    "rollback",
		"release connection":                         "release",
		"begin failed":                               "initFail",
		"exceeded timeout: 30s":                      "kill",
		"connection killed or lost: CANCELED":        "kill",
		"rolled back: tablet type change to REPLICA": "close",
		"tablet shutting down":                       "close",
		"commit failed":                              "close",
	} {
		if got := txConclusion(reason); got != want {
			t.Errorf("txConclusion(%q) = %q, want %q", reason, got, want)
		}
	}
}

func TestInConnMethod(t *testing.T) {
	for _, tc := range []struct {
		reserved, inTx bool
		call           Call
		stream         bool
		want           string
	}{
		{false, true, Call{}, false, "BeginExecute"},
		{false, true, Call{}, true, "BeginStreamExecute"},
		{true, true, Call{ReservedID: 9}, false, "BeginExecute"},
		{true, true, Call{}, false, "ReserveBeginExecute"},
		{true, true, Call{}, true, "ReserveBeginStreamExecute"},
		{true, false, Call{}, false, "ReserveExecute"},
		{true, true, Call{TxID: 9}, true, "ReserveStreamExecute"},
	} {
		st := &stateful{reserved: tc.reserved, inTx: tc.inTx}
		if got := inConnMethod(st, &tc.call, tc.stream); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc, got, tc.want)
		}
	}
}

func TestLogParams(t *testing.T) {
	for _, tc := range []struct {
		query   string
		stream  bool
		timeout time.Duration
		limit   int
		bad     bool
	}{
		{"", false, 10 * time.Second, 300, false},
		{"timeout=2&limit=5", false, 2 * time.Second, 5, false},
		{"timeout=600&limit=0", false, 60 * time.Second, 1, false}, // vttablet's bounds
		{"timeout=0", false, time.Nanosecond, 300, false},          // at once
		{"", true, 0, 0, false},
		{"timeout=5", true, 5 * time.Second, 0, false},
		{"timeout=soon", false, 0, 0, true},
		{"limit=all", true, 0, 0, true},
	} {
		p, err := parseLogParams(httptest.NewRequest("GET", "/querylogz?"+tc.query, nil), tc.stream)
		if tc.bad {
			if err == nil {
				t.Errorf("%q: no error", tc.query)
			}
			continue
		}
		if err != nil || p.timeout != tc.timeout || p.limit != tc.limit {
			t.Errorf("%q stream=%v: %+v %v, want timeout %v limit %d", tc.query, tc.stream, p, err, tc.timeout, tc.limit)
		}
	}
}

// TestLogStreamBounds: subscribers are capped, a full buffer drops (and counts) instead of
// blocking the statement, and with no subscriber nothing is built.
func TestLogStreamBounds(t *testing.T) {
	var l logStream[int]
	l.init(2)
	if l.active() {
		t.Fatal("active without subscribers")
	}
	var chans []chan int
	for range maxLogSubscribers {
		ch, ok := l.subscribe()
		if !ok {
			t.Fatal("subscriber refused below the cap")
		}
		chans = append(chans, ch)
	}
	if _, ok := l.subscribe(); ok {
		t.Fatal("subscriber past the cap accepted")
	}
	for i := range 3 {
		l.send(i) // the third does not fit a buffer of 2
	}
	if got := l.dropped.Load(); got != maxLogSubscribers {
		t.Errorf("dropped %d, want one per subscriber (%d)", got, maxLogSubscribers)
	}
	for _, ch := range chans {
		l.unsubscribe(ch)
	}
	if l.active() {
		t.Error("active after every subscriber left")
	}
}

func mustPlan(t *testing.T, sql string) *plan.Plan {
	t.Helper()
	p, err := plan.NewBuilder().Build(sql)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestStatementRecording: one statement's way into vttablet's variables, the per-statement
// stats, the slow list and the query log.
func TestStatementRecording(t *testing.T) {
	var q queryStats
	q.init(10)
	ch, _ := q.qlog.subscribe()
	defer q.qlog.unsubscribe(ch)

	c := &Call{Caller: "app", SQL: "select * from t where id = 1"}
	st := q.begin("Execute", c, 0)
	st.start = time.Now().Add(-200 * time.Millisecond) // a slow one
	q.end(&st, mustPlan(t, c.SQL), &querypb.QueryResult{Rows: []*querypb.Row{{}, {}}}, nil)

	bad := &Call{Caller: "app", SQL: "insert into t values (1)"}
	st = q.begin("Execute", bad, 0)
	q.end(&st, mustPlan(t, bad.SQL), nil, rpcerr.New(vtrpcpb.Code_ALREADY_EXISTS, "dup"))

	unparsable := &Call{Caller: "app", SQL: "selec 1"}
	st = q.begin("Execute", unparsable, 0)
	q.end(&st, nil, nil, rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "syntax"))

	v := q.vars
	for key, want := range map[string]int64{"t.Select": 1, "t.Insert": 1} {
		if got := v.counts.Get(key); got != want {
			t.Errorf("QueryCounts[%s] = %d, want %d", key, got, want)
		}
	}
	if got := v.returned.Get("t.Select"); got != 2 {
		t.Errorf("QueryRowsReturned[t.Select] = %d, want 2", got)
	}
	if got := v.errCounts.Get("t.Insert"); got != 1 {
		t.Errorf("QueryErrorCounts[t.Insert] = %d", got)
	}
	if got := v.errByCode.Get("t.Insert.ALREADY_EXISTS"); got != 1 {
		t.Errorf("QueryErrorCountsWithCode = %v", v.errByCode.Counts())
	}
	if got := v.errors.Counts(); got["ALREADY_EXISTS"] != 1 || got["INVALID_ARGUMENT"] != 1 || got["OK"] != 0 {
		t.Errorf("Errors = %v", got)
	}
	if got := v.queries.Counts(); got["All"] != 2 || got["Select"] != 1 || got["Insert"] != 1 {
		t.Errorf("Queries counts = %v (the unparsable statement has no plan type)", got)
	}
	if slow := q.slow.newestFirst(); len(slow) != 1 || slow[0].SQL != c.SQL || slow[0].Plan != "Select" || slow[0].Rows != 2 {
		t.Errorf("slow queries %+v", slow)
	}
	if got := q.latency.Snapshot().Count(); got != 3 {
		t.Errorf("latency observed %d statements, want 3", got)
	}
	var logged []string
	for range 3 {
		r := <-ch
		logged = append(logged, r.Method+" "+r.PlanType+" "+r.SQL)
	}
	if want := []string{"Execute Select " + c.SQL, "Execute Insert " + bad.SQL, "Execute  selec 1"}; strings.Join(logged, "|") != strings.Join(want, "|") {
		t.Errorf("query log %q, want %q", logged, want)
	}
	if rows := q.statRows(); len(rows) != 2 {
		t.Errorf("per-statement rows %+v, want the two planned statements", rows)
	}
}

// TestTransactionRecording: a transaction's statements and end reach the transaction log
// and vttablet's Transactions and Kills.
func TestTransactionRecording(t *testing.T) {
	var q queryStats
	q.init(10)
	ch, _ := q.txlog.subscribe()
	defer q.txlog.unsubscribe(ch)
	s := &stateful{id: 42}
	s.txl.caller = "app"
	s.txl.began(t0)
	for i := range maxTxStatements + 2 {
		s.txl.add("insert into t values (" + strings.Repeat("1", i%3+1) + ")")
	}
	q.txEnded(s, "exceeded timeout: 30s", t0.Add(time.Second))
	r := <-ch
	if r.ID != 42 || r.Caller != "app" || r.Conclusion != "kill" || len(r.Statements) != maxTxStatements || r.More != 2 || r.Duration() != time.Second {
		t.Errorf("tx record %+v", r)
	}
	if got := q.vars.kills.Counts(); got["Transactions"] != 1 || got["Queries"] != 0 {
		t.Errorf("Kills %v", got)
	}
	if got := q.vars.transactions.Counts(); got["kill"] != 1 {
		t.Errorf("Transactions %v", got)
	}
	// A reserved connection without a transaction: no record, a ReservedConnection kill.
	r2 := &stateful{id: 43, reserved: true}
	q.txEnded(r2, "exceeded timeout: 30s", t0)
	if got := q.vars.kills.Counts()["ReservedConnection"]; got != 1 {
		t.Errorf("ReservedConnection kills %d", got)
	}
	select {
	case r := <-ch:
		t.Errorf("a record for a connection without a transaction: %+v", r)
	default:
	}
}

func TestHistorySampler(t *testing.T) {
	s := newTestServer(t, &fakeProber{})
	base := time.Now()
	s.SampleHistory(base)
	for i := range 10 { // statements of 1 … 10 ms, recorded as end records them
		d := time.Duration(i+1) * time.Millisecond
		s.stats.vars.queries.Add("Select", d)
		s.stats.latency.Observe(d)
	}
	s.SampleHistory(base.Add(time.Second)) // inside the interval: no point yet
	if n := len(s.History().Points); n != 0 {
		t.Fatalf("%d points before an interval passed", n)
	}
	s.SampleHistory(base.Add(HistoryInterval))
	h := s.History()
	if len(h.Points) != 1 {
		t.Fatalf("points %+v", h.Points)
	}
	p := h.Points[0]
	if p.QPS != 2 { // 10 statements in 5 s
		t.Errorf("QPS %v, want 2", p.QPS)
	}
	if p.P50 < 4*time.Millisecond || p.P50 > 7*time.Millisecond || p.P99 < 9*time.Millisecond || p.P99 > 12*time.Millisecond {
		t.Errorf("p50 %v p99 %v, want about 5.5ms and 10ms", p.P50, p.P99)
	}
	names := map[string]bool{}
	for _, pp := range p.Pools {
		names[pp.Name] = pp.Capacity > 0
	}
	for _, n := range []string{"ConnPool", "StreamConnPool", "TransactionPool", "FoundRowsPool"} {
		if !names[n] {
			t.Errorf("pool %s missing from the point or without capacity: %+v", n, p.Pools)
		}
	}
	for range historyPoints + 5 {
		base = base.Add(HistoryInterval)
		s.SampleHistory(base.Add(HistoryInterval))
	}
	if n := len(s.History().Points); n != historyPoints {
		t.Errorf("%d points kept, want %d", n, historyPoints)
	}
}

// TestDetails pins /debug/status_details to vttablet's keys, classes and values.
func TestDetails(t *testing.T) {
	for _, tc := range []struct {
		name string
		tt   topodatapb.TabletType
		h    MySQLHealth
		want []Detail
	}{
		{"primary", topodatapb.TabletType_PRIMARY, MySQLHealth{}, []Detail{
			{"Current State", "healthy", "PRIMARY: Serving, " + time.Unix(1000, 0).Local().Format("Jan 2, 2006 at 15:04:05 (MST)")}}},
		{"replica", topodatapb.TabletType_REPLICA, MySQLHealth{ReplicationConfigured: true, LagKnown: true, Lag: 2 * time.Second}, []Detail{
			{"Current State", "healthy", "REPLICA: Serving"}, {"Replication Lag", "healthy", "2s"}}},
		{"replica lagging", topodatapb.TabletType_REPLICA, MySQLHealth{ReplicationConfigured: true, LagKnown: true, Lag: 45 * time.Second}, []Detail{
			{"Current State", "healthy", "REPLICA: Serving"}, {"Replication Lag", "unhappy", "45s"}}},
		{"replica stopped", topodatapb.TabletType_REPLICA, MySQLHealth{ReplicationConfigured: true, ReplicationProblem: "SQL thread not running"}, []Detail{
			{"Current State", "unhappy", "REPLICA: Not Serving"},
			{"Reason", "unhappy", "replication lag unknown: SQL thread not running"},
			{"Replication Lag", "unhealthy", "unknown"},
			{"Replication Error", "unhappy", "SQL thread not running"}}},
		{"mysql down", topodatapb.TabletType_RDONLY, MySQLHealth{Err: errors.New("connection refused")}, []Detail{
			{"Current State", "unhealthy", "RDONLY: Not connected to mysql"},
			{"Reason", "unhappy", "MySQL is unreachable: connection refused"},
			{"Replication Lag", "unhealthy", "unknown"},
			{"Replication Error", "unhappy", "replication is not configured"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &fakeProber{}
			p.set(tc.h)
			s := newTestServer(t, p)
			s.SetServingType(tc.tt, time.Unix(1000, 0), true, "")
			waitFor(t, func() bool {
				st := s.Status()
				return st.TabletType == tc.tt && (st.MySQL.Err != nil) == (tc.h.Err != nil) && !st.MySQL.CheckedAt.IsZero()
			})
			var got []Detail
			waitFor(t, func() bool { got = s.Details(); return len(got) == len(tc.want) })
			for i := range tc.want {
				if got[i] != tc.want[i] {
					t.Errorf("detail %d = %+v, want %+v", i, got[i], tc.want[i])
				}
			}
			rec := httptest.NewRecorder()
			s.ServeStatusDetails(rec, httptest.NewRequest("GET", "/debug/status_details", nil))
			var parsed []map[string]string
			if err := json.Unmarshal(rec.Body.Bytes(), &parsed); err != nil || parsed[0]["Key"] != "Current State" || parsed[0]["Class"] == "" {
				t.Errorf("/debug/status_details %s: %v", rec.Body, err)
			}
		})
	}
}

// TestPublishVars pins the names and JSON shapes of the query service's variables to
// vttablet v23's (testdata/vars.golden: name and shape).
func TestPublishVars(t *testing.T) {
	s := newTestServer(t, &fakeProber{})
	set := stats.NewSet("vttablet")
	if err := s.PublishVars(set); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	set.Sample(now)
	set.Sample(now.Add(5 * time.Second)) // QPS has its rates from two samples on
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(set.AppendJSON(nil), &doc); err != nil {
		t.Fatal(err)
	}
	for name, shape := range golden(t, "vars.golden") {
		raw, ok := doc[name]
		if !ok {
			t.Errorf("%s is not published", name)
			continue
		}
		if got := jsonShape(raw); got != shape {
			t.Errorf("%s is %s, want %s: %s", name, got, shape, raw)
		}
	}
	if err := s.PublishVars(set); err == nil {
		t.Error("publishing twice succeeded")
	}
}

// jsonShape names a value's shape: number, string, counts (object of numbers), strings
// (object of strings), timings (Vitess's Timings object), rates (object of arrays).
func jsonShape(raw json.RawMessage) string {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return "invalid"
	}
	switch x := v.(type) {
	case float64:
		return "number"
	case string:
		return "string"
	case map[string]any:
		if _, ok := x["Histograms"]; ok {
			if _, ok := x["TotalCount"]; ok {
				return "timings"
			}
		}
		shape := "counts"
		for _, e := range x {
			switch e.(type) {
			case []any:
				shape = "rates"
			case string:
				shape = "strings"
			}
		}
		return shape
	}
	return "other"
}
