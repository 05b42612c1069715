package vstreamer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"time"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
	"go.uber.org/zap"

	"github.com/tabletd/tabletd/proto/binlogdatapb"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
	repl "github.com/tabletd/tabletd/replication"
	"github.com/tabletd/tabletd/rpcerr"
)

// binlogConn is one COM_BINLOG_DUMP connection (as the filtered user) from a GTID position.
type binlogConn struct {
	syncer   *replication.BinlogSyncer
	streamer *replication.BinlogStreamer
}

// openBinlog starts the dump from pos. A MariaDB source gets @slave_connect_state and GTID
// strict mode (go-mysql sets both), a MySQL source COM_BINLOG_DUMP_GTID. Each dump registers
// with a random server id: the server ends an older dump of the same id, and two streams
// must never end each other.
func (e *Engine) openBinlog(pos repl.Position) (*binlogConn, error) {
	cfg := replication.BinlogSyncerConfig{
		ServerID:                1<<30 + rand.Uint32N(1<<30),
		User:                    e.cfg.DB.User,
		Password:                e.cfg.DB.Password,
		Flavor:                  gomysql.MySQLFlavor,
		TimestampStringLocation: time.UTC,
		DisableRetrySync:        true, // a broken stream is the target's to retry, from its own position
		EventCacheCount:         256,  // read-ahead bound: a slow target slows the dump, not memory
		HeartbeatPeriod:         e.cfg.HeartbeatInterval,
		Logger:                  slog.New(zapHandler{e.log}),
		Localhost:               "tabletd-vstreamer",
	}
	if pos.Flavor() == repl.PositionMariaDB {
		cfg.Flavor = gomysql.MariaDBFlavor
	}
	if e.cfg.DB.Network == "unix" {
		cfg.Host = e.cfg.DB.Address
	} else {
		host, port, err := net.SplitHostPort(e.cfg.DB.Address)
		if err != nil {
			return nil, fmt.Errorf("vstreamer: bad MySQL address %q: %w", e.cfg.DB.Address, err)
		}
		p, err := strconv.ParseUint(port, 10, 16)
		if err != nil {
			return nil, fmt.Errorf("vstreamer: bad MySQL port in %q", e.cfg.DB.Address)
		}
		cfg.Host, cfg.Port = host, uint16(p)
	}
	var gset gomysql.GTIDSet
	var err error
	if cfg.Flavor == gomysql.MariaDBFlavor {
		gset, err = gomysql.ParseMariadbGTIDSet(pos.GTIDSet())
	} else {
		gset, err = gomysql.ParseMysqlGTIDSet(pos.GTIDSet())
	}
	if err != nil {
		return nil, rpcerr.Wrap(vtrpcpb.Code_INVALID_ARGUMENT, err, "position %s", pos)
	}
	s := replication.NewBinlogSyncer(cfg)
	st, err := s.StartSyncGTID(gset)
	if err != nil {
		s.Close()
		return nil, binlogError(err, pos)
	}
	return &binlogConn{syncer: s, streamer: st}, nil
}

func (b *binlogConn) close() { b.syncer.Close() }

// mysqlErr carries a go-mysql server error's errno and SQLSTATE (rpcerr.MySQLErrno).
type mysqlErr struct{ e *gomysql.MyError }

func (m mysqlErr) Error() string {
	return fmt.Sprintf("%s (errno %d) (sqlstate %s)", m.e.Message, m.e.Code, m.e.State)
}
func (m mysqlErr) Errno() uint16    { return m.e.Code }
func (m mysqlErr) SQLState() string { return m.e.State }
func (m mysqlErr) Unwrap() error    { return m.e }

// errPurged is MySQL's and MariaDB's "binlog position not available" (the binary logs
// holding the position were purged, or the position is from another server's history).
const errPurged = 1236

