package tabletserver

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tabletd/tabletd/proto/querypb"
	"github.com/tabletd/tabletd/proto/topodatapb"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/rpcerr"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeProber returns whatever the test sets; unit tests isolate the serving policy from MySQL
// (the integration tests in test/ use a real mariadbd).
type fakeProber struct {
	mu sync.Mutex
	h  MySQLHealth
}

func (f *fakeProber) set(h MySQLHealth) {
	f.mu.Lock()
	f.h = h
	f.mu.Unlock()
}

func (f *fakeProber) Probe(context.Context, bool) MySQLHealth {
	f.mu.Lock()
	defer f.mu.Unlock()
	h := f.h
	h.CheckedAt = time.Unix(1, 0)
	return h
}

func newTestServer(t *testing.T, p *fakeProber) *Server {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Keyspace, cfg.Shard, cfg.Alias = "ks", "0", &topodatapb.TabletAlias{Cell: "zone1", Uid: 100}
	cfg.ProbeInterval = 10 * time.Millisecond
	s, err := New(cfg, Deps{Prober: p})
	if err != nil {
		t.Fatal(err)
	}
	s.Open()
	t.Cleanup(s.Close)
	return s
}

func TestServingPolicy(t *testing.T) {
	down := errors.New("connection refused")
	for _, tc := range []struct {
		name        string
		tt          topodatapb.TabletType
		want        bool
		h           MySQLHealth
		wantState   State
		wantServing bool
		wantLag     uint32
	}{
		{"primary up", topodatapb.TabletType_PRIMARY, true, MySQLHealth{}, StateServing, true, 0},
		{"primary mysql down", topodatapb.TabletType_PRIMARY, true, MySQLHealth{Err: down}, StateNotConnected, false, 0},
		{"replica lag measured", topodatapb.TabletType_REPLICA, true,
			MySQLHealth{ReplicationConfigured: true, LagKnown: true, Lag: 3 * time.Second}, StateServing, true, 3},
		{"replica without replication", topodatapb.TabletType_REPLICA, true, MySQLHealth{}, StateNotServing, false, LagUnknown},
		{"replica lag unknown", topodatapb.TabletType_REPLICA, true,
			MySQLHealth{ReplicationConfigured: true, ReplicationProblem: "SQL thread not running"}, StateNotServing, false, LagUnknown},
		{"replica lag above threshold", topodatapb.TabletType_RDONLY, true,
			MySQLHealth{ReplicationConfigured: true, LagKnown: true, Lag: 3 * time.Hour}, StateNotServing, false, 3 * 3600},
		{"spare type", topodatapb.TabletType_SPARE, false, MySQLHealth{ReplicationConfigured: true, LagKnown: true}, StateNotServing, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &fakeProber{}
			p.set(tc.h)
			s := newTestServer(t, p)
			s.SetServingType(tc.tt, time.Unix(1000, 0), tc.want, "type does not serve")
			var got *querypb.StreamHealthResponse
			waitFor(t, func() bool {
				st := s.Status()
				got = s.bc.Current() // read after st: a record at least as new as st
				return st.State == tc.wantState && got.Target.TabletType == tc.tt &&
					got.RealtimeStats.HealthError == st.HealthError
			})
			if got.Serving != tc.wantServing {
				t.Errorf("serving = %v, want %v (health_error %q)", got.Serving, tc.wantServing, got.RealtimeStats.HealthError)
			}
			if got.Serving != (got.RealtimeStats.HealthError == "") {
				t.Errorf("serving=%v but health_error=%q: a non-serving record must say why", got.Serving, got.RealtimeStats.HealthError)
			}
			if got.RealtimeStats.ReplicationLagSeconds != tc.wantLag {
				t.Errorf("lag = %d, want %d", got.RealtimeStats.ReplicationLagSeconds, tc.wantLag)
			}
			wantPTS := int64(0)
			if tc.tt == topodatapb.TabletType_PRIMARY {
				wantPTS = 1000
			}
			if got.PrimaryTermStartTimestamp != wantPTS {
				t.Errorf("primary_term_start_timestamp = %d, want %d", got.PrimaryTermStartTimestamp, wantPTS)
			}
			if got.TabletAlias.GetUid() != 100 || got.Target.Keyspace != "ks" || got.Target.Shard != "0" {
				t.Errorf("identity fields wrong: %v", got)
			}
		})
	}
}

func TestStartRequestErrors(t *testing.T) {
	p := &fakeProber{}
	s := newTestServer(t, p)
	s.SetServingType(topodatapb.TabletType_PRIMARY, time.Unix(1000, 0), true, "")
	waitFor(t, func() bool { return s.Status().Serving })
	good := &querypb.Target{Keyspace: "ks", Shard: "0", TabletType: topodatapb.TabletType_PRIMARY}
	for _, tc := range []struct {
		name   string
		target *querypb.Target
		code   vtrpcpb.Code
	}{
		{"ok", good, vtrpcpb.Code_OK},
		{"no target", nil, vtrpcpb.Code_INVALID_ARGUMENT},
		{"other keyspace", &querypb.Target{Keyspace: "x", Shard: "0", TabletType: topodatapb.TabletType_PRIMARY}, vtrpcpb.Code_INVALID_ARGUMENT},
		{"other shard", &querypb.Target{Keyspace: "ks", Shard: "-80", TabletType: topodatapb.TabletType_PRIMARY}, vtrpcpb.Code_INVALID_ARGUMENT},
		{"wrong type", &querypb.Target{Keyspace: "ks", Shard: "0", TabletType: topodatapb.TabletType_REPLICA}, vtrpcpb.Code_FAILED_PRECONDITION},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := s.StartRequest(tc.target, false)
			if got := rpcerr.Code(err); got != tc.code {
				t.Fatalf("code = %v, want %v (err %v)", got, tc.code, err)
			}
			if err == nil {
				s.EndRequest()
			}
		})
	}

	// vtgate's buffering matches these exact texts.
	p.set(MySQLHealth{Err: errors.New("down")})
	waitFor(t, func() bool { return !s.Status().Serving })
	err := s.StartRequest(good, false)
	if rpcerr.Code(err) != vtrpcpb.Code_CLUSTER_EVENT || err.Error() != rpcerr.NotServing {
		t.Fatalf("not serving: got %v (code %v)", err, rpcerr.Code(err))
	}
}

