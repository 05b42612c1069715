package topo

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"google.golang.org/protobuf/proto"

	"github.com/tabletd/tabletd/proto/topodatapb"
)

// Server is a connection to the global topology and to one cell's topology.
// It is safe for concurrent use. Close releases it.
type Server struct {
	cfg    Config
	log    *zap.Logger
	global *store
	cell   *store
	// sharedClient is true when the cell uses the global etcd client.
	sharedClient bool

	// ctx is cancelled by Close; held locks keep their lease alive under it.
	ctx    context.Context
	cancel context.CancelFunc
	// wg tracks goroutines owned by held locks.
	wg sync.WaitGroup
	// ops tracks lock operations in flight, so Close lets them revoke their
	// leases before the clients close.
	ops       sync.WaitGroup
	mu        sync.Mutex
	closed    bool // guarded by mu; set by Close, after which ops.Add is not called
	closeOnce sync.Once
}

// Open connects to the global topology, reads cells/<cell>/CellInfo, and
// connects to the cell's topology (reusing the global client when the cell
// lives on the same etcd endpoints). It writes nothing. A missing CellInfo
// returns ErrCellNotFound. log may be nil.
func Open(ctx context.Context, cfg Config, log *zap.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if log == nil {
		log = zap.NewNop()
	}
	s := &Server{cfg: cfg, log: log}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if err := s.connect(ctx); err != nil {
		s.cancel()
		return nil, err
	}
	return s, nil
}

// connect dials the global topology, reads the cell's CellInfo and dials the
// cell. On error it closes whatever it opened.
func (s *Server) connect(ctx context.Context) error {
	cfg := s.cfg
	globalEndpoints, _ := splitEndpoints(cfg.GlobalServerAddress) // validated by Open
	gcli, err := newClient(globalEndpoints, cfg, s.log)
	if err != nil {
		return fmt.Errorf("topo: connecting to --topo-global-server-address=%s: %w", cfg.GlobalServerAddress, err)
	}
	s.global = &store{name: "global", cli: gcli, root: cfg.GlobalRoot, timeout: cfg.RequestTimeout, alive: s.ctx}
	ci, err := readCellInfo(ctx, s.global, cfg)
	if err != nil {
		_ = gcli.Close()
		return err
	}
	cellEndpoints, err := splitEndpoints(ci.GetServerAddress())
	if err != nil {
		_ = gcli.Close()
		return fmt.Errorf("topo: CellInfo of cell %q has unusable server_address %q (%v); fix it with: vtctldclient UpdateCellInfo --server-address <etcd endpoints> %s",
			cfg.Cell, ci.GetServerAddress(), err, cfg.Cell)
	}
	s.cell = &store{name: cfg.Cell, cli: gcli, root: ci.GetRoot(), timeout: cfg.RequestTimeout, alive: s.ctx}
	if sameEndpoints(globalEndpoints, cellEndpoints) {
		s.sharedClient = true
	} else {
		ccli, err := newClient(cellEndpoints, cfg, s.log)
		if err == nil {
			s.cell.cli = ccli
			if err = probe(ctx, s.cell); err != nil {
				_ = ccli.Close()
			}
		}
		if err != nil {
			_ = gcli.Close()
			return fmt.Errorf("topo: connecting to cell %q at %s (from its CellInfo): %w", cfg.Cell, ci.GetServerAddress(), err)
		}
	}
	s.log.Info("topology opened",
		zap.String("global_address", cfg.GlobalServerAddress), zap.String("global_root", cfg.GlobalRoot),
		zap.String("cell", cfg.Cell), zap.String("cell_address", ci.GetServerAddress()),
		zap.String("cell_root", ci.GetRoot()), zap.Bool("shared_client", s.sharedClient))
	return nil
}

// readCellInfo reads the cell's CellInfo from the global topology.
func readCellInfo(ctx context.Context, global *store, cfg Config) (*topodatapb.CellInfo, error) {
	ci := &topodatapb.CellInfo{}
	_, err := global.getProto(ctx, cellInfoPath(cfg.Cell), ci)
	switch {
	case errors.Is(err, ErrNoNode):
		return nil, fmt.Errorf("%w: no %s in the global topology (--topo-global-server-address=%s --topo-global-root=%s); register the cell first with: vtctldclient AddCellInfo --root /vitess/%s --server-address <cell etcd endpoints> %s",
			ErrCellNotFound, global.key(cellInfoPath(cfg.Cell)), cfg.GlobalServerAddress, cfg.GlobalRoot, cfg.Cell, cfg.Cell)
	case err != nil:
		return nil, fmt.Errorf("topo: reading CellInfo of cell %q from --topo-global-server-address=%s: %w", cfg.Cell, cfg.GlobalServerAddress, err)
	}
	return ci, nil
}

func newClient(endpoints []string, cfg Config, log *zap.Logger) (*clientv3.Client, error) {
	return clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		DialTimeout: cfg.DialTimeout,
		// The etcd client is chatty at info level; keep its warnings and errors.
		Logger: log.Named("etcd-client").WithOptions(zap.IncreaseLevel(zapcore.WarnLevel)),
	})
}

// probe checks that a store's etcd answers, with one bounded count-only read.
func probe(ctx context.Context, st *store) error {
	rctx, cancel := st.reqCtx(ctx)
	defer cancel()
	_, err := st.cli.Get(rctx, st.dirPrefix(""), clientv3.WithPrefix(), clientv3.WithCountOnly())
	return err
}

func sameEndpoints(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// Close releases held locks' keep-alives and the etcd clients. It is safe to
// call more than once.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		s.cancel()
		s.ops.Wait()
		s.wg.Wait()
		if !s.sharedClient {
			if err := s.cell.cli.Close(); err != nil {
				s.log.Warn("closing cell etcd client", zap.Error(err))
			}
		}
		if err := s.global.cli.Close(); err != nil {
			s.log.Warn("closing global etcd client", zap.Error(err))
		}
	})
}

// Cell returns the cell this Server is connected to.
func (s *Server) Cell() string { return s.cfg.Cell }

// begin registers a lock operation that Close must wait for; it returns
// ErrClosed once Close has started. Call the returned func when done.
func (s *Server) begin() (func(), error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	s.ops.Add(1)
	return s.ops.Done, nil
}

// modify runs a read-modify-write loop on one record with compare-and-swap on
// its ModRevision, retrying when another writer wins. fn edits a copy; if fn
// returns ErrNoUpdateNeeded the current record is returned unchanged. When the
// record is missing, modify returns ErrNoNode, unless create is true: then fn
// edits an empty record that is created if still absent.
func modify[T proto.Message](ctx context.Context, st *store, rel string, create bool, newT func() T, fn func(T) error) (T, error) {
	var zero T
	for {
		if err := ctx.Err(); err != nil {
			return zero, err
		}
		cur := newT()
		rev, err := st.getProto(ctx, rel, cur)
		missing := errors.Is(err, ErrNoNode)
		if err != nil && !(missing && create) {
			return zero, err
		}
		next := proto.Clone(cur).(T)
		if err := fn(next); err != nil {
			if errors.Is(err, ErrNoUpdateNeeded) {
				return cur, nil
			}
			return zero, err
		}
		if missing {
			_, err = st.createProto(ctx, rel, next)
		} else {
			_, err = st.updateProto(ctx, rel, next, rev)
		}
		switch {
		case errors.Is(err, ErrBadVersion), errors.Is(err, ErrNodeExists):
			continue // someone else wrote in between: re-read and re-apply
		case err != nil:
			return zero, err
		}
		return next, nil
	}
}
