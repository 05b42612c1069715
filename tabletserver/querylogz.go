package tabletserver

import (
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tabletd/tabletd/proto/querypb"
	"github.com/tabletd/tabletd/querylog"
)

// Bounds of the log streams: records buffered per subscriber (vttablet's: 50 queries, 10
// transactions; a full buffer drops records for that subscriber, counted, so a slow reader
// never slows a query) and concurrent subscribers (one more gets 503).
const (
	querylogBuffer    = 50
	txlogBuffer       = 10
	maxLogSubscribers = 16
)

// logStream fans records out to the HTTP subscribers of a log page. With no subscriber a
// record is never built: active is one atomic load.
type logStream[T any] struct {
	size    int
	n       atomic.Int32
	dropped atomic.Int64

	mu   sync.Mutex
	subs map[chan T]struct{}
}

func (l *logStream[T]) init(size int) {
	l.size = size
	l.subs = map[chan T]struct{}{}
}

func (l *logStream[T]) active() bool { return l.n.Load() > 0 }

func (l *logStream[T]) send(v T) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for ch := range l.subs {
		select {
		case ch <- v:
		default:
			l.dropped.Add(1)
		}
	}
}

// subscribe returns a new subscriber's channel, or false when there are too many.
func (l *logStream[T]) subscribe() (chan T, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.subs) >= maxLogSubscribers {
		return nil, false
	}
	ch := make(chan T, l.size)
	l.subs[ch] = struct{}{}
	l.n.Add(1)
	return ch, true
}

func (l *logStream[T]) unsubscribe(ch chan T) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.subs[ch]; ok {
		delete(l.subs, ch)
		l.n.Add(-1)
	}
}

// QueryRecord is one answered statement, as the query log streams show it (vttablet's
// LogStats).
type QueryRecord struct {
	Method        string
	Caller        string // the immediate caller (VTGateCallerID.username)
	Start, End    time.Time
	PlanType      string
	SQL           string
	BindVars      map[string]*querypb.BindVariable
	Queries       int           // MySQL statements it took
	MySQL         time.Duration // time in MySQL
	RowsAffected  uint64
	RowsReturned  uint64
	TransactionID int64
	Err           error
}

// logParams are a log page's bounds: how long to wait (?timeout=, seconds) and how many
// records to write (?limit=), and tabletd's ?filter= (a substring the SQL must contain).
type logParams struct {
	timeout time.Duration // 0 (streams only): until the client goes away
	limit   int
	filter  string
}

// parseLogParams reads the page's parameters within vttablet's bounds (timeout 0–60 s,
// default 10; limit 1–200000, default 300); a value that is not a number is an error naming
// the parameter. Streams (/debug/querylog, /debug/txlog) default to no timeout and no limit.
func parseLogParams(r *http.Request, stream bool) (logParams, error) {
	p := logParams{timeout: 10 * time.Second, limit: 300, filter: r.URL.Query().Get("filter")}
	maxTimeout := 60
	if stream {
		p.timeout, p.limit, maxTimeout = 0, 0, 24*3600
	}
	if v := r.URL.Query().Get("timeout"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return p, fmt.Errorf("timeout=%q: want whole seconds", v)
		}
		p.timeout = time.Duration(min(max(n, 0), maxTimeout)) * time.Second
		if p.timeout == 0 && !stream {
			p.timeout = time.Nanosecond // a page asked for no time at all answers at once
		}
	}
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return p, fmt.Errorf("limit=%q: want a number of records", v)
		}
		p.limit = min(max(n, 1), 200000)
	}
	return p, nil
}

// follow delivers ch's records to write until the parameters' timeout or limit, the
// client going away, or write failing. keep filters.
func follow[T any](r *http.Request, ch chan T, p logParams, keep func(T) bool, write func(T) error) {
	var timeout <-chan time.Time
	if p.timeout > 0 {
		tm := time.NewTimer(p.timeout)
		defer tm.Stop()
		timeout = tm.C
	}
	for n := 0; p.limit == 0 || n < p.limit; {
		select {
		case <-r.Context().Done():
			return
		case <-timeout:
			return
		case v := <-ch:
			if !keep(v) {
				continue
			}
			if write(v) != nil {
				return
			}
			n++
		}
	}
}

