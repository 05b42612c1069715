package main

import (
	"fmt"
	"time"

	"github.com/spf13/pflag"

	"github.com/tabletd/tabletd/tablet"
	"github.com/tabletd/tabletd/vreplication/engine"
)

// vreplOptions are the target-side VReplication flags: vttablet's (same names and types)
// and tabletd's parallel copy.
type vreplOptions struct {
	c                 engine.Config
	heartbeatInterval int // seconds, as vttablet's
}

func (o *vreplOptions) bind(fs *pflag.FlagSet) {
	o.c = engine.DefaultConfig()
	c := &o.c
	fs.DurationVar(&c.RetryDelay, "vreplication-retry-delay", c.RetryDelay, "first wait before retrying a failed VReplication stream; it doubles on each failure up to --vreplication-max-retry-delay")
	fs.DurationVar(&c.MaxRetryDelay, "vreplication-max-retry-delay", c.MaxRetryDelay, "longest wait between retries of a failing stream (tabletd)")
	fs.DurationVar(&c.MaxTimeToRetry, "vreplication-max-time-to-retry-on-error", 0, "a stream failing for this long goes to state Error (0: retry forever)")
	fs.IntVar(&o.heartbeatInterval, "vreplication-heartbeat-update-interval", 1, "seconds between updates of an idle stream's time_heartbeat (1-60)")
	fs.DurationVar(&c.CopyPhaseDuration, "vreplication-copy-phase-duration", c.CopyPhaseDuration, "length of one copy cycle before the stream catches up on the binlog")
	fs.DurationVar(&c.CatchupLag, "vreplication-replica-lag-tolerance", c.CatchupLag, "between copy cycles, catch up until the stream is less than this behind")
	fs.IntVar(&c.CopyWorkers, "vreplication-parallel-insert-workers", c.CopyWorkers, "connections inserting one table's rows during the copy, commits kept in order (vttablet's default: 1)")
	fs.IntVar(&c.CopyTables, "vreplication-copy-parallel-tables", c.CopyTables, "tables one stream copies at once when the source gives them the same snapshot (tabletd; 1: one at a time, as vttablet)")
	fs.IntVar(&c.ApplyBatchTransactions, "vreplication-apply-batch-transactions", c.ApplyBatchTransactions, "most source transactions the replication phase applies in one target transaction (tabletd)")
}

func (o *vreplOptions) apply(c *tablet.Config) error {
	if o.heartbeatInterval < 1 || o.heartbeatInterval > 60 {
		return fmt.Errorf("--vreplication-heartbeat-update-interval must be 1-60 seconds (got %d)", o.heartbeatInterval)
	}
	o.c.HeartbeatUpdateInterval = time.Duration(o.heartbeatInterval) * time.Second
	v := o.c
	// Identity and connections are filled in by the tablet; Validate checks the rest.
	v.DBName, v.Cell = "x", "x"
	if err := v.Validate(); err != nil {
		return err
	}
	c.VReplication = o.c
	return nil
}
