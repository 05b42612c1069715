package tabletserver

import (
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/tabletd/tabletd/mysqlconn"
)

// liveQuery is one statement running in MySQL, for /livequeryz. It is stored by value in its
// shard's map, so registering costs no allocation once the map has grown.
type liveQuery struct {
	connID     uint32 // MySQL connection (thread) id: what /livequeryz/terminate kills
	streaming  bool
	inTx       bool // a transaction was open on the connection when the statement was sent
	reader     bool // a snapshot reader's statement (not ended by state transitions)
	terminated bool // /livequeryz/terminate issued (or is issuing) a KILL for this statement
	caller     string
	sql        string // as received; truncated only when shown
	start      time.Time
}

// liveShards spreads registrations over independent locks: connection ids are sequential, so
// concurrent statements land on different shards.
const liveShards = 32

// liveQueries registers the statements running in MySQL, keyed by connection id. A connection
// runs one statement at a time, so the id names the statement as long as it is registered.
// The zero value is ready to use.
type liveQueries struct {
	shards [liveShards]liveShard
}

type liveShard struct {
	mu sync.Mutex
	m  map[uint32]liveQuery
	_  [48]byte // mu and m fill 16 bytes: keep shards on separate cache lines
}

func (l *liveQueries) shard(id uint32) *liveShard { return &l.shards[id%liveShards] }

// add registers q, right before its statement is sent.
func (l *liveQueries) add(q liveQuery) {
	s := l.shard(q.connID)
	s.mu.Lock()
	if s.m == nil {
		s.m = make(map[uint32]liveQuery)
	}
	s.m[q.connID] = q
	s.mu.Unlock()
}

// remove unregisters connection id's statement once it returned. terminated reports that
// /livequeryz/terminate picked it: a KILL for the connection was or will be sent, so the
// connection must not be reused (the KILL would hit its next statement).
func (l *liveQueries) remove(id uint32) (terminated bool) {
	s := l.shard(id)
	s.mu.Lock()
	q, ok := s.m[id]
	delete(s.m, id)
	s.mu.Unlock()
	return ok && q.terminated
}

// terminate marks connection id's statement as terminated, before the caller sends KILL.
// It is false when no statement runs on id: only registered connections may be killed, never
// an arbitrary MySQL thread (replication, other clients). Marking and removing share the
// shard lock, so either the statement sees the mark and discards its connection, or it was
// already gone and no KILL is sent.
func (l *liveQueries) terminate(id uint32) bool {
	s := l.shard(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	q, ok := s.m[id]
	if ok {
		q.terminated = true
		s.m[id] = q
	}
	return ok
}

// list returns the running statements, oldest first.
func (l *liveQueries) list() []liveQuery {
	var out []liveQuery
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		for _, q := range s.m {
			out = append(out, q)
		}
		s.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].start.Equal(out[j].start) {
			return out[i].start.Before(out[j].start)
		}
		return out[i].connID < out[j].connID
	})
	return out
}

// liveQueryJSON is a /livequeryz?format=json entry.
type liveQueryJSON struct {
	ConnID          uint32
	Caller          string
	Start           string // RFC 3339 with nanoseconds
	DurationSeconds float64
	SQL             string
	Streaming       bool
	InTransaction   bool
	Terminated      bool // a kill was sent; the statement has not returned yet
}

// wantsJSON: ?format=json, or an Accept header asking for JSON.
func wantsJSON(r *http.Request) bool {
	return r.FormValue("format") == "json" || strings.Contains(r.Header.Get("Accept"), "application/json")
}

// ServeLiveQueries answers /livequeryz: the statements running in MySQL, oldest first, as an
// HTML table with a kill button per row, or as JSON (?format=json or Accept: application/json).
func (s *Server) ServeLiveQueries(w http.ResponseWriter, r *http.Request) {
	now := s.exec.now()
	running := s.exec.live.list()
	out := make([]liveQueryJSON, 0, len(running))
	for _, q := range running {
		out = append(out, liveQueryJSON{ConnID: q.connID, Caller: q.caller, Start: q.start.Format(time.RFC3339Nano),
			DurationSeconds: now.Sub(q.start).Seconds(), SQL: truncateSQL(q.sql), Streaming: q.streaming,
			InTransaction: q.inTx, Terminated: q.terminated})
	}
	if wantsJSON(r) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(out)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := liveQueriesTemplate.Execute(w, out); err != nil {
		s.log.Warn("rendering /livequeryz", zap.Error(err))
	}
}

