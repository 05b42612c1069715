package consolidator

import (
	"errors"
	"fmt"

	"github.com/tabletd/tabletd/proto/querypb"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/rpcerr"
)

// Errors returned by the consolidator; compare with errors.Is.
var (
	// ErrFull: a bound (Config.MaxWaiters or Config.MaxBytes) was reached and
	// Config.RejectOnFull is set, so the caller was refused instead of running its own
	// query. RESOURCE_EXHAUSTED.
	ErrFull error = &rpcerr.Error{Code: vtrpcpb.Code_RESOURCE_EXHAUSTED, Msg: "query consolidator is full"}
	// ErrLeaderPanicked: the leader's exec panicked, so there is no result to share. INTERNAL.
	ErrLeaderPanicked error = &rpcerr.Error{Code: vtrpcpb.Code_INTERNAL, Msg: "query consolidator: leader execution panicked"}
	// ErrInvalidConfig is matched by every error Config.Validate returns.
	ErrInvalidConfig = errors.New("invalid consolidator configuration")
)

// DefaultRecentSize is the number of entries Recent keeps when Config.RecentSize is 0.
const DefaultRecentSize = 100

// Config bounds a Consolidator.
type Config struct {
	// MaxWaiters is the most callers that may wait on one in-flight query; callers beyond it
	// run their own query (or get ErrFull with RejectOnFull). 0 means unlimited.
	MaxWaiters int
	// MaxBytes bounds the total size of results held for waiters. A result larger than what
	// is left is not shared: its waiters run their own query (or get ErrFull with
	// RejectOnFull); they never get a partial or empty result. 0 means unlimited.
	MaxBytes int64
	// RejectOnFull makes callers beyond a bound fail with ErrFull instead of running their
	// own query.
	RejectOnFull bool
	// RecentSize is how many keys Recent remembers (least recently consolidated dropped
	// first). 0 means DefaultRecentSize.
	RecentSize int
}

// DefaultConfig returns the defaults: unlimited waiters (as vttablet's
// --consolidator-query-waiter-cap 0), 128 MiB of shared results, overflow callers run their
// own query.
func DefaultConfig() Config {
	return Config{MaxBytes: 128 << 20, RecentSize: DefaultRecentSize}
}

// Validate reports a configuration error wrapping ErrInvalidConfig.
func (c Config) Validate() error {
	switch {
	case c.MaxWaiters < 0:
		return fmt.Errorf("%w: MaxWaiters %d < 0", ErrInvalidConfig, c.MaxWaiters)
	case c.MaxBytes < 0:
		return fmt.Errorf("%w: MaxBytes %d < 0", ErrInvalidConfig, c.MaxBytes)
	case c.RecentSize < 0:
		return fmt.Errorf("%w: RecentSize %d < 0", ErrInvalidConfig, c.RecentSize)
	}
	return nil
}

// QueryResultSize is the size function for a Consolidator[*querypb.QueryResult]: the
// result's encoded size, a close proxy for the memory it holds.
func QueryResultSize(r *querypb.QueryResult) int64 { return int64(r.SizeVT()) }
