package stats

import (
	"encoding/json"
	"math"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func TestPublishRefusesBadNames(t *testing.T) {
	s := NewSet("vttablet")
	if err := s.Publish("Kills", "", NewCounters([]string{"query_type"}, 0)); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		v    Var
	}{
		{"Kills", &Counter{}}, // twice
		{"", &Counter{}},
		{"9lives", &Counter{}},
		{"with space", &Counter{}},
		{"with.dot", &Counter{}},
		{"NilVar", nil},
	} {
		if err := s.Publish(tt.name, "", tt.v); err == nil {
			t.Errorf("Publish(%q) succeeded", tt.name)
		}
	}
	if got := s.Names(); !slices.Equal(got, []string{"Kills"}) {
		t.Errorf("names after refusals = %v", got)
	}
}

// testSet publishes one variable of each kind with known values.
func testSet(t *testing.T) *Set {
	t.Helper()
	s := NewSet("vttablet")
	c := &Counter{}
	c.Add(3)
	g := &Gauge{}
	g.Set(-2)
	errs := NewCounters([]string{"error_code"}, 0, "OK", "CANCELED")
	errs.Add(2, "CANCELED")
	qc := NewCounters([]string{"Table", "Plan"}, 0)
	qc.Add(5, "db.t", "Select")
	tm := NewTimings("plan_type", 0)
	tm.Add("Select", 700*time.Microsecond)
	tm.Add("Select", 20*time.Second)
	tm.Add("Insert", time.Millisecond)
	vars := []struct {
		name string
		v    Var
	}{
		{"Counter", c},
		{"Gauge", g},
		{"GaugeFn", IntFunc{F: func() int64 { return 7 }}},
		{"CounterFn", IntFunc{F: func() int64 { return 8 }, Counter: true}},
		{"Unknown", IntFunc{OK: func() (int64, bool) { return 0, false }}},
		{"Wait", DurationFunc{F: func() time.Duration { return 1500 * time.Millisecond }, Counter: true}},
		{"Name", StringFunc(func() string { return "SERVING" })},
		{"Errors", errs},
		{"QueryCounts", qc},
		{"Queries", tm},
		{"State", CountsFunc{Labels: []string{"name", "type"}, F: func() map[string]int64 { return map[string]int64{"SERVING.PRIMARY": 1} }}},
		{"StreamState", StringsFunc{Labels: []string{"workflow", "counts"}, ValueLabel: "state", F: func() map[string]string { return map[string]string{"wf.1": "Running"} }}},
		{"Sources", StringsFunc{F: func() map[string]string { return map[string]string{"1": "ks/0"} }}},
	}
	for _, v := range vars {
		if err := s.Publish(v.name, "help for "+v.name, v.v); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func TestVarsJSON(t *testing.T) {
	s := testSet(t)
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest("GET", "/debug/vars", nil))
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q", ct)
	}
	body := rec.Body.String()
	var doc map[string]json.RawMessage
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, body)
	}
	// expvar's layout: one variable per line, keys sorted, cmdline and memstats included,
	// the unknown gauge left out.
	lines := strings.Split(strings.TrimSpace(body), "\n")
	var keys []string
	for _, l := range lines[1 : len(lines)-1] {
		k, _, _ := strings.Cut(l, ":")
		keys = append(keys, strings.Trim(k, `"`))
	}
	want := []string{"Counter", "CounterFn", "Errors", "Gauge", "GaugeFn", "Name", "Queries", "QueryCounts", "Sources", "State", "StreamState", "Wait", "cmdline", "memstats"}
	if !slices.Equal(keys, want) {
		t.Errorf("keys %v, want %v", keys, want)
	}
	for _, tt := range []struct{ name, want string }{
		{"Counter", `3`},
		{"Gauge", `-2`},
		{"GaugeFn", `7`},
		{"Wait", `1500000000`},
		{"Name", `"SERVING"`},
		{"Errors", `{"CANCELED": 2, "OK": 0}`},
		{"QueryCounts", `{"db_t.Select": 5}`},
		{"State", `{"SERVING.PRIMARY": 1}`},
		{"StreamState", `{"wf.1": "Running"}`},
		{"Sources", `{"1": "ks/0"}`},
		{"Queries", `{"TotalCount":3,"TotalTime":20001700000,"Histograms":{` +
			`"Insert":{"500000":0,"1000000":1,"5000000":0,"10000000":0,"50000000":0,"100000000":0,"500000000":0,"1000000000":0,"5000000000":0,"10000000000":0,"inf":0,"Count":1,"Time":1000000},` +
			`"Select":{"500000":0,"1000000":1,"5000000":0,"10000000":0,"50000000":0,"100000000":0,"500000000":0,"1000000000":0,"5000000000":0,"10000000000":0,"inf":1,"Count":2,"Time":20000700000}}}`},
	} {
		if got := string(doc[tt.name]); got != tt.want {
			t.Errorf("%s = %s, want %s", tt.name, got, tt.want)
		}
	}
	var cmdline []string
	if err := json.Unmarshal(doc["cmdline"], &cmdline); err != nil || len(cmdline) == 0 {
		t.Errorf("cmdline %s: %v", doc["cmdline"], err)
	}
	if v, ok := s.Value("Unknown"); ok {
		t.Errorf("unknown gauge has a value: %s", v)
	}
}

