package topo

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"

	"go.uber.org/zap/zaptest"
	"google.golang.org/protobuf/proto"

	"github.com/tabletd/tabletd/proto/topodatapb"
	"github.com/tabletd/tabletd/proto/vschemapb"
	"github.com/tabletd/tabletd/test/etcdtest"
)

func TestOpenMissingCell(t *testing.T) {
	srv := etcdtest.Start(t)
	cfg := Config{GlobalServerAddress: srv.Endpoint(), GlobalRoot: testGlobalRoot, Cell: "nocell"}
	s, err := Open(testCtx(t), cfg, zaptest.NewLogger(t))
	if !errors.Is(err, ErrCellNotFound) {
		if s != nil {
			s.Close()
		}
		t.Fatalf("Open = %v, want ErrCellNotFound", err)
	}
	for _, want := range []string{`nocell`, "vtctldclient AddCellInfo"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q should mention %q", err, want)
		}
	}
	e := &env{raw: srv.Client(t)}
	if keys := e.keys(t); len(keys) != 0 {
		t.Errorf("Open wrote %v, want nothing", keys)
	}
}

func TestOpenInvalidConfig(t *testing.T) {
	_, err := Open(testCtx(t), Config{GlobalRoot: "/vitess/global", Cell: "zone1"}, nil)
	if err == nil || !strings.Contains(err.Error(), "--topo-global-server-address") {
		t.Fatalf("Open with no address = %v, want an error naming --topo-global-server-address", err)
	}
}

// TestOpenSeparateCellCluster puts the cell on its own etcd: cell records
// must go there and global records to the global etcd.
func TestOpenSeparateCellCluster(t *testing.T) {
	e := newEnv(t)
	cellEtcd := etcdtest.Start(t)
	e.putProto(t, testGlobalRoot+"/cells/zone1/CellInfo",
		&topodatapb.CellInfo{ServerAddress: cellEtcd.Endpoint(), Root: testCellRoot})
	s := e.open(t)
	if s.sharedClient {
		t.Fatal("cell on another etcd must get its own client")
	}
	ctx := testCtx(t)
	if err := startup(ctx, s, testTablet(100, "commerce", "0", "host1", 16100)); err != nil {
		t.Fatal(err)
	}
	cellEnv := &env{raw: cellEtcd.Client(t)}
	for _, k := range cellEnv.keys(t) {
		if !strings.HasPrefix(k, testCellRoot+"/") {
			t.Errorf("cell etcd holds %s, outside the cell root", k)
		}
	}
	if cellEnv.rawGet(t, testCellRoot+"/tablets/zone1-0000000100/Tablet") == nil {
		t.Error("tablet record is not in the cell etcd")
	}
	for _, k := range e.keys(t) {
		if !strings.HasPrefix(k, testGlobalRoot+"/") {
			t.Errorf("global etcd holds %s, outside the global root", k)
		}
	}
}

