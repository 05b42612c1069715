package topo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/user"
	"path"
	"strconv"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Locks interoperable with Vitess v23 (go/vt/topo/locks.go, keyspace_lock.go,
// shard_lock.go, etcd2topo/lock.go):
//
//   - the locked "directory" is keyspaces/<ks> (keyspace lock) or
//     keyspaces/<ks>/shards/<shard> (shard lock) in the global topology, and it
//     must already hold at least one key;
//   - the contender grants a lease (--topo-etcd-lease-ttl, 30s) and creates
//     <root>/<dir>/locks/<leaseID in decimal> attached to it, guarded by
//     Version(key) == 0; the value is the JSON lock description below;
//   - it holds the lock once no key under <dir>/locks/ has a ModRevision older
//     than its own; until then it watches the newest older key and re-checks
//     when that key is deleted;
//   - unlocking revokes the lease, which deletes the key.
//
// Unlike vtctld, which stops renewing the lease as soon as the lock is taken,
// tabletd keeps the lease alive until Unlock, so a slow holder never loses the
// lock silently.

// lockDescription is the JSON vtctld writes as a lock's value (topo.Lock,
// marshalled with two-space indentation; Options has no exported fields and
// so is always {}).
type lockDescription struct {
	Action   string
	HostName string
	UserName string
	Time     string
	Options  struct{}
	Status   string
}

// Lock is a held keyspace or shard lock. Release it with Unlock.
type Lock struct {
	s       *Server
	key     string
	leaseID clientv3.LeaseID
	stopKA  context.CancelFunc
	kaDone  chan struct{} // closed when the keep-alive drain goroutine exits
	once    sync.Once
	err     error
}

// LockKeyspace takes vtctld's keyspace lock for keyspaces/<keyspace>; the
// keyspace must have records already. It waits at most the context's deadline
// and Config.LockTimeout, then returns ErrLockTimeout. action is shown to
// operators (e.g. "CreateShard").
func (s *Server) LockKeyspace(ctx context.Context, keyspace, action string) (*Lock, error) {
	if err := ValidateKeyspaceName(keyspace); err != nil {
		return nil, err
	}
	return s.lockDir(ctx, keyspaceDirPath(keyspace), "keyspace "+keyspace, action)
}

// LockShard takes vtctld's shard lock for keyspaces/<keyspace>/shards/<shard>;
// the shard record must exist. Waiting is bounded as for LockKeyspace.
func (s *Server) LockShard(ctx context.Context, keyspace, shard, action string) (*Lock, error) {
	if err := ValidateKeyspaceName(keyspace); err != nil {
		return nil, err
	}
	shard, _, err := ValidateShardName(shard)
	if err != nil {
		return nil, err
	}
	return s.lockDir(ctx, shardDirPath(keyspace, shard), "shard "+keyspace+"/"+shard, action)
}

// withKeyspaceLock runs fn while holding the keyspace lock.
func (s *Server) withKeyspaceLock(ctx context.Context, keyspace, action string, fn func(context.Context) error) error {
	l, err := s.LockKeyspace(ctx, keyspace, action)
	if err != nil {
		return err
	}
	ferr := fn(ctx)
	if uerr := l.Unlock(ctx); uerr != nil && ferr == nil {
		return uerr
	}
	return ferr
}

func (s *Server) lockDir(ctx context.Context, dirRel, what, action string) (*Lock, error) {
	done, err := s.begin()
	if err != nil {
		return nil, fmt.Errorf("locking %s: %w", what, err)
	}
	defer done()
	ctx, cancel := context.WithTimeout(ctx, s.cfg.LockTimeout)
	defer cancel()
	stop := context.AfterFunc(s.ctx, cancel) // Close aborts a waiting lock
	defer stop()

	if _, err := s.global.listDir(ctx, dirRel); err != nil {
		if errors.Is(err, ErrNoNode) {
			return nil, fmt.Errorf("cannot lock %s: nothing is stored under %s yet, create its record first: %w", what, s.global.key(dirRel), err)
		}
		return nil, err
	}
	contents, err := s.lockContents(action)
	if err != nil {
		return nil, err
	}
	l, rev, err := s.createLockKey(ctx, path.Join(dirRel, locksDir), contents)
	if err != nil {
		return nil, s.lockErr(ctx, what, err)
	}
	for {
		held, err := s.waitOlderLocks(ctx, path.Join(dirRel, locksDir), rev)
		if err != nil {
			l.release(ctx)
			return nil, s.lockErr(ctx, what, err)
		}
		if held {
			s.log.Info("lock acquired", zap.String("lock", what), zap.String("action", action), zap.String("key", l.key))
			return l, nil
		}
	}
}

// lockErr turns a context expiry into ErrLockTimeout naming the lock.
func (s *Server) lockErr(ctx context.Context, what string, err error) error {
	if s.ctx.Err() != nil {
		return fmt.Errorf("locking %s: %w", what, ErrClosed)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("%w: %s (waited up to --lock-timeout=%v or the caller's deadline; check `vtctldclient` for a running operation holding it): %w",
			ErrLockTimeout, what, s.cfg.LockTimeout, ctx.Err())
	}
	return fmt.Errorf("locking %s: %w", what, err)
}

func (s *Server) lockContents(action string) (string, error) {
	d := lockDescription{
		Action:   action,
		HostName: s.cfg.LockHostname,
		UserName: "unknown",
		Time:     time.Now().Format(time.RFC3339),
		Status:   "Running",
	}
	if u, err := user.Current(); err == nil {
		d.UserName = u.Username
	}
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return "", fmt.Errorf("topo: encoding lock description: %w", err)
	}
	return string(b), nil
}

