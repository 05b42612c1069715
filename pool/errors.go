package pool

import (
	"errors"

	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/rpcerr"
)

// Errors returned by the pool. The first four carry their vtrpc code (rpcerr.Code reads it);
// compare with errors.Is. When the caller's context ends first, Get returns an error that
// wraps ctx.Err() instead (DEADLINE_EXCEEDED or CANCELED under rpcerr.Code).
var (
	// ErrTimeout: Get waited Config.WaitTimeout without getting a connection (vttablet's
	// "connection pool timed out", formerly "resource pool timed out"). RESOURCE_EXHAUSTED.
	ErrTimeout error = &rpcerr.Error{Code: vtrpcpb.Code_RESOURCE_EXHAUSTED, Msg: "connection pool timed out"}
	// ErrPoolFull: Config.MaxWaiters callers were already waiting, so Get failed at once.
	// RESOURCE_EXHAUSTED.
	ErrPoolFull error = &rpcerr.Error{Code: vtrpcpb.Code_RESOURCE_EXHAUSTED, Msg: "connection pool waiter limit reached"}
	// ErrPoolClosed: the pool is closed (or closed while the caller waited). UNAVAILABLE.
	ErrPoolClosed error = &rpcerr.Error{Code: vtrpcpb.Code_UNAVAILABLE, Msg: "connection pool is closed"}
	// ErrSettingsUnsupported: Get was asked for session settings but the connection type
	// does not implement SettingApplier (a programming error). INTERNAL.
	ErrSettingsUnsupported error = &rpcerr.Error{Code: vtrpcpb.Code_INTERNAL, Msg: "connection does not support session settings"}
	// ErrInvalidConfig is matched by every *ConfigError.
	ErrInvalidConfig = errors.New("invalid pool configuration")
)
