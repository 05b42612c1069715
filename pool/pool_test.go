package pool

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/rpcerr"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestConfigValidate(t *testing.T) {
	ok := DefaultConfig("ConnPool")
	for _, tt := range []struct {
		name     string
		mutate   func(*Config)
		wantFlag string // "" = valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"no name", func(c *Config) { c.Name = "" }, "Config.Name"},
		{"zero capacity", func(c *Config) { c.Capacity = 0 }, "--queryserver-config-pool-size"},
		{"stream capacity", func(c *Config) { c.Name, c.Capacity = "StreamConnPool", -1 }, "--queryserver-config-stream-pool-size"},
		{"tx capacity", func(c *Config) { c.Name, c.Capacity = "TransactionPool", 0 }, "--queryserver-config-transaction-cap"},
		{"negative wait", func(c *Config) { c.WaitTimeout = -time.Second }, "--queryserver-config-query-pool-timeout"},
		{"tx negative wait", func(c *Config) { c.Name, c.WaitTimeout = "TransactionPool", -1 }, "--queryserver-config-txpool-timeout"},
		{"negative waiters", func(c *Config) { c.MaxWaiters = -1 }, "--queryserver-config-query-pool-waiter-cap"},
		{"negative idle", func(c *Config) { c.IdleTimeout = -1 }, "--queryserver-config-idle-timeout"},
		{"negative lifetime", func(c *Config) { c.MaxLifetime = -1 }, "--queryserver-config-pool-conn-max-lifetime"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.mutate(&c)
			err := c.Validate()
			if tt.wantFlag == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			var ce *ConfigError
			if !errors.Is(err, ErrInvalidConfig) || !errors.As(err, &ce) || ce.Flag != tt.wantFlag {
				t.Fatalf("Validate = %v, want a ConfigError for %s", err, tt.wantFlag)
			}
		})
	}
	for _, name := range []string{"ConnPool", "StreamConnPool", "TransactionPool", "FoundRowsPool", "DbaPool", "Other"} {
		if err := DefaultConfig(name).Validate(); err != nil {
			t.Errorf("DefaultConfig(%q): %v", name, err)
		}
	}
}

func TestNewRejects(t *testing.T) {
	_, err := New[*fakeConn](Config{Name: "P", Capacity: 1}, nil, Deps{})
	if !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("nil connector: %v", err)
	}
	_, err = New(Config{Name: "P"}, connector(&fakeDialer{}, func(c *fakeConn) *fakeConn { return c }), Deps{})
	if !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("zero capacity: %v", err)
	}
}

func TestGetRecycleReuses(t *testing.T) {
	d := &fakeDialer{}
	p := newTestPool(t, Config{Capacity: 2}, d, Deps{})
	a := mustGet(t, p, nil)
	a.Recycle()
	b := mustGet(t, p, nil)
	if a != b || d.dials.Load() != 1 {
		t.Fatalf("second Get: same=%v dials=%d, want the idle connection reused", a == b, d.dials.Load())
	}
	c := mustGet(t, p, nil)
	if c == b || d.dials.Load() != 2 {
		t.Fatalf("concurrent Get shares a connection or did not dial")
	}
	if s := p.Stats(); s.InUse != 2 || s.Open != 2 || s.Idle != 0 {
		t.Fatalf("stats %+v", s)
	}
	checkInvariants(t, p)
	b.Recycle()
	c.Recycle()
	if s := p.Stats(); s.InUse != 0 || s.Open != 2 || s.Idle != 2 {
		t.Fatalf("stats %+v", s)
	}
	checkInvariants(t, p)
}

// errorCase is one way Get fails.
type errorCase struct {
	name     string
	cfg      Config
	setup    func(t *testing.T, p *Pool[*fakeConn], d *fakeDialer) // leaves the pool in the state to test
	ctx      func() (context.Context, context.CancelFunc)
	setting  *Setting
	want     error
	wantCode vtrpcpb.Code
}

