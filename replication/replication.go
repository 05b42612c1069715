// Package replication reads and controls a MySQL or MariaDB server's replication: flavor, GTID positions, lag and read-only state.
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
)
