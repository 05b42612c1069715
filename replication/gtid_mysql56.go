package replication

import (
	"bytes"
	"cmp"
	"encoding/hex"
	"slices"
	"strconv"
	"strings"
)

// sid is a MySQL server UUID (source identifier of GTIDs).
type sid [16]byte

// String returns the UUID in lower-case 8-4-4-4-12 form.
func (s sid) String() string {
	h := hex.EncodeToString(s[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// parseSID parses a UUID in 8-4-4-4-12 hexadecimal form (either case).
func parseSID(text string) (sid, bool) {
	var out sid
	if len(text) != 36 || text[8] != '-' || text[13] != '-' || text[18] != '-' || text[23] != '-' {
		return out, false
	}
	compact := text[0:8] + text[9:13] + text[14:18] + text[19:23] + text[24:36]
	if _, err := hex.Decode(out[:], []byte(compact)); err != nil {
		return out, false
	}
	return out, true
}

// interval is an inclusive range of transaction numbers, 1 <= start <= end.
type interval struct {
	start, end uint64
}

// sidIntervals is the set of transactions of one source UUID: sorted,
// non-overlapping, non-adjacent intervals.
type sidIntervals struct {
	sid       sid
	intervals []interval
}

// mysql56Set is a MySQL GTID set sorted bytewise by UUID. It is never
// modified after construction.
type mysql56Set []sidIntervals

// parseMySQL56Set parses "uuid:1-5:7,uuid2:3" as printed by
// @@gtid_executed (newlines and spaces around elements are ignored, empty
// elements skipped, repeated UUIDs merged). As in MySQL, an interval whose
// end is below its start is discarded.
func parseMySQL56Set(s string) (gtidSet, error) {
	bySID := make(map[sid][]interval)
	for _, elem := range strings.Split(s, ",") {
		elem = strings.TrimSpace(elem)
		if elem == "" {
			continue
		}
		head, tail, ok := strings.Cut(elem, ":")
		if !ok {
			return nil, invalid(PositionMySQL56, elem, s, "want uuid:interval[:interval...]")
		}
		id, ok := parseSID(strings.TrimSpace(head))
		if !ok {
			return nil, invalid(PositionMySQL56, head, s, "not a UUID")
		}
		for _, part := range strings.Split(tail, ":") {
			iv, keep, err := parseInterval(strings.TrimSpace(part), s)
			if err != nil {
				return nil, err
			}
			if keep {
				bySID[id] = append(bySID[id], iv)
			}
		}
	}
	set := make(mysql56Set, 0, len(bySID))
	for id, ivs := range bySID {
		set = append(set, sidIntervals{sid: id, intervals: normalizeIntervals(ivs)})
	}
	slices.SortFunc(set, func(a, b sidIntervals) int { return bytes.Compare(a.sid[:], b.sid[:]) })
	return set, nil
}

// parseInterval parses "n" or "a-b". keep is false for an interval whose end
// is below its start, which MySQL ignores.
func parseInterval(part, input string) (iv interval, keep bool, err error) {
	first, second, isRange := strings.Cut(part, "-")
	start, err := strconv.ParseUint(first, 10, 63)
	if err != nil {
		reason := "interval is not n or a-b with positive numbers"
		if looksLikeTag(part) {
			reason = "tagged GTIDs (uuid:tag:n) are not supported"
		}
		return interval{}, false, invalid(PositionMySQL56, part, input, reason)
	}
	if start == 0 {
		return interval{}, false, invalid(PositionMySQL56, part, input, "transaction numbers start at 1")
	}
	end := start
	if isRange {
		if end, err = strconv.ParseUint(second, 10, 63); err != nil {
			return interval{}, false, invalid(PositionMySQL56, part, input, "interval end is not a number")
		}
	}
	return interval{start: start, end: end}, end >= start, nil
}

// looksLikeTag reports whether s has the shape of a MySQL 8.4 GTID tag
// ([a-z_][a-z0-9_]*, at most 32 characters).
func looksLikeTag(s string) bool {
	if s == "" || len(s) > 32 || (s[0] >= '0' && s[0] <= '9') {
		return false
	}
	return strings.IndexFunc(strings.ToLower(s), func(r rune) bool {
		return r != '_' && (r < 'a' || r > 'z') && (r < '0' || r > '9')
	}) < 0
}

// normalizeIntervals sorts ivs and merges overlapping or adjacent ones. The
// argument is not modified.
func normalizeIntervals(ivs []interval) []interval {
	sorted := slices.Clone(ivs)
	slices.SortFunc(sorted, func(a, b interval) int { return cmp.Compare(a.start, b.start) })
	out := make([]interval, 0, len(sorted))
	for _, iv := range sorted {
		if n := len(out); n > 0 && iv.start <= out[n-1].end+1 {
			out[n-1].end = max(out[n-1].end, iv.end)
			continue
		}
		out = append(out, iv)
	}
	return out
}

// String implements gtidSet.
func (s mysql56Set) String() string {
	var b strings.Builder
	for i, si := range s {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(si.sid.String())
		for _, iv := range si.intervals {
			b.WriteByte(':')
			b.WriteString(strconv.FormatUint(iv.start, 10))
			if iv.end != iv.start {
				b.WriteByte('-')
				b.WriteString(strconv.FormatUint(iv.end, 10))
			}
		}
	}
	return b.String()
}

// find returns the intervals of id, or nil.
func (s mysql56Set) find(id sid) []interval {
	i, ok := slices.BinarySearchFunc(s, id, func(si sidIntervals, target sid) int {
		return bytes.Compare(si.sid[:], target[:])
	})
	if !ok {
		return nil
	}
	return s[i].intervals
}

// contains implements gtidSet: other must be a subset of s.
func (s mysql56Set) contains(other gtidSet) bool {
	for _, want := range other.(mysql56Set) {
		have := s.find(want.sid)
		i := 0
		for _, iv := range want.intervals {
			// Both lists are sorted and s's intervals are merged, so each
			// wanted interval must lie inside a single interval of s.
			for i < len(have) && have[i].end < iv.start {
				i++
			}
			if i == len(have) || have[i].start > iv.start || have[i].end < iv.end {
				return false
			}
		}
	}
	return true
}

// union implements gtidSet.
func (s mysql56Set) union(other gtidSet) gtidSet {
	o := other.(mysql56Set)
	out := make(mysql56Set, 0, len(s)+len(o))
	i, j := 0, 0
	for i < len(s) || j < len(o) {
		c := 0
		switch {
		case j == len(o):
			c = -1
		case i == len(s):
			c = 1
		default:
			c = bytes.Compare(s[i].sid[:], o[j].sid[:])
		}
		switch {
		case c < 0:
			out = append(out, s[i])
			i++
		case c > 0:
			out = append(out, o[j])
			j++
		default:
			merged := normalizeIntervals(append(slices.Clone(s[i].intervals), o[j].intervals...))
			out = append(out, sidIntervals{sid: s[i].sid, intervals: merged})
			i, j = i+1, j+1
		}
	}
	return out
}

// difference returns the transactions of s that are not in o.
func (s mysql56Set) difference(o mysql56Set) mysql56Set {
	out := make(mysql56Set, 0, len(s))
	for _, si := range s {
		left := subtractIntervals(si.intervals, o.find(si.sid))
		if len(left) > 0 {
			out = append(out, sidIntervals{sid: si.sid, intervals: left})
		}
	}
	return out
}

// subtractIntervals returns a minus b; both are sorted, merged interval
// lists, and so is the result.
func subtractIntervals(a, b []interval) []interval {
	var out []interval
	j := 0
	for _, iv := range a {
		start := iv.start
		// Skip the intervals of b that end before this one starts.
		for j < len(b) && b[j].end < start {
			j++
		}
		k := j
		for k < len(b) && b[k].start <= iv.end && start <= iv.end {
			if b[k].start > start {
				out = append(out, interval{start: start, end: b[k].start - 1})
			}
			if b[k].end >= iv.end {
				start = iv.end + 1
				break
			}
			start = b[k].end + 1
			k++
		}
		if start <= iv.end {
			out = append(out, interval{start: start, end: iv.end})
		}
	}
	return out
}
