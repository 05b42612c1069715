package tabletserver

import (
	"slices"
	"sync"
	"time"

	"github.com/tabletd/tabletd/stats"
)

// Bounds of what the status page keeps.
const (
	// SlowThreshold: a statement answered after this long is listed among the slow queries
	// (vttablet's /querylogz colours such a row "high").
	SlowThreshold  = 100 * time.Millisecond
	maxSlowQueries = 20
	// maxHealthEvents is how many serving-state transitions the health history keeps.
	maxHealthEvents = 20
	// HistoryInterval is the width of one point of the charts; HistorySpan is how far back
	// they go: 15 minutes, as vttablet's QPS rates.
	HistoryInterval = 5 * time.Second
	HistorySpan     = 15 * time.Minute
	historyPoints   = int(HistorySpan / HistoryInterval)
)

// SlowQuery is one statement that took at least SlowThreshold.
type SlowQuery struct {
	At     time.Time
	Took   time.Duration
	SQL    string // truncated
	Plan   string
	Caller string
	Rows   uint64 // returned, or affected
	Err    string
}

// ring keeps the last n values, oldest first.
type ring[T any] struct {
	mu   sync.Mutex
	n    int
	vals []T
}

func (r *ring[T]) add(v T) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.vals = append(r.vals, v)
	if over := len(r.vals) - r.n; over > 0 {
		r.vals = slices.Delete(r.vals, 0, over)
	}
}

// newestFirst copies the values, newest first.
func (r *ring[T]) newestFirst() []T {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := slices.Clone(r.vals)
	slices.Reverse(out)
	return out
}

type slowQueries struct{ ring[SlowQuery] }

// HealthEvent is one serving-state transition of the query service.
type HealthEvent struct {
	At         time.Time
	State      string // NOT_CONNECTED, NOT_SERVING, SERVING, SHUTTING_DOWN
	Serving    bool
	TabletType string
	Reason     string // why not serving; empty while serving
}

type healthHistory struct{ ring[HealthEvent] }

// add records e unless it repeats the last transition (as vttablet's history deduplicates
// by type, serving and error: lag changes alone are not transitions).
func (h *healthHistory) add(e HealthEvent) {
	h.mu.Lock()
	if n := len(h.vals); n > 0 {
		l := h.vals[n-1]
		if l.State == e.State && l.Serving == e.Serving && l.TabletType == e.TabletType && l.Reason == e.Reason {
			h.mu.Unlock()
			return
		}
	}
	h.mu.Unlock()
	h.ring.add(e)
}

// PoolPoint is one pool over one history interval: the most connections lent out and the
// most callers waiting seen by the samples, and its capacity.
type PoolPoint struct {
	Name                     string
	InUse, Waiters, Capacity int
}

// HistoryPoint is one interval of the status page's charts. QPS and latencies are over the
// statements answered in the interval; with none, P50 and P99 are 0.
type HistoryPoint struct {
	At       time.Time // end of the interval
	QPS      float64
	P50, P99 time.Duration
	Pools    []PoolPoint
}

// historySampler turns the counters into HistoryPoints. SampleHistory feeds it.
type historySampler struct {
	mu        sync.Mutex
	start     time.Time // of the current interval; zero before the first sample
	count     int64
	latency   stats.LatencySnapshot
	poolPeaks []PoolPoint
	points    []HistoryPoint
}

// SampleHistory samples the pools and, once per HistoryInterval, closes a point of the
// charts. The tablet calls it about every second (pool peaks between calls are not seen).
func (s *Server) SampleHistory(now time.Time) {
	q := &s.stats
	h := &q.history
	pools := s.exec.pools()
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.poolPeaks) != len(pools) {
		h.poolPeaks = make([]PoolPoint, len(pools))
	}
	for i, p := range pools {
		st := p.Stats()
		pk := &h.poolPeaks[i]
		pk.Name, pk.Capacity = st.Name, st.Capacity
		pk.InUse, pk.Waiters = max(pk.InUse, st.InUse), max(pk.Waiters, st.Waiters)
	}
	count := q.vars.queries.Counts()["All"]
	lat := q.latency.Snapshot()
	if h.start.IsZero() {
		h.start, h.count, h.latency = now, count, lat
		return
	}
	elapsed := now.Sub(h.start)
	if elapsed < HistoryInterval {
		return
	}
	d := lat.Sub(h.latency)
	pt := HistoryPoint{At: now, QPS: float64(count-h.count) / elapsed.Seconds(),
		P50: d.Quantile(0.5), P99: d.Quantile(0.99), Pools: slices.Clone(h.poolPeaks)}
	h.points = append(h.points, pt)
	if over := len(h.points) - historyPoints; over > 0 {
		h.points = slices.Delete(h.points, 0, over)
	}
	h.start, h.count, h.latency = now, count, lat
	for i := range h.poolPeaks {
		h.poolPeaks[i].InUse, h.poolPeaks[i].Waiters = 0, 0
	}
}

// History is what the status page shows over time.
type History struct {
	Points      []HistoryPoint // oldest first, one per HistoryInterval
	Health      []HealthEvent  // newest first
	SlowQueries []SlowQuery    // newest first
	Errors      map[string]int64
}

// History returns the status page's history: chart points, serving-state transitions, slow
// queries, and the errors callers got by vtrpc code (codes never seen left out).
func (s *Server) History() History {
	q := &s.stats
	q.history.mu.Lock()
	points := slices.Clone(q.history.points)
	q.history.mu.Unlock()
	errs := q.vars.errors.Counts()
	for k, v := range errs {
		if v == 0 {
			delete(errs, k)
		}
	}
	return History{Points: points, Health: q.health.newestFirst(), SlowQueries: q.slow.newestFirst(), Errors: errs}
}

// healthChanged records a serving-state transition (called by update when the state or
// the health record changed).
func (q *queryStats) healthChanged(at time.Time, st State, serving bool, tabletType, reason string) {
	q.health.add(HealthEvent{At: at, State: st.String(), Serving: serving, TabletType: tabletType, Reason: reason})
}