func errorCases() []errorCase {
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	return []errorCase{
		{
			name: "closed", cfg: Config{Capacity: 1},
			setup: func(_ *testing.T, p *Pool[*fakeConn], _ *fakeDialer) { p.Close() },
			want:  ErrPoolClosed, wantCode: vtrpcpb.Code_UNAVAILABLE,
		},
		{
			name: "wait timeout", cfg: Config{Capacity: 1, WaitTimeout: 20 * time.Millisecond},
			setup: holdAll,
			want:  ErrTimeout, wantCode: vtrpcpb.Code_RESOURCE_EXHAUSTED,
		},
		{
			name: "waiter cap", cfg: Config{Capacity: 1, MaxWaiters: 1},
			setup: func(t *testing.T, p *Pool[*fakeConn], d *fakeDialer) {
				holdAll(t, p, d)
				ctx, cancel := context.WithCancel(context.Background())
				ch := startWaiter(t, ctx, p, nil, 1)
				t.Cleanup(func() { cancel(); recv(t, ch) })
			},
			want: ErrPoolFull, wantCode: vtrpcpb.Code_RESOURCE_EXHAUSTED,
		},
		{
			name: "ctx deadline while waiting", cfg: Config{Capacity: 1, WaitTimeout: time.Hour},
			setup: holdAll,
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 20*time.Millisecond)
			},
			want: context.DeadlineExceeded, wantCode: vtrpcpb.Code_DEADLINE_EXCEEDED,
		},
		{
			name: "ctx already canceled", cfg: Config{Capacity: 1},
			ctx:  func() (context.Context, context.CancelFunc) { return canceled, func() {} },
			want: context.Canceled, wantCode: vtrpcpb.Code_CANCELED,
		},
		{
			name: "dial fails", cfg: Config{Capacity: 1},
			setup: func(_ *testing.T, _ *Pool[*fakeConn], d *fakeDialer) {
				d.onDial = func(context.Context) error { return errDialFailed }
			},
			want: errDialFailed, wantCode: vtrpcpb.Code_UNKNOWN,
		},
		{
			name: "dial outlasts wait timeout", cfg: Config{Capacity: 1, WaitTimeout: 20 * time.Millisecond},
			setup: func(_ *testing.T, _ *Pool[*fakeConn], d *fakeDialer) {
				d.onDial = func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
			},
			want: ErrTimeout, wantCode: vtrpcpb.Code_RESOURCE_EXHAUSTED,
		},
		{
			name: "apply fails", cfg: Config{Capacity: 1}, setting: &Setting{Query: "set a=1"},
			setup: func(_ *testing.T, _ *Pool[*fakeConn], d *fakeDialer) { d.failApply.Store(true) },
			want:  errApplyFailed, wantCode: vtrpcpb.Code_UNKNOWN,
		},
	}
}

// TestErrors checks each error Get returns, what it matches and its vtrpc code.
func TestErrors(t *testing.T) {
	for _, tt := range errorCases() {
		t.Run(tt.name, func(t *testing.T) {
			d := &fakeDialer{}
			p := newTestPool(t, tt.cfg, d, Deps{})
			if tt.setup != nil {
				tt.setup(t, p, d)
			}
			ctx, cancel := context.Background(), context.CancelFunc(func() {})
			if tt.ctx != nil {
				ctx, cancel = tt.ctx()
			}
			defer cancel()
			pc, err := p.Get(ctx, tt.setting)
			if !errors.Is(err, tt.want) {
				if pc != nil {
					pc.Recycle()
				}
				t.Fatalf("Get = %v, want %v", err, tt.want)
			}
			if got := rpcerr.Code(err); got != tt.wantCode {
				t.Errorf("rpcerr.Code = %v, want %v", got, tt.wantCode)
			}
			if pc != nil {
				t.Errorf("Get returned a connection with an error")
			}
			checkInvariants(t, p)
		})
	}
}

// holdAll takes every slot of p until the test ends.
func holdAll(t *testing.T, p *Pool[*fakeConn], _ *fakeDialer) {
	t.Helper()
	var held []*Pooled[*fakeConn]
	for range p.Stats().Capacity {
		held = append(held, mustGet(t, p, nil))
	}
	t.Cleanup(func() {
		for _, pc := range held {
			pc.Recycle()
		}
	})
}

// TestErrorsDistinct: each sentinel matches itself only, and a ctx error is not a timeout.
func TestErrorsDistinct(t *testing.T) {
	all := []error{ErrTimeout, ErrPoolFull, ErrPoolClosed, ErrSettingsUnsupported, ErrInvalidConfig}
	for i, a := range all {
		for j, b := range all {
			if errors.Is(a, b) != (i == j) {
				t.Errorf("errors.Is(%v, %v) = %v", a, b, i != j)
			}
		}
	}
	p := newTestPool(t, Config{Capacity: 1}, &fakeDialer{}, Deps{})
	if err := p.ctxErr(context.DeadlineExceeded); errors.Is(err, ErrTimeout) {
		t.Errorf("ctx error matches ErrTimeout")
	}
}

