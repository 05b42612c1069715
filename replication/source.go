package replication

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// SourceParams says which server to replicate from and how.
type SourceParams struct {
	// Host and Port are the source's MySQL address. Host is required.
	Host string
	Port int
	// User and Password are the replication account. User is required;
	// Password never appears in an error returned by this package.
	User, Password string
	// ConnectRetry is the pause between reconnection attempts, rounded up
	// to whole seconds; 0 keeps the server default (60s).
	ConnectRetry time.Duration
	// HeartbeatInterval is how often an idle source sends a heartbeat,
	// with millisecond resolution; 0 keeps the server default (half of
	// slave_net_timeout).
	HeartbeatInterval time.Duration
}

// Limits the server enforces on CHANGE MASTER options.
const (
	maxConnectRetry      = 365 * 24 * time.Hour // MySQL: 31536000 seconds
	maxHeartbeatInterval = 4294967 * time.Second
)

// Validate reports the first unusable parameter, wrapping ErrInvalidSource.
// Host, User and Password must not hold backslashes or control characters
// (they could not be quoted the same way under every sql_mode).
func (p SourceParams) Validate() error {
	switch {
	case strings.TrimSpace(p.Host) == "":
		return fmt.Errorf("%w: empty host", ErrInvalidSource)
	case p.Port < 1 || p.Port > 65535:
		return fmt.Errorf("%w: port %d is not in 1-65535", ErrInvalidSource, p.Port)
	case p.User == "":
		return fmt.Errorf("%w: empty user", ErrInvalidSource)
	case p.ConnectRetry < 0 || p.ConnectRetry > maxConnectRetry:
		return fmt.Errorf("%w: connect retry %v is not in 0-%v", ErrInvalidSource, p.ConnectRetry, maxConnectRetry)
	case p.HeartbeatInterval < 0 || p.HeartbeatInterval > maxHeartbeatInterval:
		return fmt.Errorf("%w: heartbeat interval %v is not in 0-%v", ErrInvalidSource, p.HeartbeatInterval, maxHeartbeatInterval)
	case p.HeartbeatInterval > 0 && p.HeartbeatInterval < time.Millisecond:
		return fmt.Errorf("%w: heartbeat interval %v is below the server's 1ms resolution", ErrInvalidSource, p.HeartbeatInterval)
	}
	for _, f := range []struct{ what, v string }{{"host", p.Host}, {"user", p.User}, {"password", p.Password}} {
		if err := checkQuotable(f.what, f.v); err != nil {
			return err
		}
	}
	return nil
}

// changeSourceStatement returns the CHANGE MASTER / CHANGE REPLICATION
// SOURCE statement for p, one line, options in a fixed order.
func changeSourceStatement(flavor Flavor, p SourceParams) statement {
	build := func(head, prefix string, tail []string) string {
		opts := []string{
			prefix + "_HOST = " + quote(p.Host),
			prefix + "_PORT = " + strconv.Itoa(p.Port),
			prefix + "_USER = " + quote(p.User),
			prefix + "_PASSWORD = " + quote(p.Password),
		}
		if p.ConnectRetry > 0 {
			secs := int64(math.Ceil(p.ConnectRetry.Seconds()))
			opts = append(opts, prefix+"_CONNECT_RETRY = "+strconv.FormatInt(secs, 10))
		}
		if p.HeartbeatInterval > 0 {
			ms := p.HeartbeatInterval.Milliseconds()
			opts = append(opts, prefix+"_HEARTBEAT_PERIOD = "+strconv.FormatFloat(float64(ms)/1000, 'f', -1, 64))
		}
		return head + " " + strings.Join(append(opts, tail...), ", ")
	}
	if flavor.IsMariaDB() {
		return statement{sql: build("CHANGE MASTER TO", "MASTER", []string{"MASTER_USE_GTID = slave_pos"}), secret: p.Password}
	}
	// Without TLS, a caching_sha2_password account needs the source's RSA
	// key to send the password (as Vitess sets).
	return statement{
		sql: build("CHANGE REPLICATION SOURCE TO", "SOURCE",
			[]string{"GET_SOURCE_PUBLIC_KEY = 1", "SOURCE_AUTO_POSITION = 1"}),
		legacy: build("CHANGE MASTER TO", "MASTER",
			[]string{"GET_MASTER_PUBLIC_KEY = 1", "MASTER_AUTO_POSITION = 1"}),
		secret: p.Password,
	}
}

