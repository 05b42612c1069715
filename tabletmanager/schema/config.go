package schema

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/tabletd/tabletd/mysqlconn"
	"github.com/tabletd/tabletd/proto/querypb"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
)

// DefaultSidecarDBName is Vitess's sidecar database name (Keyspace.sidecar_db_name when unset).
const DefaultSidecarDBName = "_vt"

// Config says which database the engine serves and how it connects.
type Config struct {
	// DBName is the tablet's database (vt_<keyspace> or --init-db-name-override).
	DBName string
	// SidecarDBName replaces the "_vt" qualifier in fetched statements, as vttablet does for
	// keyspaces with their own sidecar database. Default DefaultSidecarDBName.
	SidecarDBName string

	// Dba and AllPrivs connect as those users; their DBName must be empty (the database may
	// not exist yet: InitShardPrimary creates it through ExecuteFetchAsDba). App connects as
	// the application user; vttablet's app connections use the tablet's database.
	Dba, AllPrivs, App mysqlconn.Config

	// LockTablesTimeout is how long LockTables keeps the lock when UnlockTables never comes
	// (vttablet's --lock-tables-timeout, default 1m).
	LockTablesTimeout time.Duration
	// SchemaConcurrency bounds the connections one GetSchema reads table definitions over.
	SchemaConcurrency int
}

// DefaultConfig returns vttablet's defaults; the database and connections must still be set.
func DefaultConfig() Config {
	return Config{SidecarDBName: DefaultSidecarDBName, LockTablesTimeout: time.Minute, SchemaConcurrency: 4}
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	switch {
	case c.DBName == "":
		return errors.New("schema engine: the tablet's database name must be set")
	case c.SidecarDBName == "":
		return errors.New("schema engine: the sidecar database name must be set (Vitess's default is _vt)")
	case c.LockTablesTimeout <= 0:
		return fmt.Errorf("--lock-tables-timeout must be > 0 (got %v)", c.LockTablesTimeout)
	case c.SchemaConcurrency <= 0:
		return fmt.Errorf("schema engine: SchemaConcurrency must be > 0 (got %d)", c.SchemaConcurrency)
	case c.Dba.DBName != "" || c.AllPrivs.DBName != "":
		return errors.New("schema engine: the dba and allprivs connections must not select a database (it may not exist yet)")
	}
	for _, r := range []struct {
		name string
		cfg  mysqlconn.Config
	}{{"dba", c.Dba}, {"allprivs", c.AllPrivs}, {"app", c.App}} {
		if err := r.cfg.Validate(); err != nil {
			return fmt.Errorf("schema engine: %s connection: %w", r.name, err)
		}
	}
	return nil
}

// Deps are the engine's collaborators. Every hook may be nil.
type Deps struct {
	Log *zap.Logger // nil: discard
	// WaitForPosition blocks until MySQL has applied the encoded replication position pos
	// (never called with ""). nil: ReloadSchema with a position fails with UNIMPLEMENTED.
	WaitForPosition func(ctx context.Context, pos string) error
	// Reload refreshes what the query service caches about the schema (its plans); tabletd
	// reads definitions live, so this is cheap. nil: nothing to refresh.
	Reload func(ctx context.Context) error
	// Execute runs sql through the query service as caller (ExecuteQuery). maxRows is the
	// request's max_rows; vttablet ignores it and applies the query service's own limit.
	// nil: ExecuteQuery fails with UNIMPLEMENTED.
	Execute func(ctx context.Context, caller *vtrpcpb.CallerID, sql string, maxRows int) (*querypb.QueryResult, error)
}
