package pool

import (
	"fmt"
	"maps"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics exports a pool's Stats at scrape time (so Get and Recycle pay nothing for the
// gauges and counters) plus a histogram of wait times observed as waits end.
type metrics struct {
	reg   prometheus.Registerer // nil: not exported
	wait  prometheus.Histogram
	stats *statsCollector
}

// statsCollector turns one Stats snapshot into the pool's gauges and counters.
type statsCollector struct {
	stats func() Stats
	specs []metricSpec
}

type metricSpec struct {
	desc  *prometheus.Desc
	kind  prometheus.ValueType
	value func(Stats) float64
}

func newMetrics(name string, deps Deps, stats func() Stats) (*metrics, error) {
	labels := maps.Clone(deps.Labels)
	if labels == nil {
		labels = prometheus.Labels{}
	}
	labels["pool"] = name
	spec := func(kind prometheus.ValueType, metric, help string, v func(Stats) float64) metricSpec {
		return metricSpec{prometheus.NewDesc("tabletd_pool_"+metric, help, nil, labels), kind, v}
	}
	g, c := prometheus.GaugeValue, prometheus.CounterValue
	m := &metrics{
		reg: deps.Registry,
		wait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "tabletd_pool_wait_seconds", Help: "Time Gets spent waiting in line for a connection.",
			ConstLabels: labels, Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10), // 100µs … 26s
		}),
		stats: &statsCollector{stats: stats, specs: []metricSpec{
			spec(g, "capacity", "Most connections the pool may hold open.", func(s Stats) float64 { return float64(s.Capacity) }),
			spec(g, "open_connections", "Open connections, including those being dialed.", func(s Stats) float64 { return float64(s.Open) }),
			spec(g, "in_use_connections", "Connections lent out.", func(s Stats) float64 { return float64(s.InUse) }),
			spec(g, "idle_connections", "Connections idle in the pool.", func(s Stats) float64 { return float64(s.Idle) }),
			spec(g, "waiters", "Callers waiting for a connection.", func(s Stats) float64 { return float64(s.Waiters) }),
			spec(c, "timeouts_total", "Gets that waited the pool timeout without a connection.", func(s Stats) float64 { return float64(s.Timeouts) }),
			spec(c, "rejections_total", "Gets refused at once because the waiter cap was reached.", func(s Stats) float64 { return float64(s.Rejections) }),
			spec(c, "canceled_waits_total", "Waits ended by the caller's context.", func(s Stats) float64 { return float64(s.Canceled) }),
			spec(c, "dials_total", "Connections dialed.", func(s Stats) float64 { return float64(s.Dials) }),
			spec(c, "dial_errors_total", "Dials that failed.", func(s Stats) float64 { return float64(s.DialErrors) }),
			spec(c, "closed_broken_total", "Connections found broken and closed.", func(s Stats) float64 { return float64(s.ClosedBroken) }),
			spec(c, "closed_idle_total", "Connections closed after the idle timeout.", func(s Stats) float64 { return float64(s.ClosedIdle) }),
			spec(c, "closed_lifetime_total", "Connections closed after their maximum lifetime.", func(s Stats) float64 { return float64(s.ClosedLifetime) }),
		}},
	}
	if m.reg == nil {
		return m, nil
	}
	if err := m.reg.Register(m.wait); err != nil {
		return nil, fmt.Errorf("pool %s: registering metrics: %w", name, err)
	}
	if err := m.reg.Register(m.stats); err != nil {
		m.reg.Unregister(m.wait)
		return nil, fmt.Errorf("pool %s: registering metrics: %w", name, err)
	}
	return m, nil
}

func (m *metrics) observeWait(d time.Duration) { m.wait.Observe(d.Seconds()) }

// unregister removes the pool's metrics, so a pool of the same name can be created again.
func (m *metrics) unregister() {
	if m.reg != nil {
		m.reg.Unregister(m.wait)
		m.reg.Unregister(m.stats)
	}
}

func (c *statsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, s := range c.specs {
		ch <- s.desc
	}
}

func (c *statsCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.stats()
	for _, s := range c.specs {
		ch <- prometheus.MustNewConstMetric(s.desc, s.kind, s.value(st))
	}
}