// TestRegistrationLayout checks that one tablet's startup writes exactly the
// keys Vitess uses, and that every value decodes as the Vitess message.
func TestRegistrationLayout(t *testing.T) {
	e := newEnv(t)
	s := e.open(t)
	if !s.sharedClient {
		t.Error("a cell on the global etcd endpoints must reuse the global client")
	}
	ctx := testCtx(t)
	tab := testTablet(100, "commerce", "0", "host1", 16100)
	if err := startup(ctx, s, tab); err != nil {
		t.Fatal(err)
	}
	golden, err := os.ReadFile("testdata/registration_keys.golden")
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, line := range strings.Split(string(golden), "\n") {
		if line != "" && !strings.HasPrefix(line, "#") {
			want = append(want, line)
		}
	}
	if got := e.keys(t); !equalStrings(got, want) {
		t.Fatalf("keys after registration:\n%s\nwant (testdata/registration_keys.golden):\n%s",
			strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	ks := &topodatapb.Keyspace{}
	e.decode(t, testGlobalRoot+"/keyspaces/commerce/Keyspace", ks)
	if ks.GetSidecarDbName() != "_vt" {
		t.Errorf("Keyspace.sidecar_db_name = %q, want _vt", ks.GetSidecarDbName())
	}
	if kv := e.rawGet(t, testGlobalRoot+"/keyspaces/commerce/VSchema"); len(kv.Value) != 0 {
		t.Errorf("VSchema = %x, want the empty unsharded vschema (zero bytes), as Vitess writes", kv.Value)
	}
	sh := &topodatapb.Shard{}
	e.decode(t, testGlobalRoot+"/keyspaces/commerce/shards/0/Shard", sh)
	if !sh.GetIsPrimaryServing() || sh.GetKeyRange() != nil || sh.GetPrimaryAlias() != nil {
		t.Errorf("Shard = %v, want is_primary_serving, no key range, no primary", sh)
	}
	got := &topodatapb.Tablet{}
	e.decode(t, testCellRoot+"/tablets/zone1-0000000100/Tablet", got)
	if !proto.Equal(got, tab) {
		t.Errorf("Tablet = %v, want %v", got, tab)
	}
	sr := &topodatapb.ShardReplication{}
	e.decode(t, testCellRoot+"/keyspaces/commerce/shards/0/ShardReplication", sr)
	if len(sr.GetNodes()) != 1 || !sameAlias(sr.GetNodes()[0].GetTabletAlias(), tab.Alias) {
		t.Errorf("ShardReplication = %v, want one node for zone1-0000000100", sr)
	}
	sk := &topodatapb.SrvKeyspace{}
	e.decode(t, testCellRoot+"/keyspaces/commerce/SrvKeyspace", sk)
	checkPartitions(t, "SrvKeyspace", sk, []string{"0"})
	svs := &vschemapb.SrvVSchema{}
	e.decode(t, testCellRoot+"/SrvVSchema", svs)
	if _, ok := svs.GetKeyspaces()["commerce"]; !ok || svs.GetRoutingRules() == nil || svs.GetKeyspaceRoutingRules() != nil {
		t.Errorf("SrvVSchema = %v, want keyspace commerce, empty routing rules, no keyspace routing rules", svs)
	}

	// Starting again (a restart) changes nothing but the tablet record.
	before := e.rawGet(t, testGlobalRoot+"/keyspaces/commerce/shards/0/Shard").ModRevision
	if err := startup(ctx, s, tab); err != nil {
		t.Fatalf("restart: %v", err)
	}
	if after := e.rawGet(t, testGlobalRoot+"/keyspaces/commerce/shards/0/Shard").ModRevision; after != before {
		t.Errorf("restart rewrote the Shard record")
	}
	if got := e.keys(t); !equalStrings(got, want) {
		t.Errorf("keys after restart: %v", got)
	}
}

// TestConcurrentRegistration starts five tablets of a new keyspace/shard at
// once, each with its own connection, as five processes would.
func TestConcurrentRegistration(t *testing.T) {
	e := newEnv(t)
	const n = 5
	servers := make([]*Server, n)
	for i := range servers {
		servers[i] = e.open(t)
	}
	ctx := testCtx(t)
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = startup(ctx, servers[i], testTablet(uint32(100+i), "commerce", "-", fmt.Sprintf("host%d", i), 16100))
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("tablet %d: %v", i, err)
		}
	}
	var shards, keyspaces, vschemas, tablets int
	for _, k := range e.keys(t) {
		switch {
		case strings.HasSuffix(k, "/Shard"):
			shards++
		case strings.HasSuffix(k, "/Keyspace"):
			keyspaces++
		case strings.HasSuffix(k, "/VSchema"):
			vschemas++
		case strings.HasSuffix(k, "/Tablet"):
			tablets++
		case strings.Contains(k, "/locks/"):
			t.Errorf("lock left behind: %s", k)
		}
	}
	if shards != 1 || keyspaces != 1 || vschemas != 1 || tablets != n {
		t.Errorf("got %d Shard, %d Keyspace, %d VSchema, %d Tablet records; want 1, 1, 1, %d", shards, keyspaces, vschemas, tablets, n)
	}
	// Written once each: etcd's per-key Version counts writes.
	for _, k := range []string{"/keyspaces/commerce/Keyspace", "/keyspaces/commerce/VSchema", "/keyspaces/commerce/shards/-/Shard"} {
		if kv := e.rawGet(t, testGlobalRoot+k); kv.Version != 1 {
			t.Errorf("%s written %d times, want once", k, kv.Version)
		}
	}
	for _, k := range []string{"/keyspaces/commerce/SrvKeyspace"} {
		if kv := e.rawGet(t, testCellRoot+k); kv.Version != 1 {
			t.Errorf("%s written %d times, want once", k, kv.Version)
		}
	}
	sh := &topodatapb.Shard{}
	e.decode(t, testGlobalRoot+"/keyspaces/commerce/shards/-/Shard", sh)
	if !sh.GetIsPrimaryServing() || sh.GetKeyRange() == nil {
		t.Errorf("Shard = %v, want serving with an (empty) key range", sh)
	}
	sr := &topodatapb.ShardReplication{}
	e.decode(t, testCellRoot+"/keyspaces/commerce/shards/-/ShardReplication", sr)
	seen := map[uint32]bool{}
	for _, node := range sr.GetNodes() {
		seen[node.GetTabletAlias().GetUid()] = true
	}
	if len(sr.GetNodes()) != n || len(seen) != n {
		t.Errorf("ShardReplication has %d nodes (%d distinct), want %d: %v", len(sr.GetNodes()), len(seen), n, sr)
	}
	for i := range n {
		got := &topodatapb.Tablet{}
		e.decode(t, fmt.Sprintf("%s/tablets/zone1-%010d/Tablet", testCellRoot, 100+i), got)
		if got.GetHostname() != fmt.Sprintf("host%d", i) {
			t.Errorf("tablet %d clobbered: %v", i, got)
		}
	}
}