func gather(t *testing.T, s *Set) map[string]*dto.MetricFamily {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(s); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}
	return out
}

func labelsOf(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

func TestPrometheusShapes(t *testing.T) {
	mfs := gather(t, testSet(t))
	for _, tt := range []struct {
		name string
		typ  dto.MetricType
		n    int // samples
	}{
		{"vttablet_counter", dto.MetricType_COUNTER, 1},
		{"vttablet_gauge", dto.MetricType_GAUGE, 1},
		{"vttablet_gauge_fn", dto.MetricType_GAUGE, 1},
		{"vttablet_counter_fn", dto.MetricType_COUNTER, 1},
		{"vttablet_wait", dto.MetricType_COUNTER, 1},
		{"vttablet_errors", dto.MetricType_COUNTER, 2},
		{"vttablet_query_counts", dto.MetricType_COUNTER, 1},
		{"vttablet_queries", dto.MetricType_HISTOGRAM, 2},
		{"vttablet_state", dto.MetricType_GAUGE, 1},
		{"vttablet_stream_state", dto.MetricType_GAUGE, 1},
	} {
		mf, ok := mfs[tt.name]
		switch {
		case !ok:
			t.Errorf("%s missing", tt.name)
		case mf.GetType() != tt.typ:
			t.Errorf("%s is %v, want %v", tt.name, mf.GetType(), tt.typ)
		case len(mf.GetMetric()) != tt.n:
			t.Errorf("%s has %d samples, want %d", tt.name, len(mf.GetMetric()), tt.n)
		}
	}
	if got := labelsOf(mfs["vttablet_stream_state"].GetMetric()[0]); got["workflow"] != "wf" || got["counts"] != "1" || got["state"] != "Running" {
		t.Errorf("stream_state labels %v", got)
	}
	for _, absent := range []string{"vttablet_name", "vttablet_unknown", "vttablet_sources"} {
		if _, ok := mfs[absent]; ok {
			t.Errorf("%s exported; strings and unknown values are not", absent)
		}
	}
	if got := mfs["vttablet_wait"].GetMetric()[0].GetCounter().GetValue(); got != 1.5 {
		t.Errorf("duration in seconds = %v, want 1.5", got)
	}
	if got := labelsOf(mfs["vttablet_query_counts"].GetMetric()[0]); got["table"] != "db_t" || got["plan"] != "Select" {
		t.Errorf("query_counts labels %v", got)
	}
	if got := labelsOf(mfs["vttablet_state"].GetMetric()[0]); got["name"] != "SERVING" || got["type"] != "PRIMARY" {
		t.Errorf("state labels %v", got)
	}
	for _, m := range mfs["vttablet_queries"].GetMetric() {
		if labelsOf(m)["plan_type"] != "Select" {
			continue
		}
		h := m.GetHistogram()
		if h.GetSampleCount() != 2 || math.Abs(h.GetSampleSum()-20.0007) > 1e-9 {
			t.Errorf("Select histogram count %d sum %v", h.GetSampleCount(), h.GetSampleSum())
		}
		var bounds []float64
		for _, b := range h.GetBucket() {
			bounds = append(bounds, b.GetUpperBound())
			if b.GetUpperBound() == 0.001 && b.GetCumulativeCount() != 1 {
				t.Errorf("le=0.001 has %d, want 1", b.GetCumulativeCount())
			}
		}
		if want := []float64{0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10}; !slices.Equal(bounds, want) {
			t.Errorf("bucket bounds %v, want Vitess's %v", bounds, want)
		}
	}
}

func TestCountersBoundKeys(t *testing.T) {
	for _, tt := range []struct {
		labels    []string
		values    [][]string
		wantKeys  []string
		wantOther int64
	}{
		{[]string{"Table"}, [][]string{{"a"}, {"b"}, {"c"}, {"a"}, {"d"}}, []string{"a", "b", "other"}, 2},
		{[]string{"Table", "Plan"}, [][]string{{"a", "Select"}, {"b", "Select"}, {"c", "Insert"}}, []string{"a.Select", "b.Select", "other.other"}, 1},
	} {
		c := NewCounters(tt.labels, 2)
		for _, v := range tt.values {
			c.Add(1, v...)
		}
		counts := c.Counts()
		var keys []string
		for k := range counts {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		if !slices.Equal(keys, tt.wantKeys) {
			t.Errorf("%v: keys %v, want %v", tt.labels, keys, tt.wantKeys)
		}
		if counts[tt.wantKeys[2]] != tt.wantOther {
			t.Errorf("%v: other = %d, want %d", tt.labels, counts[tt.wantKeys[2]], tt.wantOther)
		}
	}
	tm := NewTimings("plan_type", 1)
	tm.Add("Select", time.Millisecond)
	tm.Add("Insert", time.Millisecond)
	if got := tm.Counts(); got["Select"] != 1 || got[Other] != 1 || got["All"] != 2 {
		t.Errorf("timings counts %v", got)
	}
}

func TestRates(t *testing.T) {
	tm := NewTimings("plan_type", 0)
	r := NewRates(tm.Counts, 3)
	s := NewSet("vttablet")
	if err := s.Publish("QPS", "", r); err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(1000, 0)
	s.Sample(t0)
	if v, _ := s.Value("QPS"); string(v) != `{}` {
		t.Errorf("one sample: %s, want {}", v)
	}
	add := func(cat string, n int) {
		for range n {
			tm.Add(cat, time.Millisecond)
		}
	}
	add("Select", 10)
	s.Sample(t0.Add(5 * time.Second))
	add("Select", 5)
	add("Insert", 10)
	s.Sample(t0.Add(10 * time.Second))
	add("Select", 20)
	s.Sample(t0.Add(15 * time.Second))
	add("Select", 5)
	s.Sample(t0.Add(20 * time.Second)) // drops the first interval: 3 samples kept
	got := r.Get()
	want := map[string][]float64{"All": {3, 4, 1}, "Select": {1, 4, 1}, "Insert": {2, 0, 0}}
	for k, w := range want {
		if !slices.Equal(got[k], w) {
			t.Errorf("%s rates %v, want %v", k, got[k], w)
		}
	}
	if v, _ := s.Value("QPS"); string(v) != `{"All":[3,4,1],"Insert":[2,0,0],"Select":[1,4,1]}` {
		t.Errorf("QPS JSON %s", v)
	}
}

func TestLatencyQuantiles(t *testing.T) {
	var l Latency
	before := l.Snapshot()
	for i := 1; i <= 1000; i++ {
		l.Observe(time.Duration(i) * time.Millisecond)
	}
	l.Observe(-time.Second) // clock step: counted in the first bucket, never a panic
	l.Observe(time.Hour)    // past the last bucket
	d := l.Snapshot().Sub(before)
	if d.Count() != 1002 {
		t.Fatalf("count %d", d.Count())
	}
	for _, tt := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Millisecond}, {0.99, 990 * time.Millisecond}} {
		got := d.Quantile(tt.q)
		if ratio := float64(got) / float64(tt.want); ratio < 0.95 || ratio > 1.05 {
			t.Errorf("q%v = %v, want %v ± 5%%", tt.q, got, tt.want)
		}
	}
	if got := (LatencySnapshot{}).Quantile(0.5); got != 0 {
		t.Errorf("empty quantile %v", got)
	}
}
