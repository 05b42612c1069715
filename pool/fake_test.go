package pool

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var (
	errDialFailed  = errors.New("fake: dial failed")
	errApplyFailed = errors.New("fake: apply failed")
	errResetFailed = errors.New("fake: reset failed")
)

// fakeConn is a connection that counts what happens to it.
type fakeConn struct {
	id      int
	d       *fakeDialer
	closed  atomic.Bool
	broken  atomic.Bool
	applied atomic.Pointer[string] // Query of the applied Setting; nil: clean
	holders atomic.Int32           // callers holding it right now (the stress test checks ≤ 1)
}

func (c *fakeConn) Close() error {
	if c.d.onClose != nil {
		c.d.onClose() // a slow close (COM_QUIT on a busy socket) keeps the connection open longer
	}
	if c.closed.CompareAndSwap(false, true) {
		c.d.live.Add(-1)
	}
	return nil
}

func (c *fakeConn) IsClosed() bool { return c.closed.Load() || c.broken.Load() }

func (c *fakeConn) ApplySetting(ctx context.Context, s *Setting) error {
	c.d.applies.Add(1)
	if c.d.failApply.Load() {
		return errApplyFailed
	}
	if c.d.onApply != nil {
		if err := c.d.onApply(); err != nil {
			return err
		}
	}
	q := s.Query
	c.applied.Store(&q)
	return ctx.Err()
}

func (c *fakeConn) ResetSetting(ctx context.Context, _ *Setting) error {
	c.d.resets.Add(1)
	if c.d.failReset.Load() {
		return errResetFailed
	}
	if c.d.onReset != nil {
		if err := c.d.onReset(); err != nil {
			return err
		}
	}
	c.applied.Store(nil)
	return ctx.Err()
}

func (c *fakeConn) appliedQuery() string {
	if q := c.applied.Load(); q != nil {
		return *q
	}
	return ""
}

// plainConn supports no session settings.
type plainConn struct{ c *fakeConn }

func (p plainConn) Close() error   { return p.c.Close() }
func (p plainConn) IsClosed() bool { return p.c.IsClosed() }

// applyOnlyConn can take settings but not reset them: the pool must reconnect.
type applyOnlyConn struct{ c *fakeConn }

func (a applyOnlyConn) Close() error   { return a.c.Close() }
func (a applyOnlyConn) IsClosed() bool { return a.c.IsClosed() }
func (a applyOnlyConn) ApplySetting(ctx context.Context, s *Setting) error {
	return a.c.ApplySetting(ctx, s)
}

// fakeDialer makes fakeConns and tracks how many are open or being dialed at once.
type fakeDialer struct {
	// onDial, when set, runs inside every dial (after the dial counts as live); an error
	// fails the dial. It may block, honouring ctx.
	onDial func(ctx context.Context) error

	// onApply and onReset, when set, can fail ApplySetting / ResetSetting.
	onApply, onReset func() error
	// onClose, when set, runs at the start of every Close.
	onClose func()

	failApply, failReset atomic.Bool
	applies, resets      atomic.Int64
	dials                atomic.Int64
	live, maxLive        atomic.Int64

	mu    sync.Mutex
	conns []*fakeConn
}

func (d *fakeDialer) dial(ctx context.Context) (*fakeConn, error) {
	n := d.live.Add(1)
	for m := d.maxLive.Load(); n > m && !d.maxLive.CompareAndSwap(m, n); m = d.maxLive.Load() {
	}
	d.dials.Add(1)
	err := ctx.Err()
	if err == nil && d.onDial != nil {
		err = d.onDial(ctx)
	}
	if err != nil {
		d.live.Add(-1)
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	c := &fakeConn{id: len(d.conns) + 1, d: d}
	d.conns = append(d.conns, c)
	return c, nil
}

func (d *fakeDialer) all() []*fakeConn {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]*fakeConn(nil), d.conns...)
}

func connector[C Conn](d *fakeDialer, wrap func(*fakeConn) C) Connector[C] {
	return func(ctx context.Context) (C, error) {
		c, err := d.dial(ctx)
		if err != nil {
			var zero C
			return zero, err
		}
		return wrap(c), nil
	}
}

// fakeClock is a settable pool clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// newTestPool returns a pool of *fakeConn closed at the end of the test.
func newTestPool(t testing.TB, cfg Config, d *fakeDialer, deps Deps) *Pool[*fakeConn] {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "TestPool"
	}
	p, err := New(cfg, connector(d, func(c *fakeConn) *fakeConn { return c }), deps)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(p.Close)
	return p
}

// checkInvariants verifies the Pool's documented invariants at a quiet moment.
func checkInvariants[C Conn](t testing.TB, p *Pool[C]) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	idle := p.idle.len()
	if p.open != p.inUse+idle+p.closing {
		t.Errorf("open %d != in use %d + idle %d + closing %d", p.open, p.inUse, idle, p.closing)
	}
	if p.waiters.n > 0 && (idle > 0 || p.open < p.capacity) {
		t.Errorf("%d waiters while idle=%d open=%d capacity=%d", p.waiters.n, idle, p.open, p.capacity)
	}
	n := 0
	for w := p.waiters.front(); w != nil; w = w.next {
		n++
	}
	if n != p.waiters.n {
		t.Errorf("waiter queue holds %d, count says %d", n, p.waiters.n)
	}
	for _, pc := range p.idle.drain(nil) {
		if pc.busy {
			t.Errorf("idle connection marked busy")
		}
		p.idle.push(pc)
	}
}

// idleFakes returns the fake connections idle in p.
func idleFakes(p *Pool[*fakeConn]) map[*fakeConn]bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[*fakeConn]bool{}
	for _, pc := range p.idle.drain(nil) {
		out[pc.conn] = true
		p.idle.push(pc)
	}
	return out
}

// waitFor polls cond until it holds, failing the test after 10s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// getAsync runs Get in a goroutine; the result arrives on the returned channel.
type getResult struct {
	pc  *Pooled[*fakeConn]
	err error
}

func getAsync(ctx context.Context, p *Pool[*fakeConn], s *Setting) <-chan getResult {
	ch := make(chan getResult, 1)
	go func() {
		pc, err := p.Get(ctx, s)
		ch <- getResult{pc, err}
	}()
	return ch
}

// startWaiter starts a Get and returns once it is queued (Waiters reaches want).
func startWaiter(t testing.TB, ctx context.Context, p *Pool[*fakeConn], s *Setting, want int) <-chan getResult {
	t.Helper()
	ch := getAsync(ctx, p, s)
	waitFor(t, "the Get to queue", func() bool { return p.Stats().Waiters == want })
	return ch
}

// waitClosed waits for ch to close, failing the test after 10s.
func waitClosed(t testing.TB, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

func recv(t testing.TB, ch <-chan getResult) getResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("Get did not return")
		return getResult{}
	}
}

func mustGet(t testing.TB, p *Pool[*fakeConn], s *Setting) *Pooled[*fakeConn] {
	t.Helper()
	pc, err := p.Get(context.Background(), s)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	return pc
}
