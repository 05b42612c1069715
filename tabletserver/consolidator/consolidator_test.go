package consolidator

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tabletd/tabletd/proto/querypb"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/rpcerr"
)

type res struct {
	key     string
	payload []byte
}

func resSize(r *res) int64 {
	if r == nil {
		return 0
	}
	return int64(len(r.payload))
}

func newC(t testing.TB, cfg Config) *Consolidator[*res] {
	t.Helper()
	c, err := New(cfg, resSize)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

// waitFor waits until cond holds, failing the test after a generous deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
}

// blockingExec returns an exec whose first call blocks until release is closed and then
// returns first; later calls (callers running their own query) return at once.
type blockingExec struct {
	calls   atomic.Int64
	release chan struct{}
	first   *res
	err     error
}

func newBlockingExec(key string, size int) *blockingExec {
	return &blockingExec{release: make(chan struct{}), first: &res{key: key, payload: make([]byte, size)}}
}

func (b *blockingExec) exec() (*res, error) {
	if b.calls.Add(1) == 1 {
		<-b.release
		return b.first, b.err
	}
	return &res{key: b.first.key, payload: make([]byte, len(b.first.payload))}, nil
}

type outcome struct {
	r      *res
	shared bool
	err    error
}

// startLeader starts the leader for key and waits until it is in flight.
func startLeader(t *testing.T, c *Consolidator[*res], key string, b *blockingExec) <-chan outcome {
	t.Helper()
	ch := make(chan outcome, 1)
	before := c.Stats().Executions
	go func() {
		r, shared, err := c.Do(context.Background(), key, b.exec)
		ch <- outcome{r, shared, err}
	}()
	waitFor(t, "leader in flight", func() bool { return c.Stats().Executions > before && b.calls.Load() == 1 })
	return ch
}

// startCallers starts n callers of key (with ctx) and returns their outcomes channel.
func startCallers(ctx context.Context, c *Consolidator[*res], key string, n int, exec func() (*res, error)) <-chan outcome {
	ch := make(chan outcome, n)
	for range n {
		go func() {
			r, shared, err := c.Do(ctx, key, exec)
			ch <- outcome{r, shared, err}
		}()
	}
	return ch
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"zero", Config{}, true},
		{"default", DefaultConfig(), true},
		{"bounded", Config{MaxWaiters: 5, MaxBytes: 1, RejectOnFull: true, RecentSize: 1}, true},
		{"negative waiters", Config{MaxWaiters: -1}, false},
		{"negative bytes", Config{MaxBytes: -1}, false},
		{"negative recent", Config{RecentSize: -1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.ok != (err == nil) {
				t.Fatalf("Validate() = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("error %v does not match ErrInvalidConfig", err)
			}
			if _, err := New[*res](tt.cfg, resSize); tt.ok != (err == nil) {
				t.Fatalf("New() = %v, want ok=%v", err, tt.ok)
			}
		})
	}
	if _, err := New[*res](Config{MaxBytes: 1}, nil); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("New with MaxBytes and no size func = %v, want ErrInvalidConfig", err)
	}
	if _, err := New[*res](Config{}, nil); err != nil {
		t.Fatalf("New without MaxBytes and no size func = %v", err)
	}
}

func TestShare(t *testing.T) {
	const n = 10
	c := newC(t, Config{MaxBytes: 1 << 20})
	b := newBlockingExec("q", 100)
	leader := startLeader(t, c, "q", b)
	waiters := startCallers(context.Background(), c, "q", n-1, b.exec)
	waitFor(t, "waiters", func() bool { return c.Stats().Waiting == n-1 })
	close(b.release)

	if o := <-leader; o.r != b.first || o.shared || o.err != nil {
		t.Fatalf("leader got %+v", o)
	}
	for range n - 1 {
		if o := <-waiters; o.r != b.first || !o.shared || o.err != nil {
			t.Fatalf("waiter got %+v, want the leader's result shared", o)
		}
	}
	if got := b.calls.Load(); got != 1 {
		t.Fatalf("exec ran %d times, want 1", got)
	}
	want := Stats{Consolidated: n - 1, Executions: 1}
	if s := c.Stats(); s != want {
		t.Fatalf("Stats() = %+v, want %+v", s, want)
	}
	if r := c.Recent(); len(r) != 1 || r[0] != (Entry{Key: "q", Count: n - 1}) {
		t.Fatalf("Recent() = %+v", r)
	}

	// A caller after the leader finished starts a new execution.
	if _, shared, _ := c.Do(context.Background(), "q", b.exec); shared || b.calls.Load() != 2 {
		t.Fatalf("a later caller shared a finished result (shared=%v calls=%d)", shared, b.calls.Load())
	}
}

