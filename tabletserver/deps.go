package tabletserver

import (
	"math"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/tabletd/tabletd/proto/topodatapb"
)

// Deps are the query service's collaborators. Nil Log, Registry and Clock get harmless
// defaults (a no-op logger, a private registry, time.Now).
type Deps struct {
	Log      *zap.Logger
	Registry prometheus.Registerer
	Clock    func() time.Time
	Prober   Prober
	// HeartbeatWriter runs on a serving PRIMARY, HeartbeatReader on other types; nil: none
	// (replication lag then comes from the probe's Seconds_Behind_Master).
	HeartbeatWriter Component
	HeartbeatReader LagReader
}

func (d Deps) withDefaults() Deps {
	if d.Log == nil {
		d.Log = zap.NewNop()
	}
	if d.Registry == nil {
		d.Registry = prometheus.NewRegistry()
	}
	if d.Clock == nil {
		d.Clock = time.Now
	}
	return d
}

type metrics struct {
	serving  *prometheus.GaugeVec
	state    *prometheus.GaugeVec
	lag      prometheus.Gauge
	mysqlUp  prometheus.Gauge
	inflight prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer, cfg Config, _ *Server) (*metrics, error) {
	labels := prometheus.Labels{"keyspace": cfg.Keyspace, "shard": cfg.Shard}
	m := &metrics{
		serving: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tabletd_serving", Help: "1 while the tablet serves queries for its type, else 0.", ConstLabels: labels,
		}, []string{"tablet_type"}),
		state: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tabletd_serving_state", Help: "1 for the query service's current state, 0 for the others.", ConstLabels: labels,
		}, []string{"state"}),
		lag: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tabletd_replication_lag_seconds", Help: "Measured replication lag; NaN when unknown, 0 on a primary.", ConstLabels: labels,
		}),
		mysqlUp: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tabletd_mysql_up", Help: "1 when the last MySQL probe succeeded.", ConstLabels: labels,
		}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tabletd_requests_in_flight", Help: "Requests admitted and not finished.", ConstLabels: labels,
		}),
	}
	for _, c := range []prometheus.Collector{m.serving, m.state, m.lag, m.mysqlUp, m.inflight} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) observe(st Status) {
	m.serving.Reset()
	m.serving.WithLabelValues(st.TabletType.String()).Set(b2f(st.Serving))
	for _, s := range []State{StateNotConnected, StateNotServing, StateServing, StateShuttingDown} {
		m.state.WithLabelValues(s.String()).Set(b2f(s == st.State))
	}
	switch {
	case st.TabletType == topodatapb.TabletType_PRIMARY:
		m.lag.Set(0)
	case st.MySQL.LagKnown:
		m.lag.Set(st.MySQL.Lag.Seconds())
	default:
		m.lag.Set(nan())
	}
	m.mysqlUp.Set(b2f(!st.MySQL.CheckedAt.IsZero() && st.MySQL.Err == nil))
	m.inflight.Set(float64(st.InFlight))
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func nan() float64 { return math.NaN() }
