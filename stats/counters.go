package stats

import (
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Counter is a count that only goes up (Vitess's stats.Counter).
type Counter struct{ v atomic.Int64 }

// Add adds n.
func (c *Counter) Add(n int64) { c.v.Add(n) }

// Get returns the count.
func (c *Counter) Get() int64 { return c.v.Load() }

func (c *Counter) appendJSON(b []byte) ([]byte, bool) { return strconv.AppendInt(b, c.Get(), 10), true }

func (c *Counter) collector(name, help string) promVar {
	return &scalar{desc: prometheus.NewDesc(name, help, nil, nil), kind: prometheus.CounterValue,
		value: func() (float64, bool) { return float64(c.Get()), true }}
}

// Gauge is a value that goes up and down (Vitess's stats.Gauge).
type Gauge struct{ v atomic.Int64 }

// Set sets the value.
func (g *Gauge) Set(n int64) { g.v.Store(n) }

// Add adds n (negative to subtract).
func (g *Gauge) Add(n int64) { g.v.Add(n) }

// Get returns the value.
func (g *Gauge) Get() int64 { return g.v.Load() }

func (g *Gauge) appendJSON(b []byte) ([]byte, bool) { return strconv.AppendInt(b, g.Get(), 10), true }

func (g *Gauge) collector(name, help string) promVar {
	return &scalar{desc: prometheus.NewDesc(name, help, nil, nil), kind: prometheus.GaugeValue,
		value: func() (float64, bool) { return float64(g.Get()), true }}
}

// IntFunc is an integer read when published: a gauge (Vitess's GaugeFunc) or, with
// Counter set, a counter (CounterFunc). With OK set, the value may be unknown: it is then
// left out of /debug/vars and /metrics rather than shown as a made-up number.
type IntFunc struct {
	F       func() int64
	OK      func() (int64, bool) // used instead of F when set
	Counter bool
}

func (f IntFunc) get() (int64, bool) {
	if f.OK != nil {
		return f.OK()
	}
	return f.F(), true
}

func (f IntFunc) appendJSON(b []byte) ([]byte, bool) {
	v, ok := f.get()
	if !ok {
		return b, false
	}
	return strconv.AppendInt(b, v, 10), true
}

func (f IntFunc) collector(name, help string) promVar {
	kind := prometheus.GaugeValue
	if f.Counter {
		kind = prometheus.CounterValue
	}
	return &scalar{desc: prometheus.NewDesc(name, help, nil, nil), kind: kind,
		value: func() (float64, bool) { v, ok := f.get(); return float64(v), ok }}
}

// DurationFunc is a duration read when published (Vitess's GaugeDurationFunc, or with
// Counter set CounterDurationFunc): nanoseconds on /debug/vars, seconds on /metrics.
type DurationFunc struct {
	F       func() time.Duration
	Counter bool
}

func (f DurationFunc) appendJSON(b []byte) ([]byte, bool) {
	return strconv.AppendInt(b, int64(f.F()), 10), true
}

func (f DurationFunc) collector(name, help string) promVar {
	kind := prometheus.GaugeValue
	if f.Counter {
		kind = prometheus.CounterValue
	}
	return &scalar{desc: prometheus.NewDesc(name, help, nil, nil), kind: kind,
		value: func() (float64, bool) { return f.F().Seconds(), true }}
}

// StringFunc is a string read when published (Vitess's stats.StringFunc); like Vitess,
// it is not exported to Prometheus.
type StringFunc func() string

func (f StringFunc) appendJSON(b []byte) ([]byte, bool) { return appendQuoted(b, f()), true }

func (StringFunc) collector(string, string) promVar { return nil }

type scalar struct {
	desc  *prometheus.Desc
	kind  prometheus.ValueType
	value func() (float64, bool)
}

func (s *scalar) collect(ch chan<- prometheus.Metric) {
	if v, ok := s.value(); ok {
		ch <- prometheus.MustNewConstMetric(s.desc, s.kind, v)
	}
}

// Other is the label value that counts everything past a variable's key limit: label
// cardinality stays bounded whatever the workload (table names, error codes, …).
const Other = "other"

// Counters is a set of counts keyed by label values: Vitess's CountersWithSingleLabel
// (one label) or CountersWithMultiLabels (several; the key joins the values with ".").
// At most MaxKeys distinct keys are kept; later keys count under "other" in every label.
type Counters struct {
	labels  []string
	maxKeys int
	other   string

	mu     sync.RWMutex
	counts map[string]*atomic.Int64
}

// DefaultMaxKeys bounds a Counters' distinct label values unless told otherwise.
const DefaultMaxKeys = 1000

// NewCounters returns counters with the given label names (one or more); tags are keys
// that exist from the start at 0, as Vitess pre-creates Errors' codes and Kills' types.
// maxKeys <= 0 means DefaultMaxKeys.
func NewCounters(labels []string, maxKeys int, tags ...string) *Counters {
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	others := make([]string, len(labels))
	for i := range others {
		others[i] = Other
	}
	c := &Counters{labels: slices.Clone(labels), maxKeys: maxKeys, other: strings.Join(others, "."),
		counts: map[string]*atomic.Int64{}}
	for _, t := range tags {
		c.counts[t] = new(atomic.Int64)
	}
	return c
}

// Add adds n to the count of these label values (one per label).
func (c *Counters) Add(n int64, values ...string) {
	if len(c.labels) == 1 && len(values) == 1 {
		c.AddKey(values[0], n) // single-label values keep their dots, as in Vitess
		return
	}
	c.AddKey(JoinLabels(values...), n)
}

// AddKey adds n to the count of key, a JoinLabels result (or the value of a single label).
func (c *Counters) AddKey(key string, n int64) {
	c.mu.RLock()
	v, ok := c.counts[key]
	c.mu.RUnlock()
	if !ok {
		c.mu.Lock()
		if v, ok = c.counts[key]; !ok {
			if len(c.counts) >= c.maxKeys {
				key = c.other
			}
			if v, ok = c.counts[key]; !ok {
				v = new(atomic.Int64)
				c.counts[key] = v
			}
		}
		c.mu.Unlock()
	}
	v.Add(n)
}

// Counts returns a copy of every key's count.
func (c *Counters) Counts() map[string]int64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make(map[string]int64, len(c.counts))
	for k, v := range c.counts {
		out[k] = v.Load()
	}
	return out
}

// Get returns one key's count.
func (c *Counters) Get(key string) int64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if v, ok := c.counts[key]; ok {
		return v.Load()
	}
	return 0
}