func TestDifferentKeysDoNotShare(t *testing.T) {
	c := newC(t, Config{})
	a, b := newBlockingExec("a", 1), newBlockingExec("b", 1)
	la := startLeader(t, c, "a", a)
	lb := startLeader(t, c, "b", b)
	if s := c.Stats(); s.InFlight != 2 || s.Waiting != 0 || s.Executions != 2 {
		t.Fatalf("Stats() = %+v, want 2 in flight, nobody waiting", s)
	}
	close(a.release)
	close(b.release)
	if o := <-la; o.r.key != "a" || o.shared {
		t.Fatalf("a got %+v", o)
	}
	if o := <-lb; o.r.key != "b" || o.shared {
		t.Fatalf("b got %+v", o)
	}
}

func TestBounds(t *testing.T) {
	tests := []struct {
		name         string
		cfg          Config
		resultSize   int
		callers      int // besides the leader
		wantShared   int
		wantOwn      int // ran their own exec
		wantRejected int
		// late: own/rejected callers are only decided when the leader finishes (MaxBytes).
		late bool
	}{
		{"waiter cap overflow runs own", Config{MaxWaiters: 2}, 10, 5, 2, 3, 0, false},
		{"waiter cap rejects", Config{MaxWaiters: 2, RejectOnFull: true}, 10, 5, 2, 0, 3, false},
		{"result too big runs own", Config{MaxBytes: 50}, 100, 3, 0, 3, 0, true},
		{"result too big rejects", Config{MaxBytes: 50, RejectOnFull: true}, 100, 3, 0, 0, 3, true},
		{"result fits", Config{MaxBytes: 100}, 100, 3, 3, 0, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newC(t, tt.cfg)
			b := newBlockingExec("q", tt.resultSize)
			leader := startLeader(t, c, "q", b)
			out := startCallers(context.Background(), c, "q", tt.callers, b.exec)

			var got []outcome
			if !tt.late {
				// Overflow callers finish without waiting for the leader.
				for range tt.wantOwn + tt.wantRejected {
					got = append(got, <-out)
				}
			}
			waitFor(t, "waiters", func() bool {
				if tt.late {
					return c.Stats().Waiting == tt.callers
				}
				return c.Stats().Waiting == tt.callers-(tt.wantOwn+tt.wantRejected)
			})
			close(b.release)
			if o := <-leader; o.r != b.first || o.err != nil {
				t.Fatalf("leader got %+v", o)
			}
			for len(got) < tt.callers {
				got = append(got, <-out)
			}

			var shared, own, rejected int
			for _, o := range got {
				switch {
				case o.err != nil:
					if !errors.Is(o.err, ErrFull) || rpcerr.Code(o.err) != vtrpcpb.Code_RESOURCE_EXHAUSTED {
						t.Fatalf("error %v, want ErrFull with RESOURCE_EXHAUSTED", o.err)
					}
					rejected++
				case o.r == nil || o.r.key != "q" || len(o.r.payload) != tt.resultSize:
					t.Fatalf("partial or empty result %+v", o.r)
				case o.shared:
					if o.r != b.first {
						t.Fatalf("shared result is not the leader's")
					}
					shared++
				default:
					if o.r == b.first {
						t.Fatalf("unshared caller got the leader's result")
					}
					own++
				}
			}
			if shared != tt.wantShared || own != tt.wantOwn || rejected != tt.wantRejected {
				t.Fatalf("shared/own/rejected = %d/%d/%d, want %d/%d/%d",
					shared, own, rejected, tt.wantShared, tt.wantOwn, tt.wantRejected)
			}
			s := c.Stats()
			if s.Overflow != int64(tt.wantOwn) || s.Rejected != int64(tt.wantRejected) ||
				s.Consolidated != int64(tt.wantShared) || s.Executions != int64(1+tt.wantOwn) ||
				b.calls.Load() != int64(1+tt.wantOwn) {
				t.Fatalf("Stats() = %+v, exec calls %d", s, b.calls.Load())
			}
			if s.BytesHeld != 0 || s.Waiting != 0 || s.InFlight != 0 {
				t.Fatalf("state not released: %+v", s)
			}
		})
	}
}