// ServeQueryLog streams /debug/querylog: one line per answered statement in vttablet's
// format (text or JSON, and the --querylog-* filters, of c), until the client goes away,
// ?timeout= seconds pass or ?limit= lines were written. Bind variable values are never
// written, only their type and size (vttablet's ?full is not supported).
func (s *Server) ServeQueryLog(c querylog.Config) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := parseLogParams(r, true)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		ch, ok := s.stats.qlog.subscribe()
		if !ok {
			http.Error(w, "too many log subscribers", http.StatusServiceUnavailable)
			return
		}
		defer s.stats.qlog.unsubscribe(ch)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		flush(w)
		var buf []byte
		follow(r, ch, p, func(q *QueryRecord) bool { return strings.Contains(q.SQL, p.filter) }, func(q *QueryRecord) error {
			line, ok := formatQueryRecord(buf[:0], c, q)
			buf = line
			if !ok {
				return nil
			}
			if _, err := w.Write(line); err != nil {
				return err
			}
			flush(w)
			return nil
		})
	}
}

func flush(w http.ResponseWriter) {
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
}

// formatQueryRecord appends q's line as vttablet's LogStats.Logf writes it, if c's filters
// let it through: Method, CallInfo, Username, ImmediateCaller, Effective Caller, Start, End,
// TotalTime, PlanType, OriginalSQL, BindVars, Queries, RewrittenSQL, QuerySources,
// MysqlTime, ConnWaitTime, RowsAffected, TransactionID, ResponseSize, Error, EmitReason —
// tab-separated and tab-terminated, or one JSON object. tabletd does not see the gRPC peer
// (CallInfo, Username are empty), the effective caller, nor pool waits (ConnWaitTime 0);
// RewrittenSQL is the SQL as sent (values are not copied into logs); ResponseSize is rows.
func formatQueryRecord(b []byte, c querylog.Config, q *QueryRecord) ([]byte, bool) {
	reason, ok := emitReason(c, q)
	if !ok {
		return b, false
	}
	w := logLine{b: b, json: c.Format == "json"}
	w.raw("Method", q.Method)
	w.raw("CallInfo", "")
	w.raw("Username", "")
	w.single("ImmediateCaller", q.Caller)
	w.single("Effective Caller", "")
	w.time("Start", q.Start, "2006-01-02 15:04:05.000000")
	w.time("End", q.End, "2006-01-02 15:04:05.000000")
	w.seconds("TotalTime", q.End.Sub(q.Start))
	w.raw("PlanType", q.PlanType)
	w.quoted("OriginalSQL", q.SQL)
	if c.Redact {
		w.quoted("BindVars", "[REDACTED]")
	} else {
		w.key("BindVars")
		w.b = appendBindVars(w.b, q.BindVars)
	}
	w.int("Queries", int64(q.Queries))
	if c.Redact {
		w.quoted("RewrittenSQL", "[REDACTED]")
	} else {
		w.quoted("RewrittenSQL", q.SQL)
	}
	w.raw("QuerySources", "mysql")
	w.seconds("MysqlTime", q.MySQL)
	w.seconds("ConnWaitTime", 0)
	w.int("RowsAffected", int64(q.RowsAffected))
	w.int("TransactionID", q.TransactionID)
	w.int("ResponseSize", int64(q.RowsReturned))
	w.quoted("Error", errText(q.Err))
	w.quoted("EmitReason", reason)
	return w.end(), true
}

// emitReason applies the --querylog-* filters as vttablet's QueryLogConfig.ShouldEmitLog:
// every condition set must hold (any one with EmitOnAny); the reason lists those met.
func emitReason(c querylog.Config, q *QueryRecord) (string, bool) {
	type cond struct {
		name     string
		set, met bool
	}
	conds := []cond{
		{"error", c.ErrorsOnly, q.Err != nil},
		{"filtertag", c.FilterTag != "", c.FilterTag != "" && strings.Contains(q.SQL, c.FilterTag)},
		{"row", c.RowThreshold > 0, max(q.RowsAffected, q.RowsReturned) >= c.RowThreshold},
		{"time", c.TimeThreshold > 0, q.End.Sub(q.Start) >= c.TimeThreshold},
	}
	var met []string
	anySet, all := false, true
	for _, k := range conds {
		if !k.set {
			continue
		}
		anySet = true
		if k.met {
			met = append(met, k.name)
		} else {
			all = false
		}
	}
	switch {
	case !anySet:
		return "", true
	case c.EmitOnAny:
		return strings.Join(met, ","), len(met) > 0
	}
	return strings.Join(met, ","), all
}

