package replication

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
)

// GTIDState is what errant-GTID detection compares between a replica and
// its primary.
type GTIDState struct {
	// Flavor is the server's flavor.
	Flavor Flavor
	// ServerID is @@server_id (used on MariaDB).
	ServerID uint32
	// BinlogState is @@gtid_binlog_state on MariaDB: the last GTID of every
	// (domain, server_id) pair in the binary log.
	BinlogState BinlogState
	// ServerUUID is @@server_uuid on MySQL.
	ServerUUID string
	// Executed is @@gtid_executed on MySQL.
	Executed Position
}

const (
	mariaDBStateQuery = "SELECT @@global.server_id AS server_id, @@global.gtid_binlog_state AS gtid_binlog_state"
	mysqlStateQuery   = "SELECT @@global.server_uuid AS server_uuid, @@global.gtid_executed AS gtid_executed"
)

// ReadGTIDState reads the server's GTID state in one query. It needs no
// privilege, so a replica can read its primary's state over a connection
// made with the replication account.
func ReadGTIDState(ctx context.Context, q Querier, flavor Flavor) (GTIDState, error) {
	if err := flavor.check(); err != nil {
		return GTIDState{}, err
	}
	st := GTIDState{Flavor: flavor}
	if flavor.IsMariaDB() {
		r, err := queryOne(ctx, q, mariaDBStateQuery)
		if err != nil {
			return GTIDState{}, err
		}
		if st.ServerID, err = needUint32(r, mariaDBStateQuery, "server_id"); err != nil {
			return GTIDState{}, err
		}
		v, err := r.need(mariaDBStateQuery, "gtid_binlog_state")
		if err != nil {
			return GTIDState{}, err
		}
		if st.BinlogState, err = ParseBinlogState(v); err != nil {
			return GTIDState{}, fmt.Errorf("replication: gtid_binlog_state: %w", err)
		}
		return st, nil
	}
	r, err := queryOne(ctx, q, mysqlStateQuery)
	if err != nil {
		return GTIDState{}, err
	}
	if st.ServerUUID, err = r.need(mysqlStateQuery, "server_uuid"); err != nil {
		return GTIDState{}, err
	}
	v, err := r.need(mysqlStateQuery, "gtid_executed")
	if err != nil {
		return GTIDState{}, err
	}
	if st.Executed, err = ParseGTIDSet(PositionMySQL56, v); err != nil {
		return GTIDState{}, fmt.Errorf("replication: gtid_executed: %w", err)
	}
	return st, nil
}

// ErrantRange names the errant transactions of one MariaDB (domain,
// server_id) pair: those with a sequence number in (After, Last].
type ErrantRange struct {
	Domain, ServerID uint32
	// After is the sequence after which the pair's transactions are errant:
	// the primary's last one from this server, or the replica's last
	// transaction in the domain that the primary has, or 0.
	After uint64
	// Last is the replica's last transaction of the pair.
	Last uint64
}

// String returns the replica's last errant GTID, "domain-server-last".
func (r ErrantRange) String() string {
	return MariaDBGTID{Domain: r.Domain, ServerID: r.ServerID, Sequence: r.Last}.String()
}

// ErrantSet is the result of errant-GTID detection: transactions a replica
// has and its primary does not. The zero value is empty.
type ErrantSet struct {
	mysql   Position
	mariadb []ErrantRange
}

// IsEmpty reports whether no errant GTID was found.
func (e ErrantSet) IsEmpty() bool { return e.mysql.IsEmpty() && len(e.mariadb) == 0 }

// MySQL56 returns the errant MySQL GTID set (zero on MariaDB).
func (e ErrantSet) MySQL56() Position { return e.mysql }

// MariaDB returns the errant MariaDB ranges (nil on MySQL).
func (e ErrantSet) MariaDB() []ErrantRange { return append([]ErrantRange(nil), e.mariadb...) }

// String lists the errant GTIDs for a refusal message: the MySQL GTID set,
// or each errant MariaDB pair's last GTID, comma separated ("" if empty).
func (e ErrantSet) String() string {
	if len(e.mariadb) == 0 {
		return e.mysql.GTIDSet()
	}
	parts := make([]string, len(e.mariadb))
	for i, r := range e.mariadb {
		parts[i] = r.String()
	}
	return strings.Join(parts, ",")
}

// ErrantGTIDs reads the replica's GTID state and compares it with its
// primary's (read before, with ReadGTIDState on the primary); see
// FindErrantGTIDs for the rules.
func ErrantGTIDs(ctx context.Context, replica Querier, flavor Flavor, primary GTIDState) (ErrantSet, error) {
	st, err := ReadGTIDState(ctx, replica, flavor)
	if err != nil {
		return ErrantSet{}, err
	}
	return FindErrantGTIDs(st, primary)
}

