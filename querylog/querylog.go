// Package querylog writes vttablet's query log (--log-queries-to-file): one line per query
// the tablet served, in vttablet's tab-separated text format or as JSON, filtered by vttablet's
// querylog thresholds.
package querylog

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tabletd/tabletd/proto/querypb"
)

// Config selects the file, the format and which queries are logged. The zero value of the
// filters logs every query.
type Config struct {
	Path   string // --log-queries-to-file; empty: no query log
	Format string // --querylog-format: "text" (vttablet's default) or "json"

	RowThreshold  uint64        // --querylog-row-threshold: rows returned or affected at least this
	TimeThreshold time.Duration // --querylog-time-threshold: ran at least this long
	FilterTag     string        // --querylog-filter-tag: the SQL contains it
	ErrorsOnly    bool          // --querylog-mode error
	// EmitOnAny logs a query meeting any one of the set conditions instead of all of them
	// (--querylog-emit-on-any-condition-met).
	EmitOnAny bool
	// Redact writes [REDACTED] for bind variables and rewritten SQL
	// (--redact-debug-ui-queries): the SQL text stays, the values do not.
	Redact bool
}

// DefaultConfig logs nothing until Path is set; text format.
func DefaultConfig() Config { return Config{Format: "text"} }

// Validate names the first unusable setting.
func (c Config) Validate() error {
	switch c.Format {
	case "text", "json":
	default:
		return fmt.Errorf("--querylog-format %q: use text or json", c.Format)
	}
	if c.TimeThreshold < 0 {
		return fmt.Errorf("--querylog-time-threshold must be >= 0 (got %v)", c.TimeThreshold)
	}
	return nil
}

// Entry is one served query.
type Entry struct {
	Method          string // queryservice method: Execute, StreamExecute, BeginExecute, …
	RemoteAddr      string // the caller's address (vtgate's)
	Username        string // the immediate caller: VTGateCallerID.username
	EffectiveCaller string // CallerID.principal
	Start, End      time.Time
	SQL             string
	BindVars        map[string]*querypb.BindVariable
	TransactionID   int64
	RowsAffected    uint64
	RowsReturned    uint64
	Err             error
}

// Logger appends entries to the file. It is safe for concurrent use.
type Logger struct {
	cfg Config

	mu  sync.Mutex // one line at a time, whole
	f   *os.File
	buf []byte
}

// New opens (creating or appending to) cfg.Path.
func New(cfg Config) (*Logger, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Path == "" {
		return nil, errors.New("--log-queries-to-file is empty")
	}
	f, err := os.OpenFile(cfg.Path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("--log-queries-to-file: %w", err)
	}
	return &Logger{cfg: cfg, f: f}, nil
}

// Close closes the file; entries recorded later are dropped.
func (l *Logger) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