func TestLeaderErrorShared(t *testing.T) {
	c := newC(t, Config{MaxBytes: 10})
	b := newBlockingExec("q", 1000)
	b.err = errors.New("mysql: gone away")
	leader := startLeader(t, c, "q", b)
	waiters := startCallers(context.Background(), c, "q", 3, b.exec)
	waitFor(t, "waiters", func() bool { return c.Stats().Waiting == 3 })
	close(b.release)
	if o := <-leader; !errors.Is(o.err, b.err) {
		t.Fatalf("leader err %v", o.err)
	}
	for range 3 {
		if o := <-waiters; !errors.Is(o.err, b.err) || !o.shared {
			t.Fatalf("waiter got %+v, want the leader's error", o)
		}
	}
	if got := b.calls.Load(); got != 1 {
		t.Fatalf("exec ran %d times, want 1", got)
	}
}

func TestWaiterCancel(t *testing.T) {
	c := newC(t, Config{})
	b := newBlockingExec("q", 5)
	leader := startLeader(t, c, "q", b)
	ctx, cancel := context.WithCancel(context.Background())
	waiter := startCallers(ctx, c, "q", 1, b.exec)
	waitFor(t, "waiter", func() bool { return c.Stats().Waiting == 1 })
	cancel()
	if o := <-waiter; !errors.Is(o.err, context.Canceled) || o.r != nil {
		t.Fatalf("cancelled waiter got %+v", o)
	}
	if s := c.Stats(); s.Waiting != 0 || s.InFlight != 1 {
		t.Fatalf("Stats() = %+v after cancel", s)
	}
	close(b.release)
	if o := <-leader; o.r != b.first || o.err != nil {
		t.Fatalf("leader got %+v", o)
	}
	if s := c.Stats(); s.Consolidated != 0 || s.InFlight != 0 || len(c.Recent()) != 0 {
		t.Fatalf("Stats() = %+v, Recent() = %v", s, c.Recent())
	}
}

func TestLeaderPanic(t *testing.T) {
	c := newC(t, Config{})
	release := make(chan struct{})
	var calls atomic.Int64
	exec := func() (*res, error) {
		calls.Add(1)
		<-release
		panic("boom")
	}
	recovered := make(chan any, 1)
	go func() {
		defer func() { recovered <- recover() }()
		_, _, _ = c.Do(context.Background(), "q", exec)
	}()
	waitFor(t, "leader", func() bool { return calls.Load() == 1 })
	waiter := startCallers(context.Background(), c, "q", 1, exec)
	waitFor(t, "waiter", func() bool { return c.Stats().Waiting == 1 })
	close(release)
	if p := <-recovered; p != "boom" {
		t.Fatalf("leader panic = %v", p)
	}
	if o := <-waiter; !errors.Is(o.err, ErrLeaderPanicked) {
		t.Fatalf("waiter got %+v, want ErrLeaderPanicked", o)
	}
	if s := c.Stats(); s.InFlight != 0 || s.Waiting != 0 {
		t.Fatalf("Stats() = %+v", s)
	}
}

func TestRecentBounded(t *testing.T) {
	c := newC(t, Config{RecentSize: 2})
	for _, key := range []string{"a", "b", "a", "c"} {
		b := newBlockingExec(key, 1)
		leader := startLeader(t, c, key, b)
		w := startCallers(context.Background(), c, key, 2, b.exec)
		waitFor(t, "waiters", func() bool { return c.Stats().Waiting == 2 })
		close(b.release)
		<-leader
		<-w
		<-w
	}
	want := []Entry{{Key: "c", Count: 2}, {Key: "a", Count: 4}}
	got := c.Recent()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("Recent() = %v, want %v", got, want)
	}
}

