package pool

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	deps := Deps{Registry: reg, Labels: prometheus.Labels{"keyspace": "ks", "shard": "-80"}}
	d := &fakeDialer{}
	p := newTestPool(t, Config{Name: "ConnPool", Capacity: 2, WaitTimeout: 10 * time.Millisecond, MaxWaiters: 1}, d, deps)
	other := newTestPool(t, Config{Name: "StreamConnPool", Capacity: 7}, &fakeDialer{}, deps) // same registry

	held := getN(t, p, 2)
	if _, err := p.Get(context.Background(), nil); !errors.Is(err, ErrTimeout) {
		t.Fatalf("Get = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := startWaiter(t, ctx, p, nil, 1)
	if _, err := p.Get(context.Background(), nil); !errors.Is(err, ErrPoolFull) {
		t.Fatalf("Get = %v", err)
	}
	cancel()
	recv(t, w)
	held[0].Conn().broken.Store(true)
	held[0].Recycle()
	held[1].Recycle()

	for _, tt := range []struct {
		metric, pool string
		want         float64
	}{
		{"tabletd_pool_capacity", "ConnPool", 2},
		{"tabletd_pool_capacity", "StreamConnPool", 7},
		{"tabletd_pool_open_connections", "ConnPool", 1},
		{"tabletd_pool_in_use_connections", "ConnPool", 0},
		{"tabletd_pool_idle_connections", "ConnPool", 1},
		{"tabletd_pool_waiters", "ConnPool", 0},
		{"tabletd_pool_timeouts_total", "ConnPool", 1},
		{"tabletd_pool_rejections_total", "ConnPool", 1},
		{"tabletd_pool_canceled_waits_total", "ConnPool", 1},
		{"tabletd_pool_dials_total", "ConnPool", 2},
		{"tabletd_pool_dial_errors_total", "ConnPool", 0},
		{"tabletd_pool_closed_broken_total", "ConnPool", 1},
		{"tabletd_pool_wait_seconds", "ConnPool", 2}, // sample count: the timeout and the canceled wait
		{"tabletd_pool_wait_seconds", "StreamConnPool", 0},
	} {
		if got, ok := metricValue(t, reg, tt.metric, tt.pool); !ok || got != tt.want {
			t.Errorf("%s{pool=%q} = %v (found %v), want %v", tt.metric, tt.pool, got, ok, tt.want)
		}
	}

	// Closing unregisters, so a pool of the same name can come back.
	p.Close()
	other.Close()
	if _, ok := metricValue(t, reg, "tabletd_pool_capacity", "ConnPool"); ok {
		t.Errorf("metrics still registered after Close")
	}
	again := newTestPool(t, Config{Name: "ConnPool", Capacity: 3}, d, deps)
	if got, _ := metricValue(t, reg, "tabletd_pool_capacity", "ConnPool"); got != 3 {
		t.Errorf("recreated pool capacity = %v", got)
	}
	// Two live pools of the same name on one registry is a wiring error.
	if _, err := New(Config{Name: "ConnPool", Capacity: 1}, again.connect, deps); err == nil {
		t.Errorf("duplicate pool name registered twice")
	}
}

// metricValue returns the value (sample count for a histogram) of metric with pool=pool,
// checking the constant labels from Deps are there.
func metricValue(t *testing.T, reg *prometheus.Registry, metric, pool string) (float64, bool) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != metric {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["pool"] != pool {
				continue
			}
			if labels["keyspace"] != "ks" || labels["shard"] != "-80" {
				t.Errorf("%s: labels %v", metric, labels)
			}
			return value(m), true
		}
	}
	return 0, false
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Histogram != nil:
		return float64(m.GetHistogram().GetSampleCount())
	}
	return 0
}
