package replication

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// maxWaitSlice bounds one server-side wait. The driver abandons a query as
// soon as its context ends, but the server keeps waiting until the
// function's own timeout, so long waits are cut in slices: a cancelled
// WaitForPosition leaves at most one slice running on the server.
const maxWaitSlice = 2 * time.Second

// WaitForPosition returns nil once the server has executed every
// transaction of pos.
//
//   - A GTID position of the server's flavor is first checked against the
//     server's own position (gtid_binlog_pos / gtid_executed), so a demoted
//     primary whose own writes contain pos returns at once (MariaDB's
//     MASTER_GTID_WAIT only watches gtid_slave_pos and would never see
//     them); otherwise MASTER_GTID_WAIT (MariaDB, per domain by sequence,
//     like AtLeast) or WAIT_FOR_EXECUTED_GTID_SET (MySQL) waits. The server
//     position is re-checked before every slice.
//   - A FilePos position is a coordinate in the source's binary log and is
//     served with MASTER_POS_WAIT (MariaDB, MySQL 8.0) or SOURCE_POS_WAIT
//     (8.4); it never compares with the server's own binary log. A server
//     whose applier is not running answers NULL: ErrNotReplicating.
//   - The zero Position is reached at once.
//
// The wait lasts until ctx's deadline, or, without one, until ctx ends, in
// slices of at most maxWaitSlice. Timing out returns an error wrapping
// context.DeadlineExceeded (so rpcerr.Code gives DEADLINE_EXCEEDED);
// cancellation returns one wrapping ctx.Err(). A GTID position of the other
// flavor returns ErrPositionFlavor without asking the server.
func WaitForPosition(ctx context.Context, q Querier, flavor Flavor, pos Position) error {
	if err := flavor.check(); err != nil {
		return err
	}
	switch {
	case pos.IsZero():
		return nil
	case pos.Flavor() == PositionFilePos:
		return waitLoop(ctx, pos, func(ctx context.Context, slice time.Duration) (bool, error) {
			return waitFilePosSlice(ctx, q, flavor, pos, slice)
		})
	case pos.Flavor() != flavor.PositionFlavor():
		return fmt.Errorf("%w: cannot wait for %s position %q on a %v server",
			ErrPositionFlavor, pos.Flavor(), pos, flavor)
	}
	return waitLoop(ctx, pos, func(ctx context.Context, slice time.Duration) (bool, error) {
		own, err := PrimaryPosition(ctx, q, flavor)
		if err != nil {
			return false, err
		}
		if own.AtLeast(pos) {
			return true, nil
		}
		return waitGTIDSlice(ctx, q, flavor, pos, slice)
	})
}

// waitLoop calls wait with the next slice until it reports done, fails, or
// ctx ends.
func waitLoop(ctx context.Context, pos Position, wait func(context.Context, time.Duration) (bool, error)) error {
	for {
		slice := maxWaitSlice
		if deadline, ok := ctx.Deadline(); ok {
			slice = min(slice, time.Until(deadline))
		}
		if err := ctx.Err(); err != nil || slice <= 0 {
			return waitEnded(ctx, pos)
		}
		done, err := wait(ctx, slice)
		if ctx.Err() != nil {
			// The driver's error for an abandoned query says less than ctx.
			return waitEnded(ctx, pos)
		}
		if err != nil || done {
			return err
		}
	}
}

// waitEnded is the error of a wait whose context ended or whose deadline
// passed.
func waitEnded(ctx context.Context, pos Position) error {
	err := ctx.Err()
	if err == nil || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("replication: timed out waiting for position %s: %w", pos, context.DeadlineExceeded)
	}
	return fmt.Errorf("replication: waiting for position %s: %w", pos, err)
}

// waitGTIDSlice runs one MASTER_GTID_WAIT / WAIT_FOR_EXECUTED_GTID_SET and
// reports whether pos was reached.
func waitGTIDSlice(ctx context.Context, q Querier, flavor Flavor, pos Position, slice time.Duration) (bool, error) {
	set := quote(pos.GTIDSet())
	if flavor.IsMariaDB() {
		// 0: reached, -1: timed out. The timeout is fractional seconds.
		query := "SELECT MASTER_GTID_WAIT(" + set + ", " + fractionalSeconds(slice) + ") AS result"
		return waitResult(ctx, q, query, func(n int64) (bool, bool) { return n == 0, n == 0 || n == -1 })
	}
	// 0: reached, 1: timed out. Whole seconds only; 0 would mean forever.
	query := "SELECT WAIT_FOR_EXECUTED_GTID_SET(" + set + ", " + wholeSeconds(slice) + ") AS result"
	return waitResult(ctx, q, query, func(n int64) (bool, bool) { return n == 0, n == 0 || n == 1 })
}

// waitFilePosSlice runs one MASTER_POS_WAIT / SOURCE_POS_WAIT.
func waitFilePosSlice(ctx context.Context, q Querier, flavor Flavor, pos Position, slice time.Duration) (bool, error) {
	file, offset, err := splitFilePos(pos)
	if err != nil {
		return false, err
	}
	fn, timeout := "MASTER_POS_WAIT", fractionalSeconds(slice)
	switch flavor {
	case FlavorMySQL80:
		timeout = wholeSeconds(slice)
	case FlavorMySQL84:
		fn, timeout = "SOURCE_POS_WAIT", wholeSeconds(slice) // 8.4 removed MASTER_POS_WAIT
	}
	query := "SELECT " + fn + "(" + quote(file) + ", " + offset + ", " + timeout + ") AS result"
	// >= 0: reached (events waited for), -1: timed out, NULL: not replicating.
	return waitResult(ctx, q, query, func(n int64) (bool, bool) { return n >= 0, n >= -1 })
}

// splitFilePos returns the file and offset of a FilePos position, checking
// the file name can be quoted.
func splitFilePos(pos Position) (file, offset string, err error) {
	fp, ok := pos.set.(filePos)
	if !ok {
		return "", "", fmt.Errorf("%w: %q is not a FilePos position", ErrPositionFlavor, pos)
	}
	if i := strings.IndexFunc(fp.file, func(r rune) bool { return r == '\\' || r < 0x20 }); i >= 0 {
		return "", "", fmt.Errorf("%w: binary log name %q has a backslash or control character", ErrInvalidPosition, fp.file)
	}
	return fp.file, strconv.FormatUint(fp.pos, 10), nil
}

// waitResult runs a wait query and interprets its single integer result:
// classify returns (reached, known); an unknown value is an error. NULL is
// ErrNotReplicating.
func waitResult(ctx context.Context, q Querier, query string, classify func(int64) (bool, bool)) (bool, error) {
	r, err := queryOne(ctx, q, query)
	if err != nil {
		return false, err
	}
	v, ok := r.field("result")
	if !ok {
		return false, fmt.Errorf("%w: %s returned NULL (no source configured, or its SQL thread is not running)",
			ErrNotReplicating, query)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil {
		return false, fmt.Errorf("%w: %s returned %q", ErrUnexpectedResult, query, v)
	}
	reached, known := classify(n)
	if !known {
		return false, fmt.Errorf("%w: %s returned %d", ErrUnexpectedResult, query, n)
	}
	return reached, nil
}

// fractionalSeconds formats d as seconds with microsecond precision.
func fractionalSeconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', 6, 64)
}

// wholeSeconds formats d rounded up to whole seconds, at least 1.
func wholeSeconds(d time.Duration) string {
	return strconv.FormatInt(max(1, int64(math.Ceil(d.Seconds()))), 10)
}