func TestQueryResultSize(t *testing.T) {
	c, err := New(Config{MaxBytes: 1 << 10}, QueryResultSize)
	if err != nil {
		t.Fatal(err)
	}
	qr := &querypb.QueryResult{RowsAffected: 7}
	r, _, err := c.Do(context.Background(), "q", func() (*querypb.QueryResult, error) { return qr, nil })
	if err != nil || r != qr {
		t.Fatalf("Do = %v, %v", r, err)
	}
	if QueryResultSize(qr) <= 0 || QueryResultSize(nil) != 0 {
		t.Fatalf("QueryResultSize = %d / %d", QueryResultSize(qr), QueryResultSize(nil))
	}
}

func TestStress(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"unbounded", Config{}},
		{"bounded", Config{MaxWaiters: 3, MaxBytes: 64}},
		{"reject", Config{MaxWaiters: 3, MaxBytes: 64, RejectOnFull: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const goroutines, iterations, keys = 200, 50, 8
			c := newC(t, tt.cfg)
			var callers, execs atomic.Int64
			// The memory bound holds at every moment, not just at the end.
			stop, monitored := make(chan struct{}), make(chan struct{})
			go func() {
				defer close(monitored)
				for {
					select {
					case <-stop:
						return
					default:
					}
					if s := c.Stats(); tt.cfg.MaxBytes > 0 && s.BytesHeld > tt.cfg.MaxBytes {
						t.Errorf("BytesHeld %d > MaxBytes %d", s.BytesHeld, tt.cfg.MaxBytes)
						return
					}
					runtime.Gosched()
				}
			}()
			var wg sync.WaitGroup
			for g := range goroutines {
				wg.Add(1)
				go func() {
					defer wg.Done()
					rng := rand.New(rand.NewPCG(uint64(g), 1))
					for range iterations {
						key := fmt.Sprintf("k%d", rng.IntN(keys))
						fail := rng.IntN(4) == 0
						size := rng.IntN(48)
						callers.Add(1)
						r, _, err := c.Do(context.Background(), key, func() (*res, error) {
							execs.Add(1)
							runtime.Gosched() // let others pile up behind the leader
							if fail {
								return nil, fmt.Errorf("exec %s failed", key)
							}
							return &res{key: key, payload: make([]byte, size)}, nil
						})
						switch {
						case errors.Is(err, ErrFull):
							if !tt.cfg.RejectOnFull {
								t.Errorf("ErrFull without RejectOnFull")
							}
						case err != nil:
							if err.Error() != fmt.Sprintf("exec %s failed", key) {
								t.Errorf("caller of %s got error %v", key, err)
							}
						case r == nil || r.key != key:
							t.Errorf("caller of %s got %+v", key, r)
						}
					}
				}()
			}
			wg.Wait()
			close(stop)
			<-monitored
			s := c.Stats()
			if execs.Load() >= callers.Load() {
				t.Errorf("executions %d not fewer than callers %d", execs.Load(), callers.Load())
			}
			if s.Executions != execs.Load() {
				t.Errorf("Stats().Executions = %d, exec ran %d times", s.Executions, execs.Load())
			}
			if s.Executions+s.Consolidated+s.Rejected != callers.Load() {
				t.Errorf("Stats() = %+v does not account for %d callers", s, callers.Load())
			}
			if s.InFlight != 0 || s.Waiting != 0 || s.BytesHeld != 0 {
				t.Errorf("state not released: %+v", s)
			}
			t.Logf("callers %d: %+v", callers.Load(), s)
		})
	}
}

func BenchmarkDoNoContention(b *testing.B) {
	c := newC(b, DefaultConfig())
	r := &res{key: "q", payload: make([]byte, 64)}
	exec := func() (*res, error) { return r, nil }
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := c.Do(ctx, "select 1", exec); err != nil {
			b.Fatal(err)
		}
	}
}