const resumePositionsQuery = "SELECT @@global.gtid_binlog_pos AS gtid_binlog_pos, " +
	"@@global.gtid_slave_pos AS gtid_slave_pos"

// resumeAfterOwnWrites returns the SET GLOBAL gtid_slave_pos statement that
// makes a MariaDB server resume replication after everything it holds, or
// false when gtid_slave_pos already does.
//
// Invariant after SetSource on MariaDB: gtid_slave_pos contains
// gtid_binlog_pos in every domain (per domain, the higher sequence of the
// two). A server that was a primary wrote transactions that are in its
// binary log but not in gtid_slave_pos (which only advances for applied
// replication events). Connecting with MASTER_USE_GTID=slave_pos and the
// stale gtid_slave_pos would ask the new source for transactions it already
// has: under gtid_strict_mode the duplicates stop the applier (errno 1950),
// without it they would be applied twice. This is what MASTER_USE_GTID=
// current_pos did, which MariaDB 10.10+ deprecates. A domain present only in
// gtid_slave_pos (binary log reset or not logging replicated events) is kept.
func resumeAfterOwnWrites(ctx context.Context, q Querier) (statement, bool, error) {
	r, err := queryOne(ctx, q, resumePositionsQuery)
	if err != nil {
		return statement{}, false, err
	}
	var pos [2]Position
	for i, col := range []string{"gtid_binlog_pos", "gtid_slave_pos"} {
		v, err := r.need(resumePositionsQuery, col)
		if err != nil {
			return statement{}, false, err
		}
		if pos[i], err = ParseGTIDSet(PositionMariaDB, v); err != nil {
			return statement{}, false, fmt.Errorf("replication: %s: %w", col, err)
		}
	}
	binlog, slave := pos[0], pos[1]
	resume, err := slave.union(binlog)
	if err != nil {
		return statement{}, false, err
	}
	if resume.Equal(slave) {
		return statement{}, false, nil
	}
	return statement{sql: "SET GLOBAL gtid_slave_pos = " + quote(resume.GTIDSet())}, true, nil
}

// SetSource points the server's replication at p.
//
// Replication is stopped first (CHANGE MASTER refuses to run otherwise,
// errno 1198), then, on MariaDB, gtid_slave_pos is moved past the server's
// own writes (see resumeAfterOwnWrites), then CHANGE MASTER TO ...
// MASTER_USE_GTID = slave_pos (MariaDB) or CHANGE REPLICATION SOURCE TO ...
// SOURCE_AUTO_POSITION = 1 (MySQL; CHANGE MASTER ... MASTER_AUTO_POSITION = 1
// before 8.0.23) runs. Replication is started afterwards when start is true
// and left stopped otherwise. Errors never contain p.Password.
func SetSource(ctx context.Context, q Querier, flavor Flavor, p SourceParams, start bool) error {
	if err := flavor.check(); err != nil {
		return err
	}
	if err := p.Validate(); err != nil {
		return err
	}
	if err := execStatement(ctx, q, flavor, stopStatement(flavor)); err != nil {
		return err
	}
	var rest []statement
	if flavor.IsMariaDB() {
		set, ok, err := resumeAfterOwnWrites(ctx, q)
		if err != nil {
			return err
		}
		if ok {
			rest = append(rest, set)
		}
	}
	rest = append(rest, changeSourceStatement(flavor, p))
	if start {
		rest = append(rest, startStatement(flavor))
	}
	return execStatements(ctx, q, flavor, rest)
}