// ServeTerminate answers /livequeryz/terminate?connID=N: it kills MySQL connection N, only if
// a statement registered in /livequeryz runs on it. POST, or GET as vttablet's page links it.
// The statement's caller gets a CANCELED error and the connection is discarded.
func (s *Server) ServeTerminate(w http.ResponseWriter, r *http.Request) {
	asJSON := wantsJSON(r)
	if r.Method != http.MethodPost && r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET, POST")
		terminateError(w, asJSON, http.StatusMethodNotAllowed, "use POST (or GET) for /livequeryz/terminate")
		return
	}
	raw := r.FormValue("connID")
	id, err := strconv.ParseUint(raw, 10, 32)
	if err != nil {
		terminateError(w, asJSON, http.StatusBadRequest,
			fmt.Sprintf("parameter connID: want the MySQL connection id of a running query (as listed in /livequeryz), got %q", raw))
		return
	}
	if !s.exec.live.terminate(uint32(id)) {
		terminateError(w, asJSON, http.StatusNotFound, fmt.Sprintf("no running query on connection %d (it may have finished)", id))
		return
	}
	s.log.Info("livequeryz: killing a running query", zap.Uint32("connection", uint32(id)), zap.String("remote", r.RemoteAddr))
	if err := s.exec.kill(uint32(id), "livequeryz"); err != nil {
		terminateError(w, asJSON, http.StatusServiceUnavailable, fmt.Sprintf("killing connection %d: %v", id, err))
		return
	}
	if asJSON {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]uint32{"killed": uint32(id)})
		return
	}
	http.Redirect(w, r, "/livequeryz", http.StatusSeeOther)
}

func terminateError(w http.ResponseWriter, asJSON bool, status int, msg string) {
	if !asJSON {
		http.Error(w, msg, status)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// liveQueriesTemplate escapes every field (html/template): the SQL is the caller's text.
var liveQueriesTemplate = template.Must(template.New("livequeryz").Parse(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Running queries</title>
<style>
body{font-family:sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse} th,td{padding:.2em .8em .2em 0;vertical-align:top;text-align:left}
td.sql{font-family:monospace;white-space:pre-wrap;max-width:80em}
</style></head><body>
<h1>Running queries</h1>
<p>{{len .}} statement(s) running in MySQL, oldest first. <a href="/debug/status">/debug/status</a></p>
<table>
<tr><th>Connection</th><th>Caller</th><th>Started</th><th>Duration (s)</th><th>Streaming</th><th>In transaction</th><th>SQL</th><th></th></tr>
{{range .}}<tr><td>{{.ConnID}}</td><td>{{.Caller}}</td><td>{{.Start}}</td><td>{{printf "%.3f" .DurationSeconds}}</td><td>{{.Streaming}}</td><td>{{.InTransaction}}</td><td class="sql">{{.SQL}}</td>
<td>{{if .Terminated}}killing…{{else}}<form method="post" action="/livequeryz/terminate?connID={{.ConnID}}"><button type="submit">Kill</button></form>{{end}}</td></tr>
{{end}}</table>
</body></html>
`))

// register lists r as running on c, right before it is sent; the caller removes it with
// e.live.remove(c.ID()) once the statement returned.
func (e *executor) register(c *mysqlconn.Conn, r *request, streaming bool) {
	e.live.add(liveQuery{connID: c.ID(), streaming: streaming, inTx: c.LastStatusFlags()&mysqlconn.StatusInTrans != 0,
		reader: r.reader, caller: r.Caller, sql: r.SQL, start: e.now()})
}

// terminateAll kills every statement registered as running (a state transition ends the old
// state's work) but the snapshot readers', which only read and outlive transitions as in
// vttablet; each caller gets CANCELED and its connection is discarded. It returns how many
// KILLs were sent.
func (e *executor) terminateAll(reason string) int {
	n := 0
	for _, q := range e.live.list() {
		if q.reader {
			continue
		}
		if e.live.terminate(q.connID) && e.kill(q.connID, reason) == nil {
			n++
		}
	}
	return n
}
