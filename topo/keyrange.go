package topo

import (
	"bytes"

	"github.com/tabletd/tabletd/proto/topodatapb"
)

// Key range arithmetic with Vitess's semantics (go/vt/key/key.go): trailing
// zero bytes are insignificant, an empty start is the minimum key and an empty
// end the maximum key, and a nil range is the complete range.

func normalizeKey(id []byte) []byte {
	n := len(id)
	for n > 0 && id[n-1] == 0 {
		n--
	}
	return id[:n]
}

func compareKeys(a, b []byte) int { return bytes.Compare(normalizeKey(a), normalizeKey(b)) }

func emptyKey(id []byte) bool { return len(normalizeKey(id)) == 0 }

func keyRangeIsComplete(kr *topodatapb.KeyRange) bool {
	return kr == nil || (emptyKey(kr.GetStart()) && emptyKey(kr.GetEnd()))
}

// keyRangesIntersect reports whether some keyspace id lies in both ranges.
func keyRangesIntersect(a, b *topodatapb.KeyRange) bool {
	if keyRangeIsComplete(a) || keyRangeIsComplete(b) {
		return true
	}
	return (emptyKey(a.GetEnd()) || compareKeys(b.GetStart(), a.GetEnd()) < 0) &&
		(emptyKey(b.GetEnd()) || compareKeys(a.GetStart(), b.GetEnd()) < 0)
}

// keyRangesContiguous reports whether a ends exactly where b starts.
func keyRangesContiguous(a, b *topodatapb.KeyRange) bool {
	if keyRangeIsComplete(a) || keyRangeIsComplete(b) {
		return false
	}
	return compareKeys(a.GetEnd(), b.GetStart()) == 0
}

// compareKeyRanges orders ranges by start (empty = minimum), then end (empty = maximum).
func compareKeyRanges(a, b *topodatapb.KeyRange) int {
	aMin, bMin := a == nil || emptyKey(a.GetStart()), b == nil || emptyKey(b.GetStart())
	switch {
	case aMin && !bMin:
		return -1
	case !aMin && bMin:
		return 1
	case !aMin && !bMin:
		if c := compareKeys(a.GetStart(), b.GetStart()); c != 0 {
			return c
		}
	}
	aMax, bMax := a == nil || emptyKey(a.GetEnd()), b == nil || emptyKey(b.GetEnd())
	switch {
	case aMax && bMax:
		return 0
	case aMax:
		return 1
	case bMax:
		return -1
	}
	return compareKeys(a.GetEnd(), b.GetEnd())
}