// TestExpiredWaiterSkipped: a connection coming back skips a waiter whose ctx has ended and
// goes to the next one.
func TestExpiredWaiterSkipped(t *testing.T) {
	d := &fakeDialer{}
	p := newTestPool(t, Config{Capacity: 1}, d, Deps{})
	held := mustGet(t, p, nil)
	ctxA, cancelA := context.WithCancel(context.Background())
	a := startWaiter(t, ctxA, p, nil, 1)
	b := startWaiter(t, context.Background(), p, nil, 2)
	cancelA()
	held.Recycle()
	if r := recv(t, a); !errors.Is(r.err, context.Canceled) || r.pc != nil {
		t.Fatalf("gone waiter: %v, want its ctx error and no connection", r.err)
	}
	r := recv(t, b)
	if r.err != nil || r.pc != held {
		t.Fatalf("live waiter: %v, want the returned connection", r.err)
	}
	r.pc.Recycle()
	checkInvariants(t, p)
}

// scriptedCtx is a context whose Err follows a script set by the test, to reach the moment
// between a hand-off and the waiter's own check. Its Done channel never closes.
type scriptedCtx struct {
	context.Context
	script atomic.Pointer[func() error] // nil: live
}

func (c *scriptedCtx) Err() error {
	if f := c.script.Load(); f != nil {
		return (*f)()
	}
	return nil
}

// after returns a script answering nil to the first n calls and then running then.
func after(n int32, then func() error) *func() error {
	var calls atomic.Int32
	f := func() error {
		if calls.Add(1) <= n {
			return nil
		}
		return then()
	}
	return &f
}

// TestWaiterGoneAfterHandoff: a waiter served a connection whose ctx ends before it runs
// passes the connection on to the next waiter instead of returning or leaking it.
func TestWaiterGoneAfterHandoff(t *testing.T) {
	for _, tt := range []struct {
		name   string
		holdBy func(*Pooled[*fakeConn]) // how the holder gives up its slot
		want   int64                    // dials by the end
	}{
		{"connection handed on", (*Pooled[*fakeConn]).Recycle, 1},
		{"slot handed on", (*Pooled[*fakeConn]).Discard, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := &fakeDialer{}
			p := newTestPool(t, Config{Capacity: 1}, d, Deps{})
			held := mustGet(t, p, nil)
			ctxA := &scriptedCtx{Context: context.Background()}
			a := startWaiter(t, ctxA, p, nil, 1)
			b := startWaiter(t, context.Background(), p, nil, 2)
			// The hand-off's check passes; A's own check after it finds the caller gone.
			ctxA.script.Store(after(1, func() error { return context.Canceled }))
			tt.holdBy(held)
			if r := recv(t, a); !errors.Is(r.err, context.Canceled) || r.pc != nil {
				t.Fatalf("A = %v, want its ctx error and no connection", r.err)
			}
			r := recv(t, b)
			if r.err != nil {
				t.Fatalf("B: %v", r.err)
			}
			if d.dials.Load() != tt.want {
				t.Errorf("dials = %d, want %d", d.dials.Load(), tt.want)
			}
			r.pc.Recycle()
			if s := p.Stats(); s.Canceled != 1 || s.InUse != 0 || s.Open != 1 {
				t.Errorf("stats %+v", s)
			}
			checkInvariants(t, p)
		})
	}
}

// TestWaiterGoneAfterHandoffPoolClosed: the connection a departed waiter passes on after the
// pool closed is closed, not parked in the closed pool.
func TestWaiterGoneAfterHandoffPoolClosed(t *testing.T) {
	d := &fakeDialer{}
	p := newTestPool(t, Config{Capacity: 1}, d, Deps{})
	held := mustGet(t, p, nil)
	ctxA := &scriptedCtx{Context: context.Background()}
	a := startWaiter(t, ctxA, p, nil, 1)
	checking, closed := make(chan struct{}), make(chan struct{})
	ctxA.script.Store(after(1, func() error { close(checking); <-closed; return context.Canceled }))
	held.Recycle() // served to A; A blocks in its own check
	waitClosed(t, checking, "A's check after the hand-off")
	p.Close()
	close(closed)
	if r := recv(t, a); !errors.Is(r.err, context.Canceled) {
		t.Fatalf("A = %v", r.err)
	}
	if s := p.Stats(); s.Open != 0 || s.Idle != 0 || d.live.Load() != 0 {
		t.Fatalf("connection leaked into the closed pool: %+v, fake open %d", s, d.live.Load())
	}
}

