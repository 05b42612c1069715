package pool

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

func TestSetCapacity(t *testing.T) {
	for _, tt := range []struct {
		name string
		from int
		run  func(t *testing.T, p *Pool[*fakeConn], d *fakeDialer)
	}{
		{"shrink closes idle connections now", 4, func(t *testing.T, p *Pool[*fakeConn], d *fakeDialer) {
			held := getN(t, p, 4)
			for _, pc := range held {
				pc.Recycle()
			}
			mustSetCapacity(t, p, 2)
			expectStats(t, p, Stats{Capacity: 2, Open: 2, Idle: 2})
			if d.live.Load() != 2 {
				t.Errorf("%d fake connections open, want 2", d.live.Load())
			}
		}},
		{"shrink closes lent connections as they return", 3, func(t *testing.T, p *Pool[*fakeConn], d *fakeDialer) {
			held := getN(t, p, 3)
			mustSetCapacity(t, p, 1)
			expectStats(t, p, Stats{Capacity: 1, Open: 3, InUse: 3})
			held[0].Recycle()
			held[1].Recycle()
			expectStats(t, p, Stats{Capacity: 1, Open: 1, InUse: 1})
			held[2].Recycle()
			expectStats(t, p, Stats{Capacity: 1, Open: 1, Idle: 1})
			if !held[0].Conn().closed.Load() || !held[1].Conn().closed.Load() || held[2].Conn().closed.Load() {
				t.Errorf("wrong connections closed")
			}
		}},
		{"growing serves waiters at once", 1, func(t *testing.T, p *Pool[*fakeConn], d *fakeDialer) {
			held := mustGet(t, p, nil)
			w1 := startWaiter(t, context.Background(), p, nil, 1)
			w2 := startWaiter(t, context.Background(), p, nil, 2)
			mustSetCapacity(t, p, 3)
			for _, w := range []<-chan getResult{w1, w2} {
				r := recv(t, w)
				if r.err != nil {
					t.Fatal(r.err)
				}
				r.pc.Recycle()
			}
			held.Recycle()
			expectStats(t, p, Stats{Capacity: 3, Open: 3, Idle: 3})
		}},
		{"shrinking below lent count keeps waiters waiting for a real slot", 2, func(t *testing.T, p *Pool[*fakeConn], d *fakeDialer) {
			held := getN(t, p, 2)
			w := startWaiter(t, context.Background(), p, nil, 1)
			mustSetCapacity(t, p, 1)
			held[0].Recycle() // closed: still one open at capacity 1
			expectStats(t, p, Stats{Capacity: 1, Open: 1, InUse: 1, Waiters: 1})
			held[1].Recycle()
			r := recv(t, w)
			if r.err != nil || r.pc != held[1] {
				t.Fatalf("waiter: %v", r.err)
			}
			r.pc.Recycle()
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := &fakeDialer{}
			p := newTestPool(t, Config{Capacity: tt.from}, d, Deps{})
			tt.run(t, p, d)
			checkInvariants(t, p)
		})
	}
	p := newTestPool(t, Config{Name: "TransactionPool", Capacity: 1}, &fakeDialer{}, Deps{})
	var ce *ConfigError
	if err := p.SetCapacity(0); !errors.Is(err, ErrInvalidConfig) || !errors.As(err, &ce) || ce.Flag != "--queryserver-config-transaction-cap" {
		t.Errorf("SetCapacity(0) = %v", err)
	}
}

// TestSetCapacityUnderLoad resizes the pool while callers hammer it: the fake never sees
// more connections than the largest capacity, and once things settle the pool fits the last.
func TestSetCapacityUnderLoad(t *testing.T) {
	d := &fakeDialer{}
	p := newTestPool(t, Config{Capacity: 4, WaitTimeout: 50 * time.Millisecond}, d, Deps{})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				pc, err := p.Get(context.Background(), nil)
				if err != nil {
					if !errors.Is(err, ErrTimeout) {
						t.Errorf("Get: %v", err)
					}
					continue
				}
				if pc.Conn().IsClosed() {
					t.Errorf("got a closed connection")
				}
				pc.Recycle()
			}
		})
	}
	caps := []int{8, 2, 5, 1, 6, 3}
	for i := range 60 {
		mustSetCapacity(t, p, caps[i%len(caps)])
		if i%7 == 0 {
			time.Sleep(time.Millisecond) // let callers run between some resizes
		}
		checkInvariants(t, p)
	}
	close(stop)
	wg.Wait()
	if m := d.maxLive.Load(); m > 8 {
		t.Errorf("%d connections open at once, largest capacity 8", m)
	}
	final := caps[59%len(caps)]
	if s := p.Stats(); s.Open > final || s.InUse != 0 || int64(s.Open) != d.live.Load() {
		t.Errorf("after settling at %d: %+v, fake open %d", final, s, d.live.Load())
	}
	checkInvariants(t, p)
}

