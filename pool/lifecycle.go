package pool

import (
	"time"

	"go.uber.org/zap"
)

// Stats is a snapshot of a pool. Gauges are consistent with each other (read under one
// lock); counters are totals since New.
type Stats struct {
	Name     string
	Capacity int
	Open     int // idle + in use, including connections being dialed
	InUse    int
	Idle     int
	Waiters  int

	WaitCount  int64         // Gets that had to wait
	WaitTime   time.Duration // their total wait
	Timeouts   int64         // Gets that failed with ErrTimeout
	Rejections int64         // Gets that failed with ErrPoolFull
	Canceled   int64         // waits ended by the caller's context

	Dials          int64
	DialErrors     int64
	ClosedBroken   int64 // connections found broken (IsClosed) and closed
	ClosedIdle     int64 // closed after IdleTimeout
	ClosedLifetime int64 // closed after MaxLifetime

	SettingApplies int64 // ApplySetting calls
	SettingResets  int64 // connections whose settings had to go for another request
	ResetReconnect int64 // … of which by closing and redialing
}

// Stats returns the pool's current numbers.
func (p *Pool[C]) Stats() Stats {
	p.mu.Lock()
	s := Stats{
		Name: p.cfg.Name, Capacity: p.capacity, Open: p.open, InUse: p.inUse,
		Idle: p.idle.len(), Waiters: p.waiters.n,
	}
	p.mu.Unlock()
	c := &p.counts
	s.WaitCount, s.WaitTime = c.waits.Load(), time.Duration(c.waitNanos.Load())
	s.Timeouts, s.Rejections, s.Canceled = c.timeouts.Load(), c.rejections.Load(), c.canceled.Load()
	s.Dials, s.DialErrors = c.dials.Load(), c.dialErrors.Load()
	s.ClosedBroken, s.ClosedIdle, s.ClosedLifetime = c.closedBroken.Load(), c.closedIdle.Load(), c.closedAged.Load()
	s.SettingApplies, s.SettingResets, s.ResetReconnect = c.applies.Load(), c.resets.Load(), c.resetsByReconnecting.Load()
	return s
}

// SetCapacity changes the most connections open at once. Growing serves waiters at once.
// Shrinking closes idle connections now and in-use ones as they come back; it never waits.
// n must be at least 1.
func (p *Pool[C]) SetCapacity(n int) error {
	if n < 1 {
		return &ConfigError{Pool: p.cfg.Name, Flag: flagsFor(p.cfg.Name).size, Rule: "must be at least 1", Value: n}
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return p.errClosed
	}
	old := p.capacity
	p.capacity = n
	var victims []*Pooled[C]
	for p.open-p.closing > n {
		pc := p.idle.popVictim()
		if pc == nil {
			break
		}
		victims = append(victims, pc)
		p.closing++
	}
	p.dispatchLocked()
	p.mu.Unlock()
	p.closeAndRelease(victims...)
	p.log.Info("pool capacity changed", zap.Int("from", old), zap.Int("to", n), zap.Int("closed_idle", len(victims)))
	return nil
}

// Close shuts the pool: waiters and later Gets get ErrPoolClosed, idle connections close
// now, lent ones when they come back. It does not wait for them, stops the reaper, and
// unregisters the metrics. Calling it again does nothing.
func (p *Pool[C]) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	for w := p.waiters.front(); w != nil; w = p.waiters.front() {
		p.waiters.remove(w)
		w.served, w.err = true, p.errClosed
		w.ready <- struct{}{}
	}
	victims := p.idle.drain(nil)
	p.closing += len(victims)
	inUse := p.inUse
	p.mu.Unlock()

	close(p.stop)
	if p.reaperDone != nil {
		<-p.reaperDone
	}
	p.closeAndRelease(victims...)
	p.metrics.unregister()
	p.log.Info("pool closed", zap.Int("closed_idle", len(victims)), zap.Int("in_use", inUse))
}

// CloseIdle closes every idle connection now and returns how many. After mysqld restarted
// (or a partition healed) they are all dead, and each would fail the request that drew it
// next; lent connections are left to their users. Slots are refilled on demand.
func (p *Pool[C]) CloseIdle() int {
	p.mu.Lock()
	victims := p.idle.drain(nil)
	p.closing += len(victims)
	p.mu.Unlock()
	p.counts.closedBroken.Add(int64(len(victims)))
	p.closeAndRelease(victims...)
	return len(victims)
}

// reapInterval is how often idle connections are checked against IdleTimeout and
// MaxLifetime: a tenth of the shorter, within [10ms, 1m]; 0 when neither is set.
func reapInterval(cfg Config) time.Duration {
	d := cfg.IdleTimeout
	if d == 0 || (cfg.MaxLifetime > 0 && cfg.MaxLifetime < d) {
		d = cfg.MaxLifetime
	}
	if d == 0 {
		return 0
	}
	return min(max(d/10, 10*time.Millisecond), time.Minute)
}

// reaper closes expired idle connections every interval until Close.
func (p *Pool[C]) reaper(every time.Duration) {
	defer close(p.reaperDone)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			p.reap()
		}
	}
}

// reap closes the idle connections past IdleTimeout or MaxLifetime at the pool clock's now,
// and returns how many. Their slots are refilled on demand, not here, so reaping never
// holds capacity.
func (p *Pool[C]) reap() int {
	now := p.now()
	idleTooLong := func(pc *Pooled[C]) bool {
		return p.cfg.IdleTimeout > 0 && now.Sub(pc.used) >= p.cfg.IdleTimeout
	}
	tooOld := func(pc *Pooled[C]) bool {
		return p.cfg.MaxLifetime > 0 && now.Sub(pc.created) >= p.cfg.MaxLifetime
	}
	p.mu.Lock()
	victims := p.idle.removeIf(func(pc *Pooled[C]) bool { return idleTooLong(pc) || tooOld(pc) }, nil)
	p.closing += len(victims)
	p.mu.Unlock()
	for _, pc := range victims {
		if tooOld(pc) {
			p.counts.closedAged.Add(1)
		} else {
			p.counts.closedIdle.Add(1)
		}
	}
	p.closeAndRelease(victims...)
	return len(victims)
}