func TestDrain(t *testing.T) {
	p := &fakeProber{}
	s := newTestServer(t, p)
	s.SetServingType(topodatapb.TabletType_PRIMARY, time.Unix(1000, 0), true, "")
	waitFor(t, func() bool { return s.Status().Serving })
	target := &querypb.Target{Keyspace: "ks", Shard: "0", TabletType: topodatapb.TabletType_PRIMARY}
	if err := s.StartRequest(target, false); err != nil {
		t.Fatal(err)
	}
	drained := make(chan error, 1)
	go func() { drained <- s.Drain(context.Background()) }()
	waitFor(t, func() bool { return s.Status().State == StateShuttingDown })
	if err := s.StartRequest(target, false); err == nil || err.Error() != rpcerr.ShuttingDown {
		t.Fatalf("new request while draining: got %v, want %q", err, rpcerr.ShuttingDown)
	}
	if err := s.StartRequest(target, true); err != nil {
		t.Fatalf("a request of an open transaction must be admitted while draining: %v", err)
	}
	s.EndRequest()
	select {
	case err := <-drained:
		t.Fatalf("Drain returned %v with a request in flight", err)
	default:
	}
	s.EndRequest()
	if err := <-drained; err != nil {
		t.Fatalf("Drain: %v", err)
	}

	// With a request that never ends, Drain gives up when its context does.
	s2 := newTestServer(t, p)
	s2.SetServingType(topodatapb.TabletType_PRIMARY, time.Unix(1000, 0), true, "")
	waitFor(t, func() bool { return s2.Status().Serving })
	if err := s2.StartRequest(target, false); err != nil {
		t.Fatal(err)
	}
	defer s2.EndRequest()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := s2.Drain(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Drain with a stuck request = %v, want DeadlineExceeded", err)
	}
}

// TestLameduck: the tablet tells its health subscribers it does not serve while it still
// admits requests; Drain then refuses them.
func TestLameduck(t *testing.T) {
	p := &fakeProber{}
	s := newTestServer(t, p)
	s.SetServingType(topodatapb.TabletType_PRIMARY, time.Unix(1000, 0), true, "")
	waitFor(t, func() bool { return s.Status().Serving })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan *querypb.StreamHealthResponse, 100)
	streamDone := make(chan error, 1)
	go func() {
		streamDone <- s.StreamHealth(ctx, func(r *querypb.StreamHealthResponse) error { got <- r; return nil })
	}()
	if r := <-got; !r.Serving {
		t.Fatalf("before lameduck: first record serving=false (%q)", r.RealtimeStats.HealthError)
	}
	s.EnterLameduck()
	for r := range got {
		if !r.Serving {
			if r.RealtimeStats.HealthError == "" {
				t.Fatal("lameduck record without a reason")
			}
			break
		}
	}
	if st := s.Status(); st.Serving || st.State != StateServing {
		t.Fatalf("in lameduck: Status serving=%v state=%v, want advertised not serving, state SERVING", st.Serving, st.State)
	}
	target := &querypb.Target{Keyspace: "ks", Shard: "0", TabletType: topodatapb.TabletType_PRIMARY}
	if err := s.StartRequest(target, false); err != nil {
		t.Fatalf("a request in lameduck must still be admitted: %v", err)
	}
	s.EndRequest()
	if err := s.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.StartRequest(target, false); rpcerr.Code(err) != vtrpcpb.Code_CLUSTER_EVENT || err.Error() != rpcerr.ShuttingDown {
		t.Fatalf("after Drain: got %v, want %q", err, rpcerr.ShuttingDown)
	}
	cancel()
	<-streamDone
}

func TestStreamHealthSendsAtOnceAndOnChange(t *testing.T) {
	p := &fakeProber{}
	s := newTestServer(t, p)
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan *querypb.StreamHealthResponse, 100)
	streamDone := make(chan error, 1)
	go func() {
		streamDone <- s.StreamHealth(ctx, func(r *querypb.StreamHealthResponse) error { got <- r; return nil })
	}()
	first := <-got // must arrive without any state change
	if first.Target == nil || first.RealtimeStats == nil {
		t.Fatalf("first record lacks target or realtime_stats (vtgate rejects it): %v", first)
	}
	s.SetServingType(topodatapb.TabletType_PRIMARY, time.Unix(1000, 0), true, "")
	for r := range got {
		if r.Serving && r.Target.TabletType == topodatapb.TabletType_PRIMARY {
			break
		}
	}
	cancel()
	if err := <-streamDone; err != nil {
		t.Fatalf("stream ended with %v after the client went away", err)
	}
	// Close ends streams with UNAVAILABLE so vtgate reconnects elsewhere.
	s.Close()
	err := s.StreamHealth(context.Background(), func(*querypb.StreamHealthResponse) error { return nil })
	if rpcerr.Code(err) != vtrpcpb.Code_UNAVAILABLE {
		t.Fatalf("stream on a closed server: %v", err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(2 * time.Millisecond)
	}
}
