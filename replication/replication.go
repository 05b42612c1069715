// Package replication reads and controls a MySQL or MariaDB server's replication: flavor, GTID positions, status and lag, read-only, replication source and threads, semi-sync, position waits and errant GTIDs.
package replication

import (
	"context"
	"database/sql"
	"errors"
)

// Querier is the subset of *sql.DB, *sql.Conn and *sql.Tx used by this
// package. Statements that change global state (SetReadOnly) are plain
// SET GLOBAL statements, so any connection of the pool will do.
type Querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// Sentinel errors. Errors returned by this package wrap one of these (or a
// driver error) and are meant to be checked with errors.Is.
var (
	// ErrUnsupportedServer reports a server version this package does not
	// support (MySQL < 8.0, MariaDB < 10.4, or an unparsable version string).
	ErrUnsupportedServer = errors.New("unsupported database server")
	// ErrUnknownFlavor reports that a function was given FlavorUnknown or an
	// out-of-range Flavor value.
	ErrUnknownFlavor = errors.New("unknown server flavor")
	// ErrInvalidPosition reports a malformed replication position string.
	ErrInvalidPosition = errors.New("invalid replication position")
	// ErrGTIDDisabled reports a MySQL server whose gtid_mode is not ON, so
	// it has no usable GTID position.
	ErrGTIDDisabled = errors.New("GTIDs are disabled on the server (gtid_mode is not ON)")
	// ErrUnexpectedResult reports a server answer of an unexpected shape
	// (no row, missing column, unparsable value).
	ErrUnexpectedResult = errors.New("unexpected result from server")
	// ErrMultipleSources reports a MariaDB replica with several named
	// replication connections and no default one (multi-source replication
	// is not supported).
	ErrMultipleSources = errors.New("multi-source replication is not supported")
	// ErrPositionFlavor reports a position of another flavor than the
	// server's (a MySQL56 position given to MariaDB, or the reverse), or an
	// operation the position's flavor does not support.
	ErrPositionFlavor = errors.New("replication position of the wrong flavor")
	// ErrNoPrimaryStatus reports a server without binary log status (SHOW
	// MASTER STATUS returned no row: binary logging is off).
	ErrNoPrimaryStatus = errors.New("no binary log status (is binary logging on?)")
	// ErrInvalidSource reports SourceParams that cannot be used (empty host,
	// bad port, a value that cannot be quoted safely).
	ErrInvalidSource = errors.New("invalid replication source parameters")
	// ErrInvalidArgument reports an argument this package cannot use (for
	// example a status variable name that is not an identifier).
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrNotReplicating reports a file/offset wait on a server whose
	// replication SQL thread is not running or has no source, for which
	// MASTER_POS_WAIT answers NULL.
	ErrNotReplicating = errors.New("replication is not running")
)
