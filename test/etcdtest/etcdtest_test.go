package etcdtest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func put(t *testing.T, c *clientv3.Client, key, value string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Put(ctx, key, value); err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
}

func mustGet(t *testing.T, c *clientv3.Client, key, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := c.Get(ctx, key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != want {
		t.Fatalf("Get(%q) = %v, want %q", key, resp.Kvs, want)
	}
}

func TestParallelServers(t *testing.T) {
	for i := range 2 {
		t.Run(fmt.Sprint("server", i), func(t *testing.T) {
			t.Parallel()
			begin := time.Now()
			s := Start(t)
			t.Logf("start took %v", time.Since(begin))
			c := s.Client(t)
			put(t, c, "/owner", t.Name())
			mustGet(t, c, "/owner", t.Name())
		})
	}
}

// isUnreachable reports whether err is what a client sees while etcd is down.
func isUnreachable(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	code := status.Code(err)
	return code == codes.Unavailable || code == codes.DeadlineExceeded
}

func TestStopRestart(t *testing.T) {
	s := Start(t)
	endpoint := s.Endpoint()
	c := s.Client(t)
	put(t, c, "/survives", "yes")

	// An open watch must not slow down Stop, and must resume after Restart
	// (the client sees the server go away, not a canceled watch).
	watchCtx, cancelWatch := context.WithCancel(context.Background())
	defer cancelWatch()
	watch := c.Watch(watchCtx, "/watched")
	put(t, c, "/watched", "before")
	expectEvent(t, watch, "before")

	tests := []struct {
		name    string
		down    func()
		stopped bool // whether the server is down before Restart
	}{
		{name: "stop then restart", down: s.Stop, stopped: true},
		{name: "restart while running", down: func() {}, stopped: false},
		{name: "double stop", down: func() { s.Stop(); s.Stop() }, stopped: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			begin := time.Now()
			tt.down()
			t.Logf("stop took %v", time.Since(begin))
			if tt.stopped {
				ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
				defer cancel()
				_, err := c.Get(ctx, "/survives")
				if !isUnreachable(err) {
					t.Fatalf("Get while stopped = %v, want unavailable/deadline exceeded", err)
				}
			}
			begin = time.Now()
			s.Restart(t)
			t.Logf("restart took %v", time.Since(begin))
			if s.Endpoint() != endpoint {
				t.Fatalf("Endpoint() after restart = %q, want %q", s.Endpoint(), endpoint)
			}
			mustGet(t, c, "/survives", "yes")
			put(t, c, "/watched", tt.name)
			expectEvent(t, watch, tt.name)
		})
	}
	cancelWatch()
	for range watch { // drain until the client closes the canceled watch
	}
}

// expectEvent waits for the next event on watch and checks its value.
func expectEvent(t *testing.T, watch clientv3.WatchChan, want string) {
	t.Helper()
	select {
	case resp, ok := <-watch:
		if !ok {
			t.Fatalf("watch closed while waiting for %q", want)
		}
		if err := resp.Err(); err != nil {
			t.Fatalf("watch error while waiting for %q: %v", want, err)
		}
		if len(resp.Events) != 1 || string(resp.Events[0].Kv.Value) != want {
			t.Fatalf("watch events %v, want one with value %q", resp.Events, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no watch event %q within 10s", want)
	}
}
