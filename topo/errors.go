package topo

import "errors"

// Errors returned by this package. Callers match them with errors.Is; the
// wrapped message names the record or input at fault.
var (
	// ErrNoNode means the record does not exist.
	ErrNoNode = errors.New("topo: node does not exist")
	// ErrNodeExists means a create found the record already present.
	ErrNodeExists = errors.New("topo: node already exists")
	// ErrBadVersion means a compare-and-swap lost against a concurrent writer.
	ErrBadVersion = errors.New("topo: record changed concurrently (ModRevision mismatch)")
	// ErrNoUpdateNeeded may be returned by an update function to leave the record untouched.
	ErrNoUpdateNeeded = errors.New("topo: no update needed")

	// ErrCellNotFound means the global topology has no CellInfo for the configured cell.
	ErrCellNotFound = errors.New("topo: cell not found in the global topology")
	// ErrWrongCell means an alias names a cell this Server is not connected to.
	ErrWrongCell = errors.New("topo: tablet alias is in another cell")
	// ErrInvalidAlias means a tablet alias is not "<cell>-<uid>".
	ErrInvalidAlias = errors.New("topo: invalid tablet alias")
	// ErrInvalidShard means a shard name is neither a plain name nor a valid hex key range.
	ErrInvalidShard = errors.New("topo: invalid shard name")
	// ErrInvalidKeyspace means a keyspace name is empty, too long or has bad characters.
	ErrInvalidKeyspace = errors.New("topo: invalid keyspace name")
	// ErrInvalidTablet means a tablet record passed in is missing required fields.
	ErrInvalidTablet = errors.New("topo: invalid tablet record")

	// ErrTabletHeld means the tablet record for this alias belongs to another live host:port.
	ErrTabletHeld = errors.New("topo: tablet alias is held by another tablet")
	// ErrTabletMismatch means the existing tablet record for this alias is in another keyspace/shard.
	ErrTabletMismatch = errors.New("topo: existing tablet record has a different keyspace/shard")

	// ErrIncompleteKeyspace means the serving shards do not cover the whole key range yet.
	ErrIncompleteKeyspace = errors.New("topo: keyspace serving shards do not cover the full key range")

	// ErrLockTimeout means a keyspace or shard lock could not be taken before the context ended.
	ErrLockTimeout = errors.New("topo: timed out waiting for lock")
	// ErrLockLost means the lease backing a held lock is gone.
	ErrLockLost = errors.New("topo: lock lease lost")

	// ErrClosed means the Server was closed.
	ErrClosed = errors.New("topo: server closed")
)
