package stats

import (
	"maps"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// timingCutoffs are Vitess's Timings bucket upper bounds in nanoseconds (go/stats/timings.go:
// 0.5ms … 10s); the JSON names each bucket by its cutoff, the last one "inf".
var timingCutoffs = []int64{5e5, 1e6, 5e6, 1e7, 5e7, 1e8, 5e8, 1e9, 5e9, 1e10}

var timingLabels = func() []string {
	l := make([]string, len(timingCutoffs)+1)
	for i, c := range timingCutoffs {
		l[i] = strconv.FormatInt(c, 10)
	}
	l[len(l)-1] = "inf"
	return l
}()

// histogram is one category of a Timings: counts per bucket and the total time.
type histogram struct {
	buckets [11]atomic.Int64 // len(timingCutoffs)+1
	total   atomic.Int64     // nanoseconds
}

func (h *histogram) add(ns int64) {
	i, _ := slices.BinarySearch(timingCutoffs, ns) // first cutoff >= ns: Vitess's "<=" buckets
	h.buckets[i].Add(1)
	h.total.Add(ns)
}

func (h *histogram) count() int64 {
	var n int64
	for i := range h.buckets {
		n += h.buckets[i].Load()
	}
	return n
}

// Timings is Vitess's stats.Timings: per category (one label: plan type, operation, …) a
// histogram of durations, plus the totals. At most MaxKeys categories; later ones go to
// "other".
type Timings struct {
	label   string
	maxKeys int

	totalCount atomic.Int64
	totalTime  atomic.Int64

	mu    sync.RWMutex
	hists map[string]*histogram
}

// NewTimings returns empty timings keyed by label; categories lists keys that exist from the
// start. maxKeys <= 0 means DefaultMaxKeys.
func NewTimings(label string, maxKeys int, categories ...string) *Timings {
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	t := &Timings{label: label, maxKeys: maxKeys, hists: map[string]*histogram{}}
	for _, c := range categories {
		t.hists[c] = &histogram{}
	}
	return t
}

// Add records one event of category that took d.
func (t *Timings) Add(category string, d time.Duration) {
	t.mu.RLock()
	h, ok := t.hists[category]
	t.mu.RUnlock()
	if !ok {
		t.mu.Lock()
		if h, ok = t.hists[category]; !ok {
			if len(t.hists) >= t.maxKeys {
				category = Other
			}
			if h, ok = t.hists[category]; !ok {
				h = &histogram{}
				t.hists[category] = h
			}
		}
		t.mu.Unlock()
	}
	ns := int64(d)
	h.add(ns)
	t.totalCount.Add(1)
	t.totalTime.Add(ns)
}

// Record is Add with the time since start.
func (t *Timings) Record(category string, start time.Time) { t.Add(category, time.Since(start)) }

// Counts is the number of events per category, plus "All" for the total (Vitess's
// Timings.Counts, which QPS rates are computed from).
func (t *Timings) Counts() map[string]int64 {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make(map[string]int64, len(t.hists)+1)
	for k, h := range t.hists {
		out[k] = h.count()
	}
	out["All"] = t.totalCount.Load()
	return out
}

// appendJSON writes {"TotalCount":…,"TotalTime":…,"Histograms":{"Select":{"500000":n,…,
// "inf":n,"Count":n,"Time":ns},…}}, compact, as Vitess's json.Marshal does.
func (t *Timings) appendJSON(b []byte) ([]byte, bool) {
	t.mu.RLock()
	hists := maps.Clone(t.hists)
	t.mu.RUnlock()
	b = append(b, `{"TotalCount":`...)
	b = strconv.AppendInt(b, t.totalCount.Load(), 10)
	b = append(b, `,"TotalTime":`...)
	b = strconv.AppendInt(b, t.totalTime.Load(), 10)
	b = append(b, `,"Histograms":{`...)
	for i, k := range slices.Sorted(maps.Keys(hists)) {
		if i > 0 {
			b = append(b, ',')
		}
		h := hists[k]
		b = appendQuoted(b, k)
		b = append(b, ":{"...)
		var n int64
		for j, l := range timingLabels {
			c := h.buckets[j].Load()
			n += c
			b = appendQuoted(b, l)
			b = append(b, ':')
			b = strconv.AppendInt(b, c, 10)
			b = append(b, ',')
		}
		b = append(b, `"Count":`...)
		b = strconv.AppendInt(b, n, 10)
		b = append(b, `,"Time":`...)
		b = strconv.AppendInt(b, h.total.Load(), 10)
		b = append(b, '}')
	}
	return append(b, "}}"...), true
}

// collector exports Prometheus histograms in seconds with Vitess's cutoffs: name_bucket,
// name_sum, name_count, labelled by the snake-cased label.
func (t *Timings) collector(name, help string) promVar {
	return &timingsProm{t: t, desc: prometheus.NewDesc(name, help, []string{SnakeName(t.label)}, nil)}
}

type timingsProm struct {
	t    *Timings
	desc *prometheus.Desc
}

func (p *timingsProm) collect(ch chan<- prometheus.Metric) {
	p.t.mu.RLock()
	hists := maps.Clone(p.t.hists)
	p.t.mu.RUnlock()
	for k, h := range hists {
		buckets := make(map[float64]uint64, len(timingCutoffs))
		var cum uint64
		for i, c := range timingCutoffs {
			cum += uint64(h.buckets[i].Load())
			buckets[float64(c)/1e9] = cum
		}
		count := cum + uint64(h.buckets[len(timingCutoffs)].Load())
		if m, err := prometheus.NewConstHistogram(p.desc, count, float64(h.total.Load())/1e9, buckets, k); err == nil {
			ch <- m
		}
	}
}

// Rates is Vitess's stats.Rates: for each category of a count source, the rate per second
// over each of the last samples intervals, oldest first. It changes only when its Set is
// sampled; Vitess's QPS keeps 180 samples of 5 seconds (15 minutes).
type Rates struct {
	src     func() map[string]int64
	samples int

	mu    sync.Mutex
	times []time.Time        // samples+1 at most, oldest first
	snaps []map[string]int64 // parallel to times
}

// NewRates returns rates over src (e.g. a Timings' Counts) keeping samples intervals.
func NewRates(src func() map[string]int64, samples int) *Rates {
	return &Rates{src: src, samples: max(samples, 1)}
}

func (r *Rates) sample(now time.Time) {
	counts := r.src()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.times = append(r.times, now)
	r.snaps = append(r.snaps, counts)
	if over := len(r.times) - (r.samples + 1); over > 0 {
		r.times = slices.Delete(r.times, 0, over)
		r.snaps = slices.Delete(r.snaps, 0, over)
	}
}

// Get returns, per category, the rates between consecutive samples, oldest first. A
// category that appeared later has 0 for the intervals before it.
func (r *Rates) Get() map[string][]float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string][]float64{}
	if len(r.times) < 2 {
		return out
	}
	last := r.snaps[len(r.snaps)-1]
	for k := range last {
		rates := make([]float64, len(r.times)-1)
		for i := 1; i < len(r.times); i++ {
			secs := r.times[i].Sub(r.times[i-1]).Seconds()
			if secs <= 0 {
				continue
			}
			rates[i-1] = float64(r.snaps[i][k]-r.snaps[i-1][k]) / secs
		}
		out[k] = rates
	}
	return out
}

func (r *Rates) appendJSON(b []byte) ([]byte, bool) {
	m := r.Get()
	b = append(b, '{')
	for i, k := range slices.Sorted(maps.Keys(m)) {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendQuoted(b, k)
		b = append(b, ":["...)
		for j, v := range m[k] {
			if j > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendFloat(b, v, 'f', -1, 64)
		}
		b = append(b, ']')
	}
	return append(b, '}'), true
}

func (*Rates) collector(string, string) promVar { return nil }