// logLine builds one log line in vttablet's text or JSON layout (go/logstats).
type logLine struct {
	b    []byte
	json bool
	n    int
}

func (w *logLine) key(k string) {
	switch {
	case w.json && w.n == 0:
		w.b = append(w.b, '{')
	case w.json:
		w.b = append(w.b, ", "...)
	case w.n > 0:
		w.b = append(w.b, '\t')
	}
	if w.json {
		w.b = strconv.AppendQuote(w.b, k)
		w.b = append(w.b, ": "...)
	}
	w.n++
}

// raw is a bare value in text (tabs and newlines become spaces), a string in JSON.
func (w *logLine) raw(k, v string) {
	w.key(k)
	if w.json {
		w.b = strconv.AppendQuote(w.b, v)
		return
	}
	w.b = append(w.b, strings.NewReplacer("\t", " ", "\n", " ").Replace(v)...)
}

func (w *logLine) single(k, v string) {
	if w.json {
		w.raw(k, v)
		return
	}
	w.key(k)
	w.b = append(w.b, '\'')
	w.b = append(w.b, strings.NewReplacer("\t", " ", "\n", " ").Replace(v)...)
	w.b = append(w.b, '\'')
}

func (w *logLine) quoted(k, v string) {
	w.key(k)
	w.b = strconv.AppendQuote(w.b, v)
}

func (w *logLine) int(k string, v int64) {
	w.key(k)
	w.b = strconv.AppendInt(w.b, v, 10)
}

func (w *logLine) time(k string, t time.Time, layout string) {
	w.key(k)
	if w.json {
		w.b = append(w.b, '"')
	}
	w.b = t.AppendFormat(w.b, layout)
	if w.json {
		w.b = append(w.b, '"')
	}
}

func (w *logLine) seconds(k string, d time.Duration) {
	w.key(k)
	w.b = strconv.AppendFloat(w.b, d.Seconds(), 'f', 6, 64)
}

func (w *logLine) end() []byte {
	if w.json {
		if w.n == 0 {
			w.b = append(w.b, '{')
		}
		w.b = append(w.b, '}')
	} else {
		w.b = append(w.b, '\t')
	}
	return append(w.b, '\n')
}

// appendBindVars writes bind variables as vttablet does without ?full: names sorted, numbers
// as they are, tuples and other values by size only.
func appendBindVars(b []byte, bvs map[string]*querypb.BindVariable) []byte {
	names := make([]string, 0, len(bvs))
	for n := range bvs {
		names = append(names, n)
	}
	slices.Sort(names)
	b = append(b, '{')
	for i, n := range names {
		bv := bvs[n]
		if i > 0 {
			b = append(b, ", "...)
		}
		b = strconv.AppendQuote(b, n)
		b = append(b, `: {"type": `...)
		b = strconv.AppendQuote(b, bv.GetType().String())
		b = append(b, `, "value": `...)
		switch {
		case isNumeric(bv.GetType()):
			b = append(b, bv.GetValue()...)
		case bv.GetType() == querypb.Type_TUPLE:
			b = append(b, '"')
			b = strconv.AppendInt(b, int64(len(bv.GetValues())), 10)
			b = append(b, ` items"`...)
		default:
			b = append(b, '"')
			b = strconv.AppendInt(b, int64(len(bv.GetValue())), 10)
			b = append(b, ` bytes"`...)
		}
		b = append(b, '}')
	}
	return append(b, '}')
}

func isNumeric(t querypb.Type) bool {
	switch t {
	case querypb.Type_INT8, querypb.Type_UINT8, querypb.Type_INT16, querypb.Type_UINT16, querypb.Type_INT24,
		querypb.Type_UINT24, querypb.Type_INT32, querypb.Type_UINT32, querypb.Type_INT64, querypb.Type_UINT64,
		querypb.Type_FLOAT32, querypb.Type_FLOAT64:
		return true
	}
	return false
}

