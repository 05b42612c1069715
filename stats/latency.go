package stats

import (
	"math"
	"sync/atomic"
	"time"
)

// Latency is a fine-grained duration histogram for quantiles (p50, p99 over the last
// interval on the status page); Vitess's Timings buckets are too coarse for that. Buckets
// are logarithmic, 8 per doubling from 1µs (about 9% wide, so a quantile is within ±4.5%),
// up to 2^27µs (134s); shorter and longer durations fall in the first and last bucket.
// Observe is one atomic add. It is not published: Set holds Vitess's variables only.
type Latency struct {
	b [latencyBuckets]atomic.Int64
}

const (
	latencyPerDoubling = 8
	latencyBuckets     = 27*latencyPerDoubling + 1
)

// Observe records one duration.
func (l *Latency) Observe(d time.Duration) {
	i := 0
	if us := float64(d) / float64(time.Microsecond); us > 1 {
		i = min(int(math.Log2(us)*latencyPerDoubling), latencyBuckets-1)
	}
	l.b[i].Add(1)
}

// Snapshot copies the counts.
func (l *Latency) Snapshot() LatencySnapshot {
	var s LatencySnapshot
	for i := range l.b {
		s[i] = l.b[i].Load()
	}
	return s
}

// LatencySnapshot is a Latency's counts at one moment; Sub of two gives an interval's.
type LatencySnapshot [latencyBuckets]int64

// Sub returns the counts observed between prev and s.
func (s LatencySnapshot) Sub(prev LatencySnapshot) LatencySnapshot {
	for i := range s {
		s[i] -= prev[i]
	}
	return s
}

// Count is the number of durations observed.
func (s LatencySnapshot) Count() int64 {
	var n int64
	for _, c := range s {
		n += c
	}
	return n
}

// Quantile returns the q-quantile (0 < q <= 1) as the geometric middle of its bucket, or 0
// when nothing was observed.
func (s LatencySnapshot) Quantile(q float64) time.Duration {
	total := s.Count()
	if total == 0 {
		return 0
	}
	rank := int64(math.Ceil(q * float64(total)))
	var cum int64
	for i, c := range s {
		cum += c
		if cum >= rank {
			return bucketMiddle(i)
		}
	}
	return bucketMiddle(latencyBuckets - 1)
}

func bucketMiddle(i int) time.Duration {
	if i == 0 {
		return time.Microsecond / 2
	}
	return time.Duration(float64(time.Microsecond) * math.Exp2((float64(i)+0.5)/latencyPerDoubling))
}