// FindErrantGTIDs returns the transactions of replica that primary lacks.
// Read the primary's state first: the replica may then hold newer primary
// writes than the primary's snapshot, which the rules never call errant.
//
// MySQL (Vitess's ErrantGTIDsOnReplica): replica gtid_executed minus the
// GTIDs of the primary's own server UUID, minus the primary's gtid_executed.
// The replica's own UUID gets no exemption: its GTIDs are errant unless
// the primary has them.
//
// MariaDB compares @@gtid_binlog_state, the last sequence per (domain,
// server_id). For each replica entry (d, s, seq):
//
//  1. s is the primary's server_id: never errant (the primary wrote it).
//  2. The primary has (d, s, pseq): errant if seq > pseq; the replica holds
//     s's transactions after pseq, which the primary never received.
//  3. The primary has no (d, s):
//     a. and nothing in domain d: errant (a domain the primary never saw);
//     b. otherwise errant if seq is above covered(d), the highest sequence
//     of the replica's domain-d entries that rules 1-2 accept. Histories are
//     linear per domain under gtid_strict_mode, so a replica entry before
//     one the primary has belongs to the primary's history too, even when
//     the primary no longer lists that server: a binary log state set by
//     SetReplicationPosition (restore, InitReplica) keeps only the last
//     GTID of each domain. An entry past covered(d) is the replica's own
//     divergence (for example a local write made while it was a replica).
//
// Without gtid_strict_mode a replica could apply the primary's transactions
// after an errant one, which rule 3b would then miss.
func FindErrantGTIDs(replica, primary GTIDState) (ErrantSet, error) {
	if replica.Flavor.PositionFlavor() != primary.Flavor.PositionFlavor() || replica.Flavor.check() != nil {
		return ErrantSet{}, fmt.Errorf("%w: replica is %v, primary is %v", ErrPositionFlavor, replica.Flavor, primary.Flavor)
	}
	if replica.Flavor.IsMariaDB() {
		return ErrantSet{mariadb: mariaDBErrant(replica.BinlogState, primary.BinlogState, primary.ServerID)}, nil
	}
	return mysqlErrant(replica, primary)
}

// mysqlErrant implements the MySQL rule.
func mysqlErrant(replica, primary GTIDState) (ErrantSet, error) {
	id, ok := parseSID(strings.TrimSpace(primary.ServerUUID))
	if !ok {
		return ErrantSet{}, fmt.Errorf("%w: primary server UUID %q is not a UUID", ErrInvalidArgument, primary.ServerUUID)
	}
	for _, p := range []Position{replica.Executed, primary.Executed} {
		if !p.IsZero() && p.Flavor() != PositionMySQL56 {
			return ErrantSet{}, fmt.Errorf("%w: %q is not a MySQL56 GTID set", ErrPositionFlavor, p)
		}
	}
	if replica.Executed.IsZero() {
		return ErrantSet{}, nil
	}
	own := replica.Executed.set.(mysql56Set)
	without := make(mysql56Set, 0, len(own))
	for _, si := range own {
		if si.sid != id {
			without = append(without, si)
		}
	}
	diff, err := Position{flavor: PositionMySQL56, set: without}.Subtract(primary.Executed)
	if err != nil {
		return ErrantSet{}, err
	}
	if diff.IsEmpty() {
		return ErrantSet{}, nil
	}
	return ErrantSet{mysql: diff}, nil
}

// mariaDBErrant implements the MariaDB rules; entries are sorted by domain
// then server, so each domain is one run.
func mariaDBErrant(replica, primary BinlogState, primaryID uint32) []ErrantRange {
	var out []ErrantRange
	gtids := replica.gtids
	for start := 0; start < len(gtids); {
		end := start
		for end < len(gtids) && gtids[end].Domain == gtids[start].Domain {
			end++
		}
		out = append(out, mariaDBDomainErrant(gtids[start:end], primary, primaryID)...)
		start = end
	}
	return out
}

// mariaDBDomainErrant applies the rules to one domain's replica entries.
func mariaDBDomainErrant(entries []MariaDBGTID, primary BinlogState, primaryID uint32) []ErrantRange {
	domain := entries[0].Domain
	var covered uint64
	var out, absent []ErrantRange
	for _, g := range entries {
		if g.ServerID == primaryID {
			covered = max(covered, g.Sequence)
			continue
		}
		p, ok := primary.find(domain, g.ServerID)
		switch {
		case ok && g.Sequence <= p.Sequence:
			covered = max(covered, g.Sequence)
		case ok:
			out = append(out, ErrantRange{Domain: domain, ServerID: g.ServerID, After: p.Sequence, Last: g.Sequence})
		case !primary.hasDomain(domain):
			out = append(out, ErrantRange{Domain: domain, ServerID: g.ServerID, Last: g.Sequence})
		default:
			absent = append(absent, ErrantRange{Domain: domain, ServerID: g.ServerID, Last: g.Sequence})
		}
	}
	for _, r := range absent {
		if r.Last > covered {
			r.After = covered
			out = append(out, r)
		}
	}
	// All share the domain: order by server_id.
	slices.SortFunc(out, func(a, b ErrantRange) int { return cmp.Compare(a.ServerID, b.ServerID) })
	return out
}
