package tablet

import (
	"cmp"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/tabletd/tabletd/httpserver"
	"github.com/tabletd/tabletd/proto/topodatapb"
	"github.com/tabletd/tabletd/stats"
	"github.com/tabletd/tabletd/tabletserver"
	"github.com/tabletd/tabletd/topo"
	"github.com/tabletd/tabletd/vreplication/engine"
)

// observability is what an operator who knows vttablet looks at: vttablet's variables
// (/debug/vars, and vttablet_* beside tabletd's own series on /metrics), the log pages,
// and the sampler behind the status page's charts and the QPS rates. It owns one goroutine
// (the sampler) and the context that ends the log streams when the HTTP server shuts down.
type observability struct {
	vars        *stats.Set
	stopSampler context.CancelFunc
	samplerDone chan struct{}
	streams     context.Context // ends every log stream (/debug/querylog, …)
	stopStreams context.CancelFunc
}

// openObservability publishes the variables, registers them for /metrics and starts the
// sampler. It comes after the query service (whose variables it publishes) and before the
// HTTP server.
func (t *Tablet) openObservability(context.Context) error {
	o := &observability{vars: stats.NewSet("vttablet")}
	if err := errors.Join(t.qs.PublishVars(o.vars), t.publishTabletVars(o.vars)); err != nil {
		return err
	}
	if err := t.reg.Register(o.vars); err != nil {
		return fmt.Errorf("registering vttablet's metrics: %w", err)
	}
	o.streams, o.stopStreams = context.WithCancel(context.Background())
	ctx, cancel := context.WithCancel(context.Background())
	o.stopSampler, o.samplerDone = cancel, make(chan struct{})
	go t.sample(ctx, o)
	t.obs = o
	t.onClose("observability", func(context.Context) {
		o.stopStreams()
		o.stopSampler()
		<-o.samplerDone
		t.reg.Unregister(o.vars)
	})
	return nil
}

// sample feeds the status page's history every second and takes the QPS rates' sample
// every HistoryInterval (Vitess samples QPS every 5 seconds).
func (t *Tablet) sample(ctx context.Context, o *observability) {
	defer close(o.samplerDone)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	o.vars.Sample(t.now())
	last := t.now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			now := t.now()
			t.qs.SampleHistory(now)
			if now.Sub(last) >= tabletserver.HistoryInterval {
				o.vars.Sample(now)
				last = now
			}
		}
	}
}

// publishTabletVars publishes what vttablet's tablet manager and servenv export: the
// tablet's identity and type, the build, replication lag, and the VReplication streams.
func (t *Tablet) publishTabletVars(set *stats.Set) error {
	str := func(f func() string) stats.StringFunc { return stats.StringFunc(f) }
	konst := func(s string) stats.StringFunc { return func() string { return s } }
	vars := []struct {
		name, help string
		v          stats.Var
	}{
		// TabletType is the lower-case type name (topoproto.TabletTypeLString).
		{"TabletType", "", str(func() string { return strings.ToLower(t.tabletType().String()) })},
		{"TabletKeyspace", "", konst(t.cfg.Keyspace)},
		{"TabletShard", "", konst(t.cfg.Shard)},
		{"TabletAlias", "", konst(topo.AliasString(t.cfg.Alias))},
		{"TabletKeyRangeStart", "", konst(hex.EncodeToString(t.keyRange.GetStart()))},
		{"TabletKeyRangeEnd", "", konst(hex.EncodeToString(t.keyRange.GetEnd()))},
		{"BuildVersion", "", konst(t.cfg.BuildVersion)},
		{"GoVersion", "", konst(runtime.Version())},
		{"GoOS", "", konst(runtime.GOOS)},
		{"GoArch", "", konst(runtime.GOARCH)},
		{"VReplicationStreamCount", "Number of vreplication streams", stats.IntFunc{F: func() int64 { return int64(len(t.vreplicationStreams())) }}},
		{"VReplicationLagSecondsMax", "Max vreplication seconds behind primary", stats.IntFunc{F: t.vreplicationLagMax}},
		{"VReplicationLagSeconds", "vreplication seconds behind primary per stream", stats.CountsFunc{
			Labels: []string{"source_keyspace", "source_shard", "workflow", "counts"}, F: t.vreplicationLags}},
		{"VReplicationStreamState", "State of vreplication workflow", stats.StringsFunc{
			Labels: []string{"workflow", "counts"}, ValueLabel: "state", F: t.vreplicationStates}},
		{"VReplicationSource", "", stats.StringsFunc{F: t.vreplicationSources}},
		{"VReplicationSourceTablet", "", stats.StringsFunc{F: t.vreplicationSourceTablets}},
	}
	// The heartbeat measures lag when it runs (vttablet's HeartbeatCurrentLagNs), the
	// replication status otherwise (replicationLagSec); unknown lag is left out, never 0.
	if t.cfg.Heartbeat.Enable {
		vars = append(vars, struct {
			name, help string
			v          stats.Var
		}{"HeartbeatCurrentLagNs", "Point in time calculation of the heartbeat lag", stats.IntFunc{OK: func() (int64, bool) {
			lag, ok := t.replicationLag()
			return int64(lag), ok
		}}})
	} else {
		vars = append(vars, struct {
			name, help string
			v          stats.Var
		}{"replicationLagSec", "replication lag in seconds", stats.IntFunc{OK: func() (int64, bool) {
			lag, ok := t.replicationLag()
			return int64(lag / time.Second), ok
		}}})
	}
	var errs []error
	for _, v := range vars {
		errs = append(errs, set.Publish(v.name, v.help, v.v))
	}
	return errors.Join(errs...)
}

