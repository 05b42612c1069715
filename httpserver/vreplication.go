package httpserver

import "time"

// VReplicationStream is one VReplication stream of this tablet (the target side), as the
// status page shows it.
type VReplicationStream struct {
	ID                    int32
	Workflow, Source      string // source: keyspace/shard
	SourceTablet          string
	State, Phase, Message string
	Position              string
	Lag                   string // "1.2s", or "unknown"
	RowsCopied            int64
	RowsPerSecond         float64
	Copying               string // tables being copied now
	Transactions          int64
	LastError             string
	LastErrorAt           time.Time
}
