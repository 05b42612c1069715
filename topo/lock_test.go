package topo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tabletd/tabletd/proto/topodatapb"
)

const locksPrefix = testGlobalRoot + "/keyspaces/ks/locks/"

// lockKeys lists the keys in the keyspace's locks directory.
func (e *env) lockKeys(t *testing.T) []string {
	t.Helper()
	resp, err := e.raw.Get(testCtx(t), locksPrefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, kv := range resp.Kvs {
		out = append(out, string(kv.Key))
	}
	return out
}

// TestLockFormat checks the lock key, value and lease are what vtctld writes
// and reads: <root>/keyspaces/<ks>/locks/<lease id>, JSON description, lease-bound.
func TestLockFormat(t *testing.T) {
	e := newEnv(t)
	s := e.open(t)
	ctx := testCtx(t)
	e.putProto(t, testGlobalRoot+"/keyspaces/ks/Keyspace", &topodatapb.Keyspace{})
	l, err := s.LockKeyspace(ctx, "ks", "CreateShard")
	if err != nil {
		t.Fatal(err)
	}
	kv := e.rawGet(t, l.Key())
	if kv == nil {
		t.Fatalf("lock key %s missing", l.Key())
	}
	if want := locksPrefix + strconv.FormatInt(kv.Lease, 10); l.Key() != want || kv.Lease == 0 {
		t.Errorf("lock key %s (lease %d), want %s bound to its lease", l.Key(), kv.Lease, want)
	}
	var desc map[string]any
	if err := json.Unmarshal(kv.Value, &desc); err != nil {
		t.Fatalf("lock value is not JSON: %v\n%s", err, kv.Value)
	}
	for _, f := range []string{"Action", "HostName", "UserName", "Time", "Options", "Status"} {
		if _, ok := desc[f]; !ok {
			t.Errorf("lock description lacks %s: %s", f, kv.Value)
		}
	}
	if desc["Action"] != "CreateShard" || desc["HostName"] != "testhost" || desc["Status"] != "Running" {
		t.Errorf("lock description = %s", kv.Value)
	}
	if _, err := time.Parse(time.RFC3339, fmt.Sprint(desc["Time"])); err != nil {
		t.Errorf("lock Time %v is not RFC 3339: %v", desc["Time"], err)
	}
	if !strings.HasPrefix(string(kv.Value), "{\n  \"Action\": ") {
		t.Errorf("lock description is not indented like vtctld's: %q", kv.Value)
	}
	ttl, err := e.raw.TimeToLive(ctx, clientv3.LeaseID(kv.Lease))
	if err != nil || ttl.GrantedTTL != 30 {
		t.Errorf("lease TTL = %v, %v; want granted 30s", ttl, err)
	}
	if err := l.Check(ctx); err != nil {
		t.Errorf("Check on a held lock: %v", err)
	}
	if err := l.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	if keys := e.lockKeys(t); len(keys) != 0 {
		t.Errorf("after Unlock, locks dir holds %v", keys)
	}
	if err := l.Check(ctx); !errors.Is(err, ErrLockLost) {
		t.Errorf("Check after Unlock = %v, want ErrLockLost", err)
	}
}

func TestLockNeedsExistingDir(t *testing.T) {
	e := newEnv(t)
	s := e.open(t)
	if _, err := s.LockKeyspace(testCtx(t), "nosuch", "x"); !errors.Is(err, ErrNoNode) {
		t.Errorf("LockKeyspace(nosuch) = %v, want ErrNoNode", err)
	}
	if _, err := s.LockShard(testCtx(t), "nosuch", "0", "x"); !errors.Is(err, ErrNoNode) {
		t.Errorf("LockShard(nosuch/0) = %v, want ErrNoNode", err)
	}
}

// TestLockExcludes: a second contender (another process) waits for the
// holder, times out with ErrLockTimeout, and gets the lock once it is released.
func TestLockExcludes(t *testing.T) {
	e := newEnv(t)
	s1, s2 := e.open(t), e.open(t)
	ctx := testCtx(t)
	if _, err := s1.GetOrCreateShard(ctx, "ks", "0"); err != nil {
		t.Fatal(err)
	}
	held, err := s1.LockKeyspace(ctx, "ks", "holder")
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err = s2.LockKeyspace(short, "ks", "contender")
	cancel()
	if !errors.Is(err, ErrLockTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("contender = %v, want ErrLockTimeout", err)
	}
	if keys := e.lockKeys(t); len(keys) != 1 || keys[0] != held.Key() {
		t.Fatalf("after the contender gave up, locks dir = %v, want only %s", keys, held.Key())
	}

	got := make(chan error, 1)
	go func() {
		l, err := s2.LockKeyspace(ctx, "ks", "contender")
		if err == nil {
			err = l.Unlock(ctx)
		}
		got <- err
	}()
	waitFor(t, "contender's key", func() bool { return len(e.lockKeys(t)) == 2 })
	select {
	case err := <-got:
		t.Fatalf("contender returned (%v) while the lock was held", err)
	default:
	}
	if err := held.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatalf("contender after release: %v", err)
	}
}

