package engine

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// StreamStatus is one stream as /debug/status and /debug/vreplication show it.
type StreamStatus struct {
	ID                          int32
	Workflow                    string
	SourceKeyspace, SourceShard string
	SourceTablet                string // alias of the tablet streamed from; "" while none
	State, Message              string
	Phase                       string // "copy", "catchup", "fastforward", "replicate" or ""
	Position, StopPosition      string
	// Lag is how far the applied events are behind the source's clock; LagKnown is false
	// until an event told.
	Lag      time.Duration
	LagKnown bool
	// RowsCopied counts the rows the copy inserted (the row's rows_copied); RowsPerSecond is
	// the copy rate over the last few seconds.
	RowsCopied    int64
	RowsPerSecond float64
	CopyingTables []string
	// TransactionsApplied and EventsApplied count what the player applied since the engine
	// opened.
	TransactionsApplied, EventsApplied int64
	LastError                          string
	LastErrorAt                        time.Time
	LastHeartbeat                      time.Time
}

// streamStats is the live state of one stream; the controllers write it, status pages read
// it. It outlives controller restarts.
type streamStats struct {
	mu  sync.Mutex
	st  StreamStatus
	win []rateSample // recent (time, rows copied) samples for RowsPerSecond
}

type rateSample struct {
	at   time.Time
	rows int64
}

func newStreamStats(s *settings) *streamStats {
	return &streamStats{st: StreamStatus{ID: s.ID, RowsCopied: s.RowsCopied}}
}

// reset takes a (re)started stream's row.
func (s *streamStats) reset(r *settings) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.Workflow, s.st.State, s.st.Message = r.Workflow, r.State, r.Message
	s.st.Position, s.st.StopPosition, s.st.RowsCopied = r.Pos, r.StopPos, r.RowsCopied
	if r.Source != nil {
		s.st.SourceKeyspace, s.st.SourceShard = r.Source.Keyspace, r.Source.Shard
	}
	s.st.Phase, s.st.SourceTablet, s.st.CopyingTables = "", "", nil
}

func (s *streamStats) update(f func(st *StreamStatus)) {
	s.mu.Lock()
	f(&s.st)
	s.mu.Unlock()
}

// addCopied counts copied rows and samples the rate.
func (s *streamStats) addCopied(n int64, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.RowsCopied += n
	s.win = append(s.win, rateSample{now, s.st.RowsCopied})
	cut := 0
	for cut < len(s.win)-1 && now.Sub(s.win[cut].at) > 10*time.Second {
		cut++
	}
	s.win = s.win[cut:]
}

func (s *streamStats) snapshot(now time.Time) StreamStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.st
	st.CopyingTables = slices.Clone(s.st.CopyingTables)
	if n := len(s.win); n >= 2 && now.Sub(s.win[n-1].at) < 10*time.Second {
		if d := s.win[n-1].at.Sub(s.win[0].at).Seconds(); d > 0 {
			st.RowsPerSecond = float64(s.win[n-1].rows-s.win[0].rows) / d
		}
	}
	return st
}

// metrics are the engine's Prometheus series, labelled with the tablet's keyspace and shard
// and the stream's workflow and id.
type metrics struct {
	lag          *prometheus.GaugeVec
	rowsCopied   *prometheus.CounterVec
	events       *prometheus.CounterVec
	transactions *prometheus.CounterVec
	errors       *prometheus.CounterVec
}

var streamLabels = []string{"workflow", "stream"}

func newMetrics(reg prometheus.Registerer, keyspace, shard string) (*metrics, error) {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	cl := prometheus.Labels{"keyspace": keyspace, "shard": shard}
	m := &metrics{
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "tabletd_vreplication_lag_seconds", ConstLabels: cl,
			Help: "How far a VReplication stream's applied events are behind the source (seconds)."}, streamLabels),
		rowsCopied: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tabletd_vreplication_rows_copied_total", ConstLabels: cl,
			Help: "Rows the copy phase inserted."}, streamLabels),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tabletd_vreplication_events_applied_total", ConstLabels: cl,
			Help: "Binlog events applied by the replication phase, by event type."}, append(streamLabels, "type")),
		transactions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tabletd_vreplication_transactions_applied_total", ConstLabels: cl,
			Help: "Source transactions applied by the replication phase."}, streamLabels),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tabletd_vreplication_errors_total", ConstLabels: cl,
			Help: "Stream failures, by phase."}, append(streamLabels, "phase")),
	}
	for _, c := range []prometheus.Collector{m.lag, m.rowsCopied, m.events, m.transactions, m.errors} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("vreplication metrics: %w", err)
		}
	}
	return m, nil
}

// forget drops a deleted stream's series.
func (m *metrics) forget(id int32) {
	match := prometheus.Labels{"stream": itoa(id)}
	m.lag.DeletePartialMatch(match)
	m.rowsCopied.DeletePartialMatch(match)
	m.events.DeletePartialMatch(match)
	m.transactions.DeletePartialMatch(match)
	m.errors.DeletePartialMatch(match)
}

// vreplication_log types (vttablet's utils.go).
const (
	logStreamCreate = "Stream Created"
	logStreamDelete = "Stream Deleted"
	logMessage      = "Message"
	logCopyStart    = "Started Copy Phase"
	logCopyEnd      = "Ended Copy Phase"
	logStateChange  = "State Changed"
	logError        = "Error"
)

// insertLog records an event in <sidecar>.vreplication_log, counting repeats of the last
// message instead of adding rows (as vttablet does). Failures are only logged: the log is
// informational.
func (e *Engine) insertLog(ctx context.Context, c *dbConn, id int32, typ, state, message string) {
	if len(message) > 65535 {
		message = message[:65535]
	}
	qr, err := c.exec(ctx, fmt.Sprintf("select id, type, state, message from %s.vreplication_log where vrepl_id = %d order by id desc limit 1", e.sidecarID(), id))
	if err != nil {
		e.log.Debug("cannot read vreplication_log", zap.Error(err))
		return
	}
	var query string
	if len(qr.Rows) == 1 {
		v, _ := rowValues(qr.Rows[0], 4)
		if typ == logStateChange && string(v[1]) == typ && string(v[2]) == state {
			return
		}
		if string(v[1]) == typ && string(v[3]) == message {
			query = fmt.Sprintf("update %s.vreplication_log set count = count + 1 where id = %s", e.sidecarID(), v[0])
		}
	}
	if query == "" {
		query = fmt.Sprintf("insert into %s.vreplication_log(vrepl_id, type, state, message) values (%d, %s, %s, %s)",
			e.sidecarID(), id, QuoteString(typ), QuoteString(state), QuoteString(message))
	}
	if _, err := c.exec(ctx, query); err != nil {
		e.log.Debug("cannot write vreplication_log", zap.Error(err))
	}
}