// TestFailedDialWakesWaiter: a dial failing while others wait frees the slot and the next
// waiter dials for itself.
func TestFailedDialWakesWaiter(t *testing.T) {
	d := &fakeDialer{}
	release := make(chan error)
	var first atomic.Bool
	d.onDial = func(ctx context.Context) error {
		if first.CompareAndSwap(false, true) {
			return <-release
		}
		return nil
	}
	p := newTestPool(t, Config{Capacity: 1}, d, Deps{})
	dialing := getAsync(context.Background(), p, nil)
	waitFor(t, "the first dial", func() bool { return d.dials.Load() == 1 })
	waiter := startWaiter(t, context.Background(), p, nil, 1)
	release <- errDialFailed
	if r := recv(t, dialing); !errors.Is(r.err, errDialFailed) {
		t.Fatalf("dialing Get = %v, want the dial error", r.err)
	}
	r := recv(t, waiter)
	if r.err != nil {
		t.Fatalf("waiter: %v", r.err)
	}
	r.pc.Recycle()
	if s := p.Stats(); s.Dials != 2 || s.DialErrors != 1 || s.Open != 1 || s.InUse != 0 {
		t.Errorf("stats %+v", s)
	}
	checkInvariants(t, p)
}

func TestBrokenConnections(t *testing.T) {
	for _, tt := range []struct {
		name       string
		run        func(t *testing.T, p *Pool[*fakeConn]) *fakeConn // returns the broken conn
		wantBroken int64
	}{
		{"broken in use, recycled", func(t *testing.T, p *Pool[*fakeConn]) *fakeConn {
			pc := mustGet(t, p, nil)
			pc.Conn().broken.Store(true)
			pc.Recycle()
			return pc.Conn()
		}, 1},
		{"broken while idle", func(t *testing.T, p *Pool[*fakeConn]) *fakeConn {
			pc := mustGet(t, p, nil)
			pc.Recycle()
			pc.Conn().broken.Store(true)
			next := mustGet(t, p, nil)
			if next.Conn() == pc.Conn() || next.Conn().IsClosed() {
				t.Errorf("Get handed out the broken connection")
			}
			next.Recycle()
			return pc.Conn()
		}, 1},
		{"discarded", func(t *testing.T, p *Pool[*fakeConn]) *fakeConn {
			pc := mustGet(t, p, nil)
			pc.Discard()
			return pc.Conn()
		}, 0},
		{"broken while handed to a waiter", func(t *testing.T, p *Pool[*fakeConn]) *fakeConn {
			pc := mustGet(t, p, nil)
			w := startWaiter(t, context.Background(), p, nil, 1)
			pc.Conn().broken.Store(true)
			pc.Recycle()
			r := recv(t, w)
			if r.err != nil || r.pc.Conn().IsClosed() {
				t.Fatalf("waiter got %v / a dead connection", r.err)
			}
			r.pc.Recycle()
			return pc.Conn()
		}, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := &fakeDialer{}
			p := newTestPool(t, Config{Capacity: 1}, d, Deps{})
			bad := tt.run(t, p)
			if !bad.closed.Load() {
				t.Errorf("broken connection not closed")
			}
			if s := p.Stats(); s.ClosedBroken != tt.wantBroken || s.InUse != 0 {
				t.Errorf("stats %+v", s)
			}
			pc := mustGet(t, p, nil) // the slot is refilled on demand
			if pc.Conn() == bad || pc.Conn().IsClosed() {
				t.Errorf("got the dead connection back")
			}
			pc.Recycle()
			checkInvariants(t, p)
		})
	}
}

