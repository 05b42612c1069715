package consolidator

import (
	"context"
	"fmt"
	"sync"
)

// Consolidator runs one execution for all concurrent callers of Do with the same key.
//
// Results are shared read-only: every caller that got shared == true holds the same R as the
// leader and the other waiters, so no caller may mutate it (or anything it points to).
type Consolidator[R any] struct {
	cfg  Config
	size func(R) int64

	mu      sync.Mutex
	calls   map[string]*call[R] // in-flight executions by key
	waiting int                 // callers blocked in Do on a leader, or not yet collected
	bytes   int64               // bytes reserved for results still being handed to waiters
	recent  *recent
	totals  Stats // only the counters are used
}

// call is one in-flight (or finished, not yet fully collected) execution.
type call[R any] struct {
	done chan struct{} // closed by the leader once r, err and runOwn are set

	// Written before done is closed; read-only afterwards.
	r      R
	err    error
	runOwn bool // the result was not shared (MaxBytes): each waiter runs exec itself

	// Guarded by Consolidator.mu.
	waiters  int   // waiters counted so far (decremented by a waiter leaving before finish)
	finished bool  // the leader has finished; no new waiters join
	pending  int   // waiters that still have to collect the result
	reserved int64 // bytes reserved in Consolidator.bytes until pending reaches 0
}

// Stats is a snapshot of the consolidator's state and totals.
type Stats struct {
	InFlight     int   // keys with a running leader
	Waiting      int   // callers waiting on a leader
	BytesHeld    int64 // bytes of results reserved for waiters that have not collected them
	Consolidated int64 // waiters served a leader's result (or error)
	Executions   int64 // exec calls: leaders plus callers that ran their own query
	Overflow     int64 // callers that ran their own query because a bound was reached
	Rejected     int64 // callers refused with ErrFull
}

// New returns a consolidator bounded by cfg. size measures a result for Config.MaxBytes
// (for *querypb.QueryResult, proto.Size); it may be nil only when cfg.MaxBytes is 0.
func New[R any](cfg Config, size func(R) int64) (*Consolidator[R], error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.MaxBytes > 0 && size == nil {
		return nil, fmt.Errorf("%w: MaxBytes %d needs a size function", ErrInvalidConfig, cfg.MaxBytes)
	}
	if cfg.RecentSize == 0 {
		cfg.RecentSize = DefaultRecentSize
	}
	return &Consolidator[R]{
		cfg:    cfg,
		size:   size,
		calls:  make(map[string]*call[R]),
		recent: newRecent(cfg.RecentSize),
	}, nil
}

// Do runs exec once for all concurrent callers with the same key. The first caller (the
// leader) runs exec; callers arriving while it runs wait and get the same result and error
// with shared == true. A caller arriving after the leader finished starts a new execution,
// so nobody gets a result from an exec that finished before they called.
//
// ctx ends only a waiter's wait (Do returns ctx.Err()); the leader is unaffected, and exec
// itself must honour the leader's own context. Callers beyond Config.MaxWaiters, and waiters
// whose result is too big for Config.MaxBytes, run exec themselves (shared == false), or get
// ErrFull when Config.RejectOnFull is set. The leader never waits for waiters. If the
// leader's exec panics, its waiters get ErrLeaderPanicked and the panic goes on in the leader.
//
// A shared result must not be mutated by any caller.
func (c *Consolidator[R]) Do(ctx context.Context, key string, exec func() (R, error)) (r R, shared bool, err error) {
	c.mu.Lock()
	cl, ok := c.calls[key]
	if !ok {
		cl = &call[R]{done: make(chan struct{})}
		c.calls[key] = cl
		c.totals.Executions++
		c.mu.Unlock()
		r, err = c.lead(key, cl, exec)
		return r, false, err
	}
	if c.cfg.MaxWaiters > 0 && cl.waiters >= c.cfg.MaxWaiters {
		c.mu.Unlock()
		return c.runOwn(exec)
	}
	cl.waiters++
	c.waiting++
	c.mu.Unlock()

	select {
	case <-cl.done:
	case <-ctx.Done():
		c.mu.Lock()
		if !cl.finished {
			cl.waiters--
			c.waiting--
			c.mu.Unlock()
			var zero R
			return zero, false, ctx.Err()
		}
		c.mu.Unlock()
		// The leader finished at the same time: collect the result, releasing our share.
	}
	return c.collect(ctx, key, cl, exec)
}

// lead runs exec as the leader and hands the outcome to the waiters, even if exec panics.
func (c *Consolidator[R]) lead(key string, cl *call[R], exec func() (R, error)) (r R, err error) {
	finished := false
	defer func() {
		if !finished {
			var zero R
			c.finish(key, cl, zero, ErrLeaderPanicked)
		}
	}()
	r, err = exec()
	finished = true
	c.finish(key, cl, r, err)
	return r, err
}

// finish publishes the leader's outcome: it removes the key (later callers start afresh),
// reserves the result's bytes for the waiters or tells them to run their own query, and
// wakes them. It never blocks on waiters.
func (c *Consolidator[R]) finish(key string, cl *call[R], r R, err error) {
	var size int64
	if c.cfg.MaxBytes > 0 && err == nil {
		c.mu.Lock()
		hasWaiters := cl.waiters > 0
		c.mu.Unlock()
		if hasWaiters {
			size = c.size(r) // outside the lock: measuring a big result is not free
		}
	}

	c.mu.Lock()
	delete(c.calls, key)
	cl.finished = true
	cl.pending = cl.waiters
	cl.r, cl.err = r, err
	if cl.pending > 0 && c.cfg.MaxBytes > 0 && err == nil {
		if size > c.cfg.MaxBytes-c.bytes {
			cl.runOwn = true
			cl.r = *new(R) // do not keep the unshared result alive
		} else {
			cl.reserved = size
			c.bytes += size
		}
	}
	c.mu.Unlock()
	close(cl.done)
}

// collect returns the leader's outcome to a waiter and releases the reservation once the
// last waiter has it.
func (c *Consolidator[R]) collect(ctx context.Context, key string, cl *call[R], exec func() (R, error)) (R, bool, error) {
	c.mu.Lock()
	c.waiting--
	cl.pending--
	if cl.pending == 0 && cl.reserved > 0 {
		c.bytes -= cl.reserved
		cl.reserved = 0
	}
	if !cl.runOwn {
		c.totals.Consolidated++
		c.recent.add(key, 1)
	}
	c.mu.Unlock()

	if cl.runOwn {
		if err := ctx.Err(); err != nil {
			var zero R
			return zero, false, err
		}
		return c.runOwn(exec)
	}
	return cl.r, true, cl.err
}

// runOwn handles a caller beyond a bound: ErrFull with RejectOnFull, else its own exec.
func (c *Consolidator[R]) runOwn(exec func() (R, error)) (R, bool, error) {
	c.mu.Lock()
	if c.cfg.RejectOnFull {
		c.totals.Rejected++
		c.mu.Unlock()
		var zero R
		return zero, false, ErrFull
	}
	c.totals.Overflow++
	c.totals.Executions++
	c.mu.Unlock()
	r, err := exec()
	return r, false, err
}

// Stats returns a snapshot of the current state and the totals since New.
func (c *Consolidator[R]) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.totals
	s.InFlight = len(c.calls)
	s.Waiting = c.waiting
	s.BytesHeld = c.bytes
	return s
}

// Recent returns the most recently consolidated keys, most recent first, with how many
// waiters each has served (at most Config.RecentSize entries), for /debug/consolidations.
func (c *Consolidator[R]) Recent() []Entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.recent.list()
}
