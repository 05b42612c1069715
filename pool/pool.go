package pool

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Conn is what the pool manages: a MySQL connection, or a fake in tests.
type Conn interface {
	Close() error
	// IsClosed reports a connection that is broken (errno 2006/2013, EOF) or closed; the
	// pool never hands it out again.
	IsClosed() bool
}

// Connector dials a new connection. It must honour ctx: Get bounds it by the caller's
// deadline and Config.WaitTimeout.
type Connector[C Conn] func(ctx context.Context) (C, error)

// Setting is session state a connection can carry: the SET statements of a settings or
// reserved connection.
//
// Reuse policy: a connection is handed out only for a request with the same Setting (same
// Query) or, when clean, for a request without one. A connection going back with settings
// is kept, in a per-Query idle stack, so the next request with the same settings reuses it
// without a round trip. A request takes, in order: an idle connection with its exact
// settings; for a settings request, a clean idle one and applies them; a new connection
// (when under capacity); an idle connection with other settings, which is reset first
// (SettingResetter, else it is closed and redialed) and then given the requested ones.
// So a clean request never sees another request's session state.
type Setting struct {
	// Query establishes the state (e.g. "set @@sql_mode = '', @@time_zone = '+00:00'"). It
	// is also the Setting's identity: Settings with equal Query are interchangeable.
	Query string
	// ResetQuery undoes Query; "" lets the connection reset itself another way (e.g.
	// COM_RESET_CONNECTION). The pool itself never runs it: SettingResetter does.
	ResetQuery string
}

// SettingApplier is implemented by connections that can take session settings. Get with a
// Setting fails with ErrSettingsUnsupported for connections that do not implement it. When
// ApplySetting fails the connection's session state is unknown and the pool closes it.
type SettingApplier interface {
	ApplySetting(ctx context.Context, s *Setting) error
}

// SettingResetter is implemented by connections that can drop their session settings in
// place (COM_RESET_CONNECTION, or s.ResetQuery). Without it, or when it fails, the pool
// resets a connection by closing it and dialing a new one.
type SettingResetter interface {
	ResetSetting(ctx context.Context, s *Setting) error
}

// Deps are the pool's collaborators; nil fields get harmless defaults.
type Deps struct {
	Log      *zap.Logger           // nil: no logging
	Registry prometheus.Registerer // nil: metrics are not exported
	Clock    func() time.Time      // connection ages and wait times; nil: time.Now
	Labels   prometheus.Labels     // constant labels on every metric (keyspace, shard), besides pool
}

// Pool is a bounded pool of connections shared by concurrent callers.
//
// Invariants, each checked by the tests (see checkInvariants):
//   - open == inUse + idle + closing: every connection holds a slot from before it is dialed
//     until after its Close returns.
//   - A slot is taken only while open < capacity, so at most Capacity connections are ever
//     open or being dialed (after SetCapacity shrinks, extra ones close as they return).
//   - After every critical section, a queued waiter implies no idle connection and no free
//     slot: each event that frees one (return, discard, failed dial, reap, growth) serves the
//     queue before releasing mu, and Get checks and enqueues under the same lock, so nothing
//     is left idle while someone waits.
//   - Waiters are served strictly first in, first out, and never with a connection their
//     context has already given up on: the server skips them, and a waiter that finds its
//     context ended right after being served passes what it got on to the next waiter.
//   - A failed dial, reset or apply frees its slot and serves the next waiter, which then
//     dials itself; nobody waits on a slot that will never come.
//   - No I/O under mu: dialing, applying, resetting and closing happen outside it.
type Pool[C Conn] struct {
	cfg     Config // Capacity is the initial value only; see capacity
	connect Connector[C]
	log     *zap.Logger
	now     func() time.Time
	timed   bool // IdleTimeout or MaxLifetime set: connection times are tracked
	metrics *metrics

	// Errors built once, so overload and shutdown answer without allocating.
	errTimeout, errFull, errClosed, errCanceled, errDeadline error

	// mu guards the fields below and the mu-guarded fields of Pooled and waiter. It is
	// never held across I/O.
	mu       sync.Mutex
	capacity int
	open     int // slots taken: idle + in use + closing
	inUse    int // handed out, or being dialed/prepared for a Get
	closing  int // being closed by the pool; their slots are freed once closed
	idle     idleSet[C]
	waiters  waitQueue[C]
	closed   bool

	counts      counters
	waiterCache sync.Pool // finished *waiter[C], for reuse

	stop       chan struct{} // closed by Close: stops the reaper
	reaperDone chan struct{} // closed when the reaper has returned; nil without a reaper
}

