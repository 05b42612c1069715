package tabletserver

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tabletd/tabletd/proto/querypb"
	"github.com/tabletd/tabletd/proto/topodatapb"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/rpcerr"
	"github.com/tabletd/tabletd/tabletserver/consolidator"
	"github.com/tabletd/tabletd/tabletserver/plan"
)

func newConsolidator(cfg ConsolidatorConfig, reg prometheus.Registerer, labels prometheus.Labels) (*consolidator.Consolidator[*querypb.QueryResult], error) {
	c, err := consolidator.New[*querypb.QueryResult](consolidator.Config{MaxWaiters: cfg.MaxWaiters,
		MaxBytes: cfg.MaxBytes, RejectOnFull: cfg.RejectOnFull}, consolidator.QueryResultSize)
	if err != nil {
		return nil, err
	}
	stat := func(name, help string, f func(consolidator.Stats) float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: labels},
			func() float64 { return f(c.Stats()) })
	}
	for _, col := range []prometheus.Collector{
		stat("tabletd_consolidator_waiters_served_total", "Reads answered with another caller's result.", func(s consolidator.Stats) float64 { return float64(s.Consolidated) }),
		stat("tabletd_consolidator_executions_total", "Reads the consolidator sent to MySQL.", func(s consolidator.Stats) float64 { return float64(s.Executions) }),
		stat("tabletd_consolidator_overflow_total", "Callers past a bound that ran their own query.", func(s consolidator.Stats) float64 { return float64(s.Overflow) }),
		stat("tabletd_consolidator_rejected_total", "Callers past a bound refused with RESOURCE_EXHAUSTED.", func(s consolidator.Stats) float64 { return float64(s.Rejected) }),
	} {
		if err := reg.Register(col); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// consolidate decides whether this read may share another caller's execution: only plain
// reads outside transactions, by tablet type (off on PRIMARY unless --enable-consolidator),
// overridden per request by ExecuteOptions.consolidator or /*vt+ CONSOLIDATOR=… */.
func (e *executor) consolidate(r *request, tt topodatapb.TabletType) (bool, error) {
	switch r.plan.Type {
	case plan.Select, plan.SelectNoLimit, plan.SelectImpossible:
	default:
		return false, nil
	}
	onPrimary, onReplica := e.cfg.Consolidator.OnPrimary, e.cfg.Consolidator.OnReplicas
	mode := r.Options.GetConsolidator()
	if v, ok := r.plan.Directives["CONSOLIDATOR"]; ok {
		switch strings.ToLower(v) {
		case "enabled":
			mode = querypb.ExecuteOptions_CONSOLIDATOR_ENABLED
		case "disabled":
			mode = querypb.ExecuteOptions_CONSOLIDATOR_DISABLED
		case "enabled_replicas":
			mode = querypb.ExecuteOptions_CONSOLIDATOR_ENABLED_REPLICAS
		default:
			return false, rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT,
				"bad query hint CONSOLIDATOR=%q: want enabled, disabled or enabled_replicas", v)
		}
	}
	switch mode {
	case querypb.ExecuteOptions_CONSOLIDATOR_DISABLED:
		return false, nil
	case querypb.ExecuteOptions_CONSOLIDATOR_ENABLED:
		return true, nil
	case querypb.ExecuteOptions_CONSOLIDATOR_ENABLED_REPLICAS:
		return tt != topodatapb.TabletType_PRIMARY, nil
	}
	if tt == topodatapb.TabletType_PRIMARY {
		return onPrimary, nil
	}
	return onReplica, nil
}

// executeRead runs a non-transactional read, sharing one execution among identical concurrent
// ones when consolidation applies. The key is the final SQL and the field detail asked for,
// so callers only ever share a result they would have got themselves.
func (e *executor) executeRead(ctx context.Context, r *request, tt topodatapb.TabletType) (*querypb.QueryResult, error) {
	ok, err := e.consolidate(r, tt)
	if err != nil {
		return nil, err
	}
	if !ok {
		res, err := e.executeNoTx(ctx, r)
		e.renameDatabase(res, r)
		return res, err
	}
	key := string(rune('0'+r.fields)) + r.final
	res, _, err := e.cons.Do(ctx, key, func() (*querypb.QueryResult, error) {
		res, err := e.executeNoTx(ctx, r)
		e.renameDatabase(res, r) // before sharing: a shared result is read-only
		return res, err
	})
	return res, err
}

// ServeConsolidations answers /debug/consolidations like vttablet: "Length: N" then
// "count: query" lines, most recent first.
func (s *Server) ServeConsolidations(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	recent := s.exec.cons.Recent()
	fmt.Fprintf(w, "Length: %d\n", len(recent))
	for _, e := range recent {
		fmt.Fprintf(w, "%d: %s\n", e.Count, e.Key[1:])
	}
}

// ConsolidatorStatus is the consolidator's configuration and counters, for /debug/status.
func (s *Server) ConsolidatorStatus() (ConsolidatorConfig, consolidator.Stats) {
	return s.cfg.Query.Consolidator, s.exec.cons.Stats()
}
