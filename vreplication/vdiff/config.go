package vdiff

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/tabletd/tabletd/mysqlconn"
	"github.com/tabletd/tabletd/proto/querypb"
	"github.com/tabletd/tabletd/proto/topodatapb"
	"github.com/tabletd/tabletd/tabletserver"
	"github.com/tabletd/tabletd/vreplication/engine"
)

// Config configures the VDiff engine of one tablet. DefaultConfig gives vttablet's timings.
type Config struct {
	// Alias, Keyspace, Shard, DBName and Cell identify this tablet (the vdiff rows' keyspace,
	// shard and db_name; messages name the alias).
	Alias                         *topodatapb.TabletAlias
	Keyspace, Shard, DBName, Cell string
	// Conn is how the engine reads and writes the _vt.vdiff tables and the workflow's rows
	// (vttablet uses the filtered user). DBName is set by the engine.
	Conn mysqlconn.Config
	// Caller is the table ACL user the target's rows are read as (the filtered user, as a
	// VStreamRows from another tablet would be).
	Caller string

	// RetryInterval is how often diffs in state error with auto_retry are retried
	// (vttablet: 30s).
	RetryInterval time.Duration
	// OpenRetry is the wait between attempts to read the diffs to run when the engine opens.
	OpenRetry time.Duration
	// RestartDelay is the pause before a table diff that exceeded --max-diff-duration starts
	// again with new snapshots (vttablet: 30s), letting MySQL purge the old read views.
	RestartDelay time.Duration
	// ProgressRows: rows_compared, lastpk and report are saved every this many rows
	// (vttablet: 10000).
	ProgressRows int64
	// PacketBytes bounds the row bytes the target reader hands the comparer at once.
	PacketBytes int
	// TopoTimeout bounds one topology read; the named lock waits as the topology's lock
	// timeout says.
	TopoTimeout time.Duration
}

// DefaultConfig returns vttablet's VDiff timings.
func DefaultConfig() Config {
	return Config{RetryInterval: 30 * time.Second, OpenRetry: time.Second, RestartDelay: 30 * time.Second,
		ProgressRows: 10000, PacketBytes: 256 << 10, TopoTimeout: 30 * time.Second}
}

// Validate reports the first setting that cannot work, naming its flag.
func (c Config) Validate() error {
	switch {
	case c.DBName == "" || c.Keyspace == "" || c.Shard == "" || c.Cell == "":
		return errors.New("vdiff: the tablet's database, keyspace, shard and cell must be set")
	case c.RetryInterval <= 0:
		return fmt.Errorf("--vdiff-retry-interval must be > 0 (got %v)", c.RetryInterval)
	case c.RestartDelay < 0:
		return fmt.Errorf("--vdiff-restart-delay must be >= 0 (got %v)", c.RestartDelay)
	case c.ProgressRows < 1:
		return fmt.Errorf("--vdiff-progress-rows must be >= 1 (got %d)", c.ProgressRows)
	case c.OpenRetry <= 0 || c.TopoTimeout <= 0 || c.PacketBytes <= 0:
		return errors.New("vdiff: open retry, topology timeout and packet size must be > 0")
	}
	return nil
}

// VReplication is the target-side engine whose streams a diff stops, synchronises and
// restarts (vreplication/engine.Engine).
type VReplication interface {
	Exec(ctx context.Context, query string, asDBA bool) (*querypb.QueryResult, error)
	WaitForPos(ctx context.Context, id int32, pos string) error
}

// Topo is what the differ reads from the topology.
type Topo interface {
	// ShardTablets returns the tablet records of keyspace/shard in cell.
	ShardTablets(ctx context.Context, cell, keyspace, shard string) ([]*topodatapb.Tablet, error)
	// CellNames lists the topology's cells (a diff without --source-cells reads from all).
	CellNames(ctx context.Context) ([]string, error)
	// LockName takes Vitess's named lock (vtctld's "<keyspace>/<workflow>" lock); unlock
	// releases it.
	LockName(ctx context.Context, name, action string) (unlock func(), err error)
}

// TabletManager calls the TabletManager API of other tablets.
type TabletManager interface {
	// WaitForPosition waits until tablet's MySQL has applied pos.
	WaitForPosition(ctx context.Context, tablet *topodatapb.Tablet, pos string) error
}

// Local reads this tablet's own rows: consistent snapshots through the query service's
// snapshot readers (tabletserver.Server).
type Local interface {
	OpenSnapshot(ctx context.Context, req tabletserver.ReadRequest) (*tabletserver.Snapshot, error)
}

// Deps are the engine's collaborators; all but Log, Clock and Sidecar are required.
type Deps struct {
	Log   *zap.Logger
	Clock func() time.Time
	VRepl VReplication
	Topo  Topo
	TM    TabletManager
	// Dial opens source tablets' streaming API (VStreamRows) and checks their health.
	Dial  engine.Dialer
	Local Local
	// Sidecar returns the keyspace's sidecar database name; nil: "_vt".
	Sidecar func() string
	// Target is this tablet's query target (keyspace, shard, PRIMARY).
	Target func() *querypb.Target
}