// querylogzRow is one /querylogz table row.
type querylogzRow struct {
	*QueryRecord
	Level string // low, medium, high: vttablet's colours by duration (10 ms, 100 ms)
}

func (r querylogzRow) Duration() string { return fmt.Sprintf("%.6f", r.End.Sub(r.Start).Seconds()) }
func (r querylogzRow) MySQLTime() string {
	return fmt.Sprintf("%.6f", r.MySQL.Seconds())
}
func (r querylogzRow) Error() string { return errText(r.Err) }
func (r querylogzRow) SQLText() string {
	return truncateSQL(r.SQL)
}

// querylogzHeader is /querylogz's table head, vttablet's columns.
const querylogzHeader = `<thead><tr><th>Method</th><th>Context</th><th>Effective Caller</th><th>Immediate Caller</th>
<th>Start</th><th>End</th><th>Duration</th><th>MySQL time</th><th>Conn wait</th><th>Plan</th><th>SQL</th>
<th>Queries</th><th>Sources</th><th>RowsAffected</th><th>Response Size</th><th>Transaction ID</th><th>Reserved ID</th><th>Error</th></tr></thead>
`

var querylogzRowTemplate = template.Must(template.New("querylogz").Funcs(template.FuncMap{
	"stamp": func(t time.Time) string { return t.Format(time.StampMicro) },
}).Parse(`<tr class="{{.Level}}"><td>{{.Method}}</td><td></td><td></td><td>{{.Caller}}</td><td>{{stamp .Start}}</td><td>{{stamp .End}}</td>
<td>{{.Duration}}</td><td>{{.MySQLTime}}</td><td>0.000000</td><td>{{.PlanType}}</td><td class="sql">{{.SQLText}}</td><td>{{.Queries}}</td><td>mysql</td>
<td>{{.RowsAffected}}</td><td>{{.RowsReturned}}</td><td>{{.TransactionID}}</td><td>0</td><td>{{.Error}}</td></tr>
`))

const logzFoot = "</table></body></html>\n"

// logzHead is the style of the /querylogz, /txlogz and /queryz tables (vttablet's logz
// colours: low, medium, high), with no script.
const logzHead = `<!DOCTYPE html><html><head><meta charset="utf-8"><style>
table.gridtable{font-family:verdana,arial,sans-serif;font-size:11px;border-collapse:collapse}
table.gridtable th{border:1px solid #999;padding:8px;background:#dedede;white-space:nowrap}
table.gridtable td{border:1px solid #999;padding:4px}
tr.low{background:#f0f0f0} tr.medium{background:#ffcc00} tr.high{background:#ff3300} tr.error{background:#00ddff}
td.sql{font-family:monospace;word-break:break-all;max-width:60em}
</style></head><body><table class="gridtable">
`

// ServeQuerylogz answers /querylogz: the statements answered in the next ?timeout= seconds
// (default 10, at most 60), at most ?limit= of them (default 300), as vttablet's HTML table.
func (s *Server) ServeQuerylogz(w http.ResponseWriter, r *http.Request) {
	p, err := parseLogParams(r, false)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	ch, ok := s.stats.qlog.subscribe()
	if !ok {
		http.Error(w, "too many log subscribers", http.StatusServiceUnavailable)
		return
	}
	defer s.stats.qlog.unsubscribe(ch)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write([]byte(logzHead + querylogzHeader))
	flush(w) // the client sees the page start once it is subscribed
	follow(r, ch, p, func(q *QueryRecord) bool { return strings.Contains(q.SQL, p.filter) }, func(q *QueryRecord) error {
		return querylogzRowTemplate.Execute(w, querylogzRow{QueryRecord: q, Level: durationLevel(q.End.Sub(q.Start), 10*time.Millisecond, 100*time.Millisecond)})
	})
	_, _ = w.Write([]byte(logzFoot))
}

// durationLevel is vttablet's row colour: low below medium, high from high on.
func durationLevel(d, medium, high time.Duration) string {
	switch {
	case d >= high:
		return "high"
	case d >= medium:
		return "medium"
	}
	return "low"
}
