package httpserver

import "time"

// HealthEvent is one serving-state transition in the health history.
type HealthEvent struct {
	At         time.Time
	State      string
	Serving    bool
	TabletType string
	Reason     string
}

// ErrorCount is how many requests failed with one vtrpc code since start.
type ErrorCount struct {
	Code  string
	Count int64
}

// SlowQuery is one statement answered after the slow threshold.
type SlowQuery struct {
	At     time.Time
	Took   time.Duration
	SQL    string
	Plan   string
	Caller string
	Rows   uint64
	Err    string
}

// Observed is the status page's view over time: charts of the last minutes, the health
// history, errors by code and the last slow queries.
type Observed struct {
	QPS           float64       // over the last interval
	Span          time.Duration // of the charts
	Charts        []Chart
	HealthHistory []HealthEvent // newest first
	Errors        []ErrorCount  // by count, largest first
	SlowQueries   []SlowQuery   // newest first
	SlowThreshold time.Duration
}