// createLockKey grants a lease, keeps it alive, and creates the lock key under
// locksRel. It returns the lock and the key's creation revision.
func (s *Server) createLockKey(ctx context.Context, locksRel, contents string) (*Lock, int64, error) {
	cli := s.global.cli
	ttl := int64(s.cfg.LockTTL / time.Second)
	rctx, rcancel := s.global.reqCtx(ctx)
	lease, err := cli.Grant(rctx, ttl)
	rcancel()
	if err != nil {
		return nil, 0, fmt.Errorf("granting lock lease: %w", err)
	}
	kaCtx, stopKA := context.WithCancel(s.ctx)
	ka, err := cli.KeepAlive(kaCtx, lease.ID)
	if err != nil {
		stopKA()
		s.revoke(ctx, lease.ID)
		return nil, 0, fmt.Errorf("keeping lock lease alive: %w", err)
	}
	l := &Lock{
		s:       s,
		key:     s.global.key(locksRel) + "/" + strconv.FormatInt(int64(lease.ID), 10),
		leaseID: lease.ID,
		stopKA:  stopKA,
		kaDone:  make(chan struct{}),
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(l.kaDone)
		for range ka { // drain renewals until stopKA or Close
		}
	}()
	rctx, rcancel = s.global.reqCtx(ctx)
	resp, err := cli.Txn(rctx).
		If(clientv3.Compare(clientv3.Version(l.key), "=", 0)).
		Then(clientv3.OpPut(l.key, contents, clientv3.WithLease(lease.ID))).
		Commit()
	rcancel()
	switch {
	case err != nil:
		l.release(ctx)
		return nil, 0, fmt.Errorf("creating lock key %s: %w", l.key, err)
	case !resp.Succeeded: // lease ids are unique, so this means a broken etcd
		l.release(ctx)
		return nil, 0, fmt.Errorf("creating lock key %s: %w", l.key, ErrNodeExists)
	}
	return l, resp.Header.Revision, nil
}

// waitOlderLocks reports whether no lock key under locksRel is older than rev.
// If one is, it waits until that key is deleted (or ctx ends) and reports false
// so the caller checks again.
func (s *Server) waitOlderLocks(ctx context.Context, locksRel string, rev int64) (bool, error) {
	cli := s.global.cli
	prefix := s.global.key(locksRel) + "/"
	rctx, rcancel := s.global.reqCtx(ctx)
	resp, err := cli.Get(rctx, prefix, append(clientv3.WithLastRev(), clientv3.WithMaxModRev(rev-1))...)
	rcancel()
	if err != nil {
		return false, err
	}
	if len(resp.Kvs) == 0 {
		return true, nil
	}
	blocker := string(resp.Kvs[0].Key)
	s.log.Debug("waiting for older lock", zap.String("blocker", blocker))
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	// Watch from just after the read, so a delete between the read and the
	// watch is still seen and the start revision cannot have been compacted.
	wc := cli.Watch(wctx, blocker, clientv3.WithRev(resp.Header.Revision+1))
	for {
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case wr, ok := <-wc:
			if !ok || wr.Err() != nil {
				return false, nil // watch ended: re-check from scratch
			}
			for _, ev := range wr.Events {
				if ev.Type == mvccpb.DELETE {
					return false, nil
				}
			}
		}
	}
}

// Key is the etcd key of the held lock.
func (l *Lock) Key() string { return l.key }

// Check verifies the lock's lease is still alive; ErrLockLost otherwise.
func (l *Lock) Check(ctx context.Context) error {
	rctx, cancel := l.s.global.reqCtx(ctx)
	defer cancel()
	if _, err := l.s.global.cli.KeepAliveOnce(rctx, l.leaseID); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrLockLost, l.key, err)
	}
	return nil
}

// Unlock releases the lock by revoking its lease, even when ctx is already
// cancelled (the revoke gets its own bounded context). Later calls return the
// first call's result.
func (l *Lock) Unlock(ctx context.Context) error {
	l.once.Do(func() {
		done, err := l.s.begin()
		if err != nil {
			l.stopKA()
			l.err = fmt.Errorf("unlocking %s: %w (the lock expires with its lease TTL)", l.key, err)
			return
		}
		defer done()
		l.err = l.release(ctx)
		if l.err == nil {
			l.s.log.Info("lock released", zap.String("key", l.key))
		}
	})
	return l.err
}

// release stops the keep-alive and revokes the lease.
func (l *Lock) release(ctx context.Context) error {
	l.stopKA()
	<-l.kaDone
	return l.s.revoke(ctx, l.leaseID)
}

// revoke revokes a lease with a context detached from ctx's cancellation, so
// locks are released even by callers whose context has expired.
func (s *Server) revoke(ctx context.Context, id clientv3.LeaseID) error {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.RequestTimeout)
	defer cancel()
	if _, err := s.global.cli.Revoke(rctx, id); err != nil {
		s.log.Warn("revoking lock lease failed; the lock expires with its TTL",
			zap.Int64("lease", int64(id)), zap.Duration("ttl", s.cfg.LockTTL), zap.Error(err))
		return fmt.Errorf("topo: releasing lock lease %d: %w", int64(id), err)
	}
	return nil
}