// counters are monotonic event counts, readable without mu.
type counters struct {
	waits, waitNanos                      atomic.Int64
	timeouts, rejections, canceled        atomic.Int64
	dials, dialErrors                     atomic.Int64
	closedBroken, closedIdle, closedAged  atomic.Int64
	applies, resets, resetsByReconnecting atomic.Int64
}

// New returns an open pool. It dials nothing until asked. Close it to stop its reaper.
func New[C Conn](cfg Config, connect Connector[C], deps Deps) (*Pool[C], error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if connect == nil {
		return nil, &ConfigError{Pool: cfg.Name, Flag: "Connector", Rule: "must not be nil", Value: nil}
	}
	if deps.Log == nil {
		deps.Log = zap.NewNop()
	}
	if deps.Clock == nil {
		deps.Clock = time.Now
	}
	p := &Pool[C]{
		cfg:         cfg,
		connect:     connect,
		log:         deps.Log.With(zap.String("pool", cfg.Name)),
		now:         deps.Clock,
		timed:       cfg.IdleTimeout > 0 || cfg.MaxLifetime > 0,
		capacity:    cfg.Capacity,
		stop:        make(chan struct{}),
		errTimeout:  fmt.Errorf("%s: %w (waited %v)", cfg.Name, ErrTimeout, cfg.WaitTimeout),
		errFull:     fmt.Errorf("%s: %w (%d waiting)", cfg.Name, ErrPoolFull, cfg.MaxWaiters),
		errClosed:   fmt.Errorf("%s: %w", cfg.Name, ErrPoolClosed),
		errCanceled: fmt.Errorf("%s: waiting for a connection: %w", cfg.Name, context.Canceled),
		errDeadline: fmt.Errorf("%s: waiting for a connection: %w", cfg.Name, context.DeadlineExceeded),
	}
	m, err := newMetrics(cfg.Name, deps, p.Stats)
	if err != nil {
		return nil, err
	}
	p.metrics = m
	if every := reapInterval(cfg); every > 0 {
		p.reaperDone = make(chan struct{})
		go p.reaper(every)
	}
	return p, nil
}

// Name is Config.Name.
func (p *Pool[C]) Name() string { return p.cfg.Name }

// Get returns a connection carrying setting (nil: a clean one), waiting in line while the
// pool is at capacity. It never blocks past the caller's deadline nor past WaitTimeout
// (dialing included). The caller must give the connection back exactly once, with Recycle
// or Discard, and must not touch the Pooled afterwards. Errors: ErrTimeout, ErrPoolFull,
// ErrPoolClosed, an error wrapping ctx.Err(), or the Connector's / ApplySetting's error.
func (p *Pool[C]) Get(ctx context.Context, setting *Setting) (*Pooled[C], error) {
	if err := ctx.Err(); err != nil {
		return nil, p.ctxErr(err)
	}
	if setting != nil && setting.Query == "" {
		setting = nil
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, p.errClosed
	}
	pc, ok := p.acquireLocked(setting)
	if !ok {
		return p.wait(ctx, setting) // unlocks
	}
	p.mu.Unlock()
	if pc != nil && sameSetting(pc.setting, setting) && !pc.conn.IsClosed() {
		return pc, nil // the common case: no I/O, no allocation
	}
	return p.prepare(ctx, pc, setting, time.Time{})
}

// acquireLocked takes what a request for setting should get, in the order described on
// Setting, and counts it in use: an idle connection (which may still need its settings
// changed), or a reserved slot (nil, true) to dial. It returns false when the pool is at
// capacity with nothing idle.
func (p *Pool[C]) acquireLocked(setting *Setting) (*Pooled[C], bool) {
	pc := p.idle.popExact(setting)
	if pc == nil && setting != nil {
		pc = p.idle.popClean()
	}
	if pc == nil {
		if p.open < p.capacity {
			p.open++
			p.inUse++
			return nil, true
		}
		if pc = p.idle.popOther(setting); pc == nil {
			return nil, false
		}
	}
	pc.busy = true
	p.inUse++
	return pc, true
}

