package httpserver

import "time"

// VDiffRun is a VDiff running on this tablet, as the status page shows it.
type VDiffRun struct {
	UUID, Workflow string
	Table, Phase   string // the table being compared and the diff's phase
	Started        time.Time
	RowsCompared   int64 // rows compared by this run so far
	Mismatches     int64 // mismatched and extra rows found in the tables finished so far
}