func TestRegisterTabletTakeover(t *testing.T) {
	for _, tt := range []struct {
		name     string
		existing *topodatapb.Tablet
		next     *topodatapb.Tablet
		wantErr  error
	}{
		{"restart on same host:port", testTablet(100, "ks", "0", "host1", 16100), testTablet(100, "ks", "0", "host1", 16100), nil},
		{"previous owner shut down", func() *topodatapb.Tablet {
			tab := testTablet(100, "ks", "0", "", 0)
			tab.PortMap = nil
			return tab
		}(), testTablet(100, "ks", "0", "host2", 16200), nil},
		{"held by another host", testTablet(100, "ks", "0", "host1", 16100), testTablet(100, "ks", "0", "host2", 16100), ErrTabletHeld},
		{"held by another port", testTablet(100, "ks", "0", "host1", 16100), testTablet(100, "ks", "0", "host1", 16101), ErrTabletHeld},
		{"other shard", testTablet(100, "ks", "0", "host1", 16100), testTablet(100, "ks", "1", "host1", 16100), ErrTabletMismatch},
		{"other keyspace", testTablet(100, "ks", "0", "", 16100), testTablet(100, "other", "0", "host1", 16100), ErrTabletMismatch},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			s := e.open(t)
			key := testCellRoot + "/tablets/zone1-0000000100/Tablet"
			e.putProto(t, key, tt.existing)
			before := e.rawGet(t, key)
			err := s.RegisterTablet(testCtx(t), tt.next)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("RegisterTablet = %v, want %v", err, tt.wantErr)
			}
			after := e.rawGet(t, key)
			if tt.wantErr != nil {
				if after.ModRevision != before.ModRevision {
					t.Error("a refused registration changed the tablet record")
				}
				if errors.Is(err, ErrTabletHeld) && !strings.Contains(err.Error(), fmt.Sprintf("%s:%d", tt.existing.Hostname, tt.existing.PortMap["grpc"])) {
					t.Errorf("error %q should name the holder", err)
				}
				return
			}
			got := &topodatapb.Tablet{}
			e.decode(t, key, got)
			if !proto.Equal(got, tt.next) {
				t.Errorf("record = %v, want %v", got, tt.next)
			}
			sr := &topodatapb.ShardReplication{}
			e.decode(t, testCellRoot+"/keyspaces/ks/shards/0/ShardReplication", sr)
			if len(sr.GetNodes()) != 1 {
				t.Errorf("ShardReplication = %v, want exactly one node", sr)
			}
		})
	}
}

