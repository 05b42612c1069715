package pool

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// Pooled is a connection borrowed from a Pool. The same Pooled is reused for every loan of
// its connection, so a Get served from idle allocates nothing.
type Pooled[C Conn] struct {
	pool    *Pool[C]
	conn    C
	setting *Setting  // session settings applied; nil: clean
	created time.Time // dial time (pool clock), when the pool tracks times
	used    time.Time // last return to the pool (pool clock), when the pool tracks times

	busy bool // lent out (between Get and Recycle/Discard); guarded by pool.mu
}

// Conn returns the connection.
func (pc *Pooled[C]) Conn() C { return pc.conn }

// Setting returns the session settings the connection carries (nil: none).
func (pc *Pooled[C]) Setting() *Setting { return pc.setting }

// Recycle gives the connection back. It goes to the next waiter or the idle list; it is
// closed instead when it is broken (IsClosed), older than MaxLifetime, above a reduced
// capacity, or the pool is closed. A connection whose session state the caller changed
// behind the pool's back must be Discarded, not Recycled.
func (pc *Pooled[C]) Recycle() {
	p := pc.pool
	broken := pc.conn.IsClosed()
	var now time.Time
	if p.timed {
		now = p.now()
	}
	p.mu.Lock()
	if !pc.busy {
		p.mu.Unlock()
		p.log.Error("pool: Recycle of a connection that is not lent out; ignored")
		return
	}
	pc.busy = false
	p.inUse--
	var drop bool
	var reason *atomic.Int64 // counts why it was dropped, when that is worth a metric
	switch {
	case broken:
		drop, reason = true, &p.counts.closedBroken
	case p.cfg.MaxLifetime > 0 && now.Sub(pc.created) >= p.cfg.MaxLifetime:
		drop, reason = true, &p.counts.closedAged
	case p.closed || p.open-p.closing > p.capacity:
		drop = true
	}
	if drop {
		p.closing++
	} else {
		pc.used = now
		p.idle.push(pc)
		if p.waiters.n > 0 {
			p.dispatchLocked()
		}
	}
	p.mu.Unlock()
	if reason != nil {
		reason.Add(1)
	}
	if drop {
		p.closeAndRelease(pc)
	}
}

// Discard closes the connection and frees its slot: for a connection in an unknown state
// (after a kill, a failed statement mid-transaction, session state the pool does not know).
func (pc *Pooled[C]) Discard() {
	p := pc.pool
	p.mu.Lock()
	if !pc.busy {
		p.mu.Unlock()
		p.log.Error("pool: Discard of a connection that is not lent out; ignored")
		return
	}
	pc.busy = false
	p.inUse--
	p.closing++
	p.mu.Unlock()
	p.closeAndRelease(pc)
}

// prepare turns what acquireLocked returned (pc, or nil for a reserved slot) into a healthy
// connection carrying setting, doing the I/O outside mu and bounded by WaitTimeout from
// waitStart (zero: from now). On failure the slot is freed and the next waiter served.
func (p *Pool[C]) prepare(ctx context.Context, pc *Pooled[C], setting *Setting, waitStart time.Time) (*Pooled[C], error) {
	ioCtx := ctx
	if p.cfg.WaitTimeout > 0 {
		if waitStart.IsZero() {
			waitStart = time.Now()
		}
		var cancel context.CancelFunc
		ioCtx, cancel = context.WithDeadline(ctx, waitStart.Add(p.cfg.WaitTimeout))
		defer cancel()
	}
	if pc != nil && pc.conn.IsClosed() { // broke while idle: replace it in the same slot
		p.counts.closedBroken.Add(1)
		p.closeConn(pc.conn)
		pc = nil
	}
	if pc != nil && pc.setting != nil && !sameSetting(pc.setting, setting) {
		pc = p.reset(ioCtx, pc)
	}
	if pc == nil {
		var err error
		if pc, err = p.dial(ioCtx); err != nil {
			p.releaseSlot()
			return nil, p.ioErr(ctx, ioCtx, "dialing", err)
		}
	}
	if setting != nil && pc.setting == nil {
		if err := p.apply(ioCtx, pc, setting); err != nil {
			if errors.Is(err, ErrSettingsUnsupported) {
				pc.Recycle() // the connection is fine; the request is not
				return nil, err
			}
			p.closeConn(pc.conn)
			p.releaseSlot()
			return nil, p.ioErr(ctx, ioCtx, "applying settings", err)
		}
	}
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed {
		pc.Discard()
		return nil, p.errClosed
	}
	return pc, nil
}

// dial opens a connection for a reserved slot.
func (p *Pool[C]) dial(ctx context.Context) (*Pooled[C], error) {
	p.counts.dials.Add(1)
	c, err := p.connect(ctx)
	if err != nil {
		p.counts.dialErrors.Add(1)
		p.log.Debug("pool: dial failed", zap.Error(err))
		return nil, err
	}
	pc := &Pooled[C]{pool: p, conn: c, busy: true}
	if p.timed {
		pc.created = p.now()
		pc.used = pc.created
	}
	return pc, nil
}

// reset clears pc's session settings in place, or closes it; nil means it was closed and
// its slot (still held) needs a new connection.
func (p *Pool[C]) reset(ctx context.Context, pc *Pooled[C]) *Pooled[C] {
	p.counts.resets.Add(1)
	if r, ok := any(pc.conn).(SettingResetter); ok {
		if err := r.ResetSetting(ctx, pc.setting); err == nil && !pc.conn.IsClosed() {
			pc.setting = nil
			return pc
		}
	}
	p.counts.resetsByReconnecting.Add(1)
	p.closeConn(pc.conn)
	return nil
}

// apply gives a clean connection the requested settings.
func (p *Pool[C]) apply(ctx context.Context, pc *Pooled[C], setting *Setting) error {
	a, ok := any(pc.conn).(SettingApplier)
	if !ok {
		return ErrSettingsUnsupported
	}
	p.counts.applies.Add(1)
	if err := a.ApplySetting(ctx, setting); err != nil {
		return err
	}
	pc.setting = setting
	return nil
}

// ioErr classifies a failure of the I/O in prepare: the caller's context ending wins, then
// WaitTimeout running out (ErrTimeout), else the error itself.
func (p *Pool[C]) ioErr(ctx, ioCtx context.Context, what string, err error) error {
	// The cause is kept as text only here, so errors.Is and rpcerr.Code see one verdict.
	if cerr := ended(ctx); cerr != nil {
		return fmt.Errorf("%s: %s: %w (%v)", p.cfg.Name, what, cerr, err)
	}
	if ended(ioCtx) != nil {
		p.counts.timeouts.Add(1)
		return fmt.Errorf("%s: %s: %w (%v)", p.cfg.Name, what, ErrTimeout, err)
	}
	return fmt.Errorf("%s: %s: %w", p.cfg.Name, what, err)
}

// ended is ctx.Err(), or DeadlineExceeded once ctx's deadline has passed even though its
// timer has not fired yet: net.Dialer times a dial out at the context's deadline by itself
// ("i/o timeout"), and can return a moment before ctx.Err() turns non-nil. Without this, a
// caller whose deadline ended the dial was told MySQL is unavailable.
func ended(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		return context.DeadlineExceeded
	}
	return nil
}

func (p *Pool[C]) closeConn(c C) {
	if err := c.Close(); err != nil {
		p.log.Debug("pool: closing a connection", zap.Error(err))
	}
}
