package tabletmanager

import (
	"context"
	"database/sql"
	"errors"

	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/replication"
	"github.com/tabletd/tabletd/rpcerr"
)

// MySQL is what the manager needs of the database server.
type MySQL interface {
	// SetReadOnly sets MySQL read-only (MariaDB read_only; MySQL super_read_only) or read-write.
	SetReadOnly(ctx context.Context, on bool) error
	// Info is the detected server: its flavor decides the replication SQL.
	Info(ctx context.Context) (replication.ServerInfo, error)
	// DB is the connection pool of the dba user, for replication control.
	DB() *sql.DB
}

// errNotReplica is vttablet's answer for a replication status asked of a server that has no
// replication configured: vtctld recognises it by "(errno 100)" in the text (PRS counts such
// a tablet as having an empty position, ERS demotes it), so the text is exact.
var errNotReplica = rpcerr.New(vtrpcpb.Code_UNKNOWN, "no replication status (errno 100) (sqlstate HY000)")

// isNotReplica reports errNotReplica.
func isNotReplica(err error) bool { return errors.Is(err, errNotReplica) }

// server returns the dba pool and the flavor, or an UNAVAILABLE error naming MySQL.
func (m *Manager) server(ctx context.Context) (*sql.DB, replication.Flavor, error) {
	info, err := m.mysql.Info(ctx)
	if err != nil {
		return nil, 0, mysqlErr(err, "cannot reach MySQL")
	}
	return m.mysql.DB(), info.Flavor, nil
}

// mysqlErr gives an error from MySQL its vtrpc code, keeping the errno in the text as vttablet
// does; errors without an errno (MySQL down) are UNAVAILABLE unless they already carry a code.
func mysqlErr(err error, what string) error {
	if err == nil {
		return nil
	}
	if _, _, ok := rpcerr.Errno(err); ok {
		return rpcerr.FromMySQL(err, what)
	}
	var re *rpcerr.Error
	if errors.As(err, &re) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return rpcerr.Wrap(rpcerr.Code(err), err, "%s", what)
	}
	if errors.Is(err, replication.ErrInvalidPosition) {
		return rpcerr.Wrap(vtrpcpb.Code_INVALID_ARGUMENT, err, "%s", what)
	}
	return rpcerr.Wrap(vtrpcpb.Code_UNAVAILABLE, err, "%s", what)
}

// parsePosition decodes a position from an RPC, refusing one of another flavor than the
// server's: such a position can never be reached here, and waiting for it would only time out.
func parsePosition(s string, flavor replication.Flavor) (replication.Position, error) {
	pos, err := replication.ParsePosition(s)
	if err != nil {
		return replication.Position{}, rpcerr.Wrap(vtrpcpb.Code_INVALID_ARGUMENT, err, "invalid position %q", s)
	}
	if !pos.IsZero() && pos.Flavor() != replication.PositionFilePos && pos.Flavor() != flavor.PositionFlavor() {
		return replication.Position{}, rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT,
			"position %q is a %s position but this tablet's MySQL is %s (%s positions)", s, pos.Flavor(), flavor, flavor.PositionFlavor())
	}
	return pos, nil
}
