package topo

import (
	"context"
	"fmt"
	"path"
	"strings"
)

// namedLocksDir is Vitess's topo.NamedLocksPath: named locks live under
// internal/named_locks/<name>/locks/ in the global topology.
const namedLocksDir = "internal/named_locks"

// LockName takes Vitess's named lock <name> (topo.Server.LockName), e.g. the
// "<keyspace>/<workflow>" lock vtctld's MoveTables, SwitchTraffic and VDiff take. Unlike a
// keyspace or shard lock, nothing needs to exist under the name first (etcd2topo's
// LockName lists nothing). Waiting is bounded as for LockKeyspace.
func (s *Server) LockName(ctx context.Context, name, action string) (*Lock, error) {
	if name == "" || strings.Contains(name, "..") {
		return nil, fmt.Errorf("topo: invalid lock name %q", name)
	}
	done, err := s.begin()
	if err != nil {
		return nil, fmt.Errorf("locking %s: %w", name, err)
	}
	defer done()
	ctx, cancel := context.WithTimeout(ctx, s.cfg.LockTimeout)
	defer cancel()
	stop := context.AfterFunc(s.ctx, cancel) // Close aborts a waiting lock
	defer stop()
	what := "named lock " + name
	contents, err := s.lockContents(action)
	if err != nil {
		return nil, err
	}
	locks := path.Join(namedLocksDir, name, locksDir)
	l, rev, err := s.createLockKey(ctx, locks, contents)
	if err != nil {
		return nil, s.lockErr(ctx, what, err)
	}
	for {
		held, err := s.waitOlderLocks(ctx, locks, rev)
		if err != nil {
			l.release(ctx)
			return nil, s.lockErr(ctx, what, err)
		}
		if held {
			return l, nil
		}
	}
}