// binlogError names what went wrong with the dump. A purged position is FAILED_PRECONDITION
// with the server's errno kept: the stream cannot go on without losing events, and must
// never silently skip them.
func binlogError(err error, pos repl.Position) error {
	var me *gomysql.MyError
	if errors.As(err, &me) {
		cause := mysqlErr{me}
		if me.Code == errPurged {
			return rpcerr.WithCause(vtrpcpb.Code_FAILED_PRECONDITION, fmt.Sprintf(
				"the source cannot stream from position %s: its binary logs no longer hold it (purged, or another server's history): %s",
				pos, cause.Error()), cause)
		}
		return rpcerr.WithCause(rpcerr.ErrnoCode(me.Code), "binlog stream: "+cause.Error(), cause)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return rpcerr.Wrap(vtrpcpb.Code_UNAVAILABLE, err, "binlog stream from %s", pos)
}

// zapHandler sends go-mysql's slog records to the tablet's logger at debug level (its info
// lines are per-connection chatter).
type zapHandler struct{ log *zap.Logger }

func (h zapHandler) Enabled(context.Context, slog.Level) bool {
	return h.log.Core().Enabled(zap.DebugLevel)
}

func (h zapHandler) Handle(_ context.Context, r slog.Record) error {
	fields := make([]zap.Field, 0, r.NumAttrs())
	r.Attrs(func(a slog.Attr) bool {
		fields = append(fields, zap.Any(a.Key, a.Value.Any()))
		return true
	})
	h.log.Debug("go-mysql: "+r.Message, fields...)
	return nil
}

func (h zapHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h zapHandler) WithGroup(string) slog.Handler      { return h }

// statementKind classifies a QUERY event's statement by its first keyword.
type statementKind int

const (
	stmtOther statementKind = iota
	stmtBegin
	stmtCommit
	stmtRollback
	stmtDDL
	stmtDBDDL
	stmtSavepoint
	stmtInsert
	stmtUpdate
	stmtDelete
	stmtReplace
)

func classify(sql string) statementKind {
	w := firstWords(sql, 2)
	if len(w) == 0 {
		return stmtOther
	}
	switch w[0] {
	case "begin", "xa":
		return stmtBegin
	case "commit":
		return stmtCommit
	case "rollback":
		if len(w) > 1 && w[1] == "to" {
			return stmtSavepoint
		}
		return stmtRollback
	case "savepoint", "release":
		return stmtSavepoint
	case "insert":
		return stmtInsert
	case "update":
		return stmtUpdate
	case "delete":
		return stmtDelete
	case "replace":
		return stmtReplace
	case "create", "alter", "drop", "rename", "truncate":
		if len(w) > 1 && (w[1] == "database" || w[1] == "schema") {
			return stmtDBDDL
		}
		return stmtDDL
	}
	return stmtOther
}

// firstWords returns up to n leading lower-case words of sql, skipping comments.
func firstWords(sql string, n int) []string {
	var out []string
	s := sql
	for len(out) < n {
		s = strings.TrimLeft(s, " \t\r\n;(")
		switch {
		case strings.HasPrefix(s, "/*!"), strings.HasPrefix(s, "/*M!"):
			// Executable comments hold SQL: read inside them.
			i := strings.IndexAny(s, " \t\r\n")
			if i < 0 {
				return out
			}
			s = s[i:]
			continue
		case strings.HasPrefix(s, "/*"):
			i := strings.Index(s, "*/")
			if i < 0 {
				return out
			}
			s = s[i+2:]
			continue
		case strings.HasPrefix(s, "#"), strings.HasPrefix(s, "-- "):
			i := strings.IndexByte(s, '\n')
			if i < 0 {
				return out
			}
			s = s[i+1:]
			continue
		}
		i := strings.IndexFunc(s, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '_')
		})
		if i == 0 {
			return out
		}
		if i < 0 {
			i = len(s)
		}
		out = append(out, strings.ToLower(s[:i]))
		s = s[i:]
	}
	return out
}

// mariaGTIDStandalone: the GTID event of a statement that is its own transaction (DDL): no
// BEGIN follows.
const mariaGTIDStandalone = 0x01

// eventTime is the event's commit timestamp for VEvent.timestamp.
func eventTime(ev *replication.BinlogEvent) int64 { return int64(ev.Header.Timestamp) }

// newEvent fills what every VEvent of the stream carries.
func (s *binlogStream) newEvent(t binlogdatapb.VEventType, ev *replication.BinlogEvent) *binlogdatapb.VEvent {
	ve := &binlogdatapb.VEvent{Type: t, Keyspace: s.e.cfg.Keyspace, Shard: s.e.cfg.Shard,
		CurrentTime: s.e.now().UnixNano(), EventGtid: s.eventGTID}
	if ev != nil {
		ve.Timestamp = eventTime(ev)
	}
	return ve
}
