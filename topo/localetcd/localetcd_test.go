package localetcd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr error
	}{
		{name: "defaults", cfg: DefaultConfig("/tmp/x")},
		{name: "zero fields get defaults", cfg: Config{Dir: "/tmp/x"}},
		{name: "fixed ports", cfg: Config{Dir: "/tmp/x", ClientAddr: "127.0.0.1:2379", PeerAddr: "127.0.0.1:2380"}},
		{name: "no dir", cfg: Config{}, wantErr: ErrInvalidConfig},
		{name: "negative timeout", cfg: Config{Dir: "/tmp/x", StartTimeout: -time.Second}, wantErr: ErrInvalidConfig},
		{name: "client addr without port", cfg: Config{Dir: "/tmp/x", ClientAddr: "127.0.0.1"}, wantErr: ErrInvalidConfig},
		{name: "client addr without host", cfg: Config{Dir: "/tmp/x", ClientAddr: ":2379"}, wantErr: ErrInvalidConfig},
		{name: "peer addr bad port", cfg: Config{Dir: "/tmp/x", PeerAddr: "127.0.0.1:99999"}, wantErr: ErrInvalidConfig},
		{name: "same fixed addr", cfg: Config{Dir: "/tmp/x", ClientAddr: "127.0.0.1:2379", PeerAddr: "127.0.0.1:2379"}, wantErr: ErrInvalidConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Validate() = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestStartInvalidConfig(t *testing.T) {
	_, err := Start(context.Background(), Config{})
	if !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("Start(empty config) = %v, want ErrInvalidConfig", err)
	}
}

// startServer starts a server in a temp dir and closes it at cleanup.
func startServer(t *testing.T, mutate func(*Config)) *Server {
	t.Helper()
	cfg := DefaultConfig(filepath.Join(t.TempDir(), "etcd"))
	cfg.Unsafe = true
	cfg.Logger = zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	if mutate != nil {
		mutate(&cfg)
	}
	begin := time.Now()
	s, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Logf("etcd ready at %s after %v", s.Endpoint(), time.Since(begin))
	t.Cleanup(s.Close)
	return s
}

// newClient returns a client for endpoint, closed at cleanup.
func newClient(t *testing.T, endpoint string) *clientv3.Client {
	t.Helper()
	c, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{endpoint},
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
		// Reconnect quickly after a restart (gRPC's default first backoff is 1s).
		DialOptions: []grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 20 * time.Millisecond, Multiplier: 1.6, MaxDelay: 200 * time.Millisecond},
			MinConnectTimeout: 5 * time.Second,
		})},
	})
	if err != nil {
		t.Fatalf("clientv3.New: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func putGet(t *testing.T, c *clientv3.Client, key, value string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Put(ctx, key, value); err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
	mustGet(t, c, key, value)
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

func TestStartPutGetClose(t *testing.T) {
	s := startServer(t, nil)
	host, port, err := net.SplitHostPort(s.Endpoint())
	if err != nil || host != "127.0.0.1" || port == "0" {
		t.Fatalf("Endpoint() = %q, want 127.0.0.1:<non-zero port>", s.Endpoint())
	}
	if s.Config().PeerAddr == DefaultPeerAddr {
		t.Fatalf("Config().PeerAddr = %q, want a resolved port", s.Config().PeerAddr)
	}
	c := newClient(t, s.Endpoint())
	putGet(t, c, "/tabletd/key", "value")

	s.Close()
	s.Close() // idempotent
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := c.Get(ctx, "/tabletd/key"); err == nil {
		t.Fatal("Get after Close succeeded, want error")
	}
}

func TestTwoServersInOneProcess(t *testing.T) {
	var wg sync.WaitGroup
	servers := make([]*Server, 2)
	errs := make([]error, 2)
	for i := range servers {
		wg.Go(func() {
			cfg := DefaultConfig(filepath.Join(t.TempDir(), fmt.Sprint("etcd", i)))
			cfg.Unsafe = true
			begin := time.Now()
			servers[i], errs[i] = Start(context.Background(), cfg)
			t.Logf("server %d start took %v", i, time.Since(begin))
		})
	}
	wg.Wait()
	for i, s := range servers {
		if errs[i] != nil {
			t.Fatalf("Start server %d: %v", i, errs[i])
		}
		t.Cleanup(s.Close)
	}
	if servers[0].Endpoint() == servers[1].Endpoint() {
		t.Fatalf("both servers on %s", servers[0].Endpoint())
	}
	for i, s := range servers {
		putGet(t, newClient(t, s.Endpoint()), "/owner", fmt.Sprint("server", i))
	}
	// Each server has its own data.
	for i, s := range servers {
		mustGet(t, newClient(t, s.Endpoint()), "/owner", fmt.Sprint("server", i))
	}
}

func TestRestartKeepsDataAndAddress(t *testing.T) {
	s := startServer(t, nil)
	putGet(t, newClient(t, s.Endpoint()), "/survives", "yes")
	s.Close()

	s2, err := Start(context.Background(), s.Config())
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	t.Cleanup(s2.Close)
	if s2.Endpoint() != s.Endpoint() {
		t.Fatalf("restarted on %s, want %s", s2.Endpoint(), s.Endpoint())
	}
	mustGet(t, newClient(t, s2.Endpoint()), "/survives", "yes")
}

func TestStartPortInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cfg := DefaultConfig(t.TempDir())
	cfg.ClientAddr = l.Addr().String()
	_, err = Start(context.Background(), cfg)
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("Start on busy fixed port = %v, want EADDRINUSE", err)
	}
}

func TestStartContextCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	cfg := DefaultConfig(t.TempDir())
	cfg.Unsafe = true
	_, err := Start(ctx, cfg)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Start(canceled ctx) = %v, want context.Canceled", err)
	}
}

// TestCloseWithOpenStreams checks that open watch and lease keep-alive
// streams do not hold Close for etcd's request timeout (over 5s), including
// streams that the client re-established after a restart.
func TestCloseWithOpenStreams(t *testing.T) {
	s := startServer(t, nil)
	c := newClient(t, s.Endpoint())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	watch := c.Watch(ctx, "/w")
	lease, err := c.Grant(ctx, 60)
	if err != nil {
		t.Fatalf("Grant: %v", err)
	}
	if _, err := c.KeepAlive(ctx, lease.ID); err != nil {
		t.Fatalf("KeepAlive: %v", err)
	}
	for i := range 5 {
		value := fmt.Sprint("v", i)
		putGet(t, c, "/w", value)
		select { // the watch stream is established once it delivers an event
		case resp := <-watch:
			if len(resp.Events) != 1 || string(resp.Events[0].Kv.Value) != value {
				t.Fatalf("watch got %v, want value %q", resp.Events, value)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no watch event within 10s")
		}
		begin := time.Now()
		s.Close()
		took := time.Since(begin)
		t.Logf("Close %d with open streams took %v", i, took)
		if took > 3*time.Second {
			t.Fatalf("Close took %v with open streams, want well under etcd's 5s request timeout", took)
		}
		if s, err = Start(context.Background(), s.Config()); err != nil {
			t.Fatalf("restart: %v", err)
		}
		t.Cleanup(s.Close)
	}
}

func TestStartDirInUse(t *testing.T) {
	s := startServer(t, nil)
	cfg := DefaultConfig(s.Config().Dir)
	cfg.StartTimeout = 5 * time.Second
	begin := time.Now()
	_, err := Start(context.Background(), cfg)
	if !errors.Is(err, ErrDirInUse) {
		t.Fatalf("second Start on the same Dir = %v, want ErrDirInUse", err)
	}
	t.Logf("failed after %v", time.Since(begin))
	s.Close()
	s2, err := Start(context.Background(), s.Config()) // released by Close
	if err != nil {
		t.Fatalf("Start after Close: %v", err)
	}
	s2.Close()
}

func TestStartTimeout(t *testing.T) {
	cfg := DefaultConfig(t.TempDir())
	cfg.StartTimeout = time.Nanosecond
	_, err := Start(context.Background(), cfg)
	if !errors.Is(err, ErrStartTimeout) {
		t.Fatalf("Start with 1ns timeout = %v, want ErrStartTimeout", err)
	}
}
