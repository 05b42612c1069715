package topo

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap/zaptest"
	"google.golang.org/protobuf/proto"

	"github.com/tabletd/tabletd/proto/topodatapb"
	"github.com/tabletd/tabletd/test/etcdtest"
)

const (
	testGlobalRoot = "/vitess/global"
	testCellRoot   = "/vitess/zone1"
	testCell       = "zone1"
)

// env is one real etcd holding the global topology and cell zone1.
type env struct {
	etcd *etcdtest.Server
	raw  *clientv3.Client
	cfg  Config
}

// newEnv starts etcd and registers cell zone1 the way `vtctldclient
// AddCellInfo --root /vitess/zone1 --server-address <etcd> zone1` does.
func newEnv(t *testing.T) *env {
	t.Helper()
	srv := etcdtest.Start(t)
	e := &env{
		etcd: srv,
		raw:  srv.Client(t),
		cfg: Config{
			GlobalServerAddress: srv.Endpoint(),
			GlobalRoot:          testGlobalRoot,
			Cell:                testCell,
			LockHostname:        "testhost",
		},
	}
	e.putProto(t, testGlobalRoot+"/cells/zone1/CellInfo",
		&topodatapb.CellInfo{ServerAddress: srv.Endpoint(), Root: testCellRoot})
	return e
}

// open returns a Server on the env, closed at the end of the test.
func (e *env) open(t *testing.T) *Server {
	t.Helper()
	s, err := Open(testCtx(t), e.cfg, zaptest.NewLogger(t))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func (e *env) putProto(t *testing.T, key string, m proto.Message) {
	t.Helper()
	data, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.raw.Put(testCtx(t), key, string(data)); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

// keys lists every key in etcd, sorted.
func (e *env) keys(t *testing.T) []string {
	t.Helper()
	resp, err := e.raw.Get(testCtx(t), "", clientv3.WithFromKey(), clientv3.WithKeysOnly(),
		clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		out = append(out, string(kv.Key))
	}
	return out
}

// rawGet returns one key's etcd record, or nil when absent.
func (e *env) rawGet(t *testing.T, key string) *mvccpb.KeyValue {
	t.Helper()
	resp, err := e.raw.Get(testCtx(t), key)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) == 0 {
		return nil
	}
	return resp.Kvs[0]
}

// decode reads a key and decodes it into m, failing the test when absent.
func (e *env) decode(t *testing.T, key string, m proto.Message) *mvccpb.KeyValue {
	t.Helper()
	kv := e.rawGet(t, key)
	if kv == nil {
		t.Fatalf("%s is missing", key)
	}
	if err := proto.Unmarshal(kv.Value, m); err != nil {
		t.Fatalf("%s does not decode as %T: %v", key, m, err)
	}
	return kv
}

func testTablet(uid uint32, keyspace, shard, host string, grpcPort int32) *topodatapb.Tablet {
	return &topodatapb.Tablet{
		Alias:    &topodatapb.TabletAlias{Cell: testCell, Uid: uid},
		Hostname: host,
		PortMap:  map[string]int32{"vt": 15000 + int32(uid), "grpc": grpcPort},
		Keyspace: keyspace,
		Shard:    shard,
		Type:     topodatapb.TabletType_REPLICA,
		Tags:     map[string]string{},
	}
}

// startup runs the registration steps a tablet performs at startup, in
// vttablet's order. ErrIncompleteKeyspace from the serving graph is returned
// as is, for the caller to judge.
func startup(ctx context.Context, s *Server, tab *topodatapb.Tablet) error {
	if _, err := s.GetOrCreateShard(ctx, tab.Keyspace, tab.Shard); err != nil {
		return err
	}
	if _, err := s.EnsureSidecarDBName(ctx, tab.Keyspace); err != nil {
		return err
	}
	if err := s.RegisterTablet(ctx, tab); err != nil {
		return err
	}
	return s.EnsureServingGraph(ctx, tab.Keyspace)
}

// waitFor polls cond until it holds, failing the test after 30s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

func isIncomplete(err error) bool { return errors.Is(err, ErrIncompleteKeyspace) }