// tabletType is the type in the tablet record (UNKNOWN before the manager exists).
func (t *Tablet) tabletType() topodatapb.TabletType {
	if t.tm == nil {
		return topodatapb.TabletType_UNKNOWN
	}
	return t.tm.Tablet().Type
}

// replicationLag is the measured lag: 0 on a primary, false when it is unknown.
func (t *Tablet) replicationLag() (time.Duration, bool) {
	st := t.qs.Status()
	switch {
	case st.TabletType == topodatapb.TabletType_PRIMARY:
		return 0, true
	case st.MySQL.LagKnown:
		return st.MySQL.Lag, true
	}
	return 0, false
}

// vreplicationStreams are the VReplication engine's streams (none without an engine).
func (t *Tablet) vreplicationStreams() []engine.StreamStatus {
	if t.vre == nil {
		return nil
	}
	return t.vre.Streams()
}

func (t *Tablet) vreplicationLagMax() int64 {
	var m int64
	for _, s := range t.vreplicationStreams() {
		if s.LagKnown {
			m = max(m, int64(s.Lag/time.Second))
		}
	}
	return m
}

func (t *Tablet) vreplicationLags() map[string]int64 {
	out := map[string]int64{}
	for _, s := range t.vreplicationStreams() {
		if s.LagKnown {
			out[stats.JoinLabels(s.SourceKeyspace, s.SourceShard, s.Workflow, fmt.Sprint(s.ID))] = int64(s.Lag / time.Second)
		}
	}
	return out
}

func (t *Tablet) vreplicationStates() map[string]string {
	out := map[string]string{}
	for _, s := range t.vreplicationStreams() {
		out[stats.JoinLabels(s.Workflow, fmt.Sprint(s.ID))] = s.State
	}
	return out
}

func (t *Tablet) vreplicationSources() map[string]string {
	out := map[string]string{}
	for _, s := range t.vreplicationStreams() {
		out[fmt.Sprint(s.ID)] = s.SourceKeyspace + "/" + s.SourceShard
	}
	return out
}

func (t *Tablet) vreplicationSourceTablets() map[string]string {
	out := map[string]string{}
	for _, s := range t.vreplicationStreams() {
		out[fmt.Sprint(s.ID)] = s.SourceTablet
	}
	return out
}

// observabilityPages are the vttablet pages this file serves, by path. The log streams end
// when the HTTP server shuts down (stopLogStreams).
func (t *Tablet) observabilityPages() map[string]http.HandlerFunc {
	ql := t.cfg.QueryLog
	return map[string]http.HandlerFunc{
		"/debug/vars":           t.obs.vars.ServeHTTP,
		"/debug/status_details": t.qs.ServeStatusDetails,
		"/queryz":               t.qs.ServeQueryz,
		"/debug/tablet_plans":   t.qs.ServeTabletPlans,
		"/debug/querylog":       t.obs.stream(t.qs.ServeQueryLog(ql)),
		"/querylogz":            t.obs.stream(t.qs.ServeQuerylogz),
		"/debug/txlog":          t.obs.stream(t.qs.ServeTxLog),
		"/txlogz":               t.obs.stream(t.qs.ServeTxlogz),
	}
}