func TestIdleAndLifetime(t *testing.T) {
	const idleTO, life = 10 * time.Minute, time.Hour
	for _, tt := range []struct {
		name      string
		cfg       Config
		run       func(t *testing.T, p *Pool[*fakeConn], clk *fakeClock)
		wantStats Stats // only the fields compared by expectClosed
	}{
		{"idle past the timeout are closed", Config{IdleTimeout: idleTO}, func(t *testing.T, p *Pool[*fakeConn], clk *fakeClock) {
			recycleAll(getN(t, p, 3))
			clk.Advance(idleTO - time.Second)
			reapExpect(t, p, 0)
			clk.Advance(time.Second)
			reapExpect(t, p, 3)
		}, Stats{ClosedIdle: 3}},
		{"recently used are kept", Config{IdleTimeout: idleTO}, func(t *testing.T, p *Pool[*fakeConn], clk *fakeClock) {
			held := getN(t, p, 2)
			held[0].Recycle()
			clk.Advance(6 * time.Minute)
			held[1].Recycle()
			clk.Advance(5 * time.Minute)
			reapExpect(t, p, 1)
			if pc := mustGet(t, p, nil); pc != held[1] {
				t.Errorf("the recently used connection was not kept")
			} else {
				pc.Recycle()
			}
		}, Stats{ClosedIdle: 1, Open: 1, Idle: 1}},
		{"settings connections age too", Config{IdleTimeout: idleTO}, func(t *testing.T, p *Pool[*fakeConn], clk *fakeClock) {
			mustGet(t, p, &Setting{Query: "set a=1"}).Recycle()
			clk.Advance(idleTO / 2)
			mustGet(t, p, nil).Recycle() // dials a clean one, the settings one stays idle
			clk.Advance(idleTO / 2)
			reapExpect(t, p, 1)
			if pc := mustGet(t, p, nil); pc.Setting() != nil {
				t.Errorf("the clean connection was reaped instead")
			} else {
				pc.Recycle()
			}
		}, Stats{ClosedIdle: 1, Open: 1, Idle: 1}},
		{"too old on return is closed", Config{MaxLifetime: life}, func(t *testing.T, p *Pool[*fakeConn], clk *fakeClock) {
			a, b := mustGet(t, p, nil), mustGet(t, p, nil)
			clk.Advance(life)
			b.Recycle()
			expectStats(t, p, Stats{Capacity: 4, Open: 1, InUse: 1})
			a.Recycle() // dialed at the same time: also too old

		}, Stats{ClosedLifetime: 2}},
		{"young enough on return is kept", Config{MaxLifetime: life}, func(t *testing.T, p *Pool[*fakeConn], clk *fakeClock) {
			pc := mustGet(t, p, nil)
			clk.Advance(life - time.Second)
			pc.Recycle()
		}, Stats{Open: 1, Idle: 1}},
		{"too old while idle is reaped", Config{MaxLifetime: life, IdleTimeout: 2 * life}, func(t *testing.T, p *Pool[*fakeConn], clk *fakeClock) {
			mustGet(t, p, nil).Recycle()
			clk.Advance(life)
			reapExpect(t, p, 1)
		}, Stats{ClosedLifetime: 1}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			clk := newFakeClock()
			d := &fakeDialer{}
			cfg := tt.cfg
			cfg.Capacity = 4
			p := newTestPool(t, cfg, d, Deps{Clock: clk.Now})
			tt.run(t, p, clk)
			s := p.Stats()
			got := Stats{ClosedIdle: s.ClosedIdle, ClosedLifetime: s.ClosedLifetime, Open: s.Open, Idle: s.Idle}
			if got != tt.wantStats {
				t.Errorf("stats %+v, want %+v", got, tt.wantStats)
			}
			if int64(s.Open) != d.live.Load() {
				t.Errorf("pool counts %d open, %d fake connections open", s.Open, d.live.Load())
			}
			checkInvariants(t, p)
		})
	}
}

// TestReaperRuns: the pool's own reaper goroutine closes expired idle connections.
func TestReaperRuns(t *testing.T) {
	clk := newFakeClock()
	d := &fakeDialer{}
	p := newTestPool(t, Config{Capacity: 2, IdleTimeout: 100 * time.Millisecond}, d, Deps{Clock: clk.Now})
	recycleAll(getN(t, p, 2))
	clk.Advance(time.Hour)
	// The counter moves when the reaper decides; the connections close right after.
	waitFor(t, "the reaper", func() bool { return p.Stats().ClosedIdle == 2 && d.live.Load() == 0 })
}

func TestReapInterval(t *testing.T) {
	for _, tt := range []struct {
		idle, life, want time.Duration
	}{
		{0, 0, 0},
		{30 * time.Minute, 0, time.Minute},
		{time.Second, 0, 100 * time.Millisecond},
		{time.Hour, 5 * time.Second, 500 * time.Millisecond},
		{0, time.Millisecond, 10 * time.Millisecond},
	} {
		if got := reapInterval(Config{IdleTimeout: tt.idle, MaxLifetime: tt.life}); got != tt.want {
			t.Errorf("reapInterval(idle %v, life %v) = %v, want %v", tt.idle, tt.life, got, tt.want)
		}
	}
}

func getN(t *testing.T, p *Pool[*fakeConn], n int) []*Pooled[*fakeConn] {
	t.Helper()
	var out []*Pooled[*fakeConn]
	for range n {
		out = append(out, mustGet(t, p, nil))
	}
	return out
}

func recycleAll(pcs []*Pooled[*fakeConn]) {
	for _, pc := range rand.Perm(len(pcs)) {
		pcs[pc].Recycle()
	}
}

func mustSetCapacity(t *testing.T, p *Pool[*fakeConn], n int) {
	t.Helper()
	if err := p.SetCapacity(n); err != nil {
		t.Fatalf("SetCapacity(%d): %v", n, err)
	}
}

func reapExpect(t *testing.T, p *Pool[*fakeConn], want int) {
	t.Helper()
	if got := p.reap(); got != want {
		t.Errorf("reap closed %d, want %d", got, want)
	}
}

// expectStats compares the gauges of p's Stats.
func expectStats(t *testing.T, p *Pool[*fakeConn], want Stats) {
	t.Helper()
	s := p.Stats()
	got := Stats{Capacity: s.Capacity, Open: s.Open, InUse: s.InUse, Idle: s.Idle, Waiters: s.Waiters}
	if want.Capacity == 0 {
		got.Capacity = 0
	}
	if got != want {
		t.Errorf("stats %+v, want %+v", got, want)
	}
}
