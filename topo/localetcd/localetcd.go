// Package localetcd runs a single-node etcd server inside the tabletd process, for demos and tests.
package localetcd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	"google.golang.org/grpc"
)

// Defaults applied by DefaultConfig and by Start for zero-valued fields.
const (
	DefaultClientAddr   = "127.0.0.1:0"
	DefaultPeerAddr     = "127.0.0.1:0"
	DefaultStartTimeout = 30 * time.Second

	// memberName is the etcd member name; it is persisted in the data dir,
	// so it must never change between restarts of the same Dir.
	memberName = "tabletd"
	// clusterToken is the etcd initial cluster token (only used at bootstrap).
	clusterToken = "tabletd-localetcd"
	// snapshotCount is how many applied entries trigger a raft snapshot.
	// Far below etcd's 10000 default so the WAL (and replay on restart) stays small.
	snapshotCount = 5000
	// tickMs and electionMs are raft's heartbeat tick and election timeout.
	// A single node has no peers to heartbeat, and at startup it must wait
	// for one randomized election timeout ([1,2) x electionMs minus the
	// fast-forwarded ticks), so short values make Start return quickly.
	tickMs     = 10
	electionMs = 100
	// batchInterval is how often etcd commits its bbolt backend. etcd's 100ms
	// default is longer than the startup above, and etcd's storage-version
	// monitor then logs a spurious "missing term information" error because
	// the raft term has not reached the backend yet.
	batchInterval = 10 * time.Millisecond
	// maxFiles bounds the retained snapshot and WAL files.
	maxFiles = 2
	// maxBindAttempts bounds retries when a port picked for "...:0" is taken
	// by someone else between our probe and etcd's bind.
	maxBindAttempts = 5
)

// Errors returned by this package; test them with errors.Is.
var (
	// ErrInvalidConfig is wrapped by Config.Validate failures.
	ErrInvalidConfig = errors.New("localetcd: invalid config")
	// ErrStartTimeout is returned when the server is not ready within StartTimeout.
	ErrStartTimeout = errors.New("localetcd: server not ready before start timeout")
	// ErrStopped is returned when etcd stopped (or reported an error) during startup.
	ErrStopped = errors.New("localetcd: server stopped during startup")
	// ErrDirInUse is returned when another Server (in any process) uses Dir.
	ErrDirInUse = errors.New("localetcd: data dir in use by another server")
)

// Config configures an embedded single-node etcd server.
type Config struct {
	// Dir is the data directory. Required. Created (0700) if missing.
	Dir string
	// ClientAddr is host:port to listen for clients. Port 0 picks a free port.
	ClientAddr string
	// PeerAddr is host:port for the (unused, single-node) raft peer listener.
	// Port 0 picks a free port.
	PeerAddr string
	// StartTimeout bounds how long Start waits for the server to become ready.
	StartTimeout time.Duration
	// Unsafe disables fsync (etcd's UnsafeNoFsync). Data may be lost on a
	// machine crash; only for tests.
	Unsafe bool
	// Logger receives etcd's own logs at Warn level and above. nil = no logs.
	Logger *zap.Logger
}

// DefaultConfig returns a Config with all defaults and the given data dir.
func DefaultConfig(dir string) Config {
	return Config{
		Dir:          dir,
		ClientAddr:   DefaultClientAddr,
		PeerAddr:     DefaultPeerAddr,
		StartTimeout: DefaultStartTimeout,
	}
}

// withDefaults fills zero-valued fields with their defaults.
func (c Config) withDefaults() Config {
	if c.ClientAddr == "" {
		c.ClientAddr = DefaultClientAddr
	}
	if c.PeerAddr == "" {
		c.PeerAddr = DefaultPeerAddr
	}
	if c.StartTimeout == 0 {
		c.StartTimeout = DefaultStartTimeout
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return c
}

// Validate reports whether c (after defaults) is usable. Errors wrap ErrInvalidConfig.
func (c Config) Validate() error {
	c = c.withDefaults()
	if c.Dir == "" {
		return fmt.Errorf("%w: Dir is required", ErrInvalidConfig)
	}
	if c.StartTimeout < 0 {
		return fmt.Errorf("%w: StartTimeout %v is negative", ErrInvalidConfig, c.StartTimeout)
	}
	for _, a := range []struct{ name, addr string }{{"ClientAddr", c.ClientAddr}, {"PeerAddr", c.PeerAddr}} {
		if _, err := splitAddr(a.addr); err != nil {
			return fmt.Errorf("%w: %s: %w", ErrInvalidConfig, a.name, err)
		}
	}
	if c.ClientAddr == c.PeerAddr && !isPortZero(c.ClientAddr) {
		return fmt.Errorf("%w: ClientAddr and PeerAddr are both %q", ErrInvalidConfig, c.ClientAddr)
	}
	return nil
}

// Server is a running embedded etcd server.
type Server struct {
	etcd      *embed.Etcd
	cfg       Config       // with concrete ports
	closing   *atomic.Bool // mutes etcd's logs once Close starts
	streams   *streamCloser
	dirLock   *os.File // flock on Dir, released by Close
	closeOnce sync.Once
}

// Start starts etcd and returns once it is ready to serve client requests, or
// fails when ctx ends or cfg.StartTimeout elapses. Ports given as 0 are
// replaced by free ports (retrying if another process grabs one first).
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("localetcd: create data dir: %w", err)
	}
	dirLock, err := lockDir(cfg.Dir)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeoutCause(ctx, cfg.StartTimeout, ErrStartTimeout)
	defer cancel()
	s, err := startEtcd(ctx, cfg, dirLock)
	if err != nil {
		_ = dirLock.Close()
		return nil, err
	}
	return s, nil
}

