package main

import (
	"fmt"

	"github.com/spf13/pflag"

	"github.com/tabletd/tabletd/querylog"
	"github.com/tabletd/tabletd/tablet"
)

// queryLogOptions are vttablet's query log flags.
type queryLogOptions struct {
	c    querylog.Config
	mode string
}

func (o *queryLogOptions) bind(fs *pflag.FlagSet) {
	o.c = querylog.DefaultConfig()
	fs.StringVar(&o.c.Path, "log-queries-to-file", "", "write a line per query served to this file (vttablet's query log)")
	fs.StringVar(&o.c.Format, "querylog-format", o.c.Format, "query log format: text (tab-separated, vttablet's columns) or json")
	fs.Uint64Var(&o.c.RowThreshold, "querylog-row-threshold", 0, "log only queries returning or affecting at least this many rows (0: all)")
	fs.DurationVar(&o.c.TimeThreshold, "querylog-time-threshold", 0, "log only queries running at least this long (0: all)")
	fs.StringVar(&o.c.FilterTag, "querylog-filter-tag", "", "log only queries whose SQL contains this string")
	fs.StringVar(&o.mode, "querylog-mode", "all", "all, or error: log only queries that failed")
	fs.BoolVar(&o.c.EmitOnAny, "querylog-emit-on-any-condition-met", false, "log a query meeting any one of the set conditions (default: all of them)")
	fs.BoolVar(&o.c.Redact, "redact-debug-ui-queries", false, "write [REDACTED] for bind variable values in the query log")
}

func (o *queryLogOptions) apply(c *tablet.Config) error {
	switch o.mode {
	case "all", "":
	case "error":
		o.c.ErrorsOnly = true
	default:
		return fmt.Errorf("--querylog-mode %q: use all or error", o.mode)
	}
	c.QueryLog = o.c
	return o.c.Validate()
}
