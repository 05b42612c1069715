package tabletserver

import (
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// maxTxStatements bounds the statements a transaction's log record keeps (each one
// truncated like an error's SQL); the rest are counted.
const maxTxStatements = 100

// txLog is what the transaction log keeps of an open transaction: when it began, who began
// it, its statements. It belongs to the stateful connection and is used by whoever holds it.
type txLog struct {
	start      time.Time // zero: no transaction began on the connection
	caller     string
	statements []string
	more       int // statements past maxTxStatements
}

// began starts the record of a transaction that began at now.
func (l *txLog) began(now time.Time) { *l = txLog{start: now, caller: l.caller} }

// add records one of the caller's statements.
func (l *txLog) add(sql string) {
	if l.start.IsZero() {
		return
	}
	if len(l.statements) >= maxTxStatements {
		l.more++
		return
	}
	l.statements = append(l.statements, truncateSQL(sql))
}

// TxRecord is one finished transaction, as the transaction log streams show it.
type TxRecord struct {
	ID         int64
	Caller     string // the immediate caller that began it
	Start, End time.Time
	Conclusion string // vttablet's: commit, rollback, kill, close, initFail, release
	Statements []string
	More       int // statements not kept
}

// Duration is how long the transaction was open.
func (r *TxRecord) Duration() time.Duration { return r.End.Sub(r.Start) }

// txEnded records the end of s's transaction (if one began on it) for reason: vttablet's
// Transactions timings and Kills, and the transaction log. The caller holds s.
func (q *queryStats) txEnded(s *stateful, reason string, now time.Time) {
	conclusion := txConclusion(reason)
	if conclusion == "kill" && strings.HasPrefix(reason, "exceeded timeout") {
		if s.txl.start.IsZero() && s.reserved {
			q.vars.kills.Add(1, "ReservedConnection")
		} else {
			q.vars.kills.Add(1, "Transactions")
		}
	}
	l := s.txl
	s.txl = txLog{caller: l.caller}
	if l.start.IsZero() {
		return
	}
	q.vars.transactions.Add(conclusion, now.Sub(l.start))
	if q.txlog.active() {
		q.txlog.send(&TxRecord{ID: s.id, Caller: l.caller, Start: l.start, End: now, Conclusion: conclusion,
			Statements: l.statements, More: l.more})
	}
}

// appendTxLine appends r as vttablet's transaction log line: the ID, 'effective caller',
// 'immediate caller', start, end, duration in seconds, conclusion, the statements each
// followed by ";" — tab-separated and tab-terminated. tabletd does not see the effective
// caller: it is empty.
func appendTxLine(b []byte, r *TxRecord) []byte {
	b = strconv.AppendInt(b, r.ID, 10)
	b = append(b, "\t''\t'"...)
	b = append(b, strings.ReplaceAll(r.Caller, "\t", " ")...)
	b = append(b, "'\t"...)
	b = r.Start.AppendFormat(b, time.StampMicro)
	b = append(b, '\t')
	b = r.End.AppendFormat(b, time.StampMicro)
	b = append(b, '\t')
	b = strconv.AppendFloat(b, r.Duration().Seconds(), 'f', 6, 64)
	b = append(b, '\t')
	b = append(b, r.Conclusion...)
	b = append(b, '\t')
	for _, s := range r.Statements {
		b = append(b, strings.NewReplacer("\t", " ", "\n", " ").Replace(s)...)
		b = append(b, ';')
	}
	if r.More > 0 {
		b = fmt.Appendf(b, "[%d more];", r.More)
	}
	return append(b, "\t\n"...)
}

// ServeTxLog streams /debug/txlog: one line per finished transaction (appendTxLine), until
// the client goes away, ?timeout= seconds pass or ?limit= lines were written; ?filter=
// keeps transactions with a statement containing it.
func (s *Server) ServeTxLog(w http.ResponseWriter, r *http.Request) {
	p, err := parseLogParams(r, true)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	ch, ok := s.stats.txlog.subscribe()
	if !ok {
		http.Error(w, "too many log subscribers", http.StatusServiceUnavailable)
		return
	}
	defer s.stats.txlog.unsubscribe(ch)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	flush(w)
	var buf []byte
	follow(r, ch, p, txFilter(p.filter), func(t *TxRecord) error {
		buf = appendTxLine(buf[:0], t)
		if _, err := w.Write(buf); err != nil {
			return err
		}
		flush(w)
		return nil
	})
}

func txFilter(f string) func(*TxRecord) bool {
	return func(t *TxRecord) bool {
		if f == "" {
			return true
		}
		for _, s := range t.Statements {
			if strings.Contains(s, f) {
				return true
			}
		}
		return false
	}
}

const txlogzHeader = `<thead><tr><th>Transaction id</th><th>Effective caller</th><th>Immediate caller</th>
<th>Start</th><th>End</th><th>Duration</th><th>Decision</th><th>Statements</th></tr></thead>
`

var txlogzRowTemplate = template.Must(template.New("txlogz").Funcs(template.FuncMap{
	"stamp": func(t time.Time) string { return t.Format(time.StampMicro) },
	"secs":  func(d time.Duration) string { return fmt.Sprintf("%.6f", d.Seconds()) },
}).Parse(`<tr class="{{.Level}}"><td>{{.ID}}</td><td></td><td>{{.Caller}}</td><td>{{stamp .Start}}</td><td>{{stamp .End}}</td>
<td>{{secs .Duration}}</td><td>{{.Conclusion}}</td><td class="sql">{{range .Statements}}{{.}}<br>{{end}}{{if .More}}[{{.More}} more]{{end}}</td></tr>
`))

// ServeTxlogz answers /txlogz: the transactions finished in the next ?timeout= seconds
// (default 10, at most 60), at most ?limit= (default 300), as vttablet's HTML table
// (rows coloured by duration: 0.1 s, 1 s).
func (s *Server) ServeTxlogz(w http.ResponseWriter, r *http.Request) {
	p, err := parseLogParams(r, false)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	ch, ok := s.stats.txlog.subscribe()
	if !ok {
		http.Error(w, "too many log subscribers", http.StatusServiceUnavailable)
		return
	}
	defer s.stats.txlog.unsubscribe(ch)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write([]byte(logzHead + txlogzHeader))
	flush(w)
	follow(r, ch, p, txFilter(p.filter), func(t *TxRecord) error {
		return txlogzRowTemplate.Execute(w, struct {
			*TxRecord
			Level string
		}{t, durationLevel(t.Duration(), 100*time.Millisecond, time.Second)})
	})
	_, _ = w.Write([]byte(logzFoot))
}