func (c *Counters) appendJSON(b []byte) ([]byte, bool) { return appendCounts(b, c.Counts()), true }

func (c *Counters) collector(name, help string) promVar {
	return newLabeled(name, help, c.labels, prometheus.CounterValue, c.Counts)
}

// CountsFunc is a set of counts or gauges computed when published, keyed like Counters
// (Vitess's GaugesFuncWithMultiLabels, CountersFuncWithMultiLabels). The function must
// keep its keys bounded.
type CountsFunc struct {
	Labels  []string
	F       func() map[string]int64
	Counter bool
}

func (f CountsFunc) appendJSON(b []byte) ([]byte, bool) { return appendCounts(b, f.F()), true }

func (f CountsFunc) collector(name, help string) promVar {
	kind := prometheus.GaugeValue
	if f.Counter {
		kind = prometheus.CounterValue
	}
	return newLabeled(name, help, f.Labels, kind, f.F)
}

func appendCounts(b []byte, m map[string]int64) []byte {
	keys := slices.Sorted(maps.Keys(m))
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = appendQuoted(b, k)
		b = append(b, ": "...)
		b = strconv.AppendInt(b, m[k], 10)
	}
	return append(b, '}')
}

// labeled exports keyed counts with one Prometheus label per Vitess label (snake-cased).
type labeled struct {
	desc   *prometheus.Desc
	kind   prometheus.ValueType
	n      int
	counts func() map[string]int64
}

func newLabeled(name, help string, labels []string, kind prometheus.ValueType, counts func() map[string]int64) *labeled {
	names := make([]string, len(labels))
	for i, l := range labels {
		names[i] = SnakeName(l)
	}
	return &labeled{desc: prometheus.NewDesc(name, help, names, nil), kind: kind, n: len(labels), counts: counts}
}

func (l *labeled) collect(ch chan<- prometheus.Metric) {
	for k, v := range l.counts() {
		values := []string{k}
		if l.n > 1 {
			values = strings.SplitN(k, ".", l.n)
		}
		if len(values) != l.n {
			continue // a key that does not split into the labels (never made by Add)
		}
		if m, err := prometheus.NewConstMetric(l.desc, l.kind, float64(v), values...); err == nil {
			ch <- m // an invalid label value (not UTF-8) is left out, never a panic
		}
	}
}

// StringsFunc is a map of strings computed when published (Vitess's StringMapFunc, or with
// Labels and ValueLabel StringMapFuncWithMultiLabels): a JSON object of strings on
// /debug/vars; on /metrics, with Labels, a gauge at 1 per key whose value is in ValueLabel
// (vttablet_v_replication_stream_state{workflow=…,counts=…,state="Running"} 1). The
// function must keep its keys bounded.
type StringsFunc struct {
	Labels     []string
	ValueLabel string
	F          func() map[string]string
}

func (f StringsFunc) appendJSON(b []byte) ([]byte, bool) {
	m := f.F()
	b = append(b, '{')
	for i, k := range slices.Sorted(maps.Keys(m)) {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = appendQuoted(b, k)
		b = append(b, ": "...)
		b = appendQuoted(b, m[k])
	}
	return append(b, '}'), true
}

func (f StringsFunc) collector(name, help string) promVar {
	if len(f.Labels) == 0 || f.ValueLabel == "" {
		return nil
	}
	names := make([]string, 0, len(f.Labels)+1)
	for _, l := range f.Labels {
		names = append(names, SnakeName(l))
	}
	names = append(names, SnakeName(f.ValueLabel))
	return &stringsProm{f: f, desc: prometheus.NewDesc(name, help, names, nil)}
}

type stringsProm struct {
	f    StringsFunc
	desc *prometheus.Desc
}

func (p *stringsProm) collect(ch chan<- prometheus.Metric) {
	n := len(p.f.Labels)
	for k, v := range p.f.F() {
		values := []string{k}
		if n > 1 {
			values = strings.SplitN(k, ".", n)
		}
		if len(values) != n {
			continue
		}
		if m, err := prometheus.NewConstMetric(p.desc, prometheus.GaugeValue, 1, append(values, v)...); err == nil {
			ch <- m
		}
	}
}
