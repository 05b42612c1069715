package pool

import (
	"context"
	"errors"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestStress: 1,000 goroutines on a pool of capacity 4, with random context cancellations
// and timeouts, dial failures (fast and slow), settings that fail to apply or reset, and
// connections breaking in use. It must finish (no deadlock), never exceed capacity, never
// hand out a dead or shared connection, and leave nothing leaked.
func TestStress(t *testing.T) {
	const (
		goroutines = 1000
		rounds     = 20
		capacity   = 4
		bound      = 2 * time.Minute // far above a normal run; reaching it means a deadlock
	)
	d := &fakeDialer{}
	d.onDial = func(ctx context.Context) error {
		switch r := rand.IntN(100); {
		case r < 10:
			return errDialFailed
		case r < 15: // a slow dial that honours ctx
			return pause(ctx, time.Duration(rand.IntN(3000))*time.Microsecond)
		}
		return nil
	}
	d.onApply = func() error { return chance(5, errApplyFailed) }
	d.onReset = func() error { return chance(20, errResetFailed) }
	d.onClose = func() {
		switch r := rand.IntN(100); {
		case r < 2:
			time.Sleep(100 * time.Microsecond)
		case r < 30:
			runtime.Gosched()
		}
	}
	p := newTestPool(t, Config{Name: "StressPool", Capacity: capacity, WaitTimeout: 20 * time.Millisecond,
		MaxWaiters: 600, IdleTimeout: 50 * time.Millisecond}, d, Deps{})
	settings := []*Setting{nil, nil, {Query: "set a=1"}, {Query: "set b=2"}, {Query: "set c=3"}}

	var outcomes outcomeCounts
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range rounds {
				stressRound(t, p, settings[rand.IntN(len(settings))], &outcomes)
			}
		})
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	sampleInvariants(t, p, finished)
	select {
	case <-finished:
	case <-time.After(bound):
		buf := make([]byte, 1<<20)
		t.Fatalf("deadlock: not done after %v; stats %+v\n%s", bound, p.Stats(), buf[:runtime.Stack(buf, true)])
	}
	t.Logf("outcomes %+v; stats %+v", outcomes.snapshot(), p.Stats())

	if m := d.maxLive.Load(); m > capacity {
		t.Errorf("%d connections open or dialing at once, capacity %d", m, capacity)
	}
	if outcomes.ok.Load() == 0 {
		t.Errorf("no Get succeeded")
	}
	s := p.Stats()
	if s.InUse != 0 || s.Waiters != 0 || s.Open > capacity || s.Open != s.Idle {
		t.Errorf("after the run: %+v", s)
	}
	checkInvariants(t, p)
	idle := idleFakes(p)
	for _, c := range d.all() {
		if c.closed.Load() == idle[c] {
			t.Errorf("fake conn %d: closed=%v idle=%v; want exactly one", c.id, c.closed.Load(), idle[c])
		}
	}
	if int64(len(idle)) != d.live.Load() {
		t.Errorf("%d idle in the pool, %d fake connections open", len(idle), d.live.Load())
	}
	p.Close()
	if n := d.live.Load(); n != 0 {
		t.Errorf("%d fake connections open after Close", n)
	}
}

// stressRound is one Get, use and return with random trouble.
func stressRound(t *testing.T, p *Pool[*fakeConn], s *Setting, out *outcomeCounts) {
	ctx, cancel := randomCtx()
	defer cancel()
	pc, err := p.Get(ctx, s)
	if err != nil {
		out.count(t, err)
		return
	}
	out.ok.Add(1)
	c := pc.Conn()
	if n := c.holders.Add(1); n != 1 {
		t.Errorf("connection %d held by %d callers", c.id, n)
	}
	if c.IsClosed() {
		t.Errorf("Get handed out dead connection %d", c.id)
	}
	want := ""
	if s != nil {
		want = s.Query
	}
	if got := c.appliedQuery(); got != want {
		t.Errorf("connection %d carries %q, asked for %q", c.id, got, want)
	}
	switch r := rand.IntN(100); { // use it
	case r < 3:
		time.Sleep(time.Duration(1000+rand.IntN(2000)) * time.Microsecond)
	case r < 50:
		runtime.Gosched()
	}
	c.holders.Add(-1)
	switch r := rand.IntN(100); {
	case r < 5: // the connection dies while in use
		c.broken.Store(true)
		pc.Recycle()
	case r < 10: // killed, or left in an unknown state
		pc.Discard()
	default:
		pc.Recycle()
	}
}

// randomCtx returns a context that may already be done, may end at a random moment, or
// may outlive the pool's wait timeout.
func randomCtx() (context.Context, context.CancelFunc) {
	bg := context.Background()
	switch r := rand.IntN(100); {
	case r < 30:
		return context.WithCancel(bg)
	case r < 60:
		return context.WithTimeout(bg, time.Duration(rand.IntN(5000))*time.Microsecond)
	case r < 80:
		ctx, cancel := context.WithCancel(bg)
		stop := time.AfterFunc(time.Duration(rand.IntN(3000))*time.Microsecond, cancel)
		return ctx, func() { stop.Stop(); cancel() }
	case r < 90:
		ctx, cancel := context.WithCancel(bg)
		cancel()
		return ctx, cancel
	}
	return context.WithTimeout(bg, time.Minute)
}

// sampleInvariants checks the pool's invariants, and that it never exceeds capacity, until
// done is closed.
func sampleInvariants(t *testing.T, p *Pool[*fakeConn], done <-chan struct{}) {
	go func() {
		for {
			select {
			case <-done:
				return
			case <-time.After(time.Millisecond):
			}
			checkInvariants(t, p)
			if s := p.Stats(); s.Open > s.Capacity {
				t.Errorf("open %d > capacity %d", s.Open, s.Capacity)
			}
		}
	}()
}

type outcomeCounts struct {
	ok, timeout, full, ctx, dial, apply atomic.Int64
}

func (o *outcomeCounts) count(t *testing.T, err error) {
	switch {
	case errors.Is(err, ErrTimeout):
		o.timeout.Add(1)
	case errors.Is(err, ErrPoolFull):
		o.full.Add(1)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		o.ctx.Add(1)
	case errors.Is(err, errDialFailed):
		o.dial.Add(1)
	case errors.Is(err, errApplyFailed):
		o.apply.Add(1)
	default:
		t.Errorf("unexpected Get error: %v", err)
	}
}

func (o *outcomeCounts) snapshot() map[string]int64 {
	return map[string]int64{"ok": o.ok.Load(), "timeout": o.timeout.Load(), "full": o.full.Load(),
		"ctx": o.ctx.Load(), "dial": o.dial.Load(), "apply": o.apply.Load()}
}

func chance(percent int, err error) error {
	if rand.IntN(100) < percent {
		return err
	}
	return nil
}

func pause(ctx context.Context, d time.Duration) error {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