func TestRegisterTabletCanonicalShard(t *testing.T) {
	e := newEnv(t)
	s := e.open(t)
	tab := testTablet(100, "ks", "80-C0", "host1", 16100)
	if err := s.RegisterTablet(testCtx(t), tab); err != nil {
		t.Fatal(err)
	}
	got, _, err := s.GetTablet(testCtx(t), tab.Alias)
	if err != nil {
		t.Fatal(err)
	}
	if got.GetShard() != "80-c0" || !proto.Equal(got.GetKeyRange(), &topodatapb.KeyRange{Start: []byte{0x80}, End: []byte{0xc0}}) {
		t.Errorf("stored shard %q key range %v, want 80-c0 [80, c0)", got.GetShard(), got.GetKeyRange())
	}
	if tab.Shard != "80-C0" {
		t.Error("RegisterTablet modified its argument")
	}
	_, _, err = s.GetTablet(testCtx(t), &topodatapb.TabletAlias{Cell: "zone2", Uid: 1})
	if !errors.Is(err, ErrWrongCell) {
		t.Errorf("GetTablet in another cell = %v, want ErrWrongCell", err)
	}
	_, _, err = s.GetTablet(testCtx(t), &topodatapb.TabletAlias{Cell: testCell, Uid: 999})
	if !errors.Is(err, ErrNoNode) {
		t.Errorf("GetTablet of a missing tablet = %v, want ErrNoNode", err)
	}
}