// TestLockWaitsForVtctld: a lock key written the way vtctld writes it (lease
// key under locks/) blocks us until its lease is revoked.
func TestLockWaitsForVtctld(t *testing.T) {
	e := newEnv(t)
	s := e.open(t)
	ctx := testCtx(t)
	e.putProto(t, testGlobalRoot+"/keyspaces/ks/Keyspace", &topodatapb.Keyspace{})
	lease, err := e.raw.Grant(ctx, 30)
	if err != nil {
		t.Fatal(err)
	}
	foreign := locksPrefix + strconv.FormatInt(int64(lease.ID), 10)
	if _, err := e.raw.Put(ctx, foreign, `{"Action":"RebuildKeyspace"}`, clientv3.WithLease(lease.ID)); err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() {
		l, err := s.LockKeyspace(ctx, "ks", "ours")
		if err == nil {
			err = l.Unlock(ctx)
		}
		got <- err
	}()
	waitFor(t, "our lock key", func() bool { return len(e.lockKeys(t)) == 2 })
	select {
	case err := <-got:
		t.Fatalf("lock returned (%v) while vtctld held it", err)
	default:
	}
	if _, err := e.raw.Revoke(ctx, lease.ID); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatalf("lock after vtctld released: %v", err)
	}
}

// TestLockMutualExclusion: many contenders on several connections; never two
// inside at once.
func TestLockMutualExclusion(t *testing.T) {
	e := newEnv(t)
	servers := []*Server{e.open(t), e.open(t), e.open(t)}
	ctx := testCtx(t)
	if _, err := servers[0].GetOrCreateShard(ctx, "ks", "0"); err != nil {
		t.Fatal(err)
	}
	var (
		mu      sync.Mutex
		inside  int
		entered int
		wg      sync.WaitGroup
	)
	errs := make(chan error, 9)
	for i := range 9 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- servers[i%3].withKeyspaceLock(ctx, "ks", "test", func(context.Context) error {
				mu.Lock()
				inside++
				entered++
				n := inside
				mu.Unlock()
				if n != 1 {
					return fmt.Errorf("%d holders at once", n)
				}
				// A write while holding, so others' attempts interleave.
				_, err := e.raw.Put(ctx, "/scratch", strconv.Itoa(i))
				mu.Lock()
				inside--
				mu.Unlock()
				return err
			})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if entered != 9 {
		t.Errorf("%d of 9 contenders got the lock", entered)
	}
}

// TestCloseAbortsLockWait: Close stops a waiting contender with ErrClosed.
func TestCloseAbortsLockWait(t *testing.T) {
	e := newEnv(t)
	s1 := e.open(t)
	s2, err := Open(testCtx(t), e.cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	e.putProto(t, testGlobalRoot+"/keyspaces/ks/Keyspace", &topodatapb.Keyspace{})
	held, err := s1.LockKeyspace(ctx, "ks", "holder")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Unlock(ctx)
	got := make(chan error, 1)
	go func() {
		_, err := s2.LockKeyspace(ctx, "ks", "waiter")
		got <- err
	}()
	waitFor(t, "waiter's key", func() bool { return len(e.lockKeys(t)) == 2 })
	s2.Close()
	if err := <-got; !errors.Is(err, ErrClosed) {
		t.Errorf("waiting lock after Close = %v, want ErrClosed", err)
	}
	// Close let the waiter revoke its lease: only the holder's key is left.
	if keys := e.lockKeys(t); len(keys) != 1 || keys[0] != held.Key() {
		t.Errorf("after Close, locks dir = %v, want only %s", keys, held.Key())
	}
	if _, err := s2.LockKeyspace(ctx, "ks", "after close"); !errors.Is(err, ErrClosed) {
		t.Errorf("LockKeyspace after Close = %v, want ErrClosed", err)
	}
	if _, err := s2.GetShard(ctx, "ks", "0"); !errors.Is(err, ErrClosed) {
		t.Errorf("GetShard after Close = %v, want ErrClosed", err)
	}
}
