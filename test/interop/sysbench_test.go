//go:build interop

package interop

import (
	"regexp"
	"strconv"
)

// sysbenchTotals is what sysbench 1.0's closing summary says of a run.
type sysbenchTotals struct {
	Transactions  int64
	TPS           float64
	IgnoredErrors int64
	Reconnects    int64
}

var (
	sbTransactions = regexp.MustCompile(`transactions:\s+(\d+)\s+\(([\d.]+) per sec`)
	sbIgnored      = regexp.MustCompile(`ignored errors:\s+(\d+)`)
	sbReconnects   = regexp.MustCompile(`reconnects:\s+(\d+)`)
)

// parseSysbenchTotals reads the summary of sysbench's output; ok is false when it has none
// (the run was killed, or sysbench failed before its end).
func parseSysbenchTotals(out string) (tot sysbenchTotals, ok bool) {
	tx, ign, rec := sbTransactions.FindStringSubmatch(out), sbIgnored.FindStringSubmatch(out), sbReconnects.FindStringSubmatch(out)
	if tx == nil || ign == nil || rec == nil {
		return tot, false
	}
	tot.Transactions, _ = strconv.ParseInt(tx[1], 10, 64)
	tot.TPS, _ = strconv.ParseFloat(tx[2], 64)
	tot.IgnoredErrors, _ = strconv.ParseInt(ign[1], 10, 64)
	tot.Reconnects, _ = strconv.ParseInt(rec[1], 10, 64)
	return tot, true
}