// stream makes h end when the log streams are stopped, not only when its client goes away:
// an HTTP server shutting down waits for its handlers.
func (o *observability) stream(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		stop := context.AfterFunc(o.streams, cancel)
		defer stop()
		h(w, r.WithContext(ctx))
	}
}

// stopLogStreams ends every log stream; the HTTP server calls it when it shuts down.
func (t *Tablet) stopLogStreams() { t.obs.stopStreams() }

// Chart colours.
const (
	blue, green, red, orange, purple = "#1f77b4", "#2ca02c", "#d62728", "#ff7f0e", "#9467bd"
)

// observed is the status page's history section from the query service's history.
func (t *Tablet) observed() httpserver.Observed {
	h := t.qs.History()
	o := httpserver.Observed{Span: tabletserver.HistorySpan, SlowThreshold: tabletserver.SlowThreshold}
	n := len(h.Points)
	times := make([]time.Time, n)
	qps, p50, p99 := make([]float64, n), make([]float64, n), make([]float64, n)
	pools := map[string][]float64{}
	waiters := make([]float64, n)
	for i, p := range h.Points {
		times[i], qps[i] = p.At, p.QPS
		p50[i], p99[i] = math.NaN(), math.NaN() // no statements: no latency
		if p.QPS > 0 {
			p50[i], p99[i] = ms(p.P50), ms(p.P99)
		}
		for _, pp := range p.Pools {
			if _, ok := pools[pp.Name]; !ok {
				pools[pp.Name] = make([]float64, n)
			}
			pools[pp.Name][i] = float64(pp.InUse)
			waiters[i] += float64(pp.Waiters)
		}
	}
	if n > 0 {
		o.QPS = qps[n-1]
	}
	end := t.now()
	chart := func(title, unit string, series ...httpserver.Series) httpserver.Chart {
		return httpserver.Chart{Title: title, Unit: unit, End: end, Span: tabletserver.HistorySpan, Times: times, Series: series}
	}
	poolSeries := []httpserver.Series{}
	for _, p := range []struct{ name, label, color string }{
		{"ConnPool", "query pool", blue}, {"TransactionPool", "transaction pool", orange},
		{"StreamConnPool", "stream pool", purple},
	} {
		if v, ok := pools[p.name]; ok || n == 0 {
			poolSeries = append(poolSeries, httpserver.Series{Name: p.label + " in use", Color: p.color, Values: v})
		}
	}
	poolSeries = append(poolSeries, httpserver.Series{Name: "waiting callers", Color: red, Values: waiters})
	o.Charts = []httpserver.Chart{
		chart("Queries per second", "qps", httpserver.Series{Name: "all statements", Color: blue, Values: qps}),
		chart("Latency", "ms", httpserver.Series{Name: "p50", Color: green, Values: p50}, httpserver.Series{Name: "p99", Color: red, Values: p99}),
		chart("Connections", "", poolSeries...),
	}
	for _, e := range h.Health {
		o.HealthHistory = append(o.HealthHistory, httpserver.HealthEvent{At: e.At, State: e.State, Serving: e.Serving,
			TabletType: e.TabletType, Reason: e.Reason})
	}
	for _, code := range slices.Sorted(maps.Keys(h.Errors)) {
		o.Errors = append(o.Errors, httpserver.ErrorCount{Code: code, Count: h.Errors[code]})
	}
	slices.SortStableFunc(o.Errors, func(a, b httpserver.ErrorCount) int { return cmp.Compare(b.Count, a.Count) })
	for _, q := range h.SlowQueries {
		o.SlowQueries = append(o.SlowQueries, httpserver.SlowQuery{At: q.At, Took: q.Took.Round(time.Millisecond),
			SQL: q.SQL, Plan: q.Plan, Caller: q.Caller, Rows: q.Rows, Err: q.Err})
	}
	return o
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
