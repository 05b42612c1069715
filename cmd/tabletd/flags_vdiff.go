package main

import (
	"github.com/spf13/pflag"

	"github.com/tabletd/tabletd/tablet"
	"github.com/tabletd/tabletd/vreplication/vdiff"
)

// vdiffOptions are tabletd's VDiff flags (vttablet has none: its VDiff timings are
// constants, which these default to).
type vdiffOptions struct {
	c vdiff.Config
}

func (o *vdiffOptions) bind(fs *pflag.FlagSet) {
	o.c = vdiff.DefaultConfig()
	c := &o.c
	fs.DurationVar(&c.RetryInterval, "vdiff-retry-interval", c.RetryInterval, "how often VDiffs in state error created with --auto-retry are retried (tabletd; vttablet: 30s)")
	fs.DurationVar(&c.RestartDelay, "vdiff-restart-delay", c.RestartDelay, "pause before a table diff stopped by --max-diff-duration starts again with new snapshots (tabletd; vttablet: 30s)")
	fs.Int64Var(&c.ProgressRows, "vdiff-progress-rows", c.ProgressRows, "rows between two saves of a table diff's progress (rows_compared, lastpk, report) (tabletd; vttablet: 10000)")
}

func (o *vdiffOptions) apply(c *tablet.Config) error {
	v := o.c
	// Identity is filled in by the tablet; Validate checks the rest.
	v.DBName, v.Keyspace, v.Shard, v.Cell = "x", "x", "x", "x"
	if err := v.Validate(); err != nil {
		return err
	}
	c.VDiff = o.c
	return nil
}
