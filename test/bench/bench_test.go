package main

import (
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestHistogramQuantilesWithinOnePercent(t *testing.T) {
	var h histogram
	// 1..100000 µs, uniformly: quantile q is q*100000 µs.
	for i := 1; i <= 100000; i++ {
		h.record(time.Duration(i) * time.Microsecond)
	}
	for _, q := range []float64{0.01, 0.5, 0.9, 0.99, 0.999} {
		got := float64(h.quantile(q))
		want := q * 100000 * float64(time.Microsecond)
		if math.Abs(got-want)/want > 0.01 {
			t.Errorf("quantile(%v) = %v, want %v ± 1%%", q, time.Duration(got), time.Duration(want))
		}
	}
	if h.quantile(1) != 100*time.Millisecond {
		t.Errorf("quantile(1) = %v, want the max 100ms", h.quantile(1))
	}
}

func TestHistogramBucketsRoundTrip(t *testing.T) {
	for _, v := range []uint64{0, 1, 127, 128, 255, 256, 1000, 123456, 1 << 33, 10 * uint64(time.Second)} {
		b := bucketOf(v)
		back := bucketValue(b)
		if v >= subBuckets && math.Abs(float64(back)-float64(v))/float64(v) > 1.0/subBuckets {
			t.Errorf("value %d → bucket %d → %d: off by more than 1/%d", v, b, back, subBuckets)
		}
		if v < subBuckets && back != v {
			t.Errorf("value %d → bucket %d → %d, want exact", v, b, back)
		}
	}
}

func TestHistogramMerge(t *testing.T) {
	var a, b histogram
	a.record(time.Millisecond)
	b.record(3 * time.Millisecond)
	b.record(5 * time.Millisecond)
	a.merge(&b)
	if a.total != 3 || a.max != 5*time.Millisecond {
		t.Fatalf("merged total %d max %v", a.total, a.max)
	}
	if got := a.quantile(0.5); got < 2970*time.Microsecond || got > 3030*time.Microsecond {
		t.Errorf("median %v, want ~3ms", got)
	}
}

func TestMedian(t *testing.T) {
	if m := median([]float64{3, 1, 2}); m != 2 {
		t.Errorf("median odd = %v", m)
	}
	if m := median([]float64{4, 1, 3, 2}); m != 2.5 {
		t.Errorf("median even = %v", m)
	}
	if !math.IsNaN(median(nil)) {
		t.Error("median of nothing is not NaN")
	}
}

func TestRotateStartsEachRoundWithAnotherTarget(t *testing.T) {
	ls := []*leg{{name: "a"}, {name: "b"}, {name: "c"}}
	var firsts []string
	for k := range 4 {
		r := rotate(ls, k)
		if len(r) != 3 {
			t.Fatalf("rotate lost legs: %d", len(r))
		}
		firsts = append(firsts, r[0].name)
	}
	if got := strings.Join(firsts, ""); got != "abca" {
		t.Errorf("first legs %q, want abca", got)
	}
}

func TestProcReadersOnSelf(t *testing.T) {
	cpu, err := cpuTime(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if cpu < 0 {
		t.Errorf("cpu %v", cpu)
	}
	rss, err := rssBytes(os.Getpid())
	if err != nil || rss < 1<<20 {
		t.Errorf("rss %d, %v", rss, err)
	}
}

func TestChecksOnKnownMedians(t *testing.T) {
	r := &report{Meta: meta{Clients: []int{1, 8, 64}, Rounds: 2}}
	for round := 1; round <= 2; round++ {
		for _, c := range []int{1, 8, 64} {
			r.Points = append(r.Points,
				pointResult{Target: legDirect, Clients: c, Round: round, QPS: 20000, P50us: 100, P99us: 500, MariaCPUus: 30},
				pointResult{Target: legVttablet, Clients: c, Round: round, QPS: 10000, P50us: 300, P99us: 2000, TabletCPUus: 100, TabletRSSMiB: 100},
				pointResult{Target: legTabletd, Clients: c, Round: round, QPS: 19000, P50us: 150, P99us: 1000, TabletCPUus: 40, TabletRSSMiB: 50})
		}
		r.Streams = append(r.Streams,
			streamResult{Target: legTabletd, Round: round, Rows: 10, RowsPS: 2000},
			streamResult{Target: legVttablet, Round: round, Rows: 10, RowsPS: 1000})
	}
	r.summarize([]string{legDirect, legTabletd, legVttablet})
	if len(r.Checks) != 13 {
		t.Fatalf("%d checks, want 13: %+v", len(r.Checks), r.Checks)
	}
	for _, c := range r.Checks {
		if !c.Met {
			t.Errorf("check %q not met: %s (goal %s)", c.Name, c.Measured, c.Goal)
		}
	}
	var md strings.Builder
	r.markdown(&md, []string{legDirect, legTabletd, legVttablet})
	if !strings.Contains(md.String(), "| 8 | tabletd | 19000 |") || !strings.Contains(md.String(), "| 8 | 1.90× | 0.95× | 0.50× | 0.40× | 50 / 200 | 0.50× | 0.50× |") {
		t.Errorf("markdown lacks the tabletd row:\n%s", md.String())
	}
}

func TestPairedRatioIsTheMedianOfPerRoundRatios(t *testing.T) {
	r := &report{Meta: meta{Clients: []int{8}, Rounds: 3}}
	// Round 2 is a noisy round that hit both targets: per-round ratios are 2, 2, 2.
	for i, q := range []float64{1000, 100, 1200} {
		r.Points = append(r.Points,
			pointResult{Target: legTabletd, Clients: 8, Round: i + 1, QPS: 2 * q},
			pointResult{Target: legVttablet, Clients: 8, Round: i + 1, QPS: q})
	}
	if x, ok := r.pairedRatio(legTabletd, legVttablet, 8, qps); !ok || x != 2 {
		t.Errorf("paired ratio %v %v, want 2", x, ok)
	}
	if _, ok := r.pairedRatio(legTabletd, legDirect, 8, qps); ok {
		t.Error("paired ratio with an unmeasured target")
	}
}
