package topo

import (
	"errors"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/tabletd/tabletd/proto/topodatapb"
	"github.com/tabletd/tabletd/proto/vschemapb"
)

func TestEnsureServingGraph(t *testing.T) {
	for _, tt := range []struct {
		name    string
		shards  []string
		want    []string
		wantErr error
	}{
		{"unsharded", []string{"0"}, []string{"0"}, nil},
		{"two halves", []string{"80-", "-80"}, []string{"-80", "80-"}, nil},
		{"lower half only", []string{"-80"}, nil, ErrIncompleteKeyspace},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			s := e.open(t)
			ctx := testCtx(t)
			for _, sh := range tt.shards {
				if _, err := s.GetOrCreateShard(ctx, "ks", sh); err != nil {
					t.Fatal(err)
				}
			}
			err := s.EnsureServingGraph(ctx, "ks")
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("EnsureServingGraph = %v, want %v", err, tt.wantErr)
			}
			// SrvVSchema is built either way.
			svs, verr := s.GetSrvVSchema(ctx)
			if verr != nil {
				t.Fatal(verr)
			}
			if _, ok := svs.GetKeyspaces()["ks"]; !ok {
				t.Errorf("SrvVSchema lacks ks: %v", svs)
			}
			sk, kerr := s.GetSrvKeyspace(ctx, "ks")
			if tt.wantErr != nil {
				if !errors.Is(kerr, ErrNoNode) {
					t.Errorf("incomplete keyspace: GetSrvKeyspace = %v, %v; want ErrNoNode (nothing written)", sk, kerr)
				}
				return
			}
			if kerr != nil {
				t.Fatal(kerr)
			}
			checkPartitions(t, tt.name, sk, tt.want)
		})
	}
}

// TestEnsureServingGraphCompletes: once the missing shard appears, a retry
// builds the SrvKeyspace.
func TestEnsureServingGraphCompletes(t *testing.T) {
	e := newEnv(t)
	s := e.open(t)
	ctx := testCtx(t)
	if err := startup(ctx, s, testTablet(100, "ks", "-80", "host1", 16100)); !isIncomplete(err) {
		t.Fatalf("first half: %v, want ErrIncompleteKeyspace", err)
	}
	if err := startup(ctx, s, testTablet(200, "ks", "80-", "host2", 16200)); err != nil {
		t.Fatalf("second half: %v", err)
	}
	if err := s.EnsureServingGraph(ctx, "ks"); err != nil {
		t.Fatalf("retry by the first tablet: %v", err)
	}
	sk, err := s.GetSrvKeyspace(ctx, "ks")
	if err != nil {
		t.Fatal(err)
	}
	checkPartitions(t, "SrvKeyspace", sk, []string{"-80", "80-"})
}

// TestEnsureServingGraphKeepsExisting: existing serving records are never replaced.
func TestEnsureServingGraphKeepsExisting(t *testing.T) {
	e := newEnv(t)
	s := e.open(t)
	ctx := testCtx(t)
	if _, err := s.GetOrCreateShard(ctx, "ks", "0"); err != nil {
		t.Fatal(err)
	}
	custom := &topodatapb.SrvKeyspace{Partitions: []*topodatapb.SrvKeyspace_KeyspacePartition{{ServedType: topodatapb.TabletType_PRIMARY,
		ShardReferences: []*topodatapb.ShardReference{{Name: "0"}}}}}
	e.putProto(t, testCellRoot+"/keyspaces/ks/SrvKeyspace", custom)
	existing := &vschemapb.SrvVSchema{Keyspaces: map[string]*vschemapb.Keyspace{"ks": {Sharded: true}}}
	e.putProto(t, testCellRoot+"/SrvVSchema", existing)
	skRev := e.rawGet(t, testCellRoot+"/keyspaces/ks/SrvKeyspace").ModRevision
	vsRev := e.rawGet(t, testCellRoot+"/SrvVSchema").ModRevision
	if err := s.EnsureServingGraph(ctx, "ks"); err != nil {
		t.Fatal(err)
	}
	if e.rawGet(t, testCellRoot+"/keyspaces/ks/SrvKeyspace").ModRevision != skRev {
		t.Error("existing SrvKeyspace was rewritten")
	}
	if e.rawGet(t, testCellRoot+"/SrvVSchema").ModRevision != vsRev {
		t.Error("SrvVSchema that already has the keyspace was rewritten")
	}
}

// TestSrvVSchemaRebuild: an SrvVSchema lacking the keyspace is rebuilt from
// every keyspace's VSchema and the global rules files.
func TestSrvVSchemaRebuild(t *testing.T) {
	e := newEnv(t)
	s := e.open(t)
	ctx := testCtx(t)
	otherVS := &vschemapb.Keyspace{Sharded: true, Vindexes: map[string]*vschemapb.Vindex{"hash": {Type: "hash"}}}
	e.putProto(t, testGlobalRoot+"/keyspaces/other/Keyspace", &topodatapb.Keyspace{SidecarDbName: "_vt"})
	e.putProto(t, testGlobalRoot+"/keyspaces/other/VSchema", otherVS)
	e.putProto(t, testGlobalRoot+"/keyspaces/novschema/Keyspace", &topodatapb.Keyspace{})
	rr := &vschemapb.RoutingRules{Rules: []*vschemapb.RoutingRule{{FromTable: "t1", ToTables: []string{"other.t1"}}}}
	e.putProto(t, testGlobalRoot+"/RoutingRules", rr)
	krr := &vschemapb.KeyspaceRoutingRules{Rules: []*vschemapb.KeyspaceRoutingRule{{FromKeyspace: "a", ToKeyspace: "other"}}}
	e.putProto(t, testGlobalRoot+"/routing_rules/keyspace/Rules", krr)
	// An SrvVSchema from before "ks" existed.
	e.putProto(t, testCellRoot+"/SrvVSchema", &vschemapb.SrvVSchema{Keyspaces: map[string]*vschemapb.Keyspace{"other": otherVS}})

	if _, err := s.GetOrCreateShard(ctx, "ks", "0"); err != nil {
		t.Fatal(err)
	}
	if err := s.EnsureServingGraph(ctx, "ks"); err != nil {
		t.Fatal(err)
	}
	svs, err := s.GetSrvVSchema(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := &vschemapb.SrvVSchema{
		Keyspaces: map[string]*vschemapb.Keyspace{
			"ks":        {},
			"other":     otherVS,
			"novschema": {},
		},
		RoutingRules:         rr,
		ShardRoutingRules:    &vschemapb.ShardRoutingRules{},
		KeyspaceRoutingRules: krr,
		MirrorRules:          &vschemapb.MirrorRules{},
	}
	if !proto.Equal(svs, want) {
		t.Errorf("SrvVSchema = %v\nwant %v", svs, want)
	}
}
