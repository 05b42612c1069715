package pool

import (
	"context"
	"time"
)

// waiter is one Get blocked for a connection. The pool serves it at most once, under
// Pool.mu, and then signals ready; the Get goroutine reads the outcome under Pool.mu too.
type waiter[C Conn] struct {
	ctx     context.Context
	setting *Setting
	ready   chan struct{} // capacity 1: the one "served" signal never blocks the server
	timer   *time.Timer   // WaitTimeout; kept with the waiter for reuse

	// Guarded by Pool.mu.
	queued     bool
	served     bool
	pc         *Pooled[C] // what it was served: a connection, or nil for a reserved slot to dial
	err        error      // served with a failure instead (the pool closed)
	prev, next *waiter[C]
}

// waitQueue is a FIFO of waiters with O(1) removal from anywhere, so a waiter whose context
// ends leaves at once instead of waiting to reach the head. Guarded by Pool.mu.
type waitQueue[C Conn] struct {
	head, tail *waiter[C]
	n          int
}

func (q *waitQueue[C]) front() *waiter[C] { return q.head }

func (q *waitQueue[C]) pushBack(w *waiter[C]) {
	w.queued, w.prev, w.next = true, q.tail, nil
	if q.tail == nil {
		q.head = w
	} else {
		q.tail.next = w
	}
	q.tail = w
	q.n++
}

// remove takes w out of the queue; it is a no-op when w is not queued.
func (q *waitQueue[C]) remove(w *waiter[C]) {
	if !w.queued {
		return
	}
	if w.prev == nil {
		q.head = w.next
	} else {
		w.prev.next = w.next
	}
	if w.next == nil {
		q.tail = w.prev
	} else {
		w.next.prev = w.prev
	}
	w.queued, w.prev, w.next = false, nil, nil
	q.n--
}

// newWaiter returns a waiter for one Get, reusing a finished one when it can: under
// overload every Get waits, and waiting should not feed the garbage collector.
func (p *Pool[C]) newWaiter(ctx context.Context, setting *Setting) *waiter[C] {
	w, _ := p.waiterCache.Get().(*waiter[C])
	if w == nil {
		w = &waiter[C]{ready: make(chan struct{}, 1)}
	}
	w.ctx, w.setting = ctx, setting
	return w
}

// freeWaiter recycles w once its Get is done with it. It is no longer queued, so nothing
// else refers to it; a served signal not consumed by the select is drained here.
func (p *Pool[C]) freeWaiter(w *waiter[C]) {
	select {
	case <-w.ready:
	default:
	}
	if w.timer != nil {
		w.timer.Stop()
	}
	*w = waiter[C]{ready: w.ready, timer: w.timer}
	p.waiterCache.Put(w)
}

// expiry starts w's WaitTimeout timer; nil (never fires) without a WaitTimeout.
func (w *waiter[C]) expiry(d time.Duration) <-chan time.Time {
	if d <= 0 {
		return nil
	}
	if w.timer == nil {
		w.timer = time.NewTimer(d)
	} else {
		w.timer.Reset(d) // Go ≥ 1.23: no stale tick survives Stop/Reset
	}
	return w.timer.C
}