// TestUpdateTabletContention runs concurrent read-modify-write increments
// from two connections; compare-and-swap must not lose any.
func TestUpdateTabletContention(t *testing.T) {
	e := newEnv(t)
	s1, s2 := e.open(t), e.open(t)
	ctx := testCtx(t)
	tab := testTablet(100, "ks", "0", "host1", 16100)
	if err := s1.RegisterTablet(ctx, tab); err != nil {
		t.Fatal(err)
	}
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		s := s1
		if i%2 == 1 {
			s = s2
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.UpdateTablet(ctx, tab.Alias, func(rec *topodatapb.Tablet) error {
				c, _ := strconv.Atoi(rec.Tags["counter"]) // "" (first increment) reads as 0
				if rec.Tags == nil {
					rec.Tags = map[string]string{}
				}
				rec.Tags["counter"] = strconv.Itoa(c + 1)
				return nil
			})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	got, _, err := s1.GetTablet(ctx, tab.Alias)
	if err != nil {
		t.Fatal(err)
	}
	if got.Tags["counter"] != fmt.Sprint(n) {
		t.Errorf("counter = %s after %d increments", got.Tags["counter"], n)
	}

	// ErrNoUpdateNeeded leaves the record alone.
	_, rev, _ := s1.GetTablet(ctx, tab.Alias)
	unchanged, err := s1.UpdateTablet(ctx, tab.Alias, func(*topodatapb.Tablet) error { return ErrNoUpdateNeeded })
	if err != nil || unchanged.Tags["counter"] != fmt.Sprint(n) {
		t.Errorf("UpdateTablet(no update) = %v, %v", unchanged, err)
	}
	if _, rev2, _ := s1.GetTablet(ctx, tab.Alias); rev2 != rev {
		t.Error("ErrNoUpdateNeeded rewrote the record")
	}
	// Missing tablets are not created by UpdateTablet.
	_, err = s1.UpdateTablet(ctx, &topodatapb.TabletAlias{Cell: testCell, Uid: 7}, func(*topodatapb.Tablet) error { return nil })
	if !errors.Is(err, ErrNoNode) {
		t.Errorf("UpdateTablet of a missing tablet = %v, want ErrNoNode", err)
	}
}

func TestUpdateShard(t *testing.T) {
	e := newEnv(t)
	s := e.open(t)
	ctx := testCtx(t)
	if _, err := s.GetOrCreateShard(ctx, "ks", "0"); err != nil {
		t.Fatal(err)
	}
	primary := &topodatapb.TabletAlias{Cell: testCell, Uid: 100}
	got, err := s.UpdateShard(ctx, "ks", "0", func(sh *topodatapb.Shard) error {
		sh.PrimaryAlias = primary
		return nil
	})
	if err != nil || !proto.Equal(got.GetPrimaryAlias(), primary) {
		t.Fatalf("UpdateShard = %v, %v", got, err)
	}
	read, err := s.GetShard(ctx, "ks", "0")
	if err != nil || !proto.Equal(read, got) {
		t.Errorf("GetShard = %v, %v; want %v", read, err, got)
	}
	if _, err := s.UpdateShard(ctx, "ks", "-80", func(*topodatapb.Shard) error { return nil }); !errors.Is(err, ErrNoNode) {
		t.Errorf("UpdateShard of a missing shard = %v, want ErrNoNode", err)
	}
}

// TestShardOverlap: a shard overlapping an existing one is created not serving.
func TestShardOverlap(t *testing.T) {
	e := newEnv(t)
	s := e.open(t)
	ctx := testCtx(t)
	for _, tt := range []struct {
		shard   string
		serving bool
	}{
		{"-80", true},
		{"80-", true},
		{"-40", false}, // overlaps -80
		{"0", false},   // a plain name overlaps everything
	} {
		sh, err := s.GetOrCreateShard(ctx, "ks", tt.shard)
		if err != nil {
			t.Fatal(err)
		}
		if sh.GetIsPrimaryServing() != tt.serving {
			t.Errorf("shard %s is_primary_serving = %v, want %v", tt.shard, sh.GetIsPrimaryServing(), tt.serving)
		}
	}
}

func TestEnsureSidecarDBName(t *testing.T) {
	e := newEnv(t)
	s := e.open(t)
	ctx := testCtx(t)
	// A keyspace created by vtctld without a sidecar name, and one with a custom name.
	e.putProto(t, testGlobalRoot+"/keyspaces/bare/Keyspace", &topodatapb.Keyspace{DurabilityPolicy: "semi_sync"})
	e.putProto(t, testGlobalRoot+"/keyspaces/custom/Keyspace", &topodatapb.Keyspace{SidecarDbName: "_vt_custom"})
	for _, tt := range []struct{ ks, want string }{{"bare", "_vt"}, {"custom", "_vt_custom"}} {
		name, err := s.EnsureSidecarDBName(ctx, tt.ks)
		if err != nil || name != tt.want {
			t.Errorf("EnsureSidecarDBName(%s) = %q, %v; want %q", tt.ks, name, err, tt.want)
		}
		ks := &topodatapb.Keyspace{}
		e.decode(t, testGlobalRoot+"/keyspaces/"+tt.ks+"/Keyspace", ks)
		if ks.GetSidecarDbName() != tt.want {
			t.Errorf("stored sidecar_db_name of %s = %q, want %q", tt.ks, ks.GetSidecarDbName(), tt.want)
		}
	}
	ks := &topodatapb.Keyspace{}
	e.decode(t, testGlobalRoot+"/keyspaces/bare/Keyspace", ks)
	if ks.GetDurabilityPolicy() != "semi_sync" {
		t.Error("EnsureSidecarDBName lost other keyspace fields")
	}
	if _, err := s.EnsureSidecarDBName(ctx, "missing"); !errors.Is(err, ErrNoNode) {
		t.Errorf("EnsureSidecarDBName(missing) = %v, want ErrNoNode", err)
	}
}