// wait queues the caller (p.mu held on entry, released on return) until it is served, its
// context ends or WaitTimeout passes.
func (p *Pool[C]) wait(ctx context.Context, setting *Setting) (*Pooled[C], error) {
	if p.cfg.MaxWaiters > 0 && p.waiters.n >= p.cfg.MaxWaiters {
		p.mu.Unlock()
		p.counts.rejections.Add(1)
		return nil, p.errFull
	}
	w := p.newWaiter(ctx, setting)
	p.waiters.pushBack(w)
	p.mu.Unlock()

	start, statStart := time.Now(), p.now()
	select {
	case <-w.ready:
	case <-ctx.Done():
	case <-w.expiry(p.cfg.WaitTimeout):
	}
	p.recordWait(statStart)
	ctxErr := ctx.Err() // checked after any hand-off: a served waiter whose caller left passes it on

	p.mu.Lock()
	p.waiters.remove(w) // no-op when served or dropped
	served, pc, err := w.served, w.pc, w.err
	var toClose *Pooled[C]
	if served && err == nil && ctxErr != nil {
		// Served, but the caller is gone: pass the connection or slot on, never use it.
		toClose = p.giveBackLocked(pc)
	}
	p.mu.Unlock()
	p.freeWaiter(w)

	switch {
	case !served && ctxErr == nil:
		p.counts.timeouts.Add(1)
		return nil, p.errTimeout
	case served && err != nil: // the pool closed
		return nil, err
	case ctxErr != nil:
		if toClose != nil {
			p.closeAndRelease(toClose)
		}
		p.counts.canceled.Add(1)
		return nil, p.ctxErr(ctxErr)
	}
	if pc != nil && sameSetting(pc.setting, setting) && !pc.conn.IsClosed() {
		return pc, nil
	}
	return p.prepare(ctx, pc, setting, start)
}

// dispatchLocked serves queued waiters, oldest first, while there is an idle connection or a
// free slot. Waiters whose context has ended are dropped unserved: their Get wakes on the
// context and returns its error.
func (p *Pool[C]) dispatchLocked() {
	for w := p.waiters.front(); w != nil; w = p.waiters.front() {
		if w.ctx.Err() != nil {
			p.waiters.remove(w)
			continue
		}
		pc, ok := p.acquireLocked(w.setting)
		if !ok {
			return
		}
		p.waiters.remove(w)
		w.served, w.pc = true, pc
		w.ready <- struct{}{}
	}
}

// giveBackLocked undoes an acquireLocked whose caller will not use the result: a connection
// goes back to idle (or, in a closed pool, is returned for closeAndRelease), a reserved slot
// is freed; either way the next waiter is served.
func (p *Pool[C]) giveBackLocked(pc *Pooled[C]) (toClose *Pooled[C]) {
	p.inUse--
	switch {
	case pc == nil:
		p.open--
	case p.closed:
		pc.busy = false
		p.closing++
		toClose = pc
	default:
		pc.busy = false
		p.idle.push(pc)
	}
	p.dispatchLocked()
	return toClose
}

// releaseSlot frees the slot of an in-use connection that is gone (closed, or never dialed).
func (p *Pool[C]) releaseSlot() {
	p.mu.Lock()
	p.inUse--
	p.open--
	p.dispatchLocked()
	p.mu.Unlock()
}

// closeAndRelease closes connections counted in p.closing, then frees their slots: a slot is
// reused only once its connection is really closed.
func (p *Pool[C]) closeAndRelease(pcs ...*Pooled[C]) {
	if len(pcs) == 0 {
		return
	}
	for _, pc := range pcs {
		p.closeConn(pc.conn)
	}
	p.mu.Lock()
	p.closing -= len(pcs)
	p.open -= len(pcs)
	p.dispatchLocked()
	p.mu.Unlock()
}

func (p *Pool[C]) recordWait(start time.Time) {
	d := p.now().Sub(start)
	p.counts.waits.Add(1)
	p.counts.waitNanos.Add(int64(d))
	p.metrics.observeWait(d)
}

// ctxErr wraps a context error, naming the pool.
func (p *Pool[C]) ctxErr(err error) error {
	switch err {
	case context.Canceled:
		return p.errCanceled
	case context.DeadlineExceeded:
		return p.errDeadline
	}
	return fmt.Errorf("%s: waiting for a connection: %w", p.cfg.Name, err)
}

func sameSetting(a, b *Setting) bool {
	return a == b || (a != nil && b != nil && a.Query == b.Query)
}
