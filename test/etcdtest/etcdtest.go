// Package etcdtest starts in-process etcd servers for tests.
package etcdtest

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/tabletd/tabletd/topo/localetcd"
)

const (
	// startTimeout bounds one start or restart, including waiting for a
	// port to be released by whoever briefly holds it.
	startTimeout = 30 * time.Second
	// dialTimeout bounds the initial connection of clients from Client.
	dialTimeout = 5 * time.Second
	// bindRetryInterval is the pause between restart attempts while the
	// fixed port is still held by someone else.
	bindRetryInterval = 50 * time.Millisecond
)

// Server is an in-process etcd server owned by one test. It is stopped and
// its data removed when the test ends.
type Server struct {
	cfg localetcd.Config // concrete ports, so restarts reuse them

	mu  sync.Mutex
	srv *localetcd.Server // nil while stopped
}

// Start starts a single-node etcd server on free ports with a temporary data
// dir and fsync disabled. It fails the test if the server does not start.
func Start(t testing.TB) *Server {
	t.Helper()
	cfg := localetcd.DefaultConfig(filepath.Join(t.TempDir(), "etcd"))
	cfg.Unsafe = true
	cfg.StartTimeout = startTimeout
	begin := time.Now()
	srv, err := localetcd.Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("etcdtest: start etcd: %v", err)
	}
	t.Logf("etcdtest: etcd serving on %s (started in %v)", srv.Endpoint(), time.Since(begin).Round(time.Millisecond))
	s := &Server{cfg: srv.Config(), srv: srv}
	t.Cleanup(s.Stop)
	return s
}

// Endpoint returns the client address as host:port (no scheme). It stays the
// same across Stop and Restart.
func (s *Server) Endpoint() string { return s.cfg.ClientAddr }

// Client returns a client connected to the server, closed when t ends. The
// client survives Stop/Restart: its requests fail while the server is down
// and succeed again after Restart.
func (s *Server) Client(t testing.TB) *clientv3.Client {
	t.Helper()
	c, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{s.Endpoint()},
		DialTimeout: dialTimeout,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		t.Fatalf("etcdtest: new client for %s: %v", s.Endpoint(), err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("etcdtest: close client: %v", err)
		}
	})
	return c
}

// Stop shuts the server down and waits for it; its data is kept for Restart.
// Stopping a stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		s.srv.Close()
		s.srv = nil
	}
}

// Restart stops the server if it is running, then starts it again on the
// same port with the same data, and waits until it serves. If the port is
// briefly held by someone else it retries until the start timeout.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	begin := time.Now()
	for {
		srv, err := localetcd.Start(ctx, s.cfg)
		if err == nil {
			s.srv = srv
			t.Logf("etcdtest: etcd restarted on %s in %v", s.Endpoint(), time.Since(begin).Round(time.Millisecond))
			return
		}
		if !errors.Is(err, syscall.EADDRINUSE) {
			t.Fatalf("etcdtest: restart etcd on %s: %v", s.Endpoint(), err)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("etcdtest: restart etcd on %s: port still in use after %v: %v", s.Endpoint(), startTimeout, err)
		case <-time.After(bindRetryInterval):
		}
	}
}