func TestFIFO(t *testing.T) {
	p := newTestPool(t, Config{Capacity: 1}, &fakeDialer{}, Deps{})
	held := mustGet(t, p, nil)
	const n = 8
	var chans []<-chan getResult
	for i := range n {
		chans = append(chans, startWaiter(t, context.Background(), p, nil, i+1))
	}
	held.Recycle()
	for i, ch := range chans { // each waiter is served only after the one before recycles
		r := recv(t, ch)
		if r.err != nil {
			t.Fatalf("waiter %d: %v", i, r.err)
		}
		for j := i + 1; j < n; j++ {
			select {
			case <-chans[j]:
				t.Fatalf("waiter %d served before waiter %d", j, i)
			default:
			}
		}
		r.pc.Recycle()
	}
	checkInvariants(t, p)
}

// TestGetBounded: Get returns within min(ctx deadline, WaitTimeout), waiting or dialing.
func TestGetBounded(t *testing.T) {
	blockingDial := func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
	for _, tt := range []struct {
		name   string
		wait   time.Duration
		ctxTO  time.Duration
		hold   bool
		onDial func(context.Context) error
		want   error
	}{
		{"wait timeout first", 30 * time.Millisecond, time.Hour, true, nil, ErrTimeout},
		{"ctx first", time.Hour, 30 * time.Millisecond, true, nil, context.DeadlineExceeded},
		{"no wait timeout", 0, 30 * time.Millisecond, true, nil, context.DeadlineExceeded},
		{"dial: wait timeout first", 30 * time.Millisecond, time.Hour, false, blockingDial, ErrTimeout},
		{"dial: ctx first", time.Hour, 30 * time.Millisecond, false, blockingDial, context.DeadlineExceeded},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := &fakeDialer{}
			p := newTestPool(t, Config{Capacity: 1, WaitTimeout: tt.wait}, d, Deps{})
			if tt.hold {
				holdAll(t, p, d)
			}
			d.onDial = tt.onDial
			ctx, cancel := context.WithTimeout(context.Background(), tt.ctxTO)
			defer cancel()
			start := time.Now()
			_, err := p.Get(ctx, nil)
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("Get took %v", took)
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Get = %v, want %v", err, tt.want)
			}
			checkInvariants(t, p)
		})
	}
}

func TestCloseRelease(t *testing.T) {
	d := &fakeDialer{}
	p := newTestPool(t, Config{Capacity: 2, IdleTimeout: time.Hour}, d, Deps{})
	idle := mustGet(t, p, nil)
	held := mustGet(t, p, nil)
	idle.Recycle()
	p.Close()
	if !idle.Conn().closed.Load() || held.Conn().closed.Load() {
		t.Fatalf("Close must close idle connections and leave lent ones to their holder")
	}
	if _, err := p.Get(context.Background(), nil); !errors.Is(err, ErrPoolClosed) {
		t.Fatalf("Get after Close = %v", err)
	}
	if err := p.SetCapacity(3); !errors.Is(err, ErrPoolClosed) {
		t.Fatalf("SetCapacity after Close = %v", err)
	}
	held.Recycle()
	if !held.Conn().closed.Load() || d.live.Load() != 0 {
		t.Fatalf("connection returned after Close not closed")
	}
	if s := p.Stats(); s.Open != 0 || s.InUse != 0 || s.Idle != 0 {
		t.Fatalf("stats after Close %+v", s)
	}
	p.Close() // again: no-op
}

func TestCloseFailsWaiters(t *testing.T) {
	d := &fakeDialer{}
	p := newTestPool(t, Config{Capacity: 1}, d, Deps{})
	held := mustGet(t, p, nil)
	var ws []<-chan getResult
	for i := range 3 {
		ws = append(ws, startWaiter(t, context.Background(), p, nil, i+1))
	}
	p.Close()
	for _, w := range ws {
		if r := recv(t, w); !errors.Is(r.err, ErrPoolClosed) {
			t.Fatalf("waiter = %v, want ErrPoolClosed", r.err)
		}
	}
	held.Discard()
	if s := p.Stats(); s.Open != 0 || s.Waiters != 0 || d.live.Load() != 0 {
		t.Fatalf("stats after Close %+v", s)
	}
}

func TestMisuseIgnored(t *testing.T) {
	p := newTestPool(t, Config{Capacity: 1}, &fakeDialer{}, Deps{})
	pc := mustGet(t, p, nil)
	pc.Recycle()
	pc.Recycle()
	pc.Discard()
	if s := p.Stats(); s.Open != 1 || s.Idle != 1 || s.InUse != 0 {
		t.Fatalf("double return changed the accounting: %+v", s)
	}
	checkInvariants(t, p)
}
