package main

import (
	"math/bits"
	"time"
)

// histogram is a log-linear latency histogram in the spirit of HdrHistogram:
// 128 linear sub-buckets per power of two, so a recorded value is known to
// within 1/128 (< 0.8%) of itself, from 1 ns to hours, in a fixed 36 KiB.
// Each client goroutine owns one (no locking); they are merged at the end.
type histogram struct {
	counts [histBuckets]uint64
	total  uint64
	max    time.Duration
}

const (
	subBits     = 7
	subBuckets  = 1 << subBits // 128
	histBuckets = subBuckets * 36
)

// bucketOf maps a value to its bucket index.
func bucketOf(v uint64) int {
	if v < subBuckets {
		return int(v)
	}
	shift := bits.Len64(v) - subBits - 1 // v>>shift is in [128, 255]
	idx := subBuckets + shift*subBuckets + int(v>>uint(shift)) - subBuckets
	if idx >= histBuckets {
		return histBuckets - 1
	}
	return idx
}

// bucketValue is the midpoint of bucket idx, the inverse of bucketOf.
func bucketValue(idx int) uint64 {
	if idx < subBuckets {
		return uint64(idx)
	}
	shift := (idx - subBuckets) / subBuckets
	mantissa := uint64(idx-subBuckets-shift*subBuckets) + subBuckets
	lo := mantissa << uint(shift)
	return lo + (uint64(1)<<uint(shift))/2
}

func (h *histogram) record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.counts[bucketOf(uint64(d))]++
	h.total++
	if d > h.max {
		h.max = d
	}
}

func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.total += o.total
	if o.max > h.max {
		h.max = o.max
	}
}

// quantile returns the value at quantile q (0 < q <= 1), 0 when empty.
func (h *histogram) quantile(q float64) time.Duration {
	if h.total == 0 {
		return 0
	}
	rank := uint64(q*float64(h.total) + 0.5)
	if rank < 1 {
		rank = 1
	}
	if rank >= h.total {
		return h.max
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			v := time.Duration(bucketValue(i))
			if v > h.max {
				v = h.max
			}
			return v
		}
	}
	return h.max
}