// Record writes e if the filters let it through. A failed write is returned for the caller
// to count; the query it describes has already been answered.
func (l *Logger) Record(e Entry) error {
	reason, ok := l.cfg.emit(e)
	if !ok {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	l.buf = l.cfg.format(l.buf[:0], e, reason)
	_, err := l.f.Write(l.buf)
	return err
}

// emit applies the thresholds: every condition that is set must hold (any one, with
// EmitOnAny). It returns the conditions met, comma separated, for the EmitReason column.
func (c Config) emit(e Entry) (string, bool) {
	type cond struct {
		name     string
		set, met bool
	}
	conds := []cond{
		{"error", c.ErrorsOnly, e.Err != nil},
		{"filtertag", c.FilterTag != "", c.FilterTag != "" && strings.Contains(e.SQL, c.FilterTag)},
		{"row", c.RowThreshold > 0, max(e.RowsAffected, e.RowsReturned) >= c.RowThreshold},
		{"time", c.TimeThreshold > 0, e.End.Sub(e.Start) >= c.TimeThreshold},
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

// format appends one line: vttablet's columns, tab-separated and tab-terminated in text, an
// object in JSON. Columns tabletd does not measure (plan type, MySQL and pool wait times)
// are empty or 0.
func (c Config) format(b []byte, e Entry, reason string) []byte {
	w := writer{b: b, json: c.Format == "json"}
	w.start()
	w.raw("Method", e.Method)
	w.raw("CallInfo", e.RemoteAddr)
	w.raw("Username", e.Username)
	w.single("ImmediateCaller", e.Username)
	w.single("Effective Caller", e.EffectiveCaller)
	w.time("Start", e.Start)
	w.time("End", e.End)
	w.seconds("TotalTime", e.End.Sub(e.Start))
	w.raw("PlanType", "")
	w.quoted("OriginalSQL", e.SQL)
	if c.Redact {
		w.quoted("BindVars", "[REDACTED]")
	} else {
		w.key("BindVars")
		w.b = appendBindVars(w.b, e.BindVars)
	}
	w.key("Queries")
	w.b = strconv.AppendInt(w.b, 1, 10)
	if c.Redact {
		w.quoted("RewrittenSQL", "[REDACTED]")
	} else {
		w.quoted("RewrittenSQL", e.SQL)
	}
	w.raw("QuerySources", "mysql")
	w.seconds("MysqlTime", 0)
	w.seconds("ConnWaitTime", 0)
	w.key("RowsAffected")
	w.b = strconv.AppendUint(w.b, e.RowsAffected, 10)
	w.key("TransactionID")
	w.b = strconv.AppendInt(w.b, e.TransactionID, 10)
	w.key("ResponseSize")
	w.b = strconv.AppendUint(w.b, e.RowsReturned, 10)
	errText := ""
	if e.Err != nil {
		errText = e.Err.Error()
	}
	w.quoted("Error", errText)
	w.quoted("EmitReason", reason)
	return w.end()
}

// writer builds one line in either format.
type writer struct {
	b    []byte
	json bool
	n    int
}

func (w *writer) start() {
	if w.json {
		w.b = append(w.b, '{')
	}
}

func (w *writer) key(k string) {
	if w.json {
		if w.n > 0 {
			w.b = append(w.b, ", "...)
		}
		w.b = strconv.AppendQuote(w.b, k)
		w.b = append(w.b, ": "...)
	} else if w.n > 0 {
		w.b = append(w.b, '\t')
	}
	w.n++
}

// raw is a bare value in text (never holding a tab: tabs become spaces), a string in JSON.
func (w *writer) raw(k, v string) {
	w.key(k)
	if w.json {
		w.b = strconv.AppendQuote(w.b, v)
		return
	}
	w.b = append(w.b, strings.ReplaceAll(v, "\t", " ")...)
}

func (w *writer) single(k, v string) {
	if w.json {
		w.raw(k, v)
		return
	}
	w.key(k)
	w.b = append(w.b, '\'')
	w.b = append(w.b, strings.ReplaceAll(v, "\t", " ")...)
	w.b = append(w.b, '\'')
}

func (w *writer) quoted(k, v string) {
	w.key(k)
	w.b = strconv.AppendQuote(w.b, v)
}

func (w *writer) time(k string, t time.Time) {
	const layout = "2006-01-02 15:04:05.000000"
	w.key(k)
	if w.json {
		w.b = append(w.b, '"')
	}
	w.b = t.AppendFormat(w.b, layout)
	if w.json {
		w.b = append(w.b, '"')
	}
}

func (w *writer) seconds(k string, d time.Duration) {
	w.key(k)
	w.b = strconv.AppendFloat(w.b, d.Seconds(), 'f', 6, 64)
}

func (w *writer) end() []byte {
	if w.json {
		w.b = append(w.b, '}')
	} else {
		w.b = append(w.b, '\t')
	}
	return append(w.b, '\n')
}

// appendBindVars writes bind variables as vttablet does without ?full: names sorted, numbers
// as they are, tuples and strings by size only — a value is data the log must not copy.
func appendBindVars(b []byte, bvs map[string]*querypb.BindVariable) []byte {
	names := make([]string, 0, len(bvs))
	for n := range bvs {
		names = append(names, n)
	}
	sort.Strings(names)
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
		case isNumber(bv.GetType()):
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

func isNumber(t querypb.Type) bool {
	switch t {
	case querypb.Type_INT8, querypb.Type_UINT8, querypb.Type_INT16, querypb.Type_UINT16, querypb.Type_INT24,
		querypb.Type_UINT24, querypb.Type_INT32, querypb.Type_UINT32, querypb.Type_INT64, querypb.Type_UINT64,
		querypb.Type_FLOAT32, querypb.Type_FLOAT64:
		return true
	}
	return false
}
