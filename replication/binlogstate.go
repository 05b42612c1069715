package replication

import (
	"cmp"
	"context"
	"slices"
	"strconv"
	"strings"
)

// BinlogState is a MariaDB @@gtid_binlog_state: the last GTID written to
// the binary log by each (domain, server_id) pair, sorted by domain then
// server_id. Unlike a MariaDB Position (one GTID per domain) it remembers
// every server that ever wrote in a domain, which is what errant-GTID
// detection needs. It is immutable once parsed.
type BinlogState struct {
	gtids []MariaDBGTID
}

// ParseBinlogState parses a @@gtid_binlog_state value such as
// "0-101-42,0-102-57,1-101-3". The empty string is the empty state. A
// (domain, server_id) pair listed twice is an error wrapping
// ErrInvalidPosition.
func ParseBinlogState(s string) (BinlogState, error) {
	trimmed := strings.TrimSpace(s)
	if trimmed == "" {
		return BinlogState{}, nil
	}
	parts := strings.Split(trimmed, ",")
	gtids := make([]MariaDBGTID, 0, len(parts))
	for _, part := range parts {
		g, err := parseMariaDBGTID(strings.TrimSpace(part), s)
		if err != nil {
			return BinlogState{}, err
		}
		gtids = append(gtids, g)
	}
	slices.SortFunc(gtids, compareDomainServer)
	for i := 1; i < len(gtids); i++ {
		if compareDomainServer(gtids[i], gtids[i-1]) == 0 {
			return BinlogState{}, invalid(PositionMariaDB, gtids[i].String(), s,
				"domain "+strconv.FormatUint(uint64(gtids[i].Domain), 10)+" and server_id "+
					strconv.FormatUint(uint64(gtids[i].ServerID), 10)+" appear more than once")
		}
	}
	return BinlogState{gtids: gtids}, nil
}

// compareDomainServer orders GTIDs by domain, then server_id.
func compareDomainServer(a, b MariaDBGTID) int {
	if c := cmp.Compare(a.Domain, b.Domain); c != 0 {
		return c
	}
	return cmp.Compare(a.ServerID, b.ServerID)
}

// GTIDs returns a copy of the state's GTIDs, sorted by domain and server_id.
func (b BinlogState) GTIDs() []MariaDBGTID { return slices.Clone(b.gtids) }

// String returns the state in MariaDB syntax, sorted ("" when empty).
func (b BinlogState) String() string { return mariadbSet(b.gtids).String() }

// IsEmpty reports whether the state holds no GTID.
func (b BinlogState) IsEmpty() bool { return len(b.gtids) == 0 }

// find returns the last GTID of (domain, server), if any.
func (b BinlogState) find(domain, server uint32) (MariaDBGTID, bool) {
	i, ok := slices.BinarySearchFunc(b.gtids, MariaDBGTID{Domain: domain, ServerID: server}, compareDomainServer)
	if !ok {
		return MariaDBGTID{}, false
	}
	return b.gtids[i], true
}

// hasDomain reports whether any server wrote in domain.
func (b BinlogState) hasDomain(domain uint32) bool {
	i, _ := slices.BinarySearchFunc(b.gtids, MariaDBGTID{Domain: domain}, compareDomainServer)
	return i < len(b.gtids) && b.gtids[i].Domain == domain
}

const binlogStateQuery = "SELECT @@global.gtid_binlog_state AS gtid_binlog_state"

// ReadBinlogState returns a MariaDB server's @@gtid_binlog_state. Any
// account may read it (no privilege is needed to select a system variable).
func ReadBinlogState(ctx context.Context, q Querier) (BinlogState, error) {
	r, err := queryOne(ctx, q, binlogStateQuery)
	if err != nil {
		return BinlogState{}, err
	}
	v, err := r.need(binlogStateQuery, "gtid_binlog_state")
	if err != nil {
		return BinlogState{}, err
	}
	return ParseBinlogState(v)
}