// startEtcd starts etcd, retrying with other ports when ports picked for
// "...:0" were taken before etcd could bind them.
func startEtcd(ctx context.Context, cfg Config, dirLock *os.File) (*Server, error) {
	var lastErr error
	for attempt := 0; attempt < maxBindAttempts; attempt++ {
		if err := ctx.Err(); err != nil {
			return nil, startCtxErr(ctx, cfg)
		}
		resolved, err := resolvePorts(cfg)
		if err != nil {
			return nil, err
		}
		s := &Server{cfg: resolved, closing: new(atomic.Bool), streams: newStreamCloser(), dirLock: dirLock}
		s.etcd, err = embed.StartEtcd(s.embedConfig())
		if err == nil {
			return waitReady(ctx, s)
		}
		s.streams.cancel()
		lastErr = fmt.Errorf("localetcd: start etcd: %w", err)
		picked := isPortZero(cfg.ClientAddr) || isPortZero(cfg.PeerAddr)
		if !picked || !errors.Is(err, syscall.EADDRINUSE) {
			return nil, lastErr
		}
		cfg.Logger.Debug("picked port was taken, retrying", zap.Error(err))
	}
	return nil, lastErr
}

// waitReady blocks until s is ready, closing s on any failure.
func waitReady(ctx context.Context, s *Server) (*Server, error) {
	e := s.etcd
	select {
	case <-e.Server.ReadyNotify():
		return s, nil
	case err := <-e.Err():
		s.stop()
		return nil, fmt.Errorf("%w: %w", ErrStopped, err)
	case <-e.Server.StopNotify():
		s.stop()
		return nil, ErrStopped
	case <-ctx.Done():
		s.stop()
		return nil, startCtxErr(ctx, s.cfg)
	}
}

// startCtxErr explains why ctx ended during Start: ErrStartTimeout when
// StartTimeout elapsed, else the caller's context error.
func startCtxErr(ctx context.Context, cfg Config) error {
	if errors.Is(context.Cause(ctx), ErrStartTimeout) {
		return fmt.Errorf("%w (%v)", ErrStartTimeout, cfg.StartTimeout)
	}
	return fmt.Errorf("localetcd: start: %w", ctx.Err())
}

// embedConfig translates s.cfg (with concrete ports) to etcd's embed.Config.
func (s *Server) embedConfig() *embed.Config {
	cfg := s.cfg
	ec := embed.NewConfig()
	ec.Name = memberName
	ec.Dir = cfg.Dir
	clientURL := url.URL{Scheme: "http", Host: cfg.ClientAddr}
	peerURL := url.URL{Scheme: "http", Host: cfg.PeerAddr}
	ec.ListenClientUrls = []url.URL{clientURL}
	ec.AdvertiseClientUrls = []url.URL{clientURL}
	ec.ListenPeerUrls = []url.URL{peerURL}
	ec.AdvertisePeerUrls = []url.URL{peerURL}
	ec.InitialCluster = ec.InitialClusterFromName(ec.Name)
	ec.InitialClusterToken = clusterToken
	ec.TickMs = tickMs
	ec.ElectionMs = electionMs
	ec.BackendBatchInterval = batchInterval
	ec.SnapshotCount = snapshotCount
	ec.MaxSnapFiles = maxFiles
	ec.MaxWalFiles = maxFiles
	ec.EnableGRPCGateway = false
	ec.UnsafeNoFsync = cfg.Unsafe
	ec.GRPCAdditionalServerOptions = []grpc.ServerOption{grpc.ChainStreamInterceptor(s.streams.interceptor)}
	ec.ZapLoggerBuilder = embed.NewZapLoggerBuilder(quietLogger(cfg.Logger, s.closing))
	return ec
}

// Endpoint returns the client address as host:port (no scheme), as taken by
// Vitess's --topo-global-server-address.
func (s *Server) Endpoint() string { return s.cfg.ClientAddr }

// Config returns the configuration the server runs with, with any 0 ports
// replaced by the ports actually used. Starting a new server with it on the
// same Dir restarts this one on the same addresses.
func (s *Server) Config() Config { return s.cfg }

// Close stops the server, waits for it to shut down and releases Dir. It is
// idempotent.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.stop()
		_ = s.dirLock.Close()
	})
}

// stop shuts etcd down; Dir stays locked (Start releases it on failure).
func (s *Server) stop() {
	s.closing.Store(true)
	s.streams.cancel()
	s.etcd.Close()
}

// resolvePorts returns cfg with every port 0 replaced by a currently free port.
func resolvePorts(cfg Config) (Config, error) {
	var err error
	if cfg.ClientAddr, err = resolvePort(cfg.ClientAddr); err != nil {
		return cfg, err
	}
	if cfg.PeerAddr, err = resolvePort(cfg.PeerAddr); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// resolvePort replaces port 0 in addr by a port the OS reports free right now.
func resolvePort(addr string) (string, error) {
	if !isPortZero(addr) {
		return addr, nil
	}
	host, _ := splitAddr(addr)
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("localetcd: pick free port on %q: %w", addr, err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		return "", fmt.Errorf("localetcd: pick free port on %q: %w", addr, err)
	}
	return net.JoinHostPort(host, strconv.Itoa(port)), nil
}

// splitAddr validates host:port and returns the host.
func splitAddr(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	if host == "" {
		return "", fmt.Errorf("address %q has no host", addr)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return "", fmt.Errorf("address %q: bad port: %w", addr, err)
	}
	return host, nil
}

// isPortZero reports whether addr asks for a free port.
func isPortZero(addr string) bool {
	_, port, err := net.SplitHostPort(addr)
	return err == nil && port == "0"
}
