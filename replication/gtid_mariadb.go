package replication

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
)

// MariaDBGTID is one MariaDB global transaction ID, "domain-server-sequence".
type MariaDBGTID struct {
	Domain   uint32
	ServerID uint32
	Sequence uint64
}

// String returns the GTID in MariaDB syntax, e.g. "0-101-42".
func (g MariaDBGTID) String() string {
	return strconv.FormatUint(uint64(g.Domain), 10) + "-" +
		strconv.FormatUint(uint64(g.ServerID), 10) + "-" +
		strconv.FormatUint(g.Sequence, 10)
}

// MariaDBGTIDs returns a copy of the per-domain GTIDs of a MariaDB position,
// sorted by domain, or nil if p is not a MariaDB position.
func (p Position) MariaDBGTIDs() []MariaDBGTID {
	set, ok := p.set.(mariadbSet)
	if !ok {
		return nil
	}
	return slices.Clone(set)
}

// mariadbSet is a MariaDB GTID position: at most one GTID per domain, sorted
// by domain. It is never modified after parsing.
type mariadbSet []MariaDBGTID

// parseMariaDBSet parses "0-1-5,1-2-17" (whitespace around elements is
// ignored). The empty string is the empty set.
func parseMariaDBSet(s string) (gtidSet, error) {
	trimmed := strings.TrimSpace(s)
	if trimmed == "" {
		return mariadbSet{}, nil
	}
	parts := strings.Split(trimmed, ",")
	set := make(mariadbSet, 0, len(parts))
	for _, part := range parts {
		g, err := parseMariaDBGTID(strings.TrimSpace(part), s)
		if err != nil {
			return nil, err
		}
		set = append(set, g)
	}
	slices.SortFunc(set, func(a, b MariaDBGTID) int { return cmp.Compare(a.Domain, b.Domain) })
	for i := 1; i < len(set); i++ {
		if set[i].Domain == set[i-1].Domain {
			return nil, invalid(PositionMariaDB, set[i].String(), s,
				"domain "+strconv.FormatUint(uint64(set[i].Domain), 10)+" appears more than once")
		}
	}
	return set, nil
}

// parseMariaDBGTID parses one "domain-server-sequence"; input is the whole
// string, for error messages.
func parseMariaDBGTID(part, input string) (MariaDBGTID, error) {
	fields := strings.Split(part, "-")
	if len(fields) != 3 {
		return MariaDBGTID{}, invalid(PositionMariaDB, part, input, "want domain-server-sequence")
	}
	domain, err := strconv.ParseUint(fields[0], 10, 32)
	if err != nil {
		return MariaDBGTID{}, invalid(PositionMariaDB, part, input, "domain is not a 32-bit unsigned number")
	}
	server, err := strconv.ParseUint(fields[1], 10, 32)
	if err != nil {
		return MariaDBGTID{}, invalid(PositionMariaDB, part, input, "server_id is not a 32-bit unsigned number")
	}
	seq, err := strconv.ParseUint(fields[2], 10, 64)
	if err != nil {
		return MariaDBGTID{}, invalid(PositionMariaDB, part, input, "sequence is not a 64-bit unsigned number")
	}
	return MariaDBGTID{Domain: uint32(domain), ServerID: uint32(server), Sequence: seq}, nil
}

// String implements gtidSet.
func (s mariadbSet) String() string {
	parts := make([]string, len(s))
	for i, g := range s {
		parts[i] = g.String()
	}
	return strings.Join(parts, ",")
}

// find returns the GTID of domain, if present.
func (s mariadbSet) find(domain uint32) (MariaDBGTID, bool) {
	i, ok := slices.BinarySearchFunc(s, domain, func(g MariaDBGTID, d uint32) int { return cmp.Compare(g.Domain, d) })
	if !ok {
		return MariaDBGTID{}, false
	}
	return s[i], true
}

// contains implements gtidSet: every domain of other must be present with
// a sequence number at least as high (server IDs are not compared).
func (s mariadbSet) contains(other gtidSet) bool {
	for _, want := range other.(mariadbSet) {
		have, ok := s.find(want.Domain)
		if !ok || have.Sequence < want.Sequence {
			return false
		}
	}
	return true
}

// union implements gtidSet: per domain, the GTID with the higher sequence.
func (s mariadbSet) union(other gtidSet) gtidSet {
	o := other.(mariadbSet)
	out := make(mariadbSet, 0, len(s)+len(o))
	i, j := 0, 0
	for i < len(s) || j < len(o) {
		switch {
		case j == len(o) || (i < len(s) && s[i].Domain < o[j].Domain):
			out = append(out, s[i])
			i++
		case i == len(s) || o[j].Domain < s[i].Domain:
			out = append(out, o[j])
			j++
		default:
			g := s[i]
			if o[j].Sequence > g.Sequence {
				g = o[j]
			}
			out = append(out, g)
			i, j = i+1, j+1
		}
	}
	return out
}
