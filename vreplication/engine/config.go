package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/tabletd/tabletd/mysqlconn"
	"github.com/tabletd/tabletd/proto/topodatapb"
)

// DefaultTabletTypes is the source tablet preference of a stream whose tablet_types column is
// empty (vttablet's --vreplication-tablet-type default).
const DefaultTabletTypes = "in_order:REPLICA,PRIMARY"

// Config configures an engine. DefaultConfig gives vttablet's defaults; Validate names the
// first unusable setting by its tabletd flag.
type Config struct {
	// DBName is the tablet's database: the streams of other databases are not ours.
	DBName string
	// Keyspace, Shard and Cell identify this tablet (metrics labels, the default cell of a
	// stream created without cells, and the cell the topology is read from).
	Keyspace, Shard, Cell string

	// Filtered is how streams connect to this tablet's MySQL (--db-filtered-user), Dba how
	// VReplicationExec does (vttablet runs it as the dba user). DBName is set by the engine.
	Filtered, Dba mysqlconn.Config

	// RetryDelay is the first wait after a stream failed (--vreplication-retry-delay); each
	// further failure doubles it up to MaxRetryDelay. A stream that ran for MaxRetryDelay
	// without failing starts again from RetryDelay.
	RetryDelay, MaxRetryDelay time.Duration
	// MaxTimeToRetry: an error that keeps coming back for longer than this becomes terminal
	// (state Error). 0 retries forever (--vreplication-max-time-to-retry-on-error).
	MaxTimeToRetry time.Duration

	// HeartbeatUpdateInterval bounds how often an idle stream writes time_heartbeat
	// (--vreplication-heartbeat-update-interval).
	HeartbeatUpdateInterval time.Duration
	// IdleSaveInterval: an idle stream saves the position of transactions it skipped (no
	// rows for it) after this long.
	IdleSaveInterval time.Duration
	// CopyPhaseDuration bounds one copy cycle; then the stream catches up on the binlog and
	// goes on copying (--vreplication-copy-phase-duration).
	CopyPhaseDuration time.Duration
	// CatchupLag: between copy cycles the stream replays the binlog until it is less than this
	// far behind the source (--vreplication-replica-lag-tolerance).
	CatchupLag time.Duration
	// CopyTables is how many tables one stream copies at once; CopyWorkers how many
	// connections insert one table's batches. 1 and 1 copy as vttablet does.
	CopyTables, CopyWorkers int
	// ApplyBatchTransactions bounds how many source transactions the player applies in one
	// target transaction (those already received; it never waits for more).
	ApplyBatchTransactions int
	// RowsCopiedInterval is how often rows_copied is written during the copy.
	RowsCopiedInterval time.Duration
	// PickerRetry is the wait between two attempts to find a source tablet.
	PickerRetry time.Duration
	// WaitPoll is how often VReplicationWaitForPos reads the stream's position.
	WaitPoll time.Duration
	// MaxApplyAttempts: a statement failing with a deadlock or lock wait timeout is tried
	// this many times before the stream fails.
	MaxApplyAttempts int
}

// DefaultConfig returns vttablet's defaults, with tabletd's parallel copy.
func DefaultConfig() Config {
	return Config{
		RetryDelay: 5 * time.Second, MaxRetryDelay: time.Minute,
		HeartbeatUpdateInterval: time.Second, IdleSaveInterval: 1100 * time.Millisecond,
		CopyPhaseDuration: time.Hour, CatchupLag: time.Minute,
		CopyTables: 4, CopyWorkers: 4, ApplyBatchTransactions: 500,
		RowsCopiedInterval: 5 * time.Second, PickerRetry: time.Second, WaitPoll: 100 * time.Millisecond,
		MaxApplyAttempts: 3,
	}
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	switch {
	case c.DBName == "":
		return errors.New("vreplication: the tablet's database name is empty")
	case c.Cell == "":
		return errors.New("vreplication: the tablet's cell is empty")
	case c.RetryDelay <= 0 || c.MaxRetryDelay < c.RetryDelay:
		return fmt.Errorf("--vreplication-retry-delay must be > 0 and <= --vreplication-max-retry-delay (got %v, %v)", c.RetryDelay, c.MaxRetryDelay)
	case c.MaxTimeToRetry < 0:
		return fmt.Errorf("--vreplication-max-time-to-retry-on-error must be >= 0 (got %v)", c.MaxTimeToRetry)
	case c.HeartbeatUpdateInterval <= 0 || c.HeartbeatUpdateInterval > time.Minute:
		return fmt.Errorf("--vreplication-heartbeat-update-interval must be in (0, 1m] (got %v)", c.HeartbeatUpdateInterval)
	case c.IdleSaveInterval <= 0 || c.CopyPhaseDuration <= 0 || c.CatchupLag <= 0:
		return errors.New("--vreplication-copy-phase-duration and --vreplication-replica-lag-tolerance must be > 0")
	case c.CopyTables < 1 || c.CopyTables > 64:
		return fmt.Errorf("--vreplication-copy-parallel-tables must be 1-64 (got %d)", c.CopyTables)
	case c.CopyWorkers < 1 || c.CopyWorkers > 64:
		return fmt.Errorf("--vreplication-parallel-insert-workers must be 1-64 (got %d)", c.CopyWorkers)
	case c.ApplyBatchTransactions < 1:
		return fmt.Errorf("--vreplication-apply-batch-transactions must be >= 1 (got %d)", c.ApplyBatchTransactions)
	case c.RowsCopiedInterval <= 0 || c.PickerRetry <= 0 || c.WaitPoll <= 0:
		return errors.New("vreplication: rows-copied, picker and wait intervals must be > 0")
	case c.MaxApplyAttempts < 1:
		return fmt.Errorf("vreplication: MaxApplyAttempts must be >= 1 (got %d)", c.MaxApplyAttempts)
	}
	return nil
}

// Topo is what the tablet picker reads from the topology: the tablets of a shard in a cell.
type Topo interface {
	// ShardTablets returns the tablet records of keyspace/shard in cell.
	ShardTablets(ctx context.Context, cell, keyspace, shard string) ([]*topodatapb.Tablet, error)
}

// Deps are the engine's collaborators.
type Deps struct {
	Log      *zap.Logger
	Registry prometheus.Registerer
	Clock    func() time.Time
	// Topo finds source tablets; Dial opens a source tablet's streaming API and checks its
	// health. Both are required for streams to run.
	Topo Topo
	Dial Dialer
	// Sidecar returns the keyspace's sidecar database name ("_vt" until read from the
	// topology). nil: "_vt".
	Sidecar func() string
}
